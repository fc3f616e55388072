#include "deform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "simd.h"

#if FI_X86_SIMD
#include <immintrin.h>
#endif

namespace fi {
namespace {

// A centred B-spline of odd degree D = kTaps - 1: sampling at i + t (0 <= t < 1) weighs
// the coefficients i + kFirst ... i + kFirst + kTaps - 1 with polynomials in t.
// kBasis[a][k] is the coefficient of t^k in the weight of tap a, times D!.
// Quintic rather than cubic: particle images are only a few pixels wide, and the cubic
// kernel's phase error at fractional shifts biased deformed measurements by ~0.015 px;
// septic halves the remaining bias (symmetric deformation adds the errors at t and 1 - t).
template <int D>
struct Spline;

// Cubic: the cheapest prefilter (one pole) and 4x4 taps, for the passes whose field is only
// the next pass's predictor (its bias is measured, and removed, by the next pass).
template <>
struct Spline<3> {
  static constexpr int kTaps = 4, kFirst = -1, kPoles = 1;
  static constexpr double kPole[1] = {-0.26794919243112270};  // sqrt(3) - 2
  static constexpr float kScale = 1.f / 6.f;
  static constexpr float kBasis[4][4] = {{1, -3, 3, -1}, {4, 0, -6, 3}, {1, 3, 3, -3}, {0, 0, 0, 1}};
};

template <>
struct Spline<5> {
  static constexpr int kTaps = 6, kFirst = -2, kPoles = 2;
  static constexpr double kPole[2] = {-0.43057534709997379, -0.043096288203264652};  // Unser 1993
  static constexpr float kScale = 1.f / 120.f;
  static constexpr float kBasis[6][6] = {
      {1, -5, 10, -10, 5, -1},   {26, -50, 20, 20, -20, 5},  {66, 0, -60, 0, 30, -10},
      {26, 50, 20, -20, -20, 10}, {1, 5, 10, 10, 5, -5},     {0, 0, 0, 0, 0, 1}};
};

template <>
struct Spline<7> {
  static constexpr int kTaps = 8, kFirst = -3, kPoles = 3;
  static constexpr double kPole[3] = {-0.53528043079643816, -0.12255461519232669, -0.0091486948096082769};
  static constexpr float kScale = 1.f / 5040.f;
  static constexpr float kBasis[8][8] = {
      {1, -7, 21, -35, 35, -21, 7, -1},
      {120, -392, 504, -280, 0, 84, -42, 7},
      {1191, -1715, 315, 665, -315, -105, 105, -21},
      {2416, 0, -1680, 0, 560, 0, -140, 35},
      {1191, 1715, 315, -665, -315, 105, 105, -35},
      {120, 392, 504, 280, 0, -84, -42, 21},
      {1, 7, 21, 35, 35, 21, 7, -7},
      {0, 0, 0, 0, 0, 0, 0, 1}};
};

// Weights of the kTaps coefficients for the fractional position t.
template <int D>
inline void Weights(float t, float* w) {
  using S = Spline<D>;
  for (int a = 0; a < S::kTaps; ++a) {
    float v = S::kBasis[a][S::kTaps - 1];
    for (int k = S::kTaps - 2; k >= 0; --k) v = v * t + S::kBasis[a][k];
    w[a] = v * S::kScale;
  }
}

// ---- Prefilter --------------------------------------------------------------------------

// Causal + anticausal recursive filtering (mirror boundaries) of `width` interleaved lines
// of length n: element i of line b at buf[i * stride + b]. The lines advance together, so
// each step is a vector operation where one line alone would wait on the previous sample.
// Single precision: the poles lie well inside the unit circle, rounding errors do not grow.
#if FI_X86_SIMD
// FilterLines for NV vectors of 8 lines: each line's running value stays in a register from
// one sample to the next (the general loop reloads it from the row just stored, a
// store-to-load latency per sample). The same operations in the same order.
template <int NV>
__attribute__((target("avx2,fma"))) void FilterLinesAvx2(float* buf, int n, size_t stride, const double* poles, int npoles) {
  double g = 1;
  for (int p = 0; p < npoles; ++p) g *= (1 - poles[p]) * (1 - 1 / poles[p]);
  const __m256 gain = _mm256_set1_ps(static_cast<float>(g));
  for (int i = 0; i < n; ++i) {
    float* r = buf + i * stride;
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(r + 8 * v, _mm256_mul_ps(_mm256_loadu_ps(r + 8 * v), gain));
  }
  const int horizon = std::min(n, 40);
  for (int p = 0; p < npoles; ++p) {
    const float zf = static_cast<float>(poles[p]);
    const __m256 z = _mm256_set1_ps(zf);
    __m256 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_ps();
    float zn = 1;
    for (int i = 0; i < horizon; ++i) {
      const float* r = buf + i * stride;
      const __m256 znv = _mm256_set1_ps(zn);
      for (int v = 0; v < NV; ++v) acc[v] = _mm256_fmadd_ps(znv, _mm256_loadu_ps(r + 8 * v), acc[v]);
      zn *= zf;
    }
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(buf + 8 * v, acc[v]);
    for (int i = 1; i < n; ++i) {
      float* r = buf + i * stride;
      for (int v = 0; v < NV; ++v) {
        acc[v] = _mm256_fmadd_ps(z, acc[v], _mm256_loadu_ps(r + 8 * v));
        _mm256_storeu_ps(r + 8 * v, acc[v]);
      }
    }
    const __m256 k = _mm256_set1_ps(zf / (zf * zf - 1));
    float* last = buf + (n - 1) * stride;
    const float* before = last - stride;
    for (int v = 0; v < NV; ++v) {
      acc[v] = _mm256_mul_ps(k, _mm256_fmadd_ps(z, _mm256_loadu_ps(before + 8 * v), _mm256_loadu_ps(last + 8 * v)));
      _mm256_storeu_ps(last + 8 * v, acc[v]);
    }
    for (int i = n - 2; i >= 0; --i) {
      float* r = buf + i * stride;
      for (int v = 0; v < NV; ++v) {
        acc[v] = _mm256_mul_ps(z, _mm256_sub_ps(acc[v], _mm256_loadu_ps(r + 8 * v)));
        _mm256_storeu_ps(r + 8 * v, acc[v]);
      }
    }
  }
}
#endif


FI_CLONES
void FilterLinesGeneric(float* buf, int n, size_t stride, int width, const double* poles, int npoles);

void FilterLines(float* buf, int n, size_t stride, int width, const double* poles, int npoles) {
  if (n < 2) return;
#if FI_X86_SIMD
  if (UseAvx2() && width == 32) return FilterLinesAvx2<4>(buf, n, stride, poles, npoles);
  if (UseAvx2() && width == 64) return FilterLinesAvx2<8>(buf, n, stride, poles, npoles);
#endif
  FilterLinesGeneric(buf, n, stride, width, poles, npoles);
}

FI_CLONES
void FilterLinesGeneric(float* buf, int n, size_t stride, int width, const double* poles, int npoles) {
  double g = 1;
  for (int p = 0; p < npoles; ++p) g *= (1 - poles[p]) * (1 - 1 / poles[p]);
  const float gain = static_cast<float>(g);
  for (int i = 0; i < n; ++i) {
    float* r = buf + i * stride;
    for (int b = 0; b < width; ++b) r[b] *= gain;
  }
  const int horizon = std::min(n, 40);
  std::vector<float> first(width);
  for (int p = 0; p < npoles; ++p) {
    const float z = static_cast<float>(poles[p]);
    // Initial causal coefficient: truncated sum of the mirrored signal.
    std::fill(first.begin(), first.end(), 0.f);
    float zn = 1;
    for (int i = 0; i < horizon; ++i) {
      const float* r = buf + i * stride;
      for (int b = 0; b < width; ++b) first[b] += zn * r[b];
      zn *= z;
    }
    std::copy(first.begin(), first.end(), buf);
    for (int i = 1; i < n; ++i) {
      float* r = buf + i * stride;
      const float* q = r - stride;
      for (int b = 0; b < width; ++b) r[b] += z * q[b];
    }
    const float k = z / (z * z - 1);
    float* last = buf + (n - 1) * stride;
    const float* before = last - stride;
    for (int b = 0; b < width; ++b) last[b] = k * (z * before[b] + last[b]);
    for (int i = n - 2; i >= 0; --i) {
      float* r = buf + i * stride;
      const float* q = r + stride;
      for (int b = 0; b < width; ++b) r[b] = z * (q[b] - r[b]);
    }
  }
}

constexpr int kRowBlock = 32;     // rows filtered together through a transposed buffer (4 vectors a step)
constexpr int kColumnBlock = 64;  // columns filtered together, in place


#if FI_X86_SIMD
__attribute__((target("avx2,fma"))) void Transpose8(__m256* r);

// 8 rows x 8 columns of `src` (row stride ss) into `dst` transposed (row stride ds).
__attribute__((target("avx2,fma"))) inline void Transpose8Block(const float* src, size_t ss, float* dst, size_t ds) {
  __m256 r[8];
  for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + q * ss);
  Transpose8(r);
  for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + q * ds, r[q]);
}

