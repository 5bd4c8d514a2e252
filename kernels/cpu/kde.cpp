// Gaussian kernel-density estimates of a sample and the inverse-density sample weights built on them.
//
// Exact: density_i = 1/n sum_j phi_h(y_i - y_j), O(n^2) in double, the reference.
//
// Binned, O(n + B^2) for B bins over [min y, max y] with spacing d = (max - min)/(B - 1):
//  1. linear binning: each y_j spreads its unit mass over the two nearest grid points in proportion
//     to proximity (the weights sum to 1 and reproduce y_j's position exactly);
//  2. the density is evaluated exactly on the grid from the binned masses;
//  3. density_i is linearly interpolated between the two grid points around y_i.
// Error bound (absolute, on every density_i): step 1 replaces phi_h(x - y_j) by its linear interpolant in
// y_j, off by at most d^2/8 * max|phi_h''|; step 3 is a linear interpolation in x, off by the same bound.
// max|phi_h''| = phi(0)/h^3 = 1/(sqrt(2 pi) h^3), so
//     |density_binned - density_exact| <= d^2 / (4 sqrt(2 pi) h^3).
// With h = 0.2 and y in [0, 1], 2048 bins give d = 4.9e-4 and a bound of 3.0e-6 on densities that are at
// least ~0.5 for scores in [0,1] (each point's own kernel alone contributes phi(0)/(n h)).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/math.h"

// Variant 2's 64-byte vectors cross no function boundary that is not inlined into the same clone, so
// GCC's note that passing one "changes the ABI" without AVX-512 concerns nothing here.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec::kernels::cpu {

// Variant 1, until session 17 the only one: glibc's exp per pair, each row summed in j order. Kept as
// the benchmark's baseline and the tests' second opinion.
template <typename T> void kde_density_exact_v1(const T* y, int64_t n, double bandwidth, T* density) {
  const double inv_h = 1.0 / bandwidth;
  // Rows on the kernel threads: each row's sum is its own, in j order, so the split changes nothing.
  parallel_for(n, min_items_for(n, int64_t(1) << 16), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += math::gaussian_kernel<double>(double(y[i]) - double(y[j]), inv_h);
      density[i] = static_cast<T>(acc / double(n));
    }
  });
}

namespace {
// Variant 2: the kernel's exponentials in vectors of 8 doubles (vec::exp_f64), still in double. Row i's
// sum runs over j in four interleaved vectors (32 columns a step, lane l of vector u taking the j
// that are l + 8u modulo 32), whose lanes are then added in a fixed order: the same bits at any
// thread count, not variant 1's (the order and the exp differ; the two agree to ~1e-15, tested). The
// columns are a double copy of y padded with +infinity to a whole step: a padded column's exponent is
// -infinity and its term exactly 0. The constant 1 / (h sqrt(2 pi)) multiplies the row's sum once.
using D8 = vec::Double8;
constexpr int64_t kKdeStep = 32;

MR_CPU_CLONES void kde_rows_f64(const double* __restrict cols, int64_t padded, double neg_half_inv_h2, int64_t i0,
                                int64_t i1, double* __restrict sums) {
  for (int64_t i = i0; i < i1; ++i) {
    D8 yi = D8{} + cols[i];  // row i's sample is column i's
    D8 acc[4] = {};
    for (int64_t j = 0; j < padded; j += kKdeStep)
      for (int u = 0; u < 4; ++u) {
        D8 yj;
        std::memcpy(&yj, cols + j + 8 * u, sizeof yj);
        const D8 d = yi - yj;
        acc[u] += vec::exp_f64(d * d * neg_half_inv_h2);
      }
    const D8 total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    double s = 0;
    for (int l = 0; l < 8; ++l) s += total[l];
    sums[i] = s;
  }
}
}  // namespace

