#include "correl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "fft_plans.h"
#include "simd.h"

namespace fi {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Copies the window starting at (r0, c0) of size (h, w) into the FFT box (H, W) at
// offset (oy, ox), mean removed over the valid pixels (inside the image, not NaN),
// zero elsewhere: pixels outside the image or masked (NaN, e.g. sampled outside by the
// deformation) then neither bias the mean nor correlate.
// Returns the energy (sum of squares after mean removal); -1 if no pixel is valid.
FI_CLONES
double LoadWindow(const float* im, int ny, int nx, int r0, int c0, int h, int w,
                  float* box, int H, int W, int oy, int ox, double* valid_fraction) {
  *valid_fraction = 0;
  const int ra = std::max(r0, 0), rb = std::min(r0 + h, ny);
  const int ca = std::max(c0, 0), cb = std::min(c0 + w, nx);
  // The box needs clearing only where the window does not cover it.
  if (!(h == H && w == W && ra == r0 && rb == r0 + h && ca == c0 && cb == c0 + w))
    std::memset(box, 0, sizeof(float) * static_cast<size_t>(H) * W);
  if (ra >= rb || ca >= cb) return -1.0;
  double sum = 0.0;
  size_t count = 0;
  for (int r = ra; r < rb; ++r) {
    const float* src = im + static_cast<size_t>(r) * nx;
    // Row sums in float (exact enough: at most 4096 values of 16-bit data), reduced in
    // vector lanes: a plain serial sum would wait on each addition.
    float rs = 0;
    int rc = 0;
#pragma omp simd reduction(+ : rs, rc)
    for (int c = ca; c < cb; ++c) {
      const float v = src[c];
      const bool ok = v == v;
      rs += ok ? v : 0.f;
      rc += ok;
    }
    sum += rs;
    count += rc;
  }
  if (count == 0) return -1.0;
  *valid_fraction = static_cast<double>(count) / (static_cast<double>(h) * w);
  const float mean = static_cast<float>(sum / static_cast<double>(count));
  double energy = 0.0;
  // No NaN among the pixels read (the usual case): a loop without selects, which vectorises.
  const bool all_valid = count == static_cast<size_t>(rb - ra) * static_cast<size_t>(cb - ca);
  for (int r = ra; r < rb; ++r) {
    const float* src = im + static_cast<size_t>(r) * nx;
    float* dst = box + static_cast<size_t>(r - r0 + oy) * W + (ox - c0);
    float re = 0;
    if (all_valid) {
#pragma omp simd reduction(+ : re)
      for (int c = ca; c < cb; ++c) {
        const float d = src[c] - mean;
        dst[c] = d;
        re += d * d;
      }
    } else {
      for (int c = ca; c < cb; ++c) {
        const float v = src[c];
        const float d = v == v ? v - mean : 0.f;  // NaN (masked) pixels: 0 after the mean removal
        dst[c] = d;
        re += d * d;
      }
    }
    energy += re;
  }
  return energy;
}

inline int Wrap(int i, int n) { return ((i % n) + n) % n; }

// The (2R+1)^2 neighbourhood of the peak, each value divided by the number of pixel
// pairs that overlap at its lag. Without this, the triangular overlap weighting of a
// windowed correlation pulls sub-pixel estimates towards zero displacement by about
// (peak width)^2 / window size (the loss-of-pairs bias).
struct Map {
  static constexpr int kMaxR = 8;
  float v[(2 * kMaxR + 1) * (2 * kMaxR + 1)];
  int R;
  float at(int dy, int dx) const { return v[(dy + R) * (2 * R + 1) + (dx + R)]; }
};

// Number of overlapping positions of supports [o0, o0+n0) and [o1, o1+n1) at lag l.
inline double Overlap1D(int o0, int n0, int o1, int n1, int l) {
  const int lo = std::max(o0, o1 - l), hi = std::min(o0 + n0, o1 + n1 - l);
  return std::max(0, hi - lo);
}

// Box-sized weights of a window of h x w at (oy, ox): a separable Gaussian of standard
// deviation sigma * size around its centre, 0 outside the window; all 1 when sigma <= 0.
std::vector<float> WindowWeights(int H, int W, int oy, int ox, int h, int w, double sigma) {
  std::vector<float> out(static_cast<size_t>(H) * W, 0.f);
  auto g = [sigma](int i, int n) {
    if (sigma <= 0) return 1.0;
    const double u = (i - (n - 1) / 2.0) / (sigma * n);
    return std::exp(-0.5 * u * u);
  };
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) out[static_cast<size_t>(y + oy) * W + (x + ox)] = static_cast<float>(g(y, h) * g(x, w));
  return out;
}