// The transposes of FilterRows by 8x8 blocks (nb rows, nx columns; the rest element by element).
__attribute__((target("avx2,fma"))) void RowsToBuffer(const float* data, int nx, int y0, int nb, float* buf) {
  const int nb8 = nb & ~7, nx8 = nx & ~7;
  for (int b = 0; b < nb8; b += 8)
    for (int x = 0; x < nx8; x += 8)
      Transpose8Block(data + static_cast<size_t>(y0 + b) * nx + x, nx, buf + static_cast<size_t>(x) * kRowBlock + b, kRowBlock);
  for (int b = 0; b < nb; ++b) {
    const float* row = data + static_cast<size_t>(y0 + b) * nx;
    for (int x = b < nb8 ? nx8 : 0; x < nx; ++x) buf[static_cast<size_t>(x) * kRowBlock + b] = row[x];
  }
}

__attribute__((target("avx2,fma"))) void BufferToRows(const float* buf, float* data, int nx, int y0, int nb) {
  const int nb8 = nb & ~7, nx8 = nx & ~7;
  for (int b = 0; b < nb8; b += 8)
    for (int x = 0; x < nx8; x += 8)
      Transpose8Block(buf + static_cast<size_t>(x) * kRowBlock + b, kRowBlock, data + static_cast<size_t>(y0 + b) * nx + x, nx);
  for (int b = 0; b < nb; ++b) {
    float* row = data + static_cast<size_t>(y0 + b) * nx;
    for (int x = b < nb8 ? nx8 : 0; x < nx; ++x) row[x] = buf[static_cast<size_t>(x) * kRowBlock + b];
  }
}
#endif

