#include "correl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "fft_plans.h"
#include "simd.h"

#if FI_X86_SIMD
#include <immintrin.h>
#endif

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

inline int Wrap(int i, int n) {
  if (i >= 0 && i < n) return i;
  if (i < 0 && i >= -n) return i + n;
  return ((i % n) + n) % n;
}


#if FI_X86_SIMD
__attribute__((target("avx2,fma"))) inline double HSum(__m256d v) {
  alignas(32) double t[4];
  _mm256_store_pd(t, v);
  return (t[0] + t[1]) + (t[2] + t[3]);
}

// Both windows of a slot at once, when they fill the box (h x w = H x W, w a multiple of 8)
// and lie inside the image: means removed, written interleaved (a + i b) straight into the
// complex array of the forward transform, energies returned. The pixels are read once (copied
// interleaved while summed; the means then come off in that contiguous array: image rows
// 4 KiB apart alias in the first-level cache). Sums per row and lane in float (at most w / 8
// values each), across rows in double: integer images give exact means.
// False (the array then holds no result) when a pixel is NaN: the general path takes them.
__attribute__((target("avx2,fma"))) bool LoadPairAvx2(const float* im0, const float* im1, int nx, int r0, int c0,
                                                        int r1, int c1, int h, int w, float* z, double* e0, double* e1) {
  __m256d sa = _mm256_setzero_pd(), sb = _mm256_setzero_pd();
  __m256 bad = _mm256_setzero_ps();
  for (int r = 0; r < h; ++r) {
    const float* pa = im0 + static_cast<size_t>(r0 + r) * nx + c0;
    const float* pb = im1 + static_cast<size_t>(r1 + r) * nx + c1;
    float* o = z + static_cast<size_t>(r) * 2 * w;
    __m256 ra = _mm256_setzero_ps(), rb = _mm256_setzero_ps();
    for (int c = 0; c < w; c += 8) {
      const __m256 va = _mm256_loadu_ps(pa + c), vb = _mm256_loadu_ps(pb + c);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(va, vb, _CMP_UNORD_Q));
      ra = _mm256_add_ps(ra, va);
      rb = _mm256_add_ps(rb, vb);
      const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);
      _mm256_storeu_ps(o + 2 * c, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(o + 2 * c + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    sa = _mm256_add_pd(sa, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(ra)), _mm256_cvtps_pd(_mm256_extractf128_ps(ra, 1))));
    sb = _mm256_add_pd(sb, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(rb)), _mm256_cvtps_pd(_mm256_extractf128_ps(rb, 1))));
  }
  if (_mm256_movemask_ps(bad) != 0) return false;
  const double count = static_cast<double>(h) * w;
  const float ma = static_cast<float>(HSum(sa) / count), mb = static_cast<float>(HSum(sb) / count);
  // (ma, mb) repeated: the interleaved layout's means.
  const __m256 m = _mm256_setr_ps(ma, mb, ma, mb, ma, mb, ma, mb);
  __m256d e = _mm256_setzero_pd();  // lanes (a, b, a, b)
  for (int r = 0; r < h; ++r) {
    float* o = z + static_cast<size_t>(r) * 2 * w;
    __m256 re = _mm256_setzero_ps();
    for (int c = 0; c < 2 * w; c += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(o + c), m);
      re = _mm256_fmadd_ps(d, d, re);
      _mm256_storeu_ps(o + c, d);
    }
    e = _mm256_add_pd(e, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(re)), _mm256_cvtps_pd(_mm256_extractf128_ps(re, 1))));
  }
  alignas(32) double t[4];
  _mm256_store_pd(t, e);
  *e0 = t[0] + t[2];
  *e1 = t[1] + t[3];
  return true;
}

// Largest of row[c], c in [lo, hi) (any bounds), as a vector maximum.
// The last values (fewer than 8): one vector ending at hi, the lanes before them set to -inf,
// when the row has 8 values up to hi (small windows: most of their rows' ranges).
__attribute__((target("avx2,fma"))) inline __m256 MaxRange(const float* row, int lo, int hi, __m256 m) {
  int c = lo;
  for (; c + 8 <= hi; c += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + c));
  if (c < hi && hi >= 8) {
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(c - (hi - 8) - 1));
    const __m256 v = _mm256_blendv_ps(_mm256_set1_ps(-std::numeric_limits<float>::infinity()), _mm256_loadu_ps(row + hi - 8),
                                      _mm256_castsi256_ps(keep));
    return _mm256_max_ps(m, v);
  }
  for (; c < hi; ++c) m = _mm256_max_ps(m, _mm256_set1_ps(row[c]));
  return m;
}