// Multiplies the box by the weights and returns the new energy (sum of squares).
FI_CLONES
double ApplyWeights(float* box, const float* weights, size_t n) {
  float e = 0;
#pragma omp simd reduction(+ : e)
  for (size_t i = 0; i < n; ++i) {
    box[i] *= weights[i];
    e += box[i] * box[i];
  }
  return e;
}

// 1 where the window's pixel is inside the image and not NaN, 0 elsewhere (box layout of
// LoadWindow): for windows with missing pixels (image borders of deformed images, masks).
void ValidMask(const float* im, int ny, int nx, int r0, int c0, int h, int w, float* mask, int H, int W, int oy, int ox) {
  std::memset(mask, 0, sizeof(float) * static_cast<size_t>(H) * W);
  const int ra = std::max(r0, 0), rb = std::min(r0 + h, ny);
  const int ca = std::max(c0, 0), cb = std::min(c0 + w, nx);
  for (int r = ra; r < rb; ++r) {
    const float* src = im + static_cast<size_t>(r) * nx;
    float* dst = mask + static_cast<size_t>(r - r0 + oy) * W + (ox - c0);
    for (int c = ca; c < cb; ++c) dst[c] = src[c] == src[c] ? 1.f : 0.f;
  }
}

// The window again, with the pixels where `mask` is 0 left out too (mean, energy and box as
// LoadWindow). Returns the energy; -1 if no pixel is left.
double LoadWindowMasked(const float* im, int ny, int nx, int r0, int c0, int h, int w, const float* mask,
                        float* box, int H, int W, int oy, int ox) {
  std::memset(box, 0, sizeof(float) * static_cast<size_t>(H) * W);
  const int ra = std::max(r0, 0), rb = std::min(r0 + h, ny);
  const int ca = std::max(c0, 0), cb = std::min(c0 + w, nx);
  double sum = 0;
  size_t count = 0;
  for (int r = ra; r < rb; ++r) {
    const float* src = im + static_cast<size_t>(r) * nx;
    const float* m = mask + static_cast<size_t>(r - r0 + oy) * W + (ox - c0);
    for (int c = ca; c < cb; ++c)
      if (m[c] != 0 && src[c] == src[c]) {
        sum += src[c];
        ++count;
      }
  }
  if (count == 0) return -1.0;
  const float mean = static_cast<float>(sum / static_cast<double>(count));
  double energy = 0;
  for (int r = ra; r < rb; ++r) {
    const float* src = im + static_cast<size_t>(r) * nx;
    const float* m = mask + static_cast<size_t>(r - r0 + oy) * W + (ox - c0);
    float* dst = box + static_cast<size_t>(r - r0 + oy) * W + (ox - c0);
    for (int c = ca; c < cb; ++c) {
      const float d = m[c] != 0 && src[c] == src[c] ? src[c] - mean : 0.f;
      dst[c] = d;
      energy += static_cast<double>(d) * d;
    }
  }
  return energy;
}

// Number of pixel pairs (x in window 0, x + l in window 1) both valid: the correct weight
// of lag l when a window misses pixels (the products of Overlap1D assume full windows, and
// the wrong weights tilt the correlation peak before the sub-pixel fit).
FI_CLONES
double MaskOverlap(const float* m0, const float* m1, int H, int W, int ly, int lx) {
  const int ya = std::max(0, -ly), yb = std::min(H, H - ly);
  const int xa = std::max(0, -lx), xb = std::min(W, W - lx);
  double total = 0;
  for (int y = ya; y < yb; ++y) {
    const float* r0 = m0 + static_cast<size_t>(y) * W;
    const float* r1 = m1 + static_cast<size_t>(y + ly) * W + lx;
    float row = 0;
#pragma omp simd reduction(+ : row)
    for (int x = xa; x < xb; ++x) row += r0[x] * r1[x];
    total += row;
  }
  return total;
}

