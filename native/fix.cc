#include "fix.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fi {
namespace {

// The field padded by one ghost row/column on each side: border vectors then get a full,
// centred 3x3 neighbourhood, and a strong linear gradient does not make them outliers.
// Single precision storage, as the field itself.
std::vector<float> PadLinear(const float* v, int ny, int nx) {
  const int px = nx + 2;
  std::vector<float> out(static_cast<size_t>(ny + 2) * px, std::numeric_limits<float>::quiet_NaN());
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) out[static_cast<size_t>(j + 1) * px + i + 1] = v[static_cast<size_t>(j) * nx + i];
  auto ext = [](float a, float b) { return static_cast<float>(2.0 * a - static_cast<double>(b)); };
  for (int j = 1; j <= ny; ++j)
    if (nx >= 2) {
      float* r = &out[static_cast<size_t>(j) * px];
      r[0] = ext(r[1], r[2]);
      r[nx + 1] = ext(r[nx], r[nx - 1]);
    }
  if (ny >= 2)
    for (int i = 0; i < px; ++i) {
      out[i] = ext(out[px + i], out[2 * static_cast<size_t>(px) + i]);
      out[static_cast<size_t>(ny + 1) * px + i] = ext(out[static_cast<size_t>(ny) * px + i], out[static_cast<size_t>(ny - 1) * px + i]);
    }
  return out;
}

// Sorts 8 values with a fixed network of 19 compare-exchanges (Knuth, TAOCP 5.3.4), all
// min/max without branches: 4 sorts per vector, and std::sort's data-dependent branches
// on such short arrays cost more than the whole rest of the test.
inline void Sort8(double* v) {
  auto cx = [v](int a, int b) {
    const double lo = std::min(v[a], v[b]), hi = std::max(v[a], v[b]);
    v[a] = lo;
    v[b] = hi;
  };
  cx(0, 2); cx(1, 3); cx(4, 6); cx(5, 7);
  cx(0, 4); cx(1, 5); cx(2, 6); cx(3, 7);
  cx(0, 1); cx(2, 3); cx(4, 5); cx(6, 7);
  cx(2, 4); cx(3, 5);
  cx(1, 4); cx(3, 6);
  cx(1, 2); cx(3, 4); cx(5, 6);
}

// Median of the first n (<= 8) values; v has room for 8 and is reordered. The free slots
// take +inf, which sorts after every (finite or infinite) value present.
double Median(double* v, int n) {
  for (int k = n; k < 8; ++k) v[k] = std::numeric_limits<double>::infinity();
  Sort8(v);
  const int m = n >> 1;
  return n % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

void MedianResiduals(const float* dx, const float* dy, int ny, int nx, double eps, double* out) {
  const std::vector<float> pu = PadLinear(dx, ny, nx), pv = PadLinear(dy, ny, nx);
  const int px = nx + 2;
  for (int iy = 0; iy < ny; ++iy)
    for (int ix = 0; ix < nx; ++ix) {
      const size_t i = static_cast<size_t>(iy) * nx + ix;
      out[i] = std::numeric_limits<double>::quiet_NaN();
      if (std::isnan(dx[i])) continue;
      double nu[8], nv[8];
      int c = 0;
      for (int jy = iy; jy <= iy + 2; ++jy)
        for (int jx = ix; jx <= ix + 2; ++jx) {
          if (jy == iy + 1 && jx == ix + 1) continue;
          const float u = pu[static_cast<size_t>(jy) * px + jx], v = pv[static_cast<size_t>(jy) * px + jx];
          if (std::isnan(u) || std::isnan(v)) continue;
          nu[c] = u;
          nv[c] = v;
          ++c;
        }
      if (c < 3) continue;
      double du[8], dv[8];
      std::copy(nu, nu + c, du);
      std::copy(nv, nv + c, dv);
      const double mu = Median(du, c), mv = Median(dv, c);
      for (int k = 0; k < c; ++k) {
        du[k] = std::fabs(nu[k] - mu);
        dv[k] = std::fabs(nv[k] - mv);
      }
      const double ru = Median(du, c), rv = Median(dv, c);
      const double a = std::fabs(dx[i] - mu) / (ru + eps), b = std::fabs(dy[i] - mv) / (rv + eps);
      out[i] = std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
    }
}

}  // namespace fi
