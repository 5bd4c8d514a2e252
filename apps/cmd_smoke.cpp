// `musicrec smoke`: a tiny training run that exercises the whole engine on the chosen device: an MLP
// (linear, ReLU, dropout, softmax cross-entropy, Adam) on two interleaved spirals, and a small sigmoid
// conv net (conv + fused bias-sigmoid, 2x2 pooling, flatten, linear, BCE on logits, SGD) on generated
// striped images. It prints the loss before and after and fails if training did not learn.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "apps/commands.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/modules.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::apps {
namespace {

struct SmokeOptions {
  std::string device = "auto";
  int steps = 300;
  uint64_t seed = 1;
  std::string checkpoint;
};

// Two interleaved spirals, 2-D points with labels 0/1: not linearly separable.
void make_spirals(int64_t n, uint64_t seed, std::vector<float>& x, std::vector<int32_t>& y) {
  x.resize(size_t(2 * n));
  y.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    int cls = int(i % 2);
    float t = 0.5f + 3.0f * rng::uniform(seed, 1, uint64_t(i));
    float r = t / 3.5f;
    float a = t + float(cls) * 3.14159265f;
    x[size_t(2 * i)] = r * std::cos(a) + 0.03f * rng::normal(seed, 2, uint64_t(i));
    x[size_t(2 * i + 1)] = r * std::sin(a) + 0.03f * rng::normal(seed, 3, uint64_t(i));
    y[size_t(i)] = cls;
  }
}

// 1 x 8 x 12 images of noise; class 1 adds a horizontal stripe in a random row.
void make_stripes(int64_t n, uint64_t seed, std::vector<float>& x, std::vector<float>& y) {
  const int64_t H = 8, W = 12;
  x.resize(size_t(n * H * W));
  y.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    int cls = int(i % 2);
    int64_t row = int64_t(rng::uniform(seed, 4, uint64_t(i)) * (H - 1));
    for (int64_t k = 0; k < H * W; ++k) {
      float v = 0.5f * rng::normal(seed, 5, uint64_t(i * H * W + k));
      if (cls && k / W == row) v += 1.5f;
      x[size_t(i * H * W + k)] = v;
    }
    y[size_t(i)] = float(cls);
  }
}

class Mlp : public Module {
 public:
  explicit Mlp(Generator& gen)
      : l1_(register_module("l1", std::make_shared<Linear>(2, 64, gen, Init::HeNormal))),
        l2_(register_module("l2", std::make_shared<Linear>(64, 64, gen, Init::HeNormal))),
        out_(register_module("out", std::make_shared<Linear>(64, 2, gen))) {}
  Tensor forward(const Tensor& x, Generator& gen) {
    Tensor h = ops::relu(l1_->forward(x));
    h = ops::dropout(ops::relu(l2_->forward(h)), 0.1f, training(), gen);
    return out_->forward(h);
  }

 private:
  std::shared_ptr<Linear> l1_, l2_, out_;
};

class SmallConvNet : public Module {
 public:
  explicit SmallConvNet(Generator& gen)
      : conv_(register_module("conv", std::make_shared<Conv2d>(1, 6, 3, 3, 1, 1, ConvActivation::Sigmoid, gen))),
        fc_(register_module("fc", std::make_shared<Linear>(6 * 4 * 6, 1, gen))) {}
  Tensor forward(const Tensor& x) { return fc_->forward(ops::flatten(conv_->forward_maxpool2x2(x))); }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<Linear> fc_;
};

double accuracy_2class(const Tensor& logits, const std::vector<int32_t>& y) {
  std::vector<float> l = logits.to_vector<float>();
  int64_t right = 0;
  for (size_t i = 0; i < y.size(); ++i) right += ((l[2 * i + 1] > l[2 * i]) ? 1 : 0) == y[i];
  return double(right) / double(y.size());
}

void run_smoke(const SmokeOptions& o) {
  Device dev = parse_device(o.device);
  fmt::print("smoke run on {} (seed {}, {} steps each)\n", dev.str(), o.seed, o.steps);
  auto t0 = std::chrono::steady_clock::now();

  // --- MLP on spirals ---
  Generator gen(o.seed);
  std::vector<float> xs;
  std::vector<int32_t> ys;
  make_spirals(512, o.seed, xs, ys);
  Tensor x = Tensor::from_vector(xs, {512, 2}, dev);
  Tensor y = Tensor::from_vector(ys, {512}, dev);
  Mlp mlp(gen);
  mlp.to(dev);
  Adam adam(mlp.named_parameters(), AdamOptions{0.01});
  double first = 0, last = 0;
  for (int s = 0; s < o.steps; ++s) {
    adam.zero_grad();
    Tensor loss = ops::mean(ops::softmax_cross_entropy(mlp.forward(x, gen), y));
    loss.backward();
    adam.step();
    if (s == 0) first = loss.item();
    last = loss.item();
  }
  mlp.eval();
  double acc;
  {
    autograd::NoGradGuard ng;
    acc = accuracy_2class(mlp.forward(x, gen), ys);
  }
  fmt::print("  MLP on spirals:        loss {:.4f} -> {:.4f}, train accuracy {:.1f}%\n", first, last, 100 * acc);
  MR_CHECK(last < 0.5 * first && acc > 0.8, "smoke: the MLP did not learn (engine fault?)");

  // --- sigmoid conv net on stripes ---
  std::vector<float> xi, yi;
  make_stripes(256, o.seed, xi, yi);
  Tensor images = Tensor::from_vector(xi, {256, 1, 8, 12}, dev);
  Tensor labels = Tensor::from_vector(yi, {256, 1}, dev);
  SmallConvNet net(gen);
  net.to(dev);
  SGD sgd(net.named_parameters(), SgdOptions{0.5, 0.9});
  for (int s = 0; s < o.steps; ++s) {
    sgd.zero_grad();
    Tensor loss = ops::mean(ops::bce_with_logits(net.forward(images), labels));
    loss.backward();
    sgd.step();
    if (s == 0) first = loss.item();
    last = loss.item();
  }
  fmt::print("  sigmoid conv on stripes: loss {:.4f} -> {:.4f}\n", first, last);
  MR_CHECK(last < 0.5 * first, "smoke: the conv net did not learn (engine fault?)");

  if (!o.checkpoint.empty()) {
    Checkpoint c = capture(net, &sgd, gen);
    c.step = o.steps;
    save_checkpoint(o.checkpoint, c);
    Checkpoint back = load_checkpoint(o.checkpoint);
    fmt::print("  checkpoint written and read back: {} ({} tensors)\n", o.checkpoint,
               back.model.size() + back.optimizer.size());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("smoke run passed in {:.2f} s\n", secs);
}

}  // namespace

void register_smoke(CLI::App& app) {
  auto opts = std::make_shared<SmokeOptions>();
  auto* cmd = app.add_subcommand("smoke", "Tiny training run of an MLP and a sigmoid conv net on generated data");
  cmd->add_option("--device", opts->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--steps", opts->steps, "Training steps per model")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", opts->seed, "Seed of data, initialisation and dropout")->capture_default_str();
  cmd->add_option("--checkpoint", opts->checkpoint, "Write the conv net's checkpoint here and read it back");
  cmd->callback([opts] { run_smoke(*opts); });
}

}  // namespace musicrec::apps