// Sub-pixel offset by a weighted centroid of the positive values around the peak.
bool Centroid(const Map& m, int n, float* sy, float* sx) {
  double s = 0, sxw = 0, syw = 0;
  for (int j = -n; j <= n; ++j)
    for (int i = -n; i <= n; ++i) {
      const double v = m.at(j, i);
      if (v <= 0) continue;
      s += v;
      sxw += v * i;
      syw += v * j;
    }
  if (!(s > 0)) return false;
  *sx = static_cast<float>(sxw / s);
  *sy = static_cast<float>(syw / s);
  return true;
}

// Nine-point least-squares fit of a 2D Gaussian (log of the 3x3 neighbourhood),
// Nobach & Honkanen 2005; handles elliptic, rotated peaks.
bool Gaussian2(const Map& m, float* sy, float* sx) {
  double L[3][3];
  for (int j = -1; j <= 1; ++j)
    for (int i = -1; i <= 1; ++i) {
      const double v = m.at(j, i);
      if (!(v > 0)) return false;
      L[j + 1][i + 1] = std::log(v);
    }
  double c10 = 0, c01 = 0, c11 = 0, c20 = 0, c02 = 0;
  for (int j = -1; j <= 1; ++j)
    for (int i = -1; i <= 1; ++i) {
      const double l = L[j + 1][i + 1];
      c10 += i * l;
      c01 += j * l;
      c11 += i * j * l;
      c20 += (3 * i * i - 2) * l;
      c02 += (3 * j * j - 2) * l;
    }
  c10 /= 6;
  c01 /= 6;
  c11 /= 4;
  c20 /= 6;
  c02 /= 6;
  const double den = 4 * c20 * c02 - c11 * c11;
  if (!(std::fabs(den) > 1e-12)) return false;
  const double dx = (c11 * c01 - 2 * c10 * c02) / den;
  const double dy = (c11 * c10 - 2 * c01 * c20) / den;
  if (!(std::fabs(dx) < 1.0 && std::fabs(dy) < 1.0)) return false;
  *sx = static_cast<float>(dx);
  *sy = static_cast<float>(dy);
  return true;
}

// Separable three-point Gaussian estimator along each axis.
bool Gaussian1(const Map& m, float* sy, float* sx) {
  const double c0 = m.at(0, 0);
  const double xm = m.at(0, -1), xp = m.at(0, 1);
  const double ym = m.at(-1, 0), yp = m.at(1, 0);
  if (!(c0 > 0 && xm > 0 && xp > 0 && ym > 0 && yp > 0)) return false;
  const double l0 = std::log(c0);
  const double dxd = 2 * std::log(xm) - 4 * l0 + 2 * std::log(xp);
  const double dyd = 2 * std::log(ym) - 4 * l0 + 2 * std::log(yp);
  if (!(dxd < 0 && dyd < 0)) return false;
  const double dx = (std::log(xm) - std::log(xp)) / dxd;
  const double dy = (std::log(ym) - std::log(yp)) / dyd;
  if (!(std::fabs(dx) < 1.0 && std::fabs(dy) < 1.0)) return false;
  *sx = static_cast<float>(dx);
  *sy = static_cast<float>(dy);
  return true;
}

// z <- a + i b: two real windows in one complex array.
FI_CLONES
void Interleave(const float* a, const float* b, fftwf_complex* z, size_t n) {
  float* o = &z[0][0];
  for (size_t i = 0; i < n; ++i) {
    o[2 * i] = a[i];
    o[2 * i + 1] = b[i];
  }
}

