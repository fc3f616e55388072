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

// Quintic B-spline basis.
inline double Beta5(double x) {
  x = std::fabs(x);
  if (x < 1) {
    const double x2 = x * x;
    return (66 - 60 * x2 + 30 * x2 * x2 - 10 * x2 * x2 * x) / 120;
  }
  if (x < 2) {
    const double x2 = x * x, x3 = x2 * x, x4 = x2 * x2;
    return (51 + 75 * x - 210 * x2 + 150 * x3 - 45 * x4 + 5 * x4 * x) / 120;
  }
  if (x < 3) {
    const double u = 3 - x, u2 = u * u;
    return u2 * u2 * u / 120;
  }
  return 0;
}

constexpr int kTaps = 6;
// Weights for fractional offset t in [0, 1): taps at -2 .. 3.
inline void Weights(double t, double w[kTaps]) {
  for (int a = 0; a < kTaps; ++a) w[a] = Beta5(t - (a - 2));
}

// Index i with axis[i] <= v < axis[i+1], clamped; axis increasing.
inline int Cell(const float* axis, int n, double v) {
  if (n < 2 || v <= axis[0]) return 0;
  if (v >= axis[n - 1]) return n - 2;
  return static_cast<int>(std::upper_bound(axis, axis + n, static_cast<float>(v)) - axis) - 1;
}

}  // namespace

void BSplinePrefilter(float* data, int ny, int nx) {
  std::vector<double> line;
  for (int y = 0; y < ny; ++y) FilterLine(data + static_cast<size_t>(y) * nx, nx, 1, line);
  for (int x = 0; x < nx; ++x) FilterLine(data + x, ny, nx, line);
}

void DeformRows(const DeformInput& in, const float* coef, float* out, int row_begin, int row_end) {
  const int nx = in.nx, ny = in.ny;
  // Bilinear weights of the displacement grid along x are the same for every row.
  std::vector<int> cx(nx);
  std::vector<double> tx(nx);
  for (int x = 0; x < nx; ++x) {
    const double xc = std::min<double>(std::max<double>(x, in.xs[0]), in.xs[in.gx - 1]);
    cx[x] = Cell(in.xs, in.gx, xc);
    tx[x] = in.gx > 1 ? (xc - in.xs[cx[x]]) / (in.xs[cx[x] + 1] - in.xs[cx[x]]) : 0.0;
  }
  for (int y = row_begin; y < row_end; ++y) {
    const double yc = std::min<double>(std::max<double>(y, in.ys[0]), in.ys[in.gy - 1]);
    const int j = Cell(in.ys, in.gy, yc);
    const int j1 = std::min(j + 1, in.gy - 1);
    const double ty = in.gy > 1 ? (yc - in.ys[j]) / (in.ys[j + 1] - in.ys[j]) : 0.0;
    for (int x = 0; x < nx; ++x) {
      const int i = cx[x], i1 = std::min(i + 1, in.gx - 1);
      const double t = tx[x];
      auto lerp = [&](const float* f) {
        const double a = f[j * in.gx + i] * (1 - t) + f[j * in.gx + i1] * t;
        const double b = f[j1 * in.gx + i] * (1 - t) + f[j1 * in.gx + i1] * t;
        return a * (1 - ty) + b * ty;
      };
      const double sx = x + in.factor * lerp(in.dx);
      const double sy = y + in.factor * lerp(in.dy);
      // Outside the recorded image there is no information: NaN marks those pixels,
      // which the correlation then ignores.
      if (sx < -0.5 || sy < -0.5 || sx > nx - 0.5 || sy > ny - 0.5) {
        out[static_cast<size_t>(y) * nx + x] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const int ix = static_cast<int>(std::floor(sx)), iy = static_cast<int>(std::floor(sy));
      double wx[kTaps], wy[kTaps];
      Weights(sx - ix, wx);
      Weights(sy - iy, wy);
      double acc = 0;
      const bool interior = ix >= 2 && iy >= 2 && ix + 3 < nx && iy + 3 < ny;
      for (int b = 0; b < kTaps; ++b) {
        const int yy = interior ? iy - 2 + b : Mirror(iy - 2 + b, ny);
        const float* row = coef + static_cast<size_t>(yy) * nx;
        double r = 0;
        if (interior) {
          const float* p = row + ix - 2;
          for (int a = 0; a < kTaps; ++a) r += wx[a] * p[a];
        } else {
          for (int a = 0; a < kTaps; ++a) r += wx[a] * row[Mirror(ix - 2 + a, nx)];
        }
        acc += wy[b] * r;
      }
      out[static_cast<size_t>(y) * nx + x] = static_cast<float>(acc);
    }
  }
}

}  // namespace fi