// Rows [y0, y0 + nb) of `src`: transposed into a small buffer (one vector per step), filtered,
// written to the same rows of `dst` (which may be `src`).
void FilterRows(const float* src, float* dst, int nx, int y0, int nb, const double* poles, int npoles, std::vector<float>& buf) {
  // Every lane is overwritten but those of a last, partial block: zeroed then (no garbage
  // through the filter, such as denormals).
  buf.resize(static_cast<size_t>(nx) * kRowBlock);
  if (nb < kRowBlock) std::fill(buf.begin(), buf.end(), 0.f);
#if FI_X86_SIMD
  if (UseAvx2()) {
    RowsToBuffer(src, nx, y0, nb, buf.data());
    FilterLines(buf.data(), nx, kRowBlock, kRowBlock, poles, npoles);
    BufferToRows(buf.data(), dst, nx, y0, nb);
    return;
  }
#endif
  for (int b = 0; b < nb; ++b) {
    const float* row = src + static_cast<size_t>(y0 + b) * nx;
    for (int x = 0; x < nx; ++x) buf[static_cast<size_t>(x) * kRowBlock + b] = row[x];
  }
  FilterLines(buf.data(), nx, kRowBlock, kRowBlock, poles, npoles);
  for (int b = 0; b < nb; ++b) {
    float* row = dst + static_cast<size_t>(y0 + b) * nx;
    for (int x = 0; x < nx; ++x) row[x] = buf[static_cast<size_t>(x) * kRowBlock + b];
  }
}

// ---- Resampling -------------------------------------------------------------------------

