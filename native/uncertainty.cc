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
// (j = i alone: Wieneke's sum of squares, for independent contributions; the pixels of one
// particle image give correlated ones, hence the neighbourhood, |i - j| <= L along both
// axes). The 3-point Gaussian fit then gives
//   sigma_dx = |dx(C- - s/2, C0, C+ + s/2) - dx(C- + s/2, C0, C+ - s/2)| / 2,  s = sigma_dC.
// Same along y.
#include "uncertainty.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>


namespace fi {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kNaND = std::numeric_limits<double>::quiet_NaN();

// One standard deviation of the fitted peak position when C+ - C- has standard deviation s.
double SigmaOfFit(double c_minus, double c0, double c_plus, double s) {
  if (!(s >= 0) || !(c0 > 0)) return kNaND;
  const double hi = GaussianPeak3(c_minus - s / 2, c0, c_plus + s / 2);
  const double lo = GaussianPeak3(c_minus + s / 2, c0, c_plus - s / 2);
  if (std::isfinite(hi) && std::isfinite(lo)) return std::fabs(hi - lo) / 2;
  // Perturbations beyond the fit's domain (a weak peak): the linearised estimate for a
  // symmetric peak of sides c, s / (4 c ln(c0 / c)).
  const double c = (c_plus + c_minus) / 2;
  if (c > 0 && c < c0) return s / (4 * c * std::log(c0 / c));
  return kNaND;
}

// Loads the (h+2) x (w+2) region of `im` whose top-left is (r, c) into `v` (mean of the
// inner h x w valid pixels removed, 0 where invalid) and `m` (1 valid, 0 outside the image
// or NaN); false when the inner part has no valid pixel.
inline bool LoadRegion(const float* im, int ny, int nx, long r, long c, int h, int w, float* v, float* m) {
  const int bw = w + 2;
  double sum = 0;
  double count = 0;
  for (int i = 0; i < h + 2; i++) {
    const long y = r + i;
    float* vr = v + static_cast<size_t>(i) * bw;
    float* mr = m + static_cast<size_t>(i) * bw;
    if (y < 0 || y >= ny) {
      std::fill(vr, vr + bw, 0.f);
      std::fill(mr, mr + bw, 0.f);
      continue;
    }
    const float* src = im + static_cast<size_t>(y) * nx;
    if (c >= 0 && c + bw <= nx) {
      // Inside the image (the usual case): no column test, selects only (vectorised).
#pragma omp simd
      for (int j = 0; j < bw; j++) {
        const float p = src[c + j];
        vr[j] = p == p ? p : 0.f;
        mr[j] = p == p ? 1.f : 0.f;
      }
    } else {
      for (int j = 0; j < bw; j++) {
        const long x = c + j;
        const float p = x >= 0 && x < nx ? src[x] : kNaN;
        vr[j] = p == p ? p : 0.f;
        mr[j] = p == p ? 1.f : 0.f;
      }
    }
    if (i < 1 || i > h) continue;
    float rs = 0, rc = 0;
#pragma omp simd reduction(+ : rs, rc)
    for (int j = 1; j <= w; j++) {
      rs += vr[j];
      rc += mr[j];
    }
    sum += rs;
    count += rc;
  }
  if (count == 0) return false;
  const float mean = static_cast<float>(sum / count);
  const size_t n = static_cast<size_t>(h + 2) * bw;
#pragma omp simd
  for (size_t o = 0; o < n; o++) v[o] = m[o] * (v[o] - mean);
  return true;
}

// The sums of window k at lag (py, px): S = {C0, C+x, C-x, C+y, C-y, sum dSx, sum dSx^2,
// sum dSy, sum dSy^2, usable pixels}; false when a window has no valid pixel. `a`, `b`,
// `ma`, `mb`: buffers of (h+2)*(w+2).
bool WindowSums(const UncertaintyInput& in, int k, int px, int py, float* a, float* b, float* ma, float* mb, float* ex_out, float* ey_out,
                float* ok_out, double* S) {
  const int h = in.h, w = in.w, bw = w + 2;
  // Both windows with one pixel around; image 1's at the whole-pixel lag p.
  if (!LoadRegion(in.im0, in.ny, in.nx, static_cast<long>(in.starts0[2 * k]) - 1, static_cast<long>(in.starts0[2 * k + 1]) - 1, h, w, a, ma)) return false;
  if (!LoadRegion(in.im1, in.ny, in.nx, static_cast<long>(in.starts1[2 * k]) + py - 1, static_cast<long>(in.starts1[2 * k + 1]) + px - 1, h, w, b, mb)) return false;
  // Contributions of each usable pixel i (it, its right and lower neighbours valid in both
  // windows): S0 = a_i b_i; along x S+ = a_i b_(i+1) and S- = a_(i+1) b_i (the same pair of
  // pixels the other way round: identical windows give dS = S+ - S- = 0 at every pixel);
  // the same along y. Sums per row in float (vectorised), over rows in double.
  for (int q = 0; q < 10; q++) S[q] = 0;
  for (int r = 0; r < h; r++) {
    const size_t q0 = static_cast<size_t>(r + 1) * bw + 1;
    const float *A = a + q0, *B = b + q0, *MA = ma + q0, *MB = mb + q0;
    float c0 = 0, cxp = 0, cxm = 0, cyp = 0, cym = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, cnt = 0;
#pragma omp simd reduction(+ : c0, cxp, cxm, cyp, cym, s1, s2, s3, s4, cnt)
    for (int c = 0; c < w; c++) {
      const float ok = MA[c] * MB[c] * MA[c + 1] * MB[c + 1] * MA[c + bw] * MB[c + bw];
      const float ai = ok * A[c], bi = B[c];
      const float sxp = ai * B[c + 1], sxm = ok * A[c + 1] * bi;
      const float syp = ai * B[c + bw], sym = ok * A[c + bw] * bi;
      const float ex = sxp - sxm, ey = syp - sym;
      c0 += ai * bi;
      cxp += sxp;
      cxm += sxm;
      cyp += syp;
      cym += sym;
      s1 += ex;
      s2 += ex * ex;
      s3 += ey;
      s4 += ey * ey;
      cnt += ok;
      ex_out[r * w + c] = ex;
      ey_out[r * w + c] = ey;
      ok_out[r * w + c] = ok;
    }
    S[0] += c0;
    S[1] += cxp;
    S[2] += cxm;
    S[3] += cyp;
    S[4] += cym;
    S[5] += s1;
    S[6] += s2;
    S[7] += s3;
    S[8] += s4;
    S[9] += cnt;
  }
  return true;
}

}  // namespace

