// The tape: accumulation across uses and calls, no-grad scopes, freed graphs, leaves, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/error.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {

Tensor leaf(std::vector<double> v) {
  return Tensor::from_vector(v, {int64_t(v.size())}).set_requires_grad(true);
}

TEST(Autograd, SharedSubexpressionAccumulatesBothPaths) {
  Tensor x = leaf({1, 2, 3});
  Tensor y = ops::sigmoid(x);
  Tensor loss = ops::sum(ops::add(y, ops::scale(y, 2.0)));  // 3 * sum(sigmoid(x))
  loss.backward();
  std::vector<double> g = x.grad().to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    double s = 1 / (1 + std::exp(-(i + 1.0)));
    EXPECT_NEAR(g[size_t(i)], 3 * s * (1 - s), 1e-12);
  }
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCallsUntilZeroGrad) {
  Tensor x = leaf({1, 2});
  ops::sum(ops::scale(x, 2.0)).backward();
  ops::sum(ops::scale(x, 3.0)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

// A leaf's first gradient is taken without a copy only when nothing else holds it: add's backward
// passes one gradient to both inputs, and a caller's gradient stays the caller's; each leaf's gradient
// then grows in place on its own.
TEST(Autograd, AFirstGradientHeldElsewhereIsCopiedNotShared) {
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  ops::sum(ops::add(a, b)).backward();
  EXPECT_NE(a.grad().data<double>(), b.grad().data<double>());
  ops::sum(ops::scale(a, 2.0)).backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3, 3}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));

  Tensor x = leaf({1, 2});
  const Tensor seed = Tensor::from_vector(std::vector<double>{1, -1}, {2});
  x.backward(seed);
  x.backward(seed);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, -2}));
  EXPECT_EQ(seed.to_vector<double>(), (std::vector<double>{1, -1}));
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = leaf({1, 2});
  Tensor y;
  {
    autograd::NoGradGuard ng;
    EXPECT_FALSE(autograd::grad_enabled());
    y = ops::sigmoid(x);
  }
  EXPECT_TRUE(autograd::grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(y.backward(), Error);
}

TEST(Autograd, SecondBackwardThroughAFreedGraphIsAnError) {
  Tensor x = leaf({1, 2});
  Tensor loss = ops::sum(ops::sigmoid(x));
  loss.backward();
  EXPECT_THROW(loss.backward(), Error);
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = leaf({1, 2});
  Tensor y = ops::scale(x, 4.0);
  EXPECT_THROW(y.backward(), Error);
  y.backward(Tensor::from_vector(std::vector<double>{1, -1}, {2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, -4}));
}

TEST(Autograd, InputsWithoutGradGetNone) {
  Tensor x = leaf({1, 2});
  Tensor c = Tensor::from_vector(std::vector<double>{3, 4}, {2});
  ops::sum(ops::add(x, c)).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(c.grad().defined());
}

TEST(Autograd, LeafBackwardSeedsItsOwnGradient) {
  Tensor x = Tensor::scalar(2.0, DType::F64).set_requires_grad(true);
  x.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
}

TEST(Autograd, DeepChainRunsInTapeOrder) {
  Tensor x = leaf({0.5});
  Tensor y = x;
  for (int i = 0; i < 200; ++i) y = ops::scale(y, 1.01);
  ops::sum(y).backward();
  EXPECT_NEAR(x.grad().item(), std::pow(1.01, 200), 1e-9);
}

}  // namespace
}  // namespace musicrec
