// SGD and Adam steps, dense and row-sparse (see optim.h).
#include "engine/optim.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec {
using namespace ops::detail;

namespace {

// The gradient a step uses: dense, row-sparse, or (both present) their dense sum.
struct StepGrad {
  Tensor dense;
  const SparseRows* sparse = nullptr;
};

StepGrad step_grad(const Tensor& p) {
  StepGrad g;
  TensorImpl* impl = p.impl();
  if (impl->grad) g.dense = Tensor(impl->grad);
  if (impl->sparse_grad) {
    if (g.dense.defined()) {
      g.dense = g.dense.clone();
      ops::scatter_rows_add_(g.dense, impl->sparse_grad->rows, impl->sparse_grad->values);
    } else {
      g.sparse = impl->sparse_grad.get();
    }
  }
  return g;
}

void check_state(const Tensor& p, const Tensor& s, const std::string& name) {
  MR_CHECK(p.device() == s.device(), "optimizer state of '" + name + "' is on " + s.device().str() +
                                         " but the parameter is on " + p.device().str() +
                                         ": create the optimizer after moving the model");
}

}  // namespace

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.zero_grad();
}

void Optimizer::load_state(const std::map<std::string, Tensor>& saved) {
  for (auto& [name, t] : state()) {
    auto it = saved.find(name);
    MR_CHECK(it != saved.end(), "optimizer state '" + name + "' missing from the checkpoint");
    MR_CHECK(it->second.shape() == t.shape(), "optimizer state '" + name + "' has shape " +
                                                  shape_str(it->second.shape()) + ", expected " + shape_str(t.shape()));
    Tensor dst = t;
    dst.copy_from(it->second.dtype() == t.dtype() ? it->second : it->second.cpu().to_dtype(t.dtype()));
  }
}

SGD::SGD(NamedTensors params, SgdOptions opt) : Optimizer(std::move(params)), opt_(opt) {
  lr_ = opt.lr;
  for (auto& [n, p] : params_) momentum_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
}

Optimizer::NamedTensors SGD::state() const {
  NamedTensors s;
  for (size_t i = 0; i < params_.size(); ++i) s.emplace_back("momentum/" + params_[i].first, momentum_[i]);
  return s;
}

void SGD::step() {
  autograd::NoGradGuard ng;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    Tensor& buf = momentum_[i];
    check_state(p, buf, params_[i].first);
    StepGrad g = step_grad(p);
    if (!g.dense.defined() && !g.sparse) continue;
    profiler::OpScope scope("sgd_step", p.device());
    // Read p, the momentum and the gradient, write p and the momentum: over the whole tensor, or over
    // the rows a sparse gradient lists.
    scope.moves(g.sparse ? 5 * bytes_of(g.sparse->values) + bytes_of(g.sparse->rows) : 5 * bytes_of(p));
    if (p.is_cuda()) {
#if MUSICREC_WITH_CUDA
      if (g.sparse)
        kernels::cuda::sgd_rows(p.data<float>(), buf.data<float>(), g.sparse->rows.data<int32_t>(),
                                g.sparse->values.data<float>(), g.sparse->rows.numel(), p.size(1), float(lr_),
                                float(opt_.momentum), float(opt_.weight_decay), stream());
      else
        kernels::cuda::sgd_dense(p.data<float>(), buf.data<float>(), g.dense.data<float>(), p.numel(), float(lr_),
                                 float(opt_.momentum), float(opt_.weight_decay), stream());
#endif
      continue;
    }
    dispatch_float(p.dtype(), [&](auto z) {
      using T = decltype(z);
      if (g.sparse)
        kernels::cpu::sgd_rows<T>(p.data<T>(), buf.data<T>(), g.sparse->rows.data<int32_t>(), g.sparse->values.data<T>(),
                                  g.sparse->rows.numel(), p.size(1), T(lr_), T(opt_.momentum), T(opt_.weight_decay));
      else
        kernels::cpu::sgd_dense<T>(p.data<T>(), buf.data<T>(), g.dense.data<T>(), p.numel(), T(lr_), T(opt_.momentum),
                                   T(opt_.weight_decay));
    });
  }
}

Adam::Adam(NamedTensors params, AdamOptions opt) : Optimizer(std::move(params)), opt_(opt) {
  lr_ = opt.lr;
  for (auto& [n, p] : params_) {
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
}

Optimizer::NamedTensors Adam::state() const {
  NamedTensors s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.emplace_back("m/" + params_[i].first, m_[i]);
    s.emplace_back("v/" + params_[i].first, v_[i]);
  }
  return s;
}

void Adam::step() {
  autograd::NoGradGuard ng;
  ++steps_;
  const double t = double(steps_);
  const double bc1 = 1.0 - std::pow(opt_.beta1, t), bc2 = 1.0 - std::pow(opt_.beta2, t);
  // Bias correction folded into the step size and epsilon (see kernels/math.h adam_update).
  const double lr_t = lr_ * std::sqrt(bc2) / bc1;
  const double eps_t = opt_.eps * std::sqrt(bc2);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    check_state(p, m_[i], params_[i].first);
    StepGrad g = step_grad(p);
    if (!g.dense.defined() && !g.sparse) continue;
    profiler::OpScope scope("adam_step", p.device());
    // Read p, m, v and the gradient, write p, m and v (whole, or the rows a sparse gradient lists).
    scope.moves(g.sparse ? 7 * bytes_of(g.sparse->values) + bytes_of(g.sparse->rows) : 7 * bytes_of(p));
    if (p.is_cuda()) {
#if MUSICREC_WITH_CUDA
      if (g.sparse)
        kernels::cuda::adam_rows(p.data<float>(), m_[i].data<float>(), v_[i].data<float>(),
                                 g.sparse->rows.data<int32_t>(), g.sparse->values.data<float>(),
                                 g.sparse->rows.numel(), p.size(1), float(opt_.beta1), float(opt_.beta2), float(lr_t),
                                 float(eps_t), float(opt_.weight_decay), stream());
      else
        kernels::cuda::adam_dense(p.data<float>(), m_[i].data<float>(), v_[i].data<float>(), g.dense.data<float>(),
                                  p.numel(), float(opt_.beta1), float(opt_.beta2), float(lr_t), float(eps_t),
                                  float(opt_.weight_decay), stream());
#endif
      continue;
    }
    dispatch_float(p.dtype(), [&](auto z) {
      using T = decltype(z);
      if (g.sparse)
        kernels::cpu::adam_rows<T>(p.data<T>(), m_[i].data<T>(), v_[i].data<T>(), g.sparse->rows.data<int32_t>(),
                                   g.sparse->values.data<T>(), g.sparse->rows.numel(), p.size(1), T(opt_.beta1),
                                   T(opt_.beta2), T(lr_t), T(eps_t), T(opt_.weight_decay));
      else
        kernels::cpu::adam_dense<T>(p.data<T>(), m_[i].data<T>(), v_[i].data<T>(), g.dense.data<T>(), p.numel(),
                                    T(opt_.beta1), T(opt_.beta2), T(lr_t), T(eps_t), T(opt_.weight_decay));
    });
  }
}

}  // namespace musicrec
