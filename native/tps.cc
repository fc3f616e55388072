#include "tps.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "simd.h"

#if FI_X86_SIMD
#include <immintrin.h>
#endif

namespace fi {
namespace {

// Kernel of the thin-plate spline as a function of the squared distance.
inline double Kernel(double r2) { return r2 > 0 ? 0.5 * r2 * std::log(r2) : 0.0; }
// The same in single precision, for evaluations (the log dominated their cost).
inline float KernelF(float r2) { return r2 > 0 ? 0.5f * r2 * std::log(r2) : 0.0f; }

// In-place LU with partial pivoting of the m x m matrix a; false if singular.
FI_CLONES
bool LuFactor(std::vector<double>& a, int m, std::vector<int>& piv) {
  piv.resize(m);
  for (int k = 0; k < m; ++k) {
    int p = k;
    double best = std::fabs(a[static_cast<size_t>(k) * m + k]);
    for (int i = k + 1; i < m; ++i) {
      const double v = std::fabs(a[static_cast<size_t>(i) * m + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    if (!(best > 1e-12)) return false;
    piv[k] = p;
    if (p != k)
      for (int j = 0; j < m; ++j) std::swap(a[static_cast<size_t>(k) * m + j], a[static_cast<size_t>(p) * m + j]);
    const double inv = 1.0 / a[static_cast<size_t>(k) * m + k];
    double* rk = &a[static_cast<size_t>(k) * m];
    for (int i = k + 1; i < m; ++i) {
      double* ri = &a[static_cast<size_t>(i) * m];
      const double f = ri[k] * inv;
      ri[k] = f;
      if (f == 0) continue;
      for (int j = k + 1; j < m; ++j) ri[j] -= f * rk[j];
    }
  }
  return true;
}

// Solves LU X = B in place for r right-hand sides stored row-major (x[i * r + c]): each
// row of the factors is read once for all of them, so boxes that share a factorisation
// share its memory traffic (a 450x450 system is 1.6 MB, more than a core's cache).
FI_CLONES
void LuSolveManyGeneric(const std::vector<double>& a, int m, const std::vector<int>& piv, double* x, int r) {
  for (int k = 0; k < m; ++k)
    if (piv[k] != k) std::swap_ranges(x + static_cast<size_t>(k) * r, x + static_cast<size_t>(k + 1) * r, x + static_cast<size_t>(piv[k]) * r);
  for (int i = 1; i < m; ++i) {
    const double* ri = &a[static_cast<size_t>(i) * m];
    double* xi = x + static_cast<size_t>(i) * r;
    for (int j = 0; j < i; ++j) {
      const double l = ri[j];
      if (l == 0) continue;
      const double* xj = x + static_cast<size_t>(j) * r;
      for (int c = 0; c < r; ++c) xi[c] -= l * xj[c];
    }
  }
  for (int i = m - 1; i >= 0; --i) {
    const double* ri = &a[static_cast<size_t>(i) * m];
    double* xi = x + static_cast<size_t>(i) * r;
    for (int j = i + 1; j < m; ++j) {
      const double u = ri[j];
      if (u == 0) continue;
      const double* xj = x + static_cast<size_t>(j) * r;
      for (int c = 0; c < r; ++c) xi[c] -= u * xj[c];
    }
    const double inv = 1.0 / ri[i];
    for (int c = 0; c < r; ++c) xi[c] *= inv;
  }
}

#if FI_X86_SIMD
// NB rows [i0, i0 + NB) of x (columns [c, c + 8)) minus sum over j in [j0, j1) of a[i][j] x_j:
// the rows' accumulators stay in registers while the x_j stream by, each read once for NB rows.
template <int NB>
__attribute__((target("avx2,fma"))) inline void BlockRows(const double* a, int m, double* x, int stride, int i0, int c,
                                                            int j0, int j1, __m256d (&acc)[4][2]) {
  for (int q = 0; q < NB; ++q) {
    acc[q][0] = _mm256_loadu_pd(x + static_cast<size_t>(i0 + q) * stride + c);
    acc[q][1] = _mm256_loadu_pd(x + static_cast<size_t>(i0 + q) * stride + c + 4);
  }
  for (int j = j0; j < j1; ++j) {
    const __m256d x0 = _mm256_loadu_pd(x + static_cast<size_t>(j) * stride + c);
    const __m256d x1 = _mm256_loadu_pd(x + static_cast<size_t>(j) * stride + c + 4);
    for (int q = 0; q < NB; ++q) {
      const __m256d l = _mm256_broadcast_sd(a + static_cast<size_t>(i0 + q) * m + j);
      acc[q][0] = _mm256_fnmadd_pd(l, x0, acc[q][0]);
      acc[q][1] = _mm256_fnmadd_pd(l, x1, acc[q][1]);
    }
  }
}

// Forward then back substitution of LU X = B for blocks of 4 rows and 8 right-hand sides
// (`stride` a multiple of 8, the extra columns zero).
template <int NB>
__attribute__((target("avx2,fma"))) void ForwardBlock(const double* a, int m, double* x, int stride, int i0) {
  for (int c = 0; c < stride; c += 8) {
    __m256d acc[4][2];
    BlockRows<NB>(a, m, x, stride, i0, c, 0, i0, acc);
    // Unit lower triangle inside the block.
    for (int q = 1; q < NB; ++q)
      for (int p = 0; p < q; ++p) {
        const __m256d l = _mm256_broadcast_sd(a + static_cast<size_t>(i0 + q) * m + i0 + p);
        acc[q][0] = _mm256_fnmadd_pd(l, acc[p][0], acc[q][0]);
        acc[q][1] = _mm256_fnmadd_pd(l, acc[p][1], acc[q][1]);
      }
    for (int q = 0; q < NB; ++q) {
      _mm256_storeu_pd(x + static_cast<size_t>(i0 + q) * stride + c, acc[q][0]);
      _mm256_storeu_pd(x + static_cast<size_t>(i0 + q) * stride + c + 4, acc[q][1]);
    }
  }
}

template <int NB>
__attribute__((target("avx2,fma"))) void BackBlock(const double* a, int m, double* x, int stride, int i0) {
  for (int c = 0; c < stride; c += 8) {
    __m256d acc[4][2];
    BlockRows<NB>(a, m, x, stride, i0, c, i0 + NB, m, acc);
    for (int q = NB - 1; q >= 0; --q) {
      for (int p = q + 1; p < NB; ++p) {
        const __m256d u = _mm256_broadcast_sd(a + static_cast<size_t>(i0 + q) * m + i0 + p);
        acc[q][0] = _mm256_fnmadd_pd(u, acc[p][0], acc[q][0]);
        acc[q][1] = _mm256_fnmadd_pd(u, acc[p][1], acc[q][1]);
      }
      const __m256d inv = _mm256_set1_pd(1.0 / a[static_cast<size_t>(i0 + q) * m + i0 + q]);
      acc[q][0] = _mm256_mul_pd(acc[q][0], inv);
      acc[q][1] = _mm256_mul_pd(acc[q][1], inv);
    }
    for (int q = 0; q < NB; ++q) {
      _mm256_storeu_pd(x + static_cast<size_t>(i0 + q) * stride + c, acc[q][0]);
      _mm256_storeu_pd(x + static_cast<size_t>(i0 + q) * stride + c + 4, acc[q][1]);
    }
  }
}

void LuSolveBlocked(const std::vector<double>& a, int m, const std::vector<int>& piv, double* x, int stride) {
  for (int k = 0; k < m; ++k)
    if (piv[k] != k)
      std::swap_ranges(x + static_cast<size_t>(k) * stride, x + static_cast<size_t>(k + 1) * stride, x + static_cast<size_t>(piv[k]) * stride);
  auto forward = [&](int i0, int nb) {
    switch (nb) {
      case 4: ForwardBlock<4>(a.data(), m, x, stride, i0); break;
      case 3: ForwardBlock<3>(a.data(), m, x, stride, i0); break;
      case 2: ForwardBlock<2>(a.data(), m, x, stride, i0); break;
      default: ForwardBlock<1>(a.data(), m, x, stride, i0); break;
    }
  };
  auto back = [&](int i0, int nb) {
    switch (nb) {
      case 4: BackBlock<4>(a.data(), m, x, stride, i0); break;
      case 3: BackBlock<3>(a.data(), m, x, stride, i0); break;
      case 2: BackBlock<2>(a.data(), m, x, stride, i0); break;
      default: BackBlock<1>(a.data(), m, x, stride, i0); break;
    }
  };
  for (int i0 = 0; i0 < m; i0 += 4) forward(i0, std::min(4, m - i0));
  for (int hi = m; hi > 0; hi -= 4) back(std::max(0, hi - 4), hi - std::max(0, hi - 4));
}
#endif

// Solves LU X = B in place for right-hand sides stored row-major with a row stride of
// `stride` (a multiple of 8; columns past the right-hand sides zero).
void LuSolveMany(const std::vector<double>& a, int m, const std::vector<int>& piv, double* x, int stride) {
#if FI_X86_SIMD
  if (UseAvx2()) return LuSolveBlocked(a, m, piv, x, stride);
#endif
  LuSolveManyGeneric(a, m, piv, x, stride);
}

struct Box {
  double x0, x1, y0, y1;
  // Local frame of the box: positions are (p - origin) / scale, so that kernel values do
  // not depend on the pixel units and boxes of the same layout share one factorisation.
  double ox = 0, oy = 0;
  std::vector<int> members;
  std::vector<int> li, lj;     // lattice coordinates of the members (Lattice::kOff: off it)
  std::vector<double> wu, wv;  // weights (n) then the affine part (1, y, x)
  std::vector<double> fu, fv;  // the smoothed field at the members
  bool ok = false;
};

// LU factors of a box's system, shared by the boxes whose points have the same layout
// (on a regular grid with few holes, most boxes).
struct Factor {
  std::vector<double> lu;
  std::vector<int> piv;
  bool ok = false;
};

// Kernel values between points of a regular lattice (steps hx, hy), by integer offset:
// PIV vectors sit on such a grid, and evaluations at grid points then need no logarithm.
struct Lattice {
  double hx = 0, hy = 0, x0 = 0, y0 = 0;
  int reach = 0;  // offsets in [-reach, reach] are tabulated
  std::vector<double> table;
  // Integer offset of d along a step h, or INT_MIN when d is not on the lattice.
  static int Steps(double d, double h) {
    if (!(h > 0)) return std::numeric_limits<int>::min();
    const double q = d / h;
    const double r = std::nearbyint(q);
    return std::fabs(q - r) < 1e-4 ? static_cast<int>(r) : std::numeric_limits<int>::min();
  }
  static constexpr int kOff = std::numeric_limits<int>::min();
  // Integer lattice coordinates of a point (kOff when it is not on the lattice).
  void Coords(double x, double y, int* i, int* j) const {
    *i = Steps(x - x0, hx);
    *j = Steps(y - y0, hy);
    if (*i == kOff || *j == kOff) *i = *j = kOff;
  }
  const double* At(int di, int dj) const {
    if (std::abs(di) > reach || std::abs(dj) > reach) return nullptr;
    return &table[static_cast<size_t>(dj + reach) * (2 * reach + 1) + (di + reach)];
  }
  const double* Lookup(double dx, double dy) const {
    const int i = Steps(dx, hx), j = Steps(dy, hy);
    if (i == std::numeric_limits<int>::min() || j == std::numeric_limits<int>::min()) return nullptr;
    if (std::abs(i) > reach || std::abs(j) > reach) return nullptr;
    return &table[static_cast<size_t>(j + reach) * (2 * reach + 1) + (i + reach)];
  }
};

// Most common positive gap between sorted distinct coordinates (the grid step), or 0.
double TypicalStep(const double* v, int n) {
  std::vector<double> u(v, v + n);
  std::sort(u.begin(), u.end());
  u.erase(std::unique(u.begin(), u.end()), u.end());
  std::map<long, int> counts;
  for (size_t i = 1; i < u.size(); ++i) ++counts[std::lround((u[i] - u[i - 1]) * 1000)];
  long best = 0;
  int most = 0;
  for (auto [k, c] : counts)
    if (c > most) {
      most = c;
      best = k;
    }
  return most >= 2 ? best / 1000.0 : 0.0;
}

Lattice MakeLattice(const double* x, const double* y, int n, double scale, double extent) {
  Lattice l;
  l.hx = TypicalStep(x, n);
  l.hy = TypicalStep(y, n);
  l.x0 = *std::min_element(x, x + n);
  l.y0 = *std::min_element(y, y + n);
  if (!(l.hx > 0 && l.hy > 0)) return l;
  l.reach = std::min(400, static_cast<int>(std::ceil(extent / std::min(l.hx, l.hy))) + 1);
  const int w = 2 * l.reach + 1;
  l.table.resize(static_cast<size_t>(w) * w);
  for (int j = -l.reach; j <= l.reach; ++j)
    for (int i = -l.reach; i <= l.reach; ++i) {
      const double dx = i * l.hx / scale, dy = j * l.hy / scale;
      l.table[static_cast<size_t>(j + l.reach) * w + (i + l.reach)] = Kernel(dx * dx + dy * dy);
    }
  return l;
}

// Value of a box's spline at (x, y).
void Eval(const TpsInput& in, const Box& b, double scale, const Lattice& lat, double x, double y, double* u, double* v) {
  const size_t n = b.members.size();
  const double lx = (x - b.ox) / scale, ly = (y - b.oy) / scale;
  double su = b.wu[n] + b.wu[n + 1] * ly + b.wu[n + 2] * lx;
  double sv = b.wv[n] + b.wv[n + 1] * ly + b.wv[n + 2] * lx;
  const double inv = 1.0 / scale;
  int pi, pj;
  lat.Coords(x, y, &pi, &pj);
  for (size_t k = 0; k < n; ++k) {
    const int i = b.members[k];
    const double* t = pi != Lattice::kOff && b.li[k] != Lattice::kOff ? lat.At(pi - b.li[k], pj - b.lj[k]) : nullptr;
    double kv;
    if (t) {
      kv = *t;
    } else {
      const float dx = static_cast<float>((x - in.x[i]) * inv), dy = static_cast<float>((y - in.y[i]) * inv);
      kv = KernelF(dx * dx + dy * dy);
    }
    su += b.wu[k] * kv;
    sv += b.wv[k] * kv;
  }
  *u = su;
  *v = sv;
}

// The system of a box in its local frame: [[K + s I, P], [P^T, 0]], P = [1, y, x].
Factor BuildFactor(const TpsInput& in, const Box& b, double scale, const Lattice& lat) {
  const int n = static_cast<int>(b.members.size()), m = n + 3;
  Factor f;
  f.lu.assign(static_cast<size_t>(m) * m, 0.0);
  const double s = in.smoothing_coef * n / 1000.0;
  for (int r = 0; r < n; ++r) {
    const int i = b.members[r];
    for (int c = 0; c < n; ++c) {
      const int j = b.members[c];
      const double* t = lat.Lookup(in.x[i] - in.x[j], in.y[i] - in.y[j]);
      const double dx = (in.x[i] - in.x[j]) / scale, dy = (in.y[i] - in.y[j]) / scale;
      f.lu[static_cast<size_t>(r) * m + c] = (t ? *t : Kernel(dx * dx + dy * dy)) + (r == c ? s : 0.0);
    }
    const double p[3] = {1.0, (in.y[i] - b.oy) / scale, (in.x[i] - b.ox) / scale};
    for (int q = 0; q < 3; ++q) {
      f.lu[static_cast<size_t>(r) * m + n + q] = p[q];
      f.lu[static_cast<size_t>(n + q) * m + r] = p[q];
    }
  }
  f.ok = LuFactor(f.lu, m, f.piv);
  return f;
}

// Solves the boxes of one layout together: smoothing spline, then iterative replacement
// of values far from it, re-solving the boxes that changed. Returns the values replaced.
int SolveGroup(const TpsInput& in, std::vector<Box>& boxes, const std::vector<int>& group, const Factor& f) {
  if (!f.ok || group.empty()) return 0;
  const int n = static_cast<int>(boxes[group[0]].members.size()), m = n + 3;
  const double s = in.smoothing_coef * n / 1000.0;
  // Current data of every box (values replaced along the iterations).
  std::vector<std::vector<double>> cu(group.size()), cv(group.size());
  for (size_t g = 0; g < group.size(); ++g) {
    const Box& b = boxes[group[g]];
    cu[g].resize(n);
    cv[g].resize(n);
    for (int r = 0; r < n; ++r) {
      cu[g][r] = in.u[b.members[r]];
      cv[g][r] = in.v[b.members[r]];
    }
  }
  int replaced = 0;
  std::vector<size_t> active(group.size());
  for (size_t g = 0; g < group.size(); ++g) active[g] = g;
  std::vector<double> x;
  for (int it = 0; it < in.max_iterations && !active.empty(); ++it) {
    // Columns 2a and 2a + 1: u and v of the a-th active box; rows n..n+2 (affine part) 0.
    // Row stride a multiple of 8 (the blocked solve's column blocks), extra columns zero.
    const int r = (2 * static_cast<int>(active.size()) + 7) & ~7;
    x.assign(static_cast<size_t>(m) * r, 0.0);
    for (size_t a = 0; a < active.size(); ++a)
      for (int i = 0; i < n; ++i) {
        x[static_cast<size_t>(i) * r + 2 * a] = cu[active[a]][i];
        x[static_cast<size_t>(i) * r + 2 * a + 1] = cv[active[a]][i];
      }
    LuSolveMany(f.lu, m, f.piv, x.data(), r);
    std::vector<size_t> next;
    for (size_t a = 0; a < active.size(); ++a) {
      const size_t g = active[a];
      Box& b = boxes[group[g]];
      b.wu.resize(m);
      b.wv.resize(m);
      b.fu.resize(n);
      b.fv.resize(n);
      for (int i = 0; i < m; ++i) {
        b.wu[i] = x[static_cast<size_t>(i) * r + 2 * a];
        b.wv[i] = x[static_cast<size_t>(i) * r + 2 * a + 1];
      }
      // Smoothed values at the points: the first rows of the system read
      // K w + P c + s w = data, so the spline there is the data minus s w.
      int changed = 0;
      for (int i = 0; i < n; ++i) {
        const double fu = cu[g][i] - s * b.wu[i], fv = cv[g][i] - s * b.wv[i];
        b.fu[i] = fu;
        b.fv[i] = fv;
        const double du = fu - cu[g][i], dv = fv - cv[g][i];
        if (du * du + dv * dv > in.threshold * in.threshold) {
          cu[g][i] = fu;
          cv[g][i] = fv;
          ++changed;
        }
      }
      b.ok = true;
      replaced += changed;
      if (changed) next.push_back(g);
    }
    active.swap(next);
  }
  return replaced;
}

// Layout key of a box: the smoothing, the length unit and its points relative to the box
// origin, exactly (bit patterns): equal keys mean equal systems.
std::string LayoutKey(const TpsInput& in, const Box& b, double scale) {
  std::string key;
  key.reserve(16 + b.members.size() * 16);
  auto put = [&key](double v) { key.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(in.smoothing_coef);
  put(scale);
  for (int i : b.members) {
    put(in.x[i] - b.ox);
    put(in.y[i] - b.oy);
  }
  return key;
}

// Factorisations kept from call to call: the pairs of a series share their grid, so after
// the first pair every box finds its system here. Bounded; cleared when full.
class FactorCache {
 public:
  std::shared_ptr<const Factor> Find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second;
  }
  void Put(const std::string& key, std::shared_ptr<const Factor> f) {
    const size_t cost = key.size() + f->lu.size() * sizeof(double) + f->piv.size() * sizeof(int);
    std::lock_guard<std::mutex> lock(mutex_);
    if (bytes_ + cost > kMaxBytes) {
      map_.clear();
      bytes_ = 0;
    }
    if (map_.emplace(key, std::move(f)).second) bytes_ += cost;
  }

 private:
  static constexpr size_t kMaxBytes = size_t{64} << 20;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Factor>> map_;
  size_t bytes_ = 0;
};

FactorCache& Factors() {
  static FactorCache cache;
  return cache;
}

// The boxes of a set of points (members, lattice coordinates, local origins) grouped by
// layout, the lattice and the length unit: what depends only on the positions, the subdomain
// size and the smoothing. Vectors on one grid come back pair after pair: kept from call to call.
struct Layout {
  std::vector<double> x, y;
  int subdom_size = 0;
  double smoothing_coef = 0;
  double scale = 1;
  Lattice lattice;
  std::vector<Box> boxes;
  std::vector<std::vector<int>> groups;
  std::vector<std::string> keys;
};

std::shared_ptr<const Layout> BuildLayout(const TpsInput& in) {
  auto out = std::make_shared<Layout>();
  Layout& L = *out;
  L.x.assign(in.x, in.x + in.n);
  L.y.assign(in.y, in.y + in.n);
  L.subdom_size = in.subdom_size;
  L.smoothing_coef = in.smoothing_coef;
  double xmin = in.x[0], xmax = in.x[0], ymin = in.y[0], ymax = in.y[0];
  for (int i = 1; i < in.n; ++i) {
    xmin = std::min(xmin, in.x[i]);
    xmax = std::max(xmax, in.x[i]);
    ymin = std::min(ymin, in.y[i]);
    ymax = std::max(ymax, in.y[i]);
  }
  const double rx = std::max(xmax - xmin, 1.0), ry = std::max(ymax - ymin, 1.0);
  const double aspect = ry / rx;
  const double nsub = static_cast<double>(in.n) / std::max(1, in.subdom_size);
  int nbx = std::max(1, static_cast<int>(std::floor(std::sqrt(nsub / aspect))));
  int nby = std::max(1, static_cast<int>(std::ceil(std::sqrt(nsub * aspect))));
  double bw = rx / nbx, bh = ry / nby;
  // Typical spacing of the points: the kernel's length unit.
  const double scale = L.scale = std::max(1e-6, std::sqrt(rx * ry / in.n));
  L.lattice = MakeLattice(in.x, in.y, in.n, scale, 1.6 * std::max(bw, bh) + 2 * scale);
  const Lattice& lattice = L.lattice;
  // On a lattice, box sizes are made whole numbers of steps: the boxes then hold the same
  // pattern of points and share one factorisation (the box count may change by one).
  if (lattice.hx > 0 && lattice.hy > 0) {
    bw = std::max(1.0, std::round(bw / lattice.hx)) * lattice.hx;
    bh = std::max(1.0, std::round(bh / lattice.hy)) * lattice.hy;
    nbx = std::max(1, static_cast<int>(std::ceil(rx / bw - 1e-9)));
    nby = std::max(1, static_cast<int>(std::ceil(ry / bh - 1e-9)));
  }
  // Boxes enlarged by a quarter of their size on every side, so that neighbours overlap.
  std::vector<Box>& boxes = L.boxes;
  for (int bx = 0; bx < nbx; ++bx)
    for (int by = 0; by < nby; ++by) {
      Box b;
      b.x0 = xmin + bx * bw - 0.25 * bw;
      b.x1 = xmin + (bx + 1) * bw + 0.25 * bw;
      b.y0 = ymin + by * bh - 0.25 * bh;
      b.y1 = ymin + (by + 1) * bh + 0.25 * bh;
      boxes.push_back(std::move(b));
    }
  // Members in one pass over the points (in increasing order, as a scan per box would give):
  // each point tested against the few boxes around it only (boxes overlap by a quarter).
  for (int i = 0; i < in.n; ++i) {
    const double fx = (in.x[i] - xmin) / bw, fy = (in.y[i] - ymin) / bh;
    // Box bx holds x when fx - 1.25 < bx <= fx + 0.25 (the exact test below decides; the
    // margin covers rounding).
    constexpr double kMargin = 1e-6;
    const int bxa = std::max(0, static_cast<int>(std::floor(fx - 1.25 - kMargin))), bxb = std::min(nbx - 1, static_cast<int>(std::floor(fx + 0.25 + kMargin)));
    const int bya = std::max(0, static_cast<int>(std::floor(fy - 1.25 - kMargin))), byb = std::min(nby - 1, static_cast<int>(std::floor(fy + 0.25 + kMargin)));
    for (int bx = bxa; bx <= bxb; ++bx)
      for (int by = bya; by <= byb; ++by) {
        Box& b = boxes[static_cast<size_t>(bx) * nby + by];
        if (!(in.x[i] >= b.x0 && in.x[i] < b.x1 && in.y[i] >= b.y0 && in.y[i] < b.y1)) continue;
        // Origin on the first point: boxes of the same layout get the same local frame.
        if (b.members.empty()) {
          b.ox = in.x[i];
          b.oy = in.y[i];
        }
        b.members.push_back(i);
        int ci, cj;
        lattice.Coords(in.x[i], in.y[i], &ci, &cj);
        b.li.push_back(ci);
        b.lj.push_back(cj);
      }
  }
  // Boxes grouped by layout (one system each), in order of first appearance.
  std::map<std::string, int> group_of;
  std::vector<std::vector<int>>& groups = L.groups;
  std::vector<std::string>& keys = L.keys;
  for (int k = 0; k < static_cast<int>(boxes.size()); ++k) {
    if (boxes[k].members.size() < 4) continue;
    std::string key = LayoutKey(in, boxes[k], scale);
    auto it = group_of.find(key);
    if (it == group_of.end()) {
      it = group_of.emplace(key, static_cast<int>(groups.size())).first;
      groups.emplace_back();
      keys.push_back(std::move(key));
    }
    groups[it->second].push_back(k);
  }
  return out;
}

// The layouts of the last point sets (a few: the grids of the passes, of other workers).
class LayoutCache {
 public:
  std::shared_ptr<const Layout> Get(const TpsInput& in) {
    const size_t bytes = sizeof(double) * static_cast<size_t>(in.n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& l : layouts_)
        if (static_cast<int>(l->x.size()) == in.n && l->subdom_size == in.subdom_size && l->smoothing_coef == in.smoothing_coef &&
            std::memcmp(l->x.data(), in.x, bytes) == 0 && std::memcmp(l->y.data(), in.y, bytes) == 0)
          return l;
    }
    std::shared_ptr<const Layout> l = BuildLayout(in);
    std::lock_guard<std::mutex> lock(mutex_);
    if (layouts_.size() >= kMax) layouts_.erase(layouts_.begin());
    layouts_.push_back(l);
    return l;
  }

 private:
  static constexpr size_t kMax = 8;
  std::mutex mutex_;
  std::vector<std::shared_ptr<const Layout>> layouts_;
};

LayoutCache& Layouts() {
  static LayoutCache cache;
  return cache;
}

}  // namespace

void TpsSmooth(const TpsInput& in, const double* xn, const double* yn, int m, double* un, double* vn,
               TpsOutput* out, int threads) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out->u_smooth.assign(in.n, nan);
  out->v_smooth.assign(in.n, nan);
  std::fill(un, un + m, nan);
  std::fill(vn, vn + m, nan);
  if (in.n < 4) return;
  const std::shared_ptr<const Layout> layout = Layouts().Get(in);
  const double scale = layout->scale;
  const Lattice& lattice = layout->lattice;
  std::vector<Box> boxes = layout->boxes;  // the solutions go into this call's copies
  const std::vector<std::vector<int>>& groups = layout->groups;
  const std::vector<std::string>& keys = layout->keys;
  // Work items: slices of at most kSlice boxes of one group (threads share the big groups).
  constexpr int kSlice = 32;
  std::vector<std::pair<int, std::vector<int>>> items;
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].size(); i += kSlice)
      items.emplace_back(static_cast<int>(g), std::vector<int>(groups[g].begin() + i, groups[g].begin() + std::min(groups[g].size(), i + kSlice)));
  std::vector<std::shared_ptr<const Factor>> factors(groups.size());
  std::vector<std::once_flag> made(groups.size());
  std::mutex mutex;
  size_t next = 0;
  auto work = [&] {
    for (;;) {
      size_t k;
      {
        std::lock_guard<std::mutex> lock(mutex);
        k = next++;
      }
      if (k >= items.size()) return;
      const int g = items[k].first;
      std::call_once(made[g], [&] {
        std::shared_ptr<const Factor> f = Factors().Find(keys[g]);
        if (!f) {
          f = std::make_shared<const Factor>(BuildFactor(in, boxes[groups[g][0]], scale, lattice));
          Factors().Put(keys[g], f);
        }
        factors[g] = f;
      });
      const int replaced = SolveGroup(in, boxes, items[k].second, *factors[g]);
      std::lock_guard<std::mutex> lock(mutex);
      out->replaced += replaced;
      if (!factors[g]->ok) out->singular_boxes += static_cast<int>(items[k].second.size());
    }
  };
  const int nt = std::max(1, std::min(threads, static_cast<int>(items.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  // Blend: mean of the boxes containing each point.
  auto blend = [&](double x, double y, double* u, double* v) {
    double su = 0, sv = 0;
    int c = 0;
    for (const Box& b : boxes) {
      if (!b.ok || x < b.x0 || x >= b.x1 || y < b.y0 || y >= b.y1) continue;
      double bu, bv;
      Eval(in, b, scale, lattice, x, y, &bu, &bv);
      su += bu;
      sv += bv;
      ++c;
    }
    if (c) {
      *u = su / c;
      *v = sv / c;
    }
  };
  // Evaluations at the input points themselves (the usual case: vectors on the grid) are
  // the boxes' smoothed values at their members, already known.
  bool at_points = m == in.n;
  for (int i = 0; at_points && i < m; ++i) at_points = xn[i] == in.x[i] && yn[i] == in.y[i];
  if (at_points) {
    std::vector<double> su(in.n, 0.0), sv(in.n, 0.0);
    std::vector<int> count(in.n, 0);
    for (const Box& b : boxes) {
      if (!b.ok) continue;
      for (size_t r = 0; r < b.members.size(); ++r) {
        const int i = b.members[r];
        su[i] += b.fu[r];
        sv[i] += b.fv[r];
        ++count[i];
      }
    }
    for (int i = 0; i < in.n; ++i)
      if (count[i]) {
        un[i] = su[i] / count[i];
        vn[i] = sv[i] / count[i];
      }
    if (in.smooth_at_points) {
      out->u_smooth.assign(un, un + m);
      out->v_smooth.assign(vn, vn + m);
    }
    return;
  }
  if (in.smooth_at_points)
    for (int i = 0; i < in.n; ++i) blend(in.x[i], in.y[i], &out->u_smooth[i], &out->v_smooth[i]);
  for (int i = 0; i < m; ++i) blend(xn[i], yn[i], &un[i], &vn[i]);
}

}  // namespace fi
