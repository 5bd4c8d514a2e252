// Kernel-density estimates and sample weights: hand-computed values, the binned version within its
// stated bound at sizes where the exact one is affordable, and weight normalisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/kde.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/philox.h"
#include "kernels/error.h"
#include "tests/test_util.h"

// The 64-byte vectors handed to vec::exp_f64 (inlined) cross no call: GCC's ABI note concerns nothing.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec {
namespace {

double phi(double u, double h) { return std::exp(-0.5 * u * u / (h * h)) / (h * std::sqrt(2 * M_PI)); }

TEST(Kde, HandComputedTwoPoints) {
  Tensor y = Tensor::from_vector(std::vector<double>{0.0, 0.3}, {2});
  KdeOptions o;
  o.method = KdeMethod::Exact;
  std::vector<double> d = kde_density(y, o).to_vector<double>();
  double expect = (phi(0, 0.2) + phi(0.3, 0.2)) / 2;
  EXPECT_NEAR(d[0], expect, 1e-14);
  EXPECT_NEAR(d[1], expect, 1e-14);
  // Equal densities give equal weights of exactly 1.
  std::vector<double> w = kde_sample_weights(y, o).to_vector<double>();
  EXPECT_NEAR(w[0], 1.0, 1e-14);
  EXPECT_NEAR(w[1], 1.0, 1e-14);
}

TEST(Kde, RareValuesGetLargerWeightsAndWeightsHaveMeanOne) {
  std::vector<double> v(100, 0.1);
  v.push_back(0.9);
  Tensor y = Tensor::from_vector(v, {101});
  std::vector<double> w = kde_sample_weights(y).to_vector<double>();
  double mean = 0;
  for (double x : w) mean += x;
  EXPECT_NEAR(mean / 101, 1.0, 1e-12);
  EXPECT_GT(w[100], 50 * w[0]);
}

TEST(Kde, BinnedStaysWithinItsBound) {
  // A skewed sample in [0, 1] like Last.fm scores: many low values, few high.
  Tensor y = test::random_tensor({5000}, 5, 0, 1);
  std::vector<double> v = y.to_vector<double>();
  for (double& x : v) x = x * x * x;
  y = Tensor::from_vector(v, {5000});
  KdeOptions exact, binned;
  exact.method = KdeMethod::Exact;
  binned.method = KdeMethod::Binned;
  for (int64_t bins : {64, 512, 2048}) {
    binned.bins = bins;
    std::vector<double> de = kde_density(y, exact).to_vector<double>();
    std::vector<double> db = kde_density(y, binned).to_vector<double>();
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    double bound = kde_binned_error_bound(*lo, *hi, 0.2, bins);
    double worst = 0;
    for (size_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::fabs(de[i] - db[i]));
    EXPECT_LE(worst, bound) << bins << " bins";
    EXPECT_GT(worst, 0.0);
  }
  EXPECT_LT(kde_binned_error_bound(0, 1, 0.2, 2048), 4e-6);
}

TEST(Kde, AutoUsesBinnedAboveTheLimitAndAgrees) {
  Tensor y = test::random_tensor({30000}, 6, 0, 1, DType::F32);
  KdeOptions exact;
  exact.method = KdeMethod::Exact;
  Tensor d_auto = kde_density(y);  // 30000 > 20000: binned
  Tensor d_exact = kde_density(y, exact);
  EXPECT_TRUE(test::all_close(d_auto, d_exact, 0, kde_binned_error_bound(0, 1, 0.2, 2048) + 1e-6));
}

TEST(Kde, AllEqualSamplesAndBadArguments) {
  Tensor y = Tensor::full({10}, 0.5, DType::F64);
  KdeOptions binned;
  binned.method = KdeMethod::Binned;
  EXPECT_NEAR(kde_density(y, binned).to_vector<double>()[3], phi(0, 0.2), 1e-14);
  KdeOptions bad;
  bad.bandwidth = 0;
  EXPECT_THROW(kde_density(y, bad), Error);
  bad.bandwidth = 0.2;
  bad.method = KdeMethod::Tiled;
  EXPECT_THROW(kde_density(y, bad), Error);  // a CUDA method on a CPU tensor
  EXPECT_THROW(kde_density(Tensor::zeros({2, 2}), KdeOptions{}), Error);
  EXPECT_THROW(parse_kde_method("fast"), Error);
}

// ---- the exact density's vector exp (kernels/cpu/vec_math.h) and its two variants ----
typedef double D8 __attribute__((vector_size(64)));

// ulps between two finite doubles of the same sign.
int64_t ulps(double a, double b) {
  int64_t ia, ib;
  std::memcpy(&ia, &a, 8);
  std::memcpy(&ib, &b, 8);
  return ia > ib ? ia - ib : ib - ia;
}

std::vector<double> exp_f64_of(const std::vector<double>& x) {
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); i += 8) {
    D8 v = {};
    for (size_t l = 0; l < 8 && i + l < x.size(); ++l) v[l] = x[i + l];
    const D8 e = kernels::cpu::vec::exp_f64(v);
    for (size_t l = 0; l < 8 && i + l < x.size(); ++l) out[i + l] = e[l];
  }
  return out;
}

