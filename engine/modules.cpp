// Module tree and the standard layers (see modules.h).
#include "engine/modules.h"

#include <cmath>

#include "engine/ops.h"
#include "kernels/error.h"

namespace musicrec {

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  for (auto& [n, p] : params_) MR_CHECK(n != name, "parameter '" + name + "' registered twice");
  t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& [n, p] : params_) out.emplace_back(prefix + n, &p);
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> ptrs;
  const_cast<Module*>(this)->collect("", ptrs);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, p] : ptrs) out.emplace_back(n, *p);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& p : parameters()) n += p.numel();
  return n;
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor*>> ptrs;
  collect("", ptrs);
  for (auto& [n, p] : ptrs) {
    if (p->device() == device) continue;
    bool sparse = p->impl()->sparse_grad_enabled;
    *p = p->to(device);
    p->set_requires_grad(true);
    p->impl()->sparse_grad_enabled = sparse;
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

Linear::Linear(int64_t in, int64_t out, Generator& gen, Init init, bool bias) {
  Tensor w = Tensor::empty({out, in});
  switch (init) {
    case Init::GlorotUniform: init::glorot_uniform_(w, in, out, gen); break;
    case Init::HeNormal: init::he_normal_(w, in, gen); break;
    case Init::HeUniform: init::he_uniform_(w, in, gen); break;
  }
  weight_ = &register_parameter("weight", w);
  if (bias) bias_ = &register_parameter("bias", Tensor::zeros({out}));
}

Tensor Linear::forward(const Tensor& x) const { return ops::linear(x, *weight_, bias_ ? *bias_ : Tensor()); }

Conv2d::Conv2d(int64_t cin, int64_t cout, int64_t kh, int64_t kw, int64_t ph, int64_t pw, ConvActivation act,
               Generator& gen, double init_gain)
    : ph_(ph), pw_(pw), act_(act) {
  Tensor w = Tensor::empty({cout, cin, kh, kw});
  // Glorot over the receptive field (He assumes ReLU), times the caller's gain.
  const float a = float(init_gain * std::sqrt(6.0 / double(cin * kh * kw + cout * kh * kw)));
  init::uniform_(w, -a, a, gen);
  weight_ = &register_parameter("weight", w);
  bias_ = &register_parameter("bias", Tensor::zeros({cout}));
}

Tensor Conv2d::forward(const Tensor& x) const {
  Tensor y = ops::conv2d(x, *weight_, ph_, pw_);
  return act_ == ConvActivation::Sigmoid ? ops::bias_sigmoid(y, *bias_) : ops::bias_add(y, *bias_);
}

// Pooling first: adding one bias per channel and the sigmoid are both non-decreasing, so the maximum
// of a window after them is the maximum before them put through them. The epilogue then runs on the
// pooled quarter (its exp was most of the CPU's epilogue time), and no full-size activation is written,
// read back by the pooling, or kept for the backward (whose gradient is zero off the winners anyway).
// Same values: float addition rounds monotonically and the CPU's float sigmoid is non-decreasing over
// every float (tests/test_cpu_float_paths.cpp), so the CPU's outputs are those of pooling last, bit for
// bit. Where a window's inputs differ but tie after the epilogue (a saturated sigmoid), the gradient
// goes to the largest input rather than the first of the tied ones: the same gradient value, another
// position. The bias gradient sums the same terms in another order. ops::conv2d_maxpool2x2 also keeps
// the full conv output out of memory where it can (the CPU's first layer).
Tensor Conv2d::forward_maxpool2x2(const Tensor& x) const {
  if (act_ == ConvActivation::Sigmoid) return ops::conv2d_maxpool2x2_bias_sigmoid(x, *weight_, *bias_, ph_, pw_);
  return ops::bias_add(ops::conv2d_maxpool2x2(x, *weight_, ph_, pw_), *bias_);
}

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen, bool sparse, float init_std) {
  Tensor w = Tensor::empty({num, dim});
  init::normal_(w, 0.f, init_std, gen);
  weight_ = &register_parameter("weight", w);
  weight_->impl()->sparse_grad_enabled = sparse;
}

Tensor Embedding::forward(const Tensor& idx) const { return ops::embedding(*weight_, idx); }

}  // namespace musicrec
