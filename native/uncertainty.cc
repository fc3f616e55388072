// Per-vector uncertainty from correlation statistics (uncertainty.h).
//
// For one window pair (a = window of image 0, b = that of image 1 at the whole-pixel lag p
// nearest to the displacement left between them, both mean removed), the correlation along
// x at lags -1, 0, +1 around p is a sum over the pixels i of the window of
// S-_i = a_(i+1) b_i, S0_i = a_i b_i, S+_i = a_i b_(i+1). Two matching windows would give
// S+_i = S-_i at every pixel and a symmetric peak; what differs between them (noise,
// particles that left, interpolation) makes C+ - C- a sum of random contributions
// dS_i = S+_i - S-_i whose standard deviation is estimated from their spread:
//   sigma_dC^2 = sum_i sum_(j near i) (dS_i - mean dS)(dS_j - mean dS)
// (j over the neighbourhood of i: contributions of neighbouring pixels come from the same
// particle images and are correlated; neighbourhood 0 is Wieneke's sum of squares). The
// 3-point Gaussian fit then gives sigma_dx = |dx(C+ + s/2, C- - s/2) - dx(C+ - s/2, C- + s/2)| / 2
// with s = sigma_dC. Same along y.
#include "uncertainty.h"

#include <cmath>
#include <limits>
#include <vector>

