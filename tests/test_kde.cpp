// Kernel-density estimates and sample weights: hand-computed values, the binned version within its
// stated bound at sizes where the exact one is affordable, and weight normalisation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/kde.h"
#include "kernels/error.h"
#include "tests/test_util.h"

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

}  // namespace
}  // namespace musicrec
