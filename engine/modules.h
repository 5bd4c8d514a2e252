// Modules: named parameters organised in a tree, so a model's parameters have stable dotted paths
// ("tower.conv1.weight") used by optimizers and checkpoints. Linear, Conv2d (optionally with the
// fused sigmoid epilogue) and Embedding are the layers the two models are built from.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace musicrec {

class Module {
 public:
  virtual ~Module() = default;
  // All parameters of this module and its children, in registration order, with dotted paths.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;
  // Moves every parameter to `device` (a copy; the module's handles are updated).
  void to(Device device);
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  template <typename M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out);
  std::deque<std::pair<std::string, Tensor>> params_;  // deque: references stay valid as it grows
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

enum class Init { GlorotUniform, HeNormal, HeUniform };

// y = x W^T + b, W [out, in] (torch.nn.Linear's layout), bias initialised to 0.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Generator& gen, Init init = Init::GlorotUniform, bool bias = true);
  Tensor forward(const Tensor& x) const;
  Tensor& weight() { return *weight_; }
  Tensor& bias() { return *bias_; }

 private:
  Tensor* weight_;
  Tensor* bias_ = nullptr;
};

enum class ConvActivation { None, Sigmoid };

// Stride-1 convolution with zero padding; with Sigmoid the bias add and sigmoid run fused.
class Conv2d : public Module {
 public:
  // Weights are Glorot uniform scaled by init_gain (a sigmoid stack wants more than 1: see PairCnnConfig).
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw, int64_t pad_h, int64_t pad_w,
         ConvActivation act, Generator& gen, double init_gain = 1.0);
  Tensor forward(const Tensor& x) const;
  // ops::maxpool2x2(forward(x)) computed as act(maxpool2x2(conv(x)) + b): the same function, with the
  // epilogue on a quarter of the elements (see modules.cpp).
  Tensor forward_maxpool2x2(const Tensor& x) const;
  Tensor& weight() { return *weight_; }
  Tensor& bias() { return *bias_; }

 private:
  Tensor* weight_;
  Tensor* bias_;
  int64_t ph_, pw_;
  ConvActivation act_;
};

// A [num, dim] table; sparse = true gives row-sparse gradients (only the rows a batch touched).
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t dim, Generator& gen, bool sparse = true, float init_std = 0.05f);
  Tensor forward(const Tensor& idx) const;
  Tensor& weight() { return *weight_; }

 private:
  Tensor* weight_;
};

}  // namespace musicrec
