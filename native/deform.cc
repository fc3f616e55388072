#include "deform.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fi {
namespace {

// Poles of the quintic B-spline interpolation filter (Unser 1993). Quintic rather than
// cubic splines: particle images are only a few pixels wide, and the cubic kernel's
// phase error at fractional shifts biased deformed measurements by ~0.015 px.
constexpr double kPoles[2] = {-0.43057534709997379, -0.043096288203264652};

// Causal + anticausal recursive filtering of one line with stride, mirror boundaries.
void FilterLine(float* c, int n, int stride, std::vector<double>& v) {
  if (n < 2) return;
  double gain = 1;
  for (double z : kPoles) gain *= (1 - z) * (1 - 1 / z);
  v.resize(n);
  for (int i = 0; i < n; ++i) v[i] = c[static_cast<size_t>(i) * stride] * gain;
  for (double z : kPoles) {
  // Initial causal coefficient: truncated sum of the mirrored signal.
  const int horizon = std::min(n, 40);
  double zn = z, sum = v[0];
  for (int i = 1; i < horizon; ++i) {
    sum += zn * v[i];
    zn *= z;
  }
  v[0] = sum;
  for (int i = 1; i < n; ++i) v[i] += z * v[i - 1];
  v[n - 1] = (z / (z * z - 1)) * (z * v[n - 2] + v[n - 1]);
  for (int i = n - 2; i >= 0; --i) v[i] = z * (v[i + 1] - v[i]);
  }
  for (int i = 0; i < n; ++i) c[static_cast<size_t>(i) * stride] = static_cast<float>(v[i]);
}

inline int Mirror(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

constexpr int kTaps = 6;

// Quintic B-spline on [0, 1) and [1, 2) as polynomials (Horner form).
inline float Beta5Inner(float x) {  // |x| < 1
  const float x2 = x * x;
  return (66.f + x2 * (-60.f + x2 * (30.f - 10.f * x))) * (1.f / 120.f);
}
inline float Beta5Middle(float x) {  // 1 <= |x| < 2
  return (51.f + x * (75.f + x * (-210.f + x * (150.f + x * (-45.f + 5.f * x))))) * (1.f / 120.f);
}


// Weights of n offsets, stored tap-major (w[a * n + x]) so that each loop vectorises.
void WeightsRow(const float* t, int n, float* w) {
  float* w0 = w;
  float* w1 = w + n;
  float* w2 = w + 2 * static_cast<size_t>(n);
  float* w3 = w + 3 * static_cast<size_t>(n);
  float* w4 = w + 4 * static_cast<size_t>(n);
  float* w5 = w + 5 * static_cast<size_t>(n);
  for (int x = 0; x < n; ++x) {
    const float tt = t[x], u = 1.f - tt, t2 = tt * tt, u2 = u * u;
    w0[x] = u2 * u2 * u * (1.f / 120.f);
    w1[x] = Beta5Middle(tt + 1.f);
    w2[x] = Beta5Inner(tt);
    w3[x] = Beta5Inner(u);
    w4[x] = Beta5Middle(2.f - tt);
    w5[x] = t2 * t2 * tt * (1.f / 120.f);
  }
}

// Index i with axis[i] <= v < axis[i+1], clamped; axis increasing.
inline int Cell(const float* axis, int n, double v) {
  if (n < 2 || v <= axis[0]) return 0;
  if (v >= axis[n - 1]) return n - 2;
  return static_cast<int>(std::upper_bound(axis, axis + n, static_cast<float>(v)) - axis) - 1;
}

// Filters the columns [x0, x0 + nb) together, row by row, so that memory is read
// sequentially (a column at a time would miss the cache on every row).
void FilterColumns(float* data, int ny, int nx, int x0, int nb, std::vector<double>& buf) {
  if (ny < 2) return;
  constexpr int kB = 16;
  buf.resize(static_cast<size_t>(ny) * kB);
  double gain = 1;
  for (double z : kPoles) gain *= (1 - z) * (1 - 1 / z);
  for (int y = 0; y < ny; ++y)
    for (int b = 0; b < nb; ++b) buf[static_cast<size_t>(y) * kB + b] = data[static_cast<size_t>(y) * nx + x0 + b] * gain;
  const int horizon = std::min(ny, 40);
  for (double z : kPoles) {
    double first[kB] = {0};
    double zn = 1;
    for (int y = 0; y < horizon; ++y) {
      for (int b = 0; b < nb; ++b) first[b] += zn * buf[static_cast<size_t>(y) * kB + b];
      zn *= z;
    }
    for (int b = 0; b < nb; ++b) buf[b] = first[b];
    for (int y = 1; y < ny; ++y) {
      double* r = &buf[static_cast<size_t>(y) * kB];
      const double* p = r - kB;
      for (int b = 0; b < nb; ++b) r[b] += z * p[b];
    }
    const double k = z / (z * z - 1);
    double* last = &buf[static_cast<size_t>(ny - 1) * kB];
    for (int b = 0; b < nb; ++b) last[b] = k * (z * last[b - kB] + last[b]);
    for (int y = ny - 2; y >= 0; --y) {
      double* r = &buf[static_cast<size_t>(y) * kB];
      const double* n = r + kB;
      for (int b = 0; b < nb; ++b) r[b] = z * (n[b] - r[b]);
    }
  }
  for (int y = 0; y < ny; ++y)
    for (int b = 0; b < nb; ++b) data[static_cast<size_t>(y) * nx + x0 + b] = static_cast<float>(buf[static_cast<size_t>(y) * kB + b]);
}

}  // namespace

bool FillInvalid(float* data, size_t n, std::vector<uint8_t>* valid) {
  double sum = 0;
  size_t count = 0;
  for (size_t i = 0; i < n; ++i)
    if (data[i] == data[i]) {
      sum += data[i];
      ++count;
    }
  if (count == n) return false;
  const float mean = count ? static_cast<float>(sum / count) : 0.f;
  valid->assign(n, 1);
  for (size_t i = 0; i < n; ++i)
    if (data[i] != data[i]) {
      data[i] = mean;
      (*valid)[i] = 0;
    }
  return true;
}

void BSplinePrefilter(float* data, int ny, int nx) {
  std::vector<double> line;
  for (int y = 0; y < ny; ++y) FilterLine(data + static_cast<size_t>(y) * nx, nx, 1, line);
  for (int x = 0; x < nx; x += 16) FilterColumns(data, ny, nx, x, std::min(16, nx - x), line);
}

// Floor of a float without a library call (SSE2 has no rounding instruction).
inline int FastFloor(float v) {
  const int i = static_cast<int>(v);
  return i - (v < static_cast<float>(i));
}

void DeformRows(const DeformInput& in, const float* coef, float* out, int row_begin, int row_end) {
  const int nx = in.nx, ny = in.ny, gx = in.gx;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Bilinear weights of the displacement grid along x are the same for every row.
  std::vector<int> cx(nx);
  std::vector<float> tx(nx);
  for (int x = 0; x < nx; ++x) {
    const double xc = std::min<double>(std::max<double>(x, in.xs[0]), in.xs[gx - 1]);
    cx[x] = Cell(in.xs, gx, xc);
    tx[x] = gx > 1 ? static_cast<float>((xc - in.xs[cx[x]]) / (in.xs[cx[x] + 1] - in.xs[cx[x]])) : 0.f;
  }
  std::vector<float> rowDx(gx), rowDy(gx), sxs(nx), sys(nx), fx(nx), fy(nx);
  std::vector<float> wxs(static_cast<size_t>(kTaps) * nx), wys(static_cast<size_t>(kTaps) * nx);
  std::vector<int> ixs(nx), iys(nx);
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
    // Sampling positions and spline weights of the whole row first: branch-free loops
    // that the compiler vectorises; the gather below is then plain multiply-adds.
    for (int x = 0; x < nx; ++x) {
      const int i = cx[x], i1 = std::min(i + 1, gx - 1);
      const float t = tx[x];
      sxs[x] = x + in.factor * (rowDx[i] * (1 - t) + rowDx[i1] * t);
      sys[x] = y + in.factor * (rowDy[i] * (1 - t) + rowDy[i1] * t);
    }
    for (int x = 0; x < nx; ++x) {
      ixs[x] = FastFloor(sxs[x]);
      iys[x] = FastFloor(sys[x]);
      fx[x] = sxs[x] - ixs[x];
      fy[x] = sys[x] - iys[x];
    }
    WeightsRow(fx.data(), nx, wxs.data());
    WeightsRow(fy.data(), nx, wys.data());
    float* dst = out + static_cast<size_t>(y) * nx;
    for (int x = 0; x < nx; ++x) {
      const float sx = sxs[x], sy = sys[x];
      // Outside the recorded image there is no information: NaN marks those pixels,
      // which the correlation then ignores.
      if (!(sx >= -0.5f && sy >= -0.5f && sx <= nx - 0.5f && sy <= ny - 0.5f)) {
        dst[x] = nan;
        continue;
      }
      const int ix = ixs[x], iy = iys[x];
      if (in.valid) {
        // Nearest source pixel masked: no information here either.
        const int nxp = std::min(nx - 1, std::max(0, static_cast<int>(sx + 0.5f)));
        const int nyp = std::min(ny - 1, std::max(0, static_cast<int>(sy + 0.5f)));
        if (!in.valid[static_cast<size_t>(nyp) * nx + nxp]) {
          dst[x] = nan;
          continue;
        }
      }
      float wx[kTaps], wy[kTaps];
      for (int a = 0; a < kTaps; ++a) {
        wx[a] = wxs[static_cast<size_t>(a) * nx + x];
        wy[a] = wys[static_cast<size_t>(a) * nx + x];
      }
      float acc = 0;
      if (ix >= 2 && iy >= 2 && ix + 3 < nx && iy + 3 < ny) {
        const float* p = coef + static_cast<size_t>(iy - 2) * nx + (ix - 2);
        for (int b = 0; b < kTaps; ++b, p += nx) {
          acc += wy[b] * (wx[0] * p[0] + wx[1] * p[1] + wx[2] * p[2] + wx[3] * p[3] + wx[4] * p[4] + wx[5] * p[5]);
        }
      } else {
        for (int b = 0; b < kTaps; ++b) {
          const float* row = coef + static_cast<size_t>(Mirror(iy - 2 + b, ny)) * nx;
          float r = 0;
          for (int a = 0; a < kTaps; ++a) r += wx[a] * row[Mirror(ix - 2 + a, nx)];
          acc += wy[b] * r;
        }
      }
      dst[x] = acc;
    }
  }
}

}  // namespace fi