inline int Mirror(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  // Taps just past an edge (the usual case): one reflection, no division.
  if (i < 0 && i > -n) return -i;
  if (i >= n && i < period) return period - i;
  if (i >= 0 && i < n) return i;
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

// Floor of a float without a library call (SSE2 has no rounding instruction).
inline int FastFloor(float v) {
  const int i = static_cast<int>(v);
  return i - (v < static_cast<float>(i));
}

// Index i with axis[i] <= v < axis[i+1], clamped; axis increasing.
inline int Cell(const float* axis, int n, double v) {
  if (n < 2 || v <= axis[0]) return 0;
  if (v >= axis[n - 1]) return n - 2;
  return static_cast<int>(std::upper_bound(axis, axis + n, static_cast<float>(v)) - axis) - 1;
}

// What one row of output needs: where to sample, the source and its size, the mask.
struct RowJob {
  const float* coef;
  int ny, nx;
  const float* sx;
  const float* sy;
  const uint8_t* valid;
  float* dst;
};

// Outside the recorded image, or nearest source pixel masked: no information there.
inline bool NoData(const RowJob& j, float sx, float sy) {
  if (!(sx >= -0.5f && sy >= -0.5f && sx <= j.nx - 0.5f && sy <= j.ny - 0.5f)) return true;
  if (!j.valid) return false;
  const int nxp = std::min(j.nx - 1, std::max(0, static_cast<int>(sx + 0.5f)));
  const int nyp = std::min(j.ny - 1, std::max(0, static_cast<int>(sy + 0.5f)));
  return !j.valid[static_cast<size_t>(nyp) * j.nx + nxp];
}

// One sample near the borders: taps mirrored into the image.
template <int D>
inline float SampleMirrored(const RowJob& j, int ix, int iy, const float* wx, const float* wy) {
  using S = Spline<D>;
  float acc = 0;
  for (int b = 0; b < S::kTaps; ++b) {
    const float* row = j.coef + static_cast<size_t>(Mirror(iy + S::kFirst + b, j.ny)) * j.nx;
    float r = 0;
    for (int a = 0; a < S::kTaps; ++a) r += wx[a] * row[Mirror(ix + S::kFirst + a, j.nx)];
    acc += wy[b] * r;
  }
  return acc;
}

// One output pixel by the general path (any degree, borders mirrored, NaN where no data).
template <int D>
inline float PixelGeneric(const RowJob& j, int x) {
  using S = Spline<D>;
  const float sx = j.sx[x], sy = j.sy[x];
  if (NoData(j, sx, sy)) return std::numeric_limits<float>::quiet_NaN();
  const int ix = FastFloor(sx), iy = FastFloor(sy);
  float wx[S::kTaps], wy[S::kTaps];
  Weights<D>(sx - ix, wx);
  Weights<D>(sy - iy, wy);
  if (ix + S::kFirst >= 0 && iy + S::kFirst >= 0 && ix + S::kFirst + S::kTaps <= j.nx && iy + S::kFirst + S::kTaps <= j.ny) {
    const float* p = j.coef + static_cast<size_t>(iy + S::kFirst) * j.nx + (ix + S::kFirst);
    float acc = 0;
    for (int b = 0; b < S::kTaps; ++b, p += j.nx) {
      float r = 0;
      for (int a = 0; a < S::kTaps; ++a) r += wx[a] * p[a];
      acc += wy[b] * r;
    }
    return acc;
  }
  return SampleMirrored<D>(j, ix, iy, wx, wy);
}

template <int D>
void RowGeneric(const RowJob& j) {
  for (int x = 0; x < j.nx; ++x) j.dst[x] = PixelGeneric<D>(j, x);
}

#if FI_X86_SIMD
// Weights of the 8 taps (zero-padded for the quintic) at t = k / kSteps, k = 0..kSteps, with
// the differences to the next entry: linear interpolation between entries costs one FMA,
// where Horner's rule costs D, and errs by ~1e-7 (h^2 / 8 times the weights' curvature).
constexpr int kSteps = 1024;
template <int D>
struct WeightTable {
  alignas(32) float w[kSteps + 1][8];
  alignas(32) float dw[kSteps + 1][8];
  WeightTable() {
    for (int k = 0; k <= kSteps; ++k) {
      float v[8] = {0};
      Weights<D>(static_cast<float>(static_cast<double>(k) / kSteps), v);
      for (int a = 0; a < 8; ++a) w[k][a] = v[a];
    }
    for (int k = 0; k <= kSteps; ++k)
      for (int a = 0; a < 8; ++a) dw[k][a] = k < kSteps ? w[k + 1][a] - w[k][a] : 0.f;
  }
};

template <int D>
__attribute__((target("avx2,fma"))) inline __m256 TableWeights(const WeightTable<D>& table, float t) {
  const float u = t * kSteps;
  const int k = std::min(kSteps - 1, static_cast<int>(u));
  return _mm256_fmadd_ps(_mm256_set1_ps(u - k), _mm256_load_ps(table.dw[k]), _mm256_load_ps(table.w[k]));
}

// One pixel with AVX2: the 8 weights of an axis are one vector, a row of 8 coefficients one
// unaligned load; the quintic's two unused lanes have zero weights.
template <int D>
__attribute__((target("avx2,fma"))) inline float PixelAvx2(const RowJob& j, const WeightTable<D>& table, int x) {
  using S = Spline<D>;
  const float sx = j.sx[x], sy = j.sy[x];
  if (NoData(j, sx, sy)) return std::numeric_limits<float>::quiet_NaN();
  const int ix = FastFloor(sx), iy = FastFloor(sy);
  alignas(32) float wys[8];
  const __m256 wx = TableWeights(table, sx - ix);
  _mm256_store_ps(wys, TableWeights(table, sy - iy));
  if (ix + S::kFirst >= 0 && iy + S::kFirst >= 0 && ix + S::kFirst + 8 <= j.nx && iy + S::kFirst + S::kTaps <= j.ny) {
    const float* p = j.coef + static_cast<size_t>(iy + S::kFirst) * j.nx + (ix + S::kFirst);
    __m256 acc0 = _mm256_mul_ps(_mm256_broadcast_ss(&wys[0]), _mm256_loadu_ps(p));
    __m256 acc1 = _mm256_mul_ps(_mm256_broadcast_ss(&wys[1]), _mm256_loadu_ps(p + j.nx));
    for (int b = 2; b < S::kTaps; b += 2) {
      acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(&wys[b]), _mm256_loadu_ps(p + static_cast<size_t>(b) * j.nx), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(&wys[b + 1]), _mm256_loadu_ps(p + static_cast<size_t>(b + 1) * j.nx), acc1);
    }
    const __m256 acc = _mm256_mul_ps(_mm256_add_ps(acc0, acc1), wx);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  // Near the borders: taps mirrored into the image, the 8 of a row gathered into one vector
  // (the scalar loop was one chain of dependent multiply-adds per pixel).
  alignas(32) int mx[8];
  for (int a = 0; a < 8; ++a) mx[a] = a < S::kTaps ? Mirror(ix + S::kFirst + a, j.nx) : mx[0];
  const __m256i mxv = _mm256_load_si256(reinterpret_cast<const __m256i*>(mx));
  __m256 acc = _mm256_setzero_ps();
  for (int b = 0; b < S::kTaps; ++b) {
    const float* row = j.coef + static_cast<size_t>(Mirror(iy + S::kFirst + b, j.ny)) * j.nx;
    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(&wys[b]), _mm256_i32gather_ps(row, mxv, 4), acc);
  }
  acc = _mm256_mul_ps(acc, wx);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// In-place transpose of 8 vectors of 8 floats (r[i] lane j <-> r[j] lane i).
__attribute__((target("avx2,fma"))) void Transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// 8 consecutive pixels whose taps start at `p + q` for pixel q (all inside the image),
// fractional positions tx, ty: lanes are pixels, each tap one unaligned load for the 8, the
// weights from their polynomials in lanes (Horner's rule; no table, no transposes).
template <int D>
__attribute__((target("avx2,fma"))) inline __m256 BlockAvx2(const RowJob& j, const float* p, __m256 tx, __m256 ty) {
  using S = Spline<D>;
  __m256 wx[8], wy[8];
  for (int a = 0; a < S::kTaps; ++a) {
    __m256 vx = _mm256_set1_ps(S::kBasis[a][S::kTaps - 1] * S::kScale), vy = vx;
    for (int k = S::kTaps - 2; k >= 0; --k) {
      const __m256 c = _mm256_set1_ps(S::kBasis[a][k] * S::kScale);
      vx = _mm256_fmadd_ps(vx, tx, c);
      vy = _mm256_fmadd_ps(vy, ty, c);
    }
    wx[a] = vx;
    wy[a] = vy;
  }
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int b = 0; b < S::kTaps; b += 2) {
    const float* r0 = p + static_cast<size_t>(b) * j.nx;
    const float* r1 = r0 + j.nx;
    __m256 s0 = _mm256_mul_ps(wx[0], _mm256_loadu_ps(r0));
    __m256 s1 = _mm256_mul_ps(wx[0], _mm256_loadu_ps(r1));
    for (int a = 1; a < S::kTaps; ++a) {
      s0 = _mm256_fmadd_ps(wx[a], _mm256_loadu_ps(r0 + a), s0);
      s1 = _mm256_fmadd_ps(wx[a], _mm256_loadu_ps(r1 + a), s1);
    }
    acc0 = _mm256_fmadd_ps(wy[b], s0, acc0);
    acc1 = _mm256_fmadd_ps(wy[b + 1], s1, acc1);
  }
  return _mm256_add_ps(acc0, acc1);
}