// From Z = FFT(a + i b): A = (Z[k] + conj Z[-k]) / 2, B = (Z[k] - conj Z[-k]) / 2i, and the
// spectrum of the cross-correlation C = conj(A) B, whose inverse peaks at the displacement
// from window a to window b. Slot 0 stores C in `out`, slot 1 adds i C: the inverse of the
// sum then carries two correlations, in its real and imaginary parts.
template <int kSlot>
inline void CrossOne(float p, float q, float r, float s, float* o) {
  const float ar = 0.5f * (p + r), ai = -0.5f * (q - s);  // conj(A)
  const float br = 0.5f * (q + s), bi = -0.5f * (p - r);  // B
  const float cr = ar * br - ai * bi, ci = ar * bi + ai * br;
  if (kSlot == 0) {
    o[0] = cr;
    o[1] = ci;
  } else {
    o[0] -= ci;
    o[1] += cr;
  }
}

template <int kSlot>
FI_CLONES void CrossRows(const fftwf_complex* z, fftwf_complex* out, int H, int W) {
  for (int ky = 0; ky < H; ++ky) {
    const int my = ky == 0 ? 0 : H - ky;
    const float* zr = &z[static_cast<size_t>(ky) * W][0];
    const float* zm = &z[static_cast<size_t>(my) * W][0];
    float* o = &out[static_cast<size_t>(ky) * W][0];
    CrossOne<kSlot>(zr[0], zr[1], zm[0], zm[1], o);
    // Column -kx is W - kx: a reversed read, which the vectoriser handles with permutes.
    for (int kx = 1; kx < W; ++kx)
      CrossOne<kSlot>(zr[2 * kx], zr[2 * kx + 1], zm[2 * (W - kx)], zm[2 * (W - kx) + 1], o + 2 * kx);
  }
}

void CrossFromPacked(const fftwf_complex* z, fftwf_complex* out, int H, int W, int slot) {
  if (slot == 0)
    CrossRows<0>(z, out, H, W);
  else
    CrossRows<1>(z, out, H, W);
}

// Real and imaginary parts of z into two arrays.
FI_CLONES
void Deinterleave(const fftwf_complex* z, float* re, float* im, size_t n) {
  const float* p = &z[0][0];
  for (size_t i = 0; i < n; ++i) {
    re[i] = p[2 * i];
    im[i] = p[2 * i + 1];
  }
}

// Highest correlation over the search region (rows |ly| <= ly_max, columns |lx| <= span of
// the row, wrapped): vectorised maxima per row, then the first position holding the
// highest in the scan order of the general search (same result, no branch per value).
FI_CLONES
float HighestPeak(const float* corr, int H, int W, int ly_max, const int* span_of, int* by, int* bx) {
  float best = -std::numeric_limits<float>::infinity();
  int best_row = 0;
  bool found = false;
  for (int ly = -ly_max; ly <= ly_max; ++ly) {
    const int span = span_of[ly + ly_max];
    if (span < 0) continue;
    const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H : ly) * W;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int c = W - span; c < W; ++c) m = std::max(m, row[c]);
#pragma omp simd reduction(max : m)
    for (int c = 0; c <= span; ++c) m = std::max(m, row[c]);
    if (m > best || !found) {
      best = m;
      best_row = ly;
      found = true;
    }
  }
  if (!found) return best;
  const int span = span_of[best_row + ly_max];
  const float* row = corr + static_cast<size_t>(best_row < 0 ? best_row + H : best_row) * W;
  for (int lx = -span; lx <= span; ++lx)
    if (row[lx < 0 ? W + lx : lx] == best) {
      *by = best_row;
      *bx = lx;
      break;
    }
  return best;
}

}  // namespace