namespace fi {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One standard deviation of the fitted peak position when C+ - C- has standard deviation s.
double SigmaOfFit(double c_minus, double c0, double c_plus, double s) {
  if (!(s >= 0) || !(c0 > 0)) return std::numeric_limits<double>::quiet_NaN();
  const double hi = GaussianPeak3(c_minus - s / 2, c0, c_plus + s / 2);
  const double lo = GaussianPeak3(c_minus + s / 2, c0, c_plus - s / 2);
  if (std::isfinite(hi) && std::isfinite(lo)) return std::fabs(hi - lo) / 2;
  // Perturbations beyond the fit's domain (a weak peak): the linearised estimate for a
  // symmetric peak of sides c, s / (4 c ln(c0 / c)).
  const double c = (c_plus + c_minus) / 2;
  if (c > 0 && c < c0) return s / (4 * c * std::log(c0 / c));
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double GaussianPeak3(double c_minus, double c0, double c_plus) {
  if (!(c_minus > 0 && c0 > 0 && c_plus > 0)) return std::numeric_limits<double>::quiet_NaN();
  const double lm = std::log(c_minus), l0 = std::log(c0), lp = std::log(c_plus);
  const double den = 2 * (lm + lp - 2 * l0);
  if (!(den < 0)) return std::numeric_limits<double>::quiet_NaN();
  return (lm - lp) / den;
}

// Loads the (h+2) x (w+2) region of `im` whose top-left is (r, c) into `v` (mean of the
// inner h x w valid pixels removed) and `valid`; false when the inner part has no valid pixel.
static bool LoadRegion(const float* im, int ny, int nx, long r, long c, int h, int w, std::vector<float>& v,
                       std::vector<uint8_t>& valid) {
  const int bw = w + 2;
  double sum = 0;
  size_t count = 0;
  for (int i = 0; i < h + 2; i++) {
    const long y = r + i;
    for (int j = 0; j < bw; j++) {
      const long x = c + j;
      const size_t o = static_cast<size_t>(i) * bw + j;
      float p = kNaN;
      if (y >= 0 && y < ny && x >= 0 && x < nx) p = im[static_cast<size_t>(y) * nx + x];
      valid[o] = p == p;
      v[o] = p == p ? p : 0.f;
      if (p == p && i >= 1 && i <= h && j >= 1 && j <= w) {
        sum += p;
        count++;
      }
    }
  }
  if (count == 0) return false;
  const float mean = static_cast<float>(sum / static_cast<double>(count));
  for (size_t o = 0; o < v.size(); o++) v[o] = valid[o] ? v[o] - mean : 0.f;
  return true;
}

void UncertaintyRange(const UncertaintyInput& in, const UncertaintyOutput& out, int begin, int end) {
  const int h = in.h, w = in.w;
  const int bw = w + 2;
  const size_t ext = static_cast<size_t>(h + 2) * bw;
  std::vector<float> a(ext), b(ext);
  std::vector<uint8_t> av(ext), bv(ext), used(static_cast<size_t>(h) * w);
  std::vector<double> dsx(used.size()), dsy(used.size());
  const int L = in.neighbourhood;
  for (int k = begin; k < end; k++) {
    out.sigma_x[k] = out.sigma_y[k] = kNaN;
    if (out.offset_x) out.offset_x[k] = out.offset_y[k] = kNaN;
    const float rx = in.rx[k], ry = in.ry[k];
    if (!(std::isfinite(rx) && std::isfinite(ry))) continue;
    const int px = static_cast<int>(std::lround(rx)), py = static_cast<int>(std::lround(ry));
    // Both windows with one pixel around; image 1's at the whole-pixel lag p.
    if (!LoadRegion(in.im0, in.ny, in.nx, static_cast<long>(in.starts0[2 * k]) - 1, static_cast<long>(in.starts0[2 * k + 1]) - 1, h, w, a, av)) continue;
    if (!LoadRegion(in.im1, in.ny, in.nx, static_cast<long>(in.starts1[2 * k]) + py - 1, static_cast<long>(in.starts1[2 * k + 1]) + px - 1, h, w, b, bv)) continue;
    // Contributions of each usable pixel i: S0 = a_i b_i, along x S+ = a_i b_(i+1) and
    // S- = a_(i+1) b_i (the same pair of pixels the other way round: identical windows give
    // dS = S+ - S- = 0 at every pixel), the same along y.
    double C0 = 0, Cxp = 0, Cxm = 0, Cyp = 0, Cym = 0, sdx = 0, sdy = 0;
    size_t nv = 0;
    for (int r = 0; r < h; r++) {
      for (int c = 0; c < w; c++) {
        const size_t o = static_cast<size_t>(r) * w + c;
        const size_t q = static_cast<size_t>(r + 1) * bw + (c + 1);
        const bool ok = av[q] && bv[q] && av[q + 1] && bv[q + 1] && av[q + bw] && bv[q + bw];
        used[o] = ok;
        dsx[o] = dsy[o] = 0;
        if (!ok) continue;
        const double ai = a[q], bi = b[q];
        const double sxp = ai * b[q + 1], sxm = a[q + 1] * bi;
        const double syp = ai * b[q + bw], sym = a[q + bw] * bi;
        C0 += ai * bi;
        Cxp += sxp;
        Cxm += sxm;
        Cyp += syp;
        Cym += sym;
        dsx[o] = sxp - sxm;
        dsy[o] = syp - sym;
        sdx += dsx[o];
        sdy += dsy[o];
        nv++;
      }
    }
    if (nv == 0 || static_cast<double>(nv) < in.min_valid_fraction * h * w) continue;
    const double mdx = sdx / static_cast<double>(nv), mdy = sdy / static_cast<double>(nv);
    for (size_t o = 0; o < used.size(); o++) {
      if (!used[o]) continue;
      dsx[o] -= mdx;
      dsy[o] -= mdy;
    }
    // Variance of the sums: products of deviations over each pixel's neighbourhood (unused
    // pixels hold 0).
    double vx = 0, vy = 0, vx0 = 0, vy0 = 0;
    for (int r = 0; r < h; r++) {
      for (int c = 0; c < w; c++) {
        const size_t o = static_cast<size_t>(r) * w + c;
        if (!used[o]) continue;
        const double ex = dsx[o], ey = dsy[o];
        vx0 += ex * ex;
        vy0 += ey * ey;
        for (int dr = std::max(-L, -r); dr <= std::min(L, h - 1 - r); dr++) {
          const size_t row = static_cast<size_t>(r + dr) * w;
          for (int dc = std::max(-L, -c); dc <= std::min(L, w - 1 - c); dc++) {
            vx += ex * dsx[row + c + dc];
            vy += ey * dsy[row + c + dc];
          }
        }
      }
    }
    // A neighbourhood sum is not guaranteed positive: the independent estimate then.
    if (!(vx > 0)) vx = vx0;
    if (!(vy > 0)) vy = vy0;
    out.sigma_x[k] = static_cast<float>(SigmaOfFit(Cxm, C0, Cxp, std::sqrt(vx)));
    out.sigma_y[k] = static_cast<float>(SigmaOfFit(Cym, C0, Cyp, std::sqrt(vy)));
    if (out.offset_x) {
      out.offset_x[k] = static_cast<float>(px + GaussianPeak3(Cxm, C0, Cxp) - rx);
      out.offset_y[k] = static_cast<float>(py + GaussianPeak3(Cym, C0, Cyp) - ry);
    }
  }
}

}  // namespace fi