constexpr int kMaxRowsAvx2 = 256;

// HighestPeak with vector maxima: each row's maximum as a vector (no reduction per row),
// the highest value, then its first position in the scan order of the general search (rows
// from -ly_max, lags from -span): the same peak. The map holds no NaN (windows without NaN).
__attribute__((target("avx2,fma"))) float HighestPeakAvx2(const float* corr, int H, int W, int ly_max, const int* span_of,
                                                           int* by, int* bx) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 rows[2 * kMaxRowsAvx2 + 1];
  __m256 m = ninf;
  for (int ly = -ly_max; ly <= ly_max; ++ly) {
    const int span = span_of[ly + ly_max];
    __m256 r = ninf;
    if (span >= 0) {
      const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H : ly) * W;
      r = MaxRange(row, W - span, W, r);
      r = MaxRange(row, 0, span + 1, r);
    }
    rows[ly + ly_max] = r;
    m = _mm256_max_ps(m, r);
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float best = _mm_cvtss_f32(h);
  const __m256 bv = _mm256_set1_ps(best);
  for (int ly = -ly_max; ly <= ly_max; ++ly) {
    if (_mm256_movemask_ps(_mm256_cmp_ps(rows[ly + ly_max], bv, _CMP_EQ_OQ)) == 0) continue;
    const int span = span_of[ly + ly_max];
    const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H : ly) * W;
    for (int lx = -span; lx <= span; ++lx)
      if (row[lx < 0 ? W + lx : lx] == best) {
        *by = ly;
        *bx = lx;
        return best;
      }
  }
  return best;
}
#endif

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

#if FI_X86_SIMD
// CrossRows with AVX2: 4 frequencies a vector, their mirrors -kx one load reversed. In lanes: sum = Z[k] + Z[-k], diff = Z[-k] - Z[k] (as pairs of
// floats), 2 conj(A) = (sum.re, diff.im), 2 B = (sum.im, diff.re), C = conj(A) B.
// C at 4 frequencies from Z there (a) and at their mirrors (m, in the same order).
__attribute__((target("avx2,fma"))) inline __m256 Cross4(__m256 a, __m256 m) {
  const __m256 sum = _mm256_add_ps(a, m), diff = _mm256_sub_ps(m, a);
  const __m256 ca = _mm256_blend_ps(sum, diff, 0xAA);                      // (sum.re, diff.im)
  const __m256 b = _mm256_permute_ps(_mm256_blend_ps(diff, sum, 0xAA), 0xB1);  // (sum.im, diff.re)
  return _mm256_mul_ps(_mm256_set1_ps(0.25f), _mm256_fmaddsub_ps(_mm256_moveldup_ps(ca), b,
                                                                 _mm256_mul_ps(_mm256_movehdup_ps(ca), _mm256_permute_ps(b, 0xB1))));
}

// Z[-kx .. -(kx + 3)] of the mirror row zm: columns W - kx - 3 .. W - kx, reversed (complex = 64 bits).
__attribute__((target("avx2,fma"))) inline __m256 Mirror4(const float* zm, int W, int kx) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_loadu_ps(zm + 2 * (W - kx - 3))), 0x1B));
}