void CorrelateRange(const PassInput& in, const PassOutput& out, int begin, int end) {
  const int H = std::max(in.h0, in.h1), W = std::max(in.w0, in.w1);
  const Plan2D& plan = GetPlan(H, W);
  const size_t nr = static_cast<size_t>(H) * W;
  AlignedBuf a(nr), b(nr), corr0(nr), corr1(nr);
  // Validity masks of the windows of each pending slot (filled only for partial windows).
  AlignedBuf mask0[2] = {AlignedBuf(nr), AlignedBuf(nr)}, mask1[2] = {AlignedBuf(nr), AlignedBuf(nr)};
  AlignedCBuf z(nr), spec(nr), cross(nr);
  // Windows are centred in the FFT box, so zero lag means centres aligned.
  const int oy0 = (H - in.h0) / 2, ox0 = (W - in.w0) / 2;
  const int oy1 = (H - in.h1) / 2, ox1 = (W - in.w1) / 2;
  // Search region: lags up to half the box minus one (so the 3x3 neighbourhood of
  // the peak is not aliased), reduced to displacement_max when given.
  const int ly_max = H / 2 - 1, lx_max = W / 2 - 1;
  const double dmax = in.displacement_max;
  const double dmax2 = dmax > 0 ? dmax * dmax : std::numeric_limits<double>::infinity();
  auto inside = [&](int ly, int lx) {
    return std::abs(ly) <= ly_max && std::abs(lx) <= lx_max &&
           static_cast<double>(ly) * ly + static_cast<double>(lx) * lx <= dmax2;
  };
  // Largest |lx| searched on each row ly (-1: none), the same for every window.
  std::vector<int> span_of(2 * ly_max + 1, -1);
  for (int ly = -ly_max; ly <= ly_max; ++ly)
    for (int lx = lx_max; lx >= 0; --lx)
      if (inside(ly, lx)) {
        span_of[ly + ly_max] = lx;
        break;
      }

  // Window weighting: the weights, and for full windows the expected weight of each lag
  // (the sum of w0(x) w1(x + l) over the box), which replaces the count of pixel pairs.
  const bool weighted = in.window_sigma > 0;
  std::vector<float> weight0, weight1;
  std::vector<double> lag_weight;
  if (weighted) {
    weight0 = WindowWeights(H, W, oy0, ox0, in.h0, in.w0, in.window_sigma);
    weight1 = WindowWeights(H, W, oy1, ox1, in.h1, in.w1, in.window_sigma);
    lag_weight.assign(static_cast<size_t>(2 * H + 1) * (2 * W + 1), -1.0);  // computed on demand
  }
  auto full_weight = [&](int ly, int lx) {
    if (!weighted) return Overlap1D(oy0, in.h0, oy1, in.h1, ly) * Overlap1D(ox0, in.w0, ox1, in.w1, lx);
    double& w = lag_weight[static_cast<size_t>(ly + H) * (2 * W + 1) + (lx + W)];
    if (w < 0) w = MaskOverlap(weight0.data(), weight1.data(), H, W, ly, lx);
    return w;
  };

  // Peaks, sub-pixel positions and outputs of window k from its correlation plane.
  struct Pending {
    int k;
    float norm;
    double base_y, base_x;
    bool partial;  // a window misses pixels: weights from its mask (slot's mask buffers)
  };
  auto finish = [&](const Pending& pd, const float* corr, const float* m0, const float* m1) {
    const int k = pd.k;
    const float norm = pd.norm;
    const double base_y = pd.base_y, base_x = pd.base_x;
    // Highest value of the searched region, away (Chebyshev distance > exclude) from
    // the peaks already found.
    auto find_peak = [&](int nfound, const int* fy, const int* fx, int exclude, int* by, int* bx) {
      if (nfound == 0) return HighestPeak(corr, H, W, ly_max, span_of.data(), by, bx);
      float best = -std::numeric_limits<float>::infinity();
      for (int ly = -ly_max; ly <= ly_max; ++ly) {
        const int span = span_of[ly + ly_max];
        if (span < 0) continue;
        const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H : ly) * W;
        // Row by row, the searched lags form one span [-span, span]: its negative part
        // sits at the end of the (unshifted) row, its non-negative part at the start.
        for (int lx = -span; lx <= span; ++lx) {
          const float v = row[lx < 0 ? W + lx : lx];
          if (!(v > best)) continue;
          bool far = true;
          for (int q = 0; q < nfound && far; ++q)
            far = std::abs(ly - fy[q]) > exclude || std::abs(lx - fx[q]) > exclude;
          if (!far) continue;
          best = v;
          *by = ly;
          *bx = lx;
        }
      }
      return best;
    };
    // Sub-pixel position of a peak (false: on the border of the searched region).
    auto fit = [&](int py, int px, float* sy, float* sx, uint8_t* code) {
      if (!inside(py - 1, px) || !inside(py + 1, px) || !inside(py, px - 1) || !inside(py, px + 1)) return false;
      Map map;
      map.R = std::min(Map::kMaxR, std::max(1, in.nsubpix));
      for (int dy = -map.R; dy <= map.R; ++dy) {
        const int ly = py + dy;
        for (int dx = -map.R; dx <= map.R; ++dx) {
          const int lx = px + dx;
          const double w = pd.partial ? MaskOverlap(m0, m1, H, W, ly, lx) : full_weight(ly, lx);
          const float c = corr[static_cast<size_t>(Wrap(ly, H)) * W + Wrap(lx, W)];
          map.v[(dy + map.R) * (2 * map.R + 1) + (dx + map.R)] = w > 0 ? static_cast<float>(c / w) : 0.f;
        }
      }
      *sy = *sx = 0;
      *code = kOk;
      bool ok = true;
      switch (in.subpix) {
        case kNoSubpix: break;
        case kCentroid: ok = Centroid(map, map.R, sy, sx); break;
        case kGaussian: ok = Gaussian1(map, sy, sx); break;
        default: ok = Gaussian2(map, sy, sx); break;
      }
      if (!ok) {
        *sy = *sx = 0;
        if (in.subpix != kCentroid) Centroid(map, map.R, sy, sx);
        *code = kSubpixFallback;
      }
      return true;
    };
    int fy[kMaxPeaks] = {0}, fx[kMaxPeaks] = {0};
    const float best = find_peak(0, fy, fx, 0, &fy[0], &fx[0]);
    out.correl[k] = best * norm;
    float sy = 0, sx = 0;
    uint8_t code = kOk;
    if (fit(fy[0], fx[0], &sy, &sx, &code)) {
      out.dy[k] = static_cast<float>(base_y + fy[0] + sy);
      out.dx[k] = static_cast<float>(base_x + fx[0] + sx);
      out.code[k] = code;
    } else {
      out.dx[k] = out.dy[k] = kNaN;
      out.code[k] = kPeakOnBorder;
    }
    // Secondary peaks, for the fix step to choose from when the first is rejected.
    const int extra = std::min(in.nb_peaks, kMaxPeaks) - 1;
    for (int q = 0; q < extra; ++q) {
      const size_t o = static_cast<size_t>(k) * extra + q;
      int py = 0, px = 0;
      const float v = find_peak(q + 1, fy, fx, in.exclude_radius, &py, &px);
      fy[q + 1] = py;
      fx[q + 1] = px;
      uint8_t c2;
      if (std::isfinite(v) && fit(py, px, &sy, &sx, &c2)) {
        out.dy2[o] = static_cast<float>(base_y + py + sy);
        out.dx2[o] = static_cast<float>(base_x + px + sx);
        out.correl2[o] = v * norm;
      } else {
        out.dx2[o] = out.dy2[o] = out.correl2[o] = kNaN;
      }
    }
  };
  // Windows go through the transforms in twos: one forward transform per window (its two
  // images as real and imaginary parts), one inverse per two windows. The pairs are
  // (2m, 2m + 1) whatever the range, so that results do not depend on how a pass is split
  // (a window whose partner is invalid goes alone).
  Pending pending[2];
  int npending = 0;
  auto flush = [&] {
    fftwf_execute_dft(plan.bwd, cross.p, z.p);
    Deinterleave(z.p, corr0.p, corr1.p, nr);
    for (int q = 0; q < npending; ++q) finish(pending[q], q == 0 ? corr0.p : corr1.p, mask0[q].p, mask1[q].p);
    npending = 0;
  };

  for (int k = begin; k < end; ++k) {
    if (k % 2 == 0 && npending > 0) flush();
    const int r0 = in.starts0[2 * k], c0 = in.starts0[2 * k + 1];
    const int r1 = in.starts1[2 * k], c1 = in.starts1[2 * k + 1];
    double f0 = 0, f1 = 0;
    const double e0 = LoadWindow(in.im0, in.ny, in.nx, r0, c0, in.h0, in.w0, a.p, H, W, oy0, ox0, &f0);
    const double e1 = LoadWindow(in.im1, in.ny, in.nx, r1, c1, in.h1, in.w1, b.p, H, W, oy1, ox1, &f1);
    // Too little of a window inside the image or the mask: its peak is unreliable.
    if (e0 < 0 || e1 < 0 || f0 < in.min_valid_fraction || f1 < in.min_valid_fraction) {
      out.dx[k] = out.dy[k] = out.correl[k] = kNaN;
      out.code[k] = kOutside;
      continue;
    }
    if (!(e0 > 0 && e1 > 0)) {
      out.dx[k] = out.dy[k] = out.correl[k] = kNaN;
      out.code[k] = kNoTexture;
      continue;
    }
    double e0m = e0, e1m = e1;
    const bool partial = f0 < 1.0 || f1 < 1.0;
    if (partial) {
      float* m0 = mask0[npending].p;
      float* m1 = mask1[npending].p;
      ValidMask(in.im0, in.ny, in.nx, r0, c0, in.h0, in.w0, m0, H, W, oy0, ox0);
      ValidMask(in.im1, in.ny, in.nx, r1, c1, in.h1, in.w1, m1, H, W, oy1, ox1);
      if (in.h0 == in.h1 && in.w0 == in.w1) {
        // Windows of one size are placed where their contents should match (lag ~0): a
        // pixel present in one window only has no partner, it would only add noise. Both
        // keep the pixels valid in both.
        for (size_t i = 0; i < nr; ++i) m0[i] = m1[i] = m0[i] * m1[i];
        e0m = LoadWindowMasked(in.im0, in.ny, in.nx, r0, c0, in.h0, in.w0, m0, a.p, H, W, oy0, ox0);
        e1m = LoadWindowMasked(in.im1, in.ny, in.nx, r1, c1, in.h1, in.w1, m1, b.p, H, W, oy1, ox1);
        if (!(e0m > 0 && e1m > 0)) {
          out.dx[k] = out.dy[k] = out.correl[k] = kNaN;
          out.code[k] = e0m < 0 || e1m < 0 ? kOutside : kNoTexture;
          continue;
        }
      }
    }
    if (weighted) {
      e0m = ApplyWeights(a.p, weight0.data(), nr);
      e1m = ApplyWeights(b.p, weight1.data(), nr);
      if (partial)
        for (size_t i = 0; i < nr; ++i) {
          mask0[npending].p[i] *= weight0[i];
          mask1[npending].p[i] *= weight1[i];
        }
    }
    Interleave(a.p, b.p, z.p, nr);
    fftwf_execute_dft(plan.fwd, z.p, spec.p);
    CrossFromPacked(spec.p, cross.p, H, W, npending);
    pending[npending++] = {k, static_cast<float>(1.0 / (static_cast<double>(nr) * std::sqrt(e0m * e1m))),
                           static_cast<double>((r1 - oy1) - (r0 - oy0)), static_cast<double>((c1 - ox1) - (c0 - ox0)), partial};
  }
  if (npending > 0) flush();
}

double TimeFftOnly(int ny, int nx, int count) {
  // The transforms CorrelateRange does: one forward per window, one inverse per two.
  const Plan2D& plan = GetPlan(ny, nx);
  const size_t n = static_cast<size_t>(ny) * nx;
  AlignedCBuf z(n), spec(n);
  for (size_t i = 0; i < n; ++i) z.p[i][0] = z.p[i][1] = static_cast<float>(i % 7);
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < count; ++k) {
    fftwf_execute_dft(plan.fwd, z.p, spec.p);
    if (k % 2 == 1 || k == count - 1) fftwf_execute_dft(plan.bwd, spec.p, z.p);
  }
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace fi