// A row with AVX2. Blocks of 8 pixels whose taps all lie inside the image (no mask) take
// the fast path: positions, indices and table entries for the 8 at once, then per pixel
// only loads and multiply-adds, and one transposing reduction for the 8 sums.
template <int D>
__attribute__((target("avx2,fma"))) void RowAvx2(const RowJob& j) {
  using S = Spline<D>;
  static const WeightTable<D> table;
  int x = 0;
  if (!j.valid) {
    const __m256 lo = _mm256_set1_ps(static_cast<float>(-S::kFirst));
    const __m256 hix = _mm256_set1_ps(static_cast<float>(j.nx - 8 - S::kFirst));
    const __m256 hiy = _mm256_set1_ps(static_cast<float>(j.ny - S::kTaps - S::kFirst));
    const __m256 steps = _mm256_set1_ps(static_cast<float>(kSteps));
    const __m256i last = _mm256_set1_epi32(kSteps - 1);
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i zero = _mm256_setzero_si256();
    alignas(32) int kx[8], ky[8], off[8];
    alignas(32) float fx[8], fy[8];
    for (; x + 8 <= j.nx; x += 8) {
      const __m256 sx = _mm256_loadu_ps(j.sx + x), sy = _mm256_loadu_ps(j.sy + x);
      const __m256 flx = _mm256_floor_ps(sx), fly = _mm256_floor_ps(sy);
      const __m256 ok = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(flx, lo, _CMP_GE_OQ), _mm256_cmp_ps(flx, hix, _CMP_LE_OQ)),
                                      _mm256_and_ps(_mm256_cmp_ps(fly, lo, _CMP_GE_OQ), _mm256_cmp_ps(fly, hiy, _CMP_LE_OQ)));
      if (_mm256_movemask_ps(ok) != 0xFF) {
        for (int q = 0; q < 8; ++q) j.dst[x + q] = PixelAvx2<D>(j, table, x + q);
        continue;
      }
      // Offset of each pixel's first tap in the coefficients.
      const __m256i ix = _mm256_cvttps_epi32(flx), iy = _mm256_cvttps_epi32(fly);
      const __m256i first = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_add_epi32(iy, _mm256_set1_epi32(S::kFirst)), _mm256_set1_epi32(j.nx)),
                                             _mm256_add_epi32(ix, _mm256_set1_epi32(S::kFirst)));
      // The 8 pixels at the same whole-pixel offset (a smooth field: most blocks): pixel q's
      // taps are those of pixel 0 moved by q, so each tap is one load for the 8 pixels.
      if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_sub_epi32(first, _mm256_permutevar8x32_epi32(first, zero)), lanes))) == 0xFF) {
        _mm256_storeu_ps(j.dst + x, BlockAvx2<D>(j, j.coef + _mm256_cvtsi256_si32(first), _mm256_sub_ps(sx, flx), _mm256_sub_ps(sy, fly)));
        continue;
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(off), first);
      // Table entries and the fractions between them.
      const __m256 ux = _mm256_mul_ps(_mm256_sub_ps(sx, flx), steps), uy = _mm256_mul_ps(_mm256_sub_ps(sy, fly), steps);
      const __m256i kxv = _mm256_min_epi32(_mm256_cvttps_epi32(ux), last), kyv = _mm256_min_epi32(_mm256_cvttps_epi32(uy), last);
      _mm256_store_si256(reinterpret_cast<__m256i*>(kx), kxv);
      _mm256_store_si256(reinterpret_cast<__m256i*>(ky), kyv);
      _mm256_store_ps(fx, _mm256_sub_ps(ux, _mm256_cvtepi32_ps(kxv)));
      _mm256_store_ps(fy, _mm256_sub_ps(uy, _mm256_cvtepi32_ps(kyv)));
      __m256 r[8];
      for (int q = 0; q < 8; ++q) {
        const __m256 wx = _mm256_fmadd_ps(_mm256_set1_ps(fx[q]), _mm256_load_ps(table.dw[kx[q]]), _mm256_load_ps(table.w[kx[q]]));
        const __m256 wy = _mm256_fmadd_ps(_mm256_set1_ps(fy[q]), _mm256_load_ps(table.dw[ky[q]]), _mm256_load_ps(table.w[ky[q]]));
        const float* p = j.coef + off[q];
        // Each row's weight spread over the lanes by a permute (the load ports are busy).
        __m256 acc0 = _mm256_mul_ps(_mm256_permutevar8x32_ps(wy, _mm256_set1_epi32(0)), _mm256_loadu_ps(p));
        __m256 acc1 = _mm256_mul_ps(_mm256_permutevar8x32_ps(wy, _mm256_set1_epi32(1)), _mm256_loadu_ps(p + j.nx));
        for (int b = 2; b < S::kTaps; b += 2) {
          acc0 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(wy, _mm256_set1_epi32(b)), _mm256_loadu_ps(p + static_cast<size_t>(b) * j.nx), acc0);
          acc1 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(wy, _mm256_set1_epi32(b + 1)), _mm256_loadu_ps(p + static_cast<size_t>(b + 1) * j.nx), acc1);
        }
        r[q] = _mm256_mul_ps(_mm256_add_ps(acc0, acc1), wx);
      }
      // Sums of the 8 lanes of r[0..7] as one vector.
      const __m256 s01 = _mm256_hadd_ps(r[0], r[1]), s23 = _mm256_hadd_ps(r[2], r[3]);
      const __m256 s45 = _mm256_hadd_ps(r[4], r[5]), s67 = _mm256_hadd_ps(r[6], r[7]);
      const __m256 q0 = _mm256_hadd_ps(s01, s23), q1 = _mm256_hadd_ps(s45, s67);
      const __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
      _mm256_storeu_ps(j.dst + x, sum);
    }
  }
  for (; x < j.nx; ++x) j.dst[x] = PixelAvx2<D>(j, table, x);
}