template <int kSlot>
__attribute__((target("avx2,fma"))) void CrossRowsAvx2(const fftwf_complex* z, fftwf_complex* out, int H, int W) {
  for (int ky = 0; ky < H; ++ky) {
    const int my = ky == 0 ? 0 : H - ky;
    const float* zr = &z[static_cast<size_t>(ky) * W][0];
    const float* zm = &z[static_cast<size_t>(my) * W][0];
    float* o = &out[static_cast<size_t>(ky) * W][0];
    // Rows of a multiple of 4 columns (8 or more): the last block wraps round to column 0
    // (columns W - 3, W - 2, W - 1, 0, mirrors 3, 2, 1, 0): no column left to scalar code.
    // Its values are assembled in registers (a partial reload of what was just stored would
    // stall): the old outputs are read before this row's stores, and the store of columns
    // W - 4 .. W - 1 repeats column W - 4 from the block before.
    const bool wrap = W % 4 == 0 && W >= 8;
    __m256 tail_old = _mm256_setzero_ps(), head_old = _mm256_setzero_ps(), last = _mm256_setzero_ps();
    if (wrap && kSlot == 1) {
      tail_old = _mm256_loadu_ps(o + 2 * (W - 4));
      head_old = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(o)));
    }
    if (!wrap) CrossOne<kSlot>(zr[0], zr[1], zm[0], zm[1], o);
    int kx = 1;
    for (; kx + 4 <= W; kx += 4) {
      const __m256 c = Cross4(_mm256_loadu_ps(zr + 2 * kx), Mirror4(zm, W, kx));
      if (kSlot == 0) {
        last = c;
      } else {
        // out += i C: (re - ci, im + cr).
        last = _mm256_addsub_ps(_mm256_loadu_ps(o + 2 * kx), _mm256_permute_ps(c, 0xB1));
      }
      _mm256_storeu_ps(o + 2 * kx, last);
    }
    if (wrap) {
      const __m256 head = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(zr)));
      const __m256 a = _mm256_blend_ps(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_loadu_ps(zr + 2 * (W - 4))), 0x39)), head, 0xC0);
      __m256 c = Cross4(a, Mirror4(zm, W, kx));
      if (kSlot == 1) {
        const __m256 old = _mm256_blend_ps(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(tail_old), 0x39)), head_old, 0xC0);
        c = _mm256_addsub_ps(old, _mm256_permute_ps(c, 0xB1));
      }
      // (column W - 4 from the block before, then W - 3, W - 2, W - 1); column 0 apart.
      const __m256 r = _mm256_blend_ps(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(c), 0x93)),
                                       _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(last), 0xFF)), 0x03);
      _mm256_storeu_ps(o + 2 * (W - 4), r);
      _mm_storeh_pi(reinterpret_cast<__m64*>(o), _mm256_extractf128_ps(c, 1));
      continue;
    }
    for (; kx < W; ++kx)
      CrossOne<kSlot>(zr[2 * kx], zr[2 * kx + 1], zm[2 * (W - kx)], zm[2 * (W - kx) + 1], o + 2 * kx);
  }
}
#endif

