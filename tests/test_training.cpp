// End-to-end training on the CPU with data the test makes: an MLP with dropout on two interleaved
// spirals (softmax cross-entropy, Adam) and a small sigmoid conv net on striped images (weighted
// BCE on logits, SGD with momentum). Each loss must fall below a stated bound; the same seed must
// give bitwise the same final loss.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/modules.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/philox.h"

namespace musicrec {
namespace {

class Mlp : public Module {
 public:
  explicit Mlp(Generator& g)
      : l1(register_module("l1", std::make_shared<Linear>(2, 32, g, Init::HeNormal))),
        l2(register_module("l2", std::make_shared<Linear>(32, 2, g))) {}
  Tensor forward(const Tensor& x, Generator& g) {
    return l2->forward(ops::dropout(ops::relu(l1->forward(x)), 0.1f, training(), g));
  }
  std::shared_ptr<Linear> l1, l2;
};

double train_mlp(uint64_t seed, int steps) {
  const int64_t n = 400;
  std::vector<float> xs(size_t(2 * n));
  std::vector<int32_t> ys(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int cls = int(i % 2);
    float t = 0.5f + 2.5f * rng::uniform(seed, 1, uint64_t(i));
    float a = t + float(cls) * 3.14159265f;
    xs[size_t(2 * i)] = t / 3.f * std::cos(a);
    xs[size_t(2 * i + 1)] = t / 3.f * std::sin(a);
    ys[size_t(i)] = cls;
  }
  Tensor x = Tensor::from_vector(xs, {n, 2}), y = Tensor::from_vector(ys, {n});
  Generator g(seed);
  Mlp m(g);
  Adam opt(m.named_parameters(), AdamOptions{0.02});
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    ops::mean(ops::softmax_cross_entropy(m.forward(x, g), y)).backward();
    opt.step();
  }
  m.eval();
  autograd::NoGradGuard ng;
  return ops::mean(ops::softmax_cross_entropy(m.forward(x, g), y)).item();
}

TEST(Training, MlpLearnsSpirals) {
  double initial = std::log(2.0);
  double final_loss = train_mlp(3, 400);
  EXPECT_LT(final_loss, 0.15) << "from about " << initial;
}

TEST(Training, SameSeedSameBits) { EXPECT_EQ(train_mlp(4, 50), train_mlp(4, 50)); }

class ConvNet : public Module {
 public:
  explicit ConvNet(Generator& g)
      : conv(register_module("conv", std::make_shared<Conv2d>(1, 4, 3, 3, 1, 1, ConvActivation::Sigmoid, g))),
        fc(register_module("fc", std::make_shared<Linear>(4 * 3 * 5, 1, g))) {}
  Tensor forward(const Tensor& x) { return fc->forward(ops::flatten(ops::maxpool2x2(conv->forward(x)))); }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<Linear> fc;
};

TEST(Training, SigmoidConvNetLearnsStripesWithWeightedBce) {
  const int64_t n = 128, H = 7, W = 11;  // odd sizes: pooling floors to 3 x 5
  std::vector<float> xs(size_t(n * H * W)), ys(static_cast<size_t>(n)), ws(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int cls = i % 4 == 0;  // imbalanced 1:3, weighted back to balance
    int64_t row = int64_t(rng::uniform(9, 2, uint64_t(i)) * (H - 1));
    for (int64_t k = 0; k < H * W; ++k)
      xs[size_t(i * H * W + k)] = 0.5f * rng::normal(9, 3, uint64_t(i * H * W + k)) + (cls && k / W == row ? 1.5f : 0.f);
    ys[size_t(i)] = float(cls);
    ws[size_t(i)] = cls ? 1.5f : 0.5f;
  }
  Tensor x = Tensor::from_vector(xs, {n, 1, H, W}), y = Tensor::from_vector(ys, {n, 1}), w = Tensor::from_vector(ws, {n, 1});
  Generator g(9);
  ConvNet net(g);
  SGD opt(net.named_parameters(), SgdOptions{0.3, 0.9});
  double first = 0, last = 0;
  for (int s = 0; s < 150; ++s) {
    opt.zero_grad();
    Tensor loss = ops::mean(ops::bce_with_logits(net.forward(x), y, w));
    loss.backward();
    opt.step();
    if (s == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_GT(first, 0.4);
  EXPECT_LT(last, 0.05) << "from " << first;
}

}  // namespace
}  // namespace musicrec