#endif


template <int D>
void Row(const RowJob& j) {
#if FI_X86_SIMD
  if (UseAvx2()) return RowAvx2<D>(j);
#endif
  RowGeneric<D>(j);
}

}  // namespace

const char* DeformKernelName() { return UseAvx2() ? "avx2" : "generic"; }

bool FillInvalid(float* data, size_t n, std::vector<uint8_t>* valid) {
  // Counting first (vectorised): most images have no NaN at all.
  size_t count = 0;
#pragma omp simd reduction(+ : count)
  for (size_t i = 0; i < n; ++i) count += data[i] == data[i];
  if (count == n) return false;
  double sum = 0;
  for (size_t i = 0; i < n; ++i)
    if (data[i] == data[i]) sum += data[i];
  const float mean = count ? static_cast<float>(sum / count) : 0.f;
  valid->assign(n, 1);
  for (size_t i = 0; i < n; ++i)
    if (data[i] != data[i]) {
      data[i] = mean;
      (*valid)[i] = 0;
    }
  return true;
}

// The coefficients of `src` into `dst` (which may be `src`): rows read from src, columns in dst.
void BSplinePrefilterInto(const float* src, float* dst, int ny, int nx, int degree) {
  const double* poles = degree == 7 ? Spline<7>::kPole : degree == 5 ? Spline<5>::kPole : Spline<3>::kPole;
  const int npoles = degree == 7 ? Spline<7>::kPoles : degree == 5 ? Spline<5>::kPoles : Spline<3>::kPoles;
  std::vector<float> buf;
  if (nx >= 2)
    for (int y = 0; y < ny; y += kRowBlock) FilterRows(src, dst, nx, y, std::min(kRowBlock, ny - y), poles, npoles, buf);
  else if (src != dst)
    std::copy(src, src + static_cast<size_t>(ny) * nx, dst);
  // Columns in place, a band of them at a time (the band stays in cache for all poles).
  if (ny >= 2)
    for (int x = 0; x < nx; x += kColumnBlock) FilterLines(dst + x, ny, nx, std::min(kColumnBlock, nx - x), poles, npoles);
}

