// Reductions (sum, mean) and losses (softmax cross-entropy, weighted BCE on logits). Losses return
// per-row or per-element values; a mean on top gives the usual scalar loss, and its backward divides
// by N there, once.
#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec::ops {
using namespace detail;

namespace {
Tensor sum_raw(const Tensor& x) {
  Tensor out = Tensor::empty({}, x.dtype(), x.device());
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    size_t bytes = kernels::cuda::sum_scratch_bytes(x.numel());
    Tensor scratch = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, x.device());
    kernels::cuda::sum(x.data<float>(), x.numel(), out.data<float>(), scratch.raw_data(), stream());
#else
    no_cuda("sum");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      out.data<T>()[0] = kernels::cpu::sum<T>(x.data<T>(), x.numel());
    });
  }
  return out;
}

// Every element of a tensor of `shape` set to g (a 0-d tensor, read on its device) times mult.
Tensor broadcast(const Tensor& g, const Shape& shape, double mult) {
  Tensor out = Tensor::empty(shape, g.dtype(), g.device());
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::broadcast_scalar(g.data<float>(), out.data<float>(), out.numel(), static_cast<float>(mult), stream());
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::broadcast_scalar<T>(g.data<T>(), out.data<T>(), out.numel(), static_cast<T>(mult));
    });
  }
  return out;
}

Tensor reduce(const Tensor& x, const char* name, double mult) {
  check_float(x, name, "x");
  profiler::OpScope scope(name, x.device());
  scope.moves(bytes_of(x));
  Tensor out = sum_raw(x);
  if (mult != 1.0) {
    autograd::NoGradGuard ng;
    out = scale(out, mult);
  }
  if (autograd::needs_grad({x})) {
    Shape in_shape = x.shape();
    autograd::record(out, name, {x}, [in_shape, mult, name](const Tensor& g) {
      profiler::OpScope s(name, g.device(), true);
      s.moves(double(shape_numel(in_shape)) * double(dtype_size(g.dtype())));
      return std::vector<Tensor>{broadcast(g, in_shape, mult)};
    });
  }
  return out;
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce(x, "sum", 1.0); }

Tensor mean(const Tensor& x) {
  MR_CHECK(x.defined() && x.numel() > 0, "mean: empty tensor");
  return reduce(x, "mean", 1.0 / double(x.numel()));
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& targets) {
  check_float(logits, "softmax_cross_entropy", "logits");
  check_dim(logits, 2, "softmax_cross_entropy", "logits");
  MR_CHECK(targets.defined() && targets.dtype() == DType::I32 && targets.dim() == 1 &&
               targets.size(0) == logits.size(0),
           "softmax_cross_entropy: targets must be int32 [" + std::to_string(logits.size(0)) + "]");
  check_same_device({logits, targets}, "softmax_cross_entropy");
  const int64_t rows = logits.size(0), classes = logits.size(1);
  MR_CHECK(classes >= 1, "softmax_cross_entropy: no classes");
  profiler::OpScope scope("softmax_cross_entropy", logits.device());
  Tensor probs = empty_like(logits);
  Tensor loss = Tensor::empty({rows}, logits.dtype(), logits.device());
  scope.moves(bytes_of(logits, targets, probs, loss));
  if (logits.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::softmax_xent_forward(logits.data<float>(), targets.data<int32_t>(), probs.data<float>(),
                                        loss.data<float>(), rows, classes, stream());
#else
    no_cuda("softmax_cross_entropy");
#endif
  } else {
    check_indices(targets, classes, "softmax_cross_entropy targets");
    dispatch_float(logits.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::softmax_xent_forward<T>(logits.data<T>(), targets.data<int32_t>(), probs.data<T>(), loss.data<T>(),
                                            rows, classes);
    });
  }
  if (autograd::needs_grad({logits})) {
    autograd::record(loss, "softmax_cross_entropy", {logits, targets},
                     [probs, targets, rows, classes](const Tensor& g) {
                       profiler::OpScope s("softmax_cross_entropy", g.device(), true);
                       Tensor gx = empty_like(probs);
                       s.moves(bytes_of(probs, targets, g, gx));
                       if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
                         kernels::cuda::softmax_xent_backward(probs.data<float>(), targets.data<int32_t>(),
                                                              g.data<float>(), gx.data<float>(), rows, classes,
                                                              stream());
#endif
                       } else {
                         dispatch_float(g.dtype(), [&](auto z) {
                           using T = decltype(z);
                           kernels::cpu::softmax_xent_backward<T>(probs.data<T>(), targets.data<int32_t>(),
                                                                  g.data<T>(), gx.data<T>(), rows, classes);
                         });
                       }
                       return std::vector<Tensor>{gx, Tensor()};
                     });
  }
  return loss;
}

Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& w) {
  check_float(x, "bce_with_logits", "x");
  check_float(y, "bce_with_logits", "y");
  MR_CHECK(y.numel() == x.numel(), "bce_with_logits: " + std::to_string(y.numel()) + " targets for " +
                                       std::to_string(x.numel()) + " logits");
  check_same_dtype(x, y, "bce_with_logits");
  if (w.defined()) {
    check_float(w, "bce_with_logits", "w");
    MR_CHECK(w.numel() == x.numel(), "bce_with_logits: " + std::to_string(w.numel()) + " weights for " +
                                         std::to_string(x.numel()) + " logits");
    check_same_dtype(x, w, "bce_with_logits");
  }
  check_same_device({x, y, w}, "bce_with_logits");
  profiler::OpScope scope("bce_with_logits", x.device());
  const int64_t n = x.numel();
  Tensor loss = empty_like(x);
  scope.moves(bytes_of(x, y, w, loss));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::bce_logits_forward(x.data<float>(), y.data<float>(), w.defined() ? w.data<float>() : nullptr,
                                      loss.data<float>(), n, stream());
#else
    no_cuda("bce_with_logits");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::bce_logits_forward<T>(x.data<T>(), y.data<T>(), w.defined() ? w.data<T>() : nullptr,
                                          loss.data<T>(), n);
    });
  }
  // Targets and weights are data, not parameters: only the logits get a gradient.
  if (autograd::needs_grad({x})) {
    autograd::record(loss, "bce_with_logits", {x, y, w}, [X = x.detach(), Y = y.detach(), W = w, n](const Tensor& g) {
      profiler::OpScope s("bce_with_logits", g.device(), true);
      Tensor gx = empty_like(X);
      s.moves(bytes_of(X, Y, W, g, gx));
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        kernels::cuda::bce_logits_backward(X.data<float>(), Y.data<float>(), W.defined() ? W.data<float>() : nullptr,
                                           g.data<float>(), gx.data<float>(), n, stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::bce_logits_backward<T>(X.data<T>(), Y.data<T>(), W.defined() ? W.data<T>() : nullptr,
                                               g.data<T>(), gx.data<T>(), n);
        });
      }
      return std::vector<Tensor>{gx, Tensor(), Tensor()};
    });
  }
  return loss;
}

}  // namespace musicrec::ops