template <typename T> void kde_density_exact(const T* y, int64_t n, double bandwidth, T* density) {
  if (n == 0) return;
  const double inv_h = 1.0 / bandwidth;
  const int64_t padded = (n + kKdeStep - 1) / kKdeStep * kKdeStep;
  std::vector<double> cols(static_cast<size_t>(padded), __builtin_inf()), sums(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) cols[size_t(j)] = double(y[j]);
  parallel_for(n, min_items_for(n, int64_t(1) << 16), [&](int64_t i0, int64_t i1) {
    kde_rows_f64(cols.data(), padded, -0.5 * inv_h * inv_h, i0, i1, sums.data());
  });
  const double scale = math::gaussian_kernel<double>(0.0, inv_h) / double(n);  // 1 / (n h sqrt(2 pi))
  for (int64_t i = 0; i < n; ++i) density[i] = static_cast<T>(sums[size_t(i)] * scale);
}

double kde_binned_error_bound(double y_min, double y_max, double bandwidth, int64_t bins) {
  if (bins < 2 || y_max <= y_min) return 0.0;
  double d = (y_max - y_min) / double(bins - 1);
  const double sqrt_2pi = 2.5066282746310002;
  return d * d / (4.0 * sqrt_2pi * bandwidth * bandwidth * bandwidth);
}

template <typename T> void kde_density_binned(const T* y, int64_t n, double bandwidth, int64_t bins, T* density) {
  if (n == 0) return;
  auto [lo_it, hi_it] = std::minmax_element(y, y + n);
  const double lo = *lo_it, hi = *hi_it;
  const double inv_h = 1.0 / bandwidth;
  if (hi <= lo || bins < 2) {  // all samples equal: every point sees n copies of itself
    for (int64_t i = 0; i < n; ++i) density[i] = static_cast<T>(math::gaussian_kernel<double>(0.0, inv_h));
    return;
  }
  const double d = (hi - lo) / double(bins - 1);
  std::vector<double> mass(static_cast<size_t>(bins), 0.0);
  auto locate = [&](double v, int64_t& k, double& frac) {
    double t = (v - lo) / d;
    k = std::min<int64_t>(static_cast<int64_t>(t), bins - 2);
    frac = t - double(k);
  };
  for (int64_t j = 0; j < n; ++j) {
    int64_t k;
    double f;
    locate(double(y[j]), k, f);
    mass[k] += 1.0 - f;
    mass[k + 1] += f;
  }
  // The kernel only depends on the grid distance, so tabulate it once per offset.
  std::vector<double> kern(static_cast<size_t>(bins));
  for (int64_t o = 0; o < bins; ++o) kern[o] = math::gaussian_kernel<double>(double(o) * d, inv_h);
  std::vector<double> grid(static_cast<size_t>(bins), 0.0);
  for (int64_t a = 0; a < bins; ++a) {
    double acc = 0;
    for (int64_t b = 0; b < bins; ++b) acc += mass[b] * kern[a > b ? a - b : b - a];
    grid[a] = acc / double(n);
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t k;
    double f;
    locate(double(y[i]), k, f);
    density[i] = static_cast<T>((1.0 - f) * grid[k] + f * grid[k + 1]);
  }
}

template <typename T> void kde_weights_from_density(const T* density, T* weights, int64_t n) {
  double mean_inv = 0;
  for (int64_t i = 0; i < n; ++i) mean_inv += 1.0 / double(density[i]);
  mean_inv /= double(n);
  for (int64_t i = 0; i < n; ++i) weights[i] = static_cast<T>((1.0 / double(density[i])) / mean_inv);
}

#define MR_INST(T)                                                                        \
  template void kde_density_exact<T>(const T*, int64_t, double, T*);                      \
  template void kde_density_exact_v1<T>(const T*, int64_t, double, T*);                   \
  template void kde_density_binned<T>(const T*, int64_t, double, int64_t, T*);            \
  template void kde_weights_from_density<T>(const T*, T*, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