double GaussianPeak3(double c_minus, double c0, double c_plus) {
  if (!(c_minus > 0 && c0 > 0 && c_plus > 0)) return kNaND;
  const double lm = std::log(c_minus), l0 = std::log(c0), lp = std::log(c_plus);
  const double den = 2 * (lm + lp - 2 * l0);
  if (!(den < 0)) return kNaND;
  return (lm - lp) / den;
}

void UncertaintyRange(const UncertaintyInput& in, const UncertaintyOutput& out, int begin, int end) {
  const size_t ext = static_cast<size_t>(in.h + 2) * (in.w + 2);
  std::vector<float> a(ext), b(ext), ma(ext), mb(ext);
  const int h = in.h, w = in.w, L = in.neighbourhood;
  std::vector<float> ex(static_cast<size_t>(h) * w), ey(ex.size()), ok(ex.size());
  // Deviations of dS from its mean, 0 on unused pixels, with L zero columns on both sides
  // and L zero rows below (neighbours need no bounds test).
  const int pw = w + 2 * L;
  std::vector<float> devx(static_cast<size_t>(h + L) * pw, 0.f), devy(devx.size(), 0.f);
  double S[10];
  for (int k = begin; k < end; k++) {
    out.sigma_x[k] = out.sigma_y[k] = kNaN;
    if (out.offset_x) out.offset_x[k] = out.offset_y[k] = kNaN;
    const float rx = in.rx[k], ry = in.ry[k];
    if (!(std::isfinite(rx) && std::isfinite(ry))) continue;
    const int px = static_cast<int>(std::lround(rx)), py = static_cast<int>(std::lround(ry));
    if (!WindowSums(in, k, px, py, a.data(), b.data(), ma.data(), mb.data(), ex.data(), ey.data(), ok.data(), S)) continue;
    const double C0 = S[0], Cxp = S[1], Cxm = S[2], Cyp = S[3], Cym = S[4], nv = S[9];
    if (nv < 1 || nv < in.min_valid_fraction * in.h * in.w) continue;
    // Sums over the pixels of the squared deviations of dS from its mean.
    double vx = std::max(0.0, S[6] - S[5] * S[5] / nv), vy = std::max(0.0, S[8] - S[7] * S[7] / nv);
    if (L > 0) {
      // Plus twice the products of the deviations of the pairs of pixels less than L+1 apart
      // along both axes (each pair once: the second pixel after the first in row-major order).
      const float mx = static_cast<float>(S[5] / nv), my = static_cast<float>(S[7] / nv);
      for (int r = 0; r < h; r++) {
        float* dxr = devx.data() + static_cast<size_t>(r) * pw + L;
        float* dyr = devy.data() + static_cast<size_t>(r) * pw + L;
        const float *er = ex.data() + static_cast<size_t>(r) * w, *fr = ey.data() + static_cast<size_t>(r) * w;
        const float* kr = ok.data() + static_cast<size_t>(r) * w;
#pragma omp simd
        for (int c = 0; c < w; c++) {
          dxr[c] = kr[c] * (er[c] - mx);
          dyr[c] = kr[c] * (fr[c] - my);
        }
      }
      double cx = 0, cy = 0;
      for (int r = 0; r < h; r++) {
        const float* d0x = devx.data() + static_cast<size_t>(r) * pw + L;
        const float* d0y = devy.data() + static_cast<size_t>(r) * pw + L;
        for (int dr = 0; dr <= L; dr++) {
          for (int dc = dr == 0 ? 1 : -L; dc <= L; dc++) {
            const float* d1x = d0x + dr * pw + dc;
            const float* d1y = d0y + dr * pw + dc;
            float sx = 0, sy = 0;
#pragma omp simd reduction(+ : sx, sy)
            for (int c = 0; c < w; c++) {
              sx += d0x[c] * d1x[c];
              sy += d0y[c] * d1y[c];
            }
            cx += sx;
            cy += sy;
          }
        }
      }
      // Not guaranteed positive: the sum of squares alone then.
      if (vx + 2 * cx > 0) vx += 2 * cx;
      if (vy + 2 * cy > 0) vy += 2 * cy;
    }
    out.sigma_x[k] = static_cast<float>(SigmaOfFit(Cxm, C0, Cxp, std::sqrt(vx)));
    out.sigma_y[k] = static_cast<float>(SigmaOfFit(Cym, C0, Cyp, std::sqrt(vy)));
    if (out.offset_x) {
      out.offset_x[k] = static_cast<float>(px + GaussianPeak3(Cxm, C0, Cxp) - rx);
      out.offset_y[k] = static_cast<float>(py + GaussianPeak3(Cym, C0, Cyp) - ry);
    }
  }
}

}  // namespace fi