TEST(ExpF64, WithinTwoUlpOfGlibcOverItsRangeAndExactAtItsEdges) {
  // A sweep of [-708, 709] (every reduction interval many times) and random points near 0.
  std::vector<double> x;
  for (int64_t k = 0; k <= 2000000; ++k) x.push_back(-708.0 + 1417.78 * double(k) / 2000000.0);
  for (uint64_t k = 0; k < 100000; ++k) {
    const uint32_t r = rng::philox_block(3, k, 0)[0];
    x.push_back((double(r) / 4294967296.0 - 0.5) * 1e-3);
  }
  const std::vector<double> e = exp_f64_of(x);
  int64_t worst = 0;
  double at = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t u = ulps(e[i], std::exp(x[i]));
    if (u > worst) worst = u, at = x[i];
  }
  EXPECT_LE(worst, 2) << "at x = " << at;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> edge =
      exp_f64_of({0.0, -0.0, -708.5, -1e6, -inf, 709.78, 709.79, 1e6, inf, nan, 1e-300, -708.0});
  EXPECT_EQ(edge[0], 1.0);
  EXPECT_EQ(edge[1], 1.0);
  EXPECT_EQ(edge[2], 0.0);  // under -708: flushed (the true value is subnormal)
  EXPECT_EQ(edge[3], 0.0);
  EXPECT_EQ(edge[4], 0.0);
  EXPECT_LE(ulps(edge[5], std::exp(709.78)), 2);  // n = 1024: finite
  EXPECT_EQ(edge[6], inf);
  EXPECT_EQ(edge[7], inf);
  EXPECT_EQ(edge[8], inf);
  EXPECT_TRUE(std::isnan(edge[9]));
  EXPECT_EQ(edge[10], 1.0);
  EXPECT_LE(ulps(edge[11], std::exp(-708.0)), 2);
}

TEST(Kde, ExactVariantsAgreeToRoundingAndTheVectorOneIgnoresItsPadding) {
  // n not a multiple of the 32-column step (padding) and one that is; skewed and spread samples.
  for (int64_t n : {1, 31, 32, 33, 1001}) {
    std::vector<double> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double u = double(rng::philox_block(9, uint64_t(i), 0)[0]) / 4294967296.0;
      y[size_t(i)] = i % 3 == 0 ? u * u * u : 5 * u - 2;  // some far apart: terms far below 1e-300
    }
    std::vector<double> d1(y.size()), d2(y.size());
    kernels::cpu::kde_density_exact_v1<double>(y.data(), n, 0.2, d1.data());
    kernels::cpu::kde_density_exact<double>(y.data(), n, 0.2, d2.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(d2[size_t(i)], d1[size_t(i)], 1e-13 * d1[size_t(i)]) << n << ", " << i;
    // A sample alone (n = 1) sees only itself: phi(0) exactly as the scalar path computes it.
    if (n == 1) {
      EXPECT_EQ(d2[0], d1[0]);
    }
    std::vector<float> yf(y.begin(), y.end()), f1(y.size()), f2(y.size());
    kernels::cpu::kde_density_exact_v1<float>(yf.data(), n, 0.2, f1.data());
    kernels::cpu::kde_density_exact<float>(yf.data(), n, 0.2, f2.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(f2[size_t(i)], f1[size_t(i)], 2e-7 * f1[size_t(i)]) << n << ", " << i;
  }
}

}  // namespace
}  // namespace musicrec