void BSplinePrefilter(float* data, int ny, int nx, int degree) { BSplinePrefilterInto(data, data, ny, nx, degree); }

bool SplineCoefficients(const float* image, int ny, int nx, int degree, float* coef, std::vector<uint8_t>* valid) {
  const size_t npix = static_cast<size_t>(ny) * nx;
  if (coef != image) {
    // No NaN (the usual case): the row pass reads the image itself, no copy first.
    size_t count = 0;
#pragma omp simd reduction(+ : count)
    for (size_t i = 0; i < npix; ++i) count += image[i] == image[i];
    if (count == npix) {
      BSplinePrefilterInto(image, coef, ny, nx, degree);
      return false;
    }
    std::copy(image, image + npix, coef);
  }
  const bool masked = FillInvalid(coef, npix, valid);
  BSplinePrefilter(coef, ny, nx, degree);
  return masked;
}

FI_CLONES
void DeformRows(const DeformInput& in, const float* coef, float* out, int row_begin, int row_end) {
  const int nx = in.nx, gx = in.gx;
  // Bilinear weights of the displacement grid along x are the same for every row.
  std::vector<int> cx(nx);
  std::vector<float> tx(nx);
  for (int x = 0; x < nx; ++x) {
    const double xc = std::min<double>(std::max<double>(x, in.xs[0]), in.xs[gx - 1]);
    cx[x] = Cell(in.xs, gx, xc);
    tx[x] = gx > 1 ? static_cast<float>((xc - in.xs[cx[x]]) / (in.xs[cx[x] + 1] - in.xs[cx[x]])) : 0.f;
  }
  // Runs of pixels in one grid cell (equal cx): the same for every row.
  std::vector<int> runs;  // starts, then nx
  for (int x = 0; x < nx; ++x)
    if (x == 0 || cx[x] != cx[x - 1]) runs.push_back(x);
  runs.push_back(nx);
  std::vector<float> rowDx(gx), rowDy(gx), sxs(nx), sys(nx);
  RowJob job{coef, in.ny, nx, sxs.data(), sys.data(), in.valid, nullptr};
  for (int y = row_begin; y < row_end; ++y) {
    // The field along this row at the grid columns, then per pixel a 1D interpolation.
    const double yc = std::min<double>(std::max<double>(y, in.ys[0]), in.ys[in.gy - 1]);
    const int j = Cell(in.ys, in.gy, yc);
    const int j1 = std::min(j + 1, in.gy - 1);
    const float ty = in.gy > 1 ? static_cast<float>((yc - in.ys[j]) / (in.ys[j + 1] - in.ys[j])) : 0.f;
    for (int i = 0; i < gx; ++i) {
      rowDx[i] = in.dx[j * gx + i] * (1 - ty) + in.dx[j1 * gx + i] * ty;
      rowDy[i] = in.dy[j * gx + i] * (1 - ty) + in.dy[j1 * gx + i] * ty;
    }
    // Cell by cell (runs of equal cx): the two grid values are constants of a loop that vectorises.
    for (size_t r = 0; r + 1 < runs.size(); ++r) {
      const int x0 = runs[r], x1 = runs[r + 1];
      const int i = cx[x0], i1 = std::min(i + 1, gx - 1);
      const float ax = rowDx[i], bx = rowDx[i1], ay = rowDy[i], by = rowDy[i1];
      for (int x = x0; x < x1; ++x) {
        const float t = tx[x];
        sxs[x] = x + in.factor * (ax * (1 - t) + bx * t);
        sys[x] = y + in.factor * (ay * (1 - t) + by * t);
      }
    }
    job.dst = out + static_cast<size_t>(y) * nx;
    if (in.degree == 7)
      Row<7>(job);
    else if (in.degree == 5)
      Row<5>(job);
    else
      Row<3>(job);
  }
}

}  // namespace fi
