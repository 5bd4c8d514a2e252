// Philox draws and the initialisers: reproducible from (seed, offset), distinct across offsets, with
// the statistics each initialiser promises.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/philox.h"

namespace musicrec {
namespace {

void moments(const std::vector<float>& v, double& mean, double& var) {
  mean = 0;
  for (float x : v) mean += x;
  mean /= double(v.size());
  var = 0;
  for (float x : v) var += (x - mean) * (x - mean);
  var /= double(v.size());
}

TEST(Philox, PureFunctionOfSeedOffsetIndex) {
  EXPECT_EQ(rng::uniform(1, 2, 3), rng::uniform(1, 2, 3));
  EXPECT_NE(rng::uniform(1, 2, 3), rng::uniform(1, 3, 3));
  EXPECT_NE(rng::uniform(1, 2, 3), rng::uniform(2, 2, 3));
  for (int i = 0; i < 1000; ++i) {
    float u = rng::uniform(9, 0, uint64_t(i));
    ASSERT_GT(u, 0.f);
    ASSERT_LE(u, 1.f);
  }
}

TEST(Init, SameSeedSameWeightsAndOffsetsAdvance) {
  Generator a(42), b(42);
  Tensor x = Tensor::empty({100}), y = Tensor::empty({100}), z = Tensor::empty({100});
  init::normal_(x, 0, 1, a);
  init::normal_(y, 0, 1, b);
  EXPECT_EQ(x.to_vector<float>(), y.to_vector<float>());
  init::normal_(z, 0, 1, a);
  EXPECT_NE(x.to_vector<float>(), z.to_vector<float>());
  EXPECT_EQ(a.offset(), 2u);
}

TEST(Init, NormalAndUniformStatistics) {
  Generator g(7);
  Tensor n = Tensor::empty({200000});
  init::normal_(n, 1.0f, 2.0f, g);
  double m, v;
  moments(n.to_vector<float>(), m, v);
  EXPECT_NEAR(m, 1.0, 0.02);
  EXPECT_NEAR(std::sqrt(v), 2.0, 0.02);
  Tensor u = Tensor::empty({200000});
  init::uniform_(u, -3.f, 1.f, g);
  moments(u.to_vector<float>(), m, v);
  EXPECT_NEAR(m, -1.0, 0.02);
  EXPECT_NEAR(v, 16.0 / 12.0, 0.02);
}

TEST(Init, GlorotAndHeBounds) {
  Generator g(8);
  Tensor w = Tensor::empty({64, 32});
  init::glorot_uniform_(w, 32, 64, g);
  double a = std::sqrt(6.0 / 96.0);
  for (float x : w.to_vector<float>()) ASSERT_LE(std::fabs(x), a + 1e-6);
  Tensor h = Tensor::empty({100000});
  init::he_normal_(h, 50, g);
  double m, v;
  moments(h.to_vector<float>(), m, v);
  EXPECT_NEAR(v, 2.0 / 50.0, 0.002);
  init::he_uniform_(h, 50, g);
  for (float x : h.to_vector<float>()) ASSERT_LE(std::fabs(x), std::sqrt(6.0 / 50.0) + 1e-6);
}

TEST(Init, DoubleTensorsGetTheSameDraws) {
  Generator a(3), b(3);
  Tensor f = Tensor::empty({10}), d = Tensor::empty({10}, DType::F64);
  init::uniform_(f, 0, 1, a);
  init::uniform_(d, 0, 1, b);
  std::vector<float> fv = f.to_vector<float>();
  std::vector<double> dv = d.to_vector<double>();
  for (int i = 0; i < 10; ++i) EXPECT_FLOAT_EQ(fv[size_t(i)], float(dv[size_t(i)]));
}

}  // namespace
}  // namespace musicrec