void CrossFromPacked(const fftwf_complex* z, fftwf_complex* out, int H, int W, int slot) {
#if FI_X86_SIMD
  if (UseAvx2()) {
    if (slot == 0)
      CrossRowsAvx2<0>(z, out, H, W);
    else
      CrossRowsAvx2<1>(z, out, H, W);
    return;
  }
#endif
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
#if FI_X86_SIMD
  // Boxes up to 512 rows (the row maxima live on the stack: 16 KiB).
  if (UseAvx2() && ly_max <= kMaxRowsAvx2) return HighestPeakAvx2(corr, H, W, ly_max, span_of, by, bx);
#endif
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

namespace {

// Correlates windows of one pass on one thread: its FFT buffers, the pass's geometry and
// search region, the window weights. Windows go through the transforms in twos: one
// forward transform per window (its two images as real and imaginary parts), one inverse
// per two windows. The twos are (2m, 2m + 1) whatever the range, so that results do not
// depend on how a pass is split (a window whose partner is unusable goes alone).
class PassCorrelator {
 public:
  PassCorrelator(const PassInput& in, const PassOutput& out)
      : in_(in),
        out_(out),
        H_(std::max(in.h0, in.h1)),
        W_(std::max(in.w0, in.w1)),
        nr_(static_cast<size_t>(H_) * W_),
        plan_(GetPlan(H_, W_)),
        // Windows are centred in the FFT box, so zero lag means centres aligned.
        oy0_((H_ - in.h0) / 2),
        ox0_((W_ - in.w0) / 2),
        oy1_((H_ - in.h1) / 2),
        ox1_((W_ - in.w1) / 2),
        // Search region: lags up to half the box minus one (so the 3x3 neighbourhood of
        // the peak is not aliased), reduced to displacement_max when given.
        ly_max_(H_ / 2 - 1),
        lx_max_(W_ / 2 - 1),
        dmax2_(in.displacement_max > 0 ? static_cast<double>(in.displacement_max) * in.displacement_max
                                       : std::numeric_limits<double>::infinity()),
        a_(nr_), b_(nr_), corr0_(nr_), corr1_(nr_),
        mask0_{AlignedBuf(nr_), AlignedBuf(nr_)},
        mask1_{AlignedBuf(nr_), AlignedBuf(nr_)},
        z_(nr_), spec_(nr_), cross_(nr_),
        weighted_(in.window_sigma > 0),
        // The vector load: windows of one size filling the box, rows of whole vectors, no weights.
        fast_load_(UseAvx2() && !weighted_ && in.h0 == in.h1 && in.w0 == in.w1 && W_ % 8 == 0 &&
                   in.min_valid_fraction <= 1.0),
        pair_load_(!weighted_ && in.h0 == in.h1 && in.w0 == in.w1),
        rowa_(W_), rowb_(W_) {
    // Largest |lx| searched on each row ly (-1: none), the same for every window.
    span_of_.assign(2 * ly_max_ + 1, -1);
    for (int ly = -ly_max_; ly <= ly_max_; ++ly)
      for (int lx = lx_max_; lx >= 0; --lx)
        if (Inside(ly, lx)) {
          span_of_[ly + ly_max_] = lx;
          break;
        }
    if (weighted_) {
      weight0_ = WindowWeights(H_, W_, oy0_, ox0_, in.h0, in.w0, in.window_sigma);
      weight1_ = WindowWeights(H_, W_, oy1_, ox1_, in.h1, in.w1, in.window_sigma);
      lag_weight_.assign(static_cast<size_t>(2 * H_ + 1) * (2 * W_ + 1), -1.0);  // computed on demand
    }
  }

  // Peaks of windows whose planes were summed over pairs (each plane normalised already).
  void RunOnPlanes(const float* planes, const float* counts, int begin, int end) {
    for (int k = begin; k < end; ++k) {
      if (!(counts[k] > 0)) {
        Reject(k, kNoTexture);
        continue;
      }
      const int r0 = in_.starts0[2 * k], c0 = in_.starts0[2 * k + 1];
      const int r1 = in_.starts1[2 * k], c1 = in_.starts1[2 * k + 1];
      const Pending pd{k, 1.f / counts[k], static_cast<double>((r1 - oy1_) - (r0 - oy0_)),
                       static_cast<double>((c1 - ox1_) - (c0 - ox0_)), false};
      Finish(pd, planes + static_cast<size_t>(k) * nr_, nullptr, nullptr);
    }
  }

  void Run(int begin, int end, PassPhases* phases) {
    laps_ = Laps(phases);
    for (int k = begin; k < end; ++k) {
      if (k % 2 == 0 && npending_ > 0) Flush();
      laps_.Start();
      Pending pd;
      bool loaded;
      if (fast_load_ && LoadFast(k, &pd)) {
        loaded = true;
      } else if (pair_load_) {
        loaded = LoadPair(k, npending_, &pd);
      } else {
        loaded = Load(k, npending_, &pd);
        if (loaded) Interleave(a_.p, b_.p, z_.p, nr_);
      }
      laps_.Lap(&PassPhases::load);
      if (!loaded) continue;
      fftwf_execute_dft(plan_.fwd, z_.p, spec_.p);
      laps_.Lap(&PassPhases::fft);
      CrossFromPacked(spec_.p, cross_.p, H_, W_, npending_);
      laps_.Lap(&PassPhases::spectra);
      pending_[npending_++] = pd;
    }
    if (npending_ > 0) Flush();
  }

 private:
  // A window transformed, waiting for the inverse transform.
  struct Pending {
    int k;
    float norm;             // 1 / (box size * sqrt(energies)): identical windows give 1
    double base_y, base_x;  // displacement at zero lag (offset between the windows)
    bool partial;           // a window misses pixels: lag weights from the slot's masks
  };

  // Both windows full and inside the image, without NaN: loaded by the vector path straight
  // into the transform's input (false: not taken, nothing written; the general Load decides).
  bool LoadFast(int k, Pending* pd) {
#if FI_X86_SIMD
    const int r0 = in_.starts0[2 * k], c0 = in_.starts0[2 * k + 1];
    const int r1 = in_.starts1[2 * k], c1 = in_.starts1[2 * k + 1];
    if (r0 < 0 || c0 < 0 || r1 < 0 || c1 < 0 || r0 + H_ > in_.ny || r1 + H_ > in_.ny || c0 + W_ > in_.nx || c1 + W_ > in_.nx)
      return false;
    double e0, e1;
    if (!LoadPairAvx2(in_.im0, in_.im1, in_.nx, r0, c0, r1, c1, H_, W_, &z_.p[0][0], &e0, &e1)) return false;
    if (!(e0 > 0 && e1 > 0)) return false;  // no texture: the general path rejects it
    *pd = {k, static_cast<float>(1.0 / (static_cast<double>(nr_) * std::sqrt(e0 * e1))),
           static_cast<double>(r1 - r0), static_cast<double>(c1 - c0), false};
    return true;
#else
    (void)k;
    (void)pd;
    return false;
#endif
  }

  bool Inside(int ly, int lx) const {
    return std::abs(ly) <= ly_max_ && std::abs(lx) <= lx_max_ &&
           static_cast<double>(ly) * ly + static_cast<double>(lx) * lx <= dmax2_;
  }

  void Reject(int k, uint8_t code) {
    out_.dx[k] = out_.dy[k] = out_.correl[k] = kNaN;
    out_.code[k] = code;
    if (out_.peak_to_mean) out_.peak_to_mean[k] = kNaN;
    const int extra = std::min(in_.nb_peaks, kMaxPeaks) - 1;
    for (int q = 0; q < extra; ++q) {
      const size_t o = static_cast<size_t>(k) * extra + q;
      out_.dx2[o] = out_.dy2[o] = out_.correl2[o] = kNaN;
    }
  }

  // Mean of |correlation| over the searched region (the noise level of the peak-to-mean ratio).
  double MeanAbs(const float* corr) const {
    double sum = 0;
    size_t count = 0;
    for (int ly = -ly_max_; ly <= ly_max_; ++ly) {
      const int span = span_of_[ly + ly_max_];
      if (span < 0) continue;
      const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H_ : ly) * W_;
      for (int lx = -span; lx <= span; ++lx) sum += std::fabs(row[lx < 0 ? W_ + lx : lx]);
      count += 2 * span + 1;
    }
    return count > 0 ? sum / count : 0.0;
  }

  // Load for windows of one size filling the box, without weights (every deformed pass), in
  // two passes over the pixels straight into the transform's input: the same decisions and
  // values as Load (a window's valid pixels: inside the image and not NaN; too few of them:
  // outside; missing pixels: both windows keep those valid in both, and the slot's masks say
  // which), without its separate windows, masks and reloads.
  FI_CLONES bool LoadPair(int k, int slot, Pending* pd) {
    const int r0 = in_.starts0[2 * k], c0 = in_.starts0[2 * k + 1];
    const int r1 = in_.starts1[2 * k], c1 = in_.starts1[2 * k + 1];
    const float nan = kNaN;
    float* z = &z_.p[0][0];
    float* ra = rowa_.data();
    float* rb = rowb_.data();
    size_t count0 = 0, count1 = 0, both = 0;
    double s0 = 0, s1 = 0;
    for (int r = 0; r < H_; ++r) {
      // The row of each window, NaN outside the image.
      auto fill = [&](const float* im, int y, int c, float* row) {
        const int ca = std::max(0, -c), cb = std::min(W_, in_.nx - c);
        if (y < 0 || y >= in_.ny || ca >= cb) {
          std::fill(row, row + W_, nan);
          return;
        }
        std::fill(row, row + ca, nan);
        std::memcpy(row + ca, im + static_cast<size_t>(y) * in_.nx + c + ca, sizeof(float) * (cb - ca));
        std::fill(row + cb, row + W_, nan);
      };
      fill(in_.im0, r0 + r, c0, ra);
      fill(in_.im1, r1 + r, c1, rb);
      float* o = z + static_cast<size_t>(r) * 2 * W_;
      float sa = 0, sb = 0;
      int na = 0, nb = 0, nab = 0;
#pragma omp simd reduction(+ : sa, sb, na, nb, nab)
      for (int c = 0; c < W_; ++c) {
        const float a = ra[c], b = rb[c];
        const bool oa = a == a, ob = b == b;
        na += oa;
        nb += ob;
        nab += oa && ob;
        sa += oa && ob ? a : 0.f;
        sb += oa && ob ? b : 0.f;
        o[2 * c] = a;
        o[2 * c + 1] = b;
      }
      count0 += na;
      count1 += nb;
      both += nab;
      s0 += sa;
      s1 += sb;
    }
    const double npx = static_cast<double>(nr_);
    const double f0 = count0 / npx, f1 = count1 / npx;
    // Too little of a window inside the image or the mask: its peak is unreliable.
    if (count0 == 0 || count1 == 0 || f0 < in_.min_valid_fraction || f1 < in_.min_valid_fraction || both == 0) {
      Reject(k, kOutside);
      return false;
    }
    const bool partial = count0 < nr_ || count1 < nr_;
    // Mean over the pixels kept (all, or those valid in both windows); the others become 0.
    const float ma = static_cast<float>(s0 / static_cast<double>(both)), mb = static_cast<float>(s1 / static_cast<double>(both));
    float* m0 = mask0_[slot].p;
    float* m1 = mask1_[slot].p;
    double e0 = 0, e1 = 0;
    for (int r = 0; r < H_; ++r) {
      float* o = z + static_cast<size_t>(r) * 2 * W_;
      float ea = 0, eb = 0;
      if (partial) {
        float* ma_row = m0 + static_cast<size_t>(r) * W_;
        float* mb_row = m1 + static_cast<size_t>(r) * W_;
#pragma omp simd reduction(+ : ea, eb)
        for (int c = 0; c < W_; ++c) {
          const float a = o[2 * c], b = o[2 * c + 1];
          const bool ok = a == a && b == b;
          const float da = ok ? a - ma : 0.f, db = ok ? b - mb : 0.f;
          o[2 * c] = da;
          o[2 * c + 1] = db;
          ea += da * da;
          eb += db * db;
          ma_row[c] = mb_row[c] = ok ? 1.f : 0.f;
        }
      } else {
#pragma omp simd reduction(+ : ea, eb)
        for (int c = 0; c < W_; ++c) {
          const float da = o[2 * c] - ma, db = o[2 * c + 1] - mb;
          o[2 * c] = da;
          o[2 * c + 1] = db;
          ea += da * da;
          eb += db * db;
        }
      }
      e0 += ea;
      e1 += eb;
    }
    if (!(e0 > 0 && e1 > 0)) {
      Reject(k, kNoTexture);
      return false;
    }
    *pd = {k, static_cast<float>(1.0 / (npx * std::sqrt(e0 * e1))), static_cast<double>(r1 - r0), static_cast<double>(c1 - c0), partial};
    return true;
  }

  // Loads both windows of k into a_ and b_ (and the masks of `slot` for windows missing
  // pixels); false, with the vector rejected, when they cannot be correlated.
  bool Load(int k, int slot, Pending* pd) {
    const int r0 = in_.starts0[2 * k], c0 = in_.starts0[2 * k + 1];
    const int r1 = in_.starts1[2 * k], c1 = in_.starts1[2 * k + 1];
    double f0 = 0, f1 = 0;
    double e0 = LoadWindow(in_.im0, in_.ny, in_.nx, r0, c0, in_.h0, in_.w0, a_.p, H_, W_, oy0_, ox0_, &f0);
    double e1 = LoadWindow(in_.im1, in_.ny, in_.nx, r1, c1, in_.h1, in_.w1, b_.p, H_, W_, oy1_, ox1_, &f1);
    // Too little of a window inside the image or the mask: its peak is unreliable.
    if (e0 < 0 || e1 < 0 || f0 < in_.min_valid_fraction || f1 < in_.min_valid_fraction) {
      Reject(k, kOutside);
      return false;
    }
    if (!(e0 > 0 && e1 > 0)) {
      Reject(k, kNoTexture);
      return false;
    }
    const bool partial = f0 < 1.0 || f1 < 1.0;
    float* m0 = mask0_[slot].p;
    float* m1 = mask1_[slot].p;
    if (partial) {
      ValidMask(in_.im0, in_.ny, in_.nx, r0, c0, in_.h0, in_.w0, m0, H_, W_, oy0_, ox0_);
      ValidMask(in_.im1, in_.ny, in_.nx, r1, c1, in_.h1, in_.w1, m1, H_, W_, oy1_, ox1_);
      if (in_.h0 == in_.h1 && in_.w0 == in_.w1) {
        // Windows of one size are placed where their contents should match (lag ~0): a
        // pixel present in one window only has no partner, it would only add noise. Both
        // keep the pixels valid in both.
        for (size_t i = 0; i < nr_; ++i) m0[i] = m1[i] = m0[i] * m1[i];
        e0 = LoadWindowMasked(in_.im0, in_.ny, in_.nx, r0, c0, in_.h0, in_.w0, m0, a_.p, H_, W_, oy0_, ox0_);
        e1 = LoadWindowMasked(in_.im1, in_.ny, in_.nx, r1, c1, in_.h1, in_.w1, m1, b_.p, H_, W_, oy1_, ox1_);
        if (!(e0 > 0 && e1 > 0)) {
          Reject(k, e0 < 0 || e1 < 0 ? kOutside : kNoTexture);
          return false;
        }
      }
    }
    if (weighted_) {
      e0 = ApplyWeights(a_.p, weight0_.data(), nr_);
      e1 = ApplyWeights(b_.p, weight1_.data(), nr_);
      if (partial)
        for (size_t i = 0; i < nr_; ++i) {
          m0[i] *= weight0_[i];
          m1[i] *= weight1_[i];
        }
    }
    *pd = {k, static_cast<float>(1.0 / (static_cast<double>(nr_) * std::sqrt(e0 * e1))),
           static_cast<double>((r1 - oy1_) - (r0 - oy0_)), static_cast<double>((c1 - ox1_) - (c0 - ox0_)), partial};
    return true;
  }

  // The inverse transform of the pending windows, then their peaks.
  void Flush() {
    laps_.Start();
    fftwf_execute_dft(plan_.bwd, cross_.p, z_.p);
    laps_.Lap(&PassPhases::fft);
    Deinterleave(z_.p, corr0_.p, corr1_.p, nr_);
    laps_.Lap(&PassPhases::spectra);
    for (int q = 0; q < npending_; ++q) Finish(pending_[q], q == 0 ? corr0_.p : corr1_.p, mask0_[q].p, mask1_[q].p);
    laps_.Lap(&PassPhases::peaks);
    npending_ = 0;
  }

  // Time between laps added to a phase; does nothing without a PassPhases to fill.
  class Laps {
   public:
    explicit Laps(PassPhases* phases = nullptr) : phases_(phases) {}
    void Start() {
      if (phases_) last_ = std::chrono::steady_clock::now();
    }
    void Lap(double PassPhases::*phase) {
      if (!phases_) return;
      const auto now = std::chrono::steady_clock::now();
      phases_->*phase += std::chrono::duration<double>(now - last_).count();
      last_ = now;
    }

   private:
    PassPhases* phases_;
    std::chrono::steady_clock::time_point last_;
  };
  Laps laps_;

  // Peaks, sub-pixel positions and outputs of one window from its correlation plane.
  void Finish(const Pending& pd, const float* corr, const float* m0, const float* m1) {
    const int k = pd.k;
    if (out_.planes) {
      // Ensemble correlation: this pair's normalised plane joins the window's sum.
      float* sum = out_.planes + static_cast<size_t>(k) * nr_;
#pragma omp simd
      for (size_t i = 0; i < nr_; ++i) sum[i] += corr[i] * pd.norm;
      out_.planes_count[k] += 1.f;
    }
    int fy[kMaxPeaks] = {0}, fx[kMaxPeaks] = {0};
    const float best = HighestPeak(corr, H_, W_, ly_max_, span_of_.data(), &fy[0], &fx[0]);
    out_.correl[k] = best * pd.norm;
    if (out_.peak_to_mean) {
      const double mean = MeanAbs(corr);
      out_.peak_to_mean[k] = mean > 0 ? static_cast<float>(best / mean) : kNaN;
    }
    float sy = 0, sx = 0;
    uint8_t code = kOk;
    if (Fit(pd, corr, m0, m1, fy[0], fx[0], &sy, &sx, &code)) {
      out_.dy[k] = static_cast<float>(pd.base_y + fy[0] + sy);
      out_.dx[k] = static_cast<float>(pd.base_x + fx[0] + sx);
      out_.code[k] = code;
    } else {
      out_.dx[k] = out_.dy[k] = kNaN;
      out_.code[k] = kPeakOnBorder;
    }
    // Secondary peaks, for the fix step to choose from when the first is rejected.
    const int extra = std::min(in_.nb_peaks, kMaxPeaks) - 1;
    for (int q = 0; q < extra; ++q) {
      const size_t o = static_cast<size_t>(k) * extra + q;
      int py = 0, px = 0;
      const float v = NextPeak(corr, q + 1, fy, fx, in_.exclude_radius, &py, &px);
      fy[q + 1] = py;
      fx[q + 1] = px;
      uint8_t c2;
      if (std::isfinite(v) && Fit(pd, corr, m0, m1, py, px, &sy, &sx, &c2)) {
        out_.dy2[o] = static_cast<float>(pd.base_y + py + sy);
        out_.dx2[o] = static_cast<float>(pd.base_x + px + sx);
      } else {
        out_.dx2[o] = out_.dy2[o] = kNaN;
      }
      // The height stays when the fit is impossible: the peak ratio needs it.
      out_.correl2[o] = std::isfinite(v) ? v * pd.norm : kNaN;
    }
  }

  // Highest value of the searched region away (Chebyshev distance > exclude) from the
  // `nfound` peaks already found.
  float NextPeak(const float* corr, int nfound, const int* fy, const int* fx, int exclude, int* by, int* bx) const {
    float best = -std::numeric_limits<float>::infinity();
    for (int ly = -ly_max_; ly <= ly_max_; ++ly) {
      const int span = span_of_[ly + ly_max_];
      if (span < 0) continue;
      const float* row = corr + static_cast<size_t>(ly < 0 ? ly + H_ : ly) * W_;
      // Row by row, the searched lags form one span [-span, span]: its negative part
      // sits at the end of the (unshifted) row, its non-negative part at the start.
      for (int lx = -span; lx <= span; ++lx) {
        const float v = row[lx < 0 ? W_ + lx : lx];
        if (!(v > best)) continue;
        bool far = true;
        for (int q = 0; q < nfound && far; ++q) far = std::abs(ly - fy[q]) > exclude || std::abs(lx - fx[q]) > exclude;
        if (!far) continue;
        best = v;
        *by = ly;
        *bx = lx;
      }
    }
    return best;
  }

  // Expected weight of lag (ly, lx) for full windows: the count of pixel pairs, or with
  // window weighting the sum of w0(x) w1(x + l) over the box (computed once per lag).
  double LagWeight(int ly, int lx) {
    if (!weighted_) return Overlap1D(oy0_, in_.h0, oy1_, in_.h1, ly) * Overlap1D(ox0_, in_.w0, ox1_, in_.w1, lx);
    // The fit's neighbourhood (nsubpix up to 8) can reach past the box: no overlap there.
    if (std::abs(ly) > H_ || std::abs(lx) > W_) return 0.0;
    double& w = lag_weight_[static_cast<size_t>(ly + H_) * (2 * W_ + 1) + (lx + W_)];
    if (w < 0) w = MaskOverlap(weight0_.data(), weight1_.data(), H_, W_, ly, lx);
    return w;
  }

  // Sub-pixel position of a peak (false: on the border of the searched region). The values
  // around it are divided by the weight of their lag before the fit.
  bool Fit(const Pending& pd, const float* corr, const float* m0, const float* m1, int py, int px, float* sy, float* sx,
           uint8_t* code) {
    if (!Inside(py - 1, px) || !Inside(py + 1, px) || !Inside(py, px - 1) || !Inside(py, px + 1)) return false;
    Map map;
    map.R = std::min(Map::kMaxR, std::max(1, in_.nsubpix));
    for (int dy = -map.R; dy <= map.R; ++dy) {
      const int ly = py + dy;
      for (int dx = -map.R; dx <= map.R; ++dx) {
        const int lx = px + dx;
        const double w = pd.partial ? MaskOverlap(m0, m1, H_, W_, ly, lx) : LagWeight(ly, lx);
        const float c = corr[static_cast<size_t>(Wrap(ly, H_)) * W_ + Wrap(lx, W_)];
        map.v[(dy + map.R) * (2 * map.R + 1) + (dx + map.R)] = w > 0 ? static_cast<float>(c / w) : 0.f;
      }
    }
    *sy = *sx = 0;
    *code = kOk;
    bool ok = true;
    switch (in_.subpix) {
      case kNoSubpix: break;
      case kCentroid: ok = Centroid(map, map.R, sy, sx); break;
      case kGaussian: ok = Gaussian1(map, sy, sx); break;
      default: ok = Gaussian2(map, sy, sx); break;
    }
    if (!ok) {
      *sy = *sx = 0;
      if (in_.subpix != kCentroid) Centroid(map, map.R, sy, sx);
      *code = kSubpixFallback;
    }
    return true;
  }

  const PassInput& in_;
  const PassOutput& out_;
  const int H_, W_;
  const size_t nr_;
  const Plan2D& plan_;
  const int oy0_, ox0_, oy1_, ox1_;
  const int ly_max_, lx_max_;
  const double dmax2_;
  std::vector<int> span_of_;
  AlignedBuf a_, b_, corr0_, corr1_;
  AlignedBuf mask0_[2], mask1_[2];  // validity (times weights) of the windows of each slot
  AlignedCBuf z_, spec_, cross_;
  const bool weighted_;
  const bool fast_load_;
  const bool pair_load_;      // windows of one size filling the box, no weights: LoadPair
  std::vector<float> rowa_, rowb_;  // a row of each window, NaN outside the image
  std::vector<float> weight0_, weight1_;
  std::vector<double> lag_weight_;
  Pending pending_[2];
  int npending_ = 0;
};

}  // namespace

void CorrelateRange(const PassInput& in, const PassOutput& out, int begin, int end, PassPhases* phases) {
  PassCorrelator(in, out).Run(begin, end, phases);
}

void PeaksOnPlanes(const PassInput& in, const float* planes, const float* planes_count, const PassOutput& out, int begin,
                   int end) {
  PassCorrelator(in, out).RunOnPlanes(planes, planes_count, begin, end);
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
