// Convolution (cuDNN or hand-written kernels on the GPU, im2col + GEMM or direct kernels on the CPU),
// convolution fused with 2x2 max pooling (the CPU; two ops on the GPU), the fused bias + sigmoid
// epilogue, and 2x2 max pooling.
#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cudnn_conv.h"
#endif

namespace musicrec::ops {
using namespace detail;

namespace {
struct ConvDims {
  int64_t N, C, H, W, K, KH, KW, ph, pw;
  int64_t OH() const { return H + 2 * ph - KH + 1; }
  int64_t OW() const { return W + 2 * pw - KW + 1; }
};

#if MUSICREC_WITH_CUDA
kernels::cuda::ConvPlan& plan_for(const ConvDims& d) {
  return CudaContext::get().conv_plan({d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw});
}
void* ws() { return CudaContext::get().workspace(0); }
size_t ws_bytes() { return CudaContext::get().workspace_size(); }
#endif

#if MUSICREC_WITH_CUDA
// The hand-written data gradient (conv_data_grad.cu) from the dense gradient g, or with argmax from the
// gradient of the 2x2 max pool that followed the convolution.
Tensor direct_data_grad(const Tensor& g, const Tensor& argmax, const Tensor& w, const ConvDims& d) {
  Tensor gx = Tensor::empty({d.N, d.C, d.H, d.W}, g.dtype(), g.device());
  kernels::cuda::conv2d_data_grad_direct(g.data<float>(), argmax.defined() ? argmax.data<int32_t>() : nullptr,
                                         w.data<float>(), gx.data<float>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                         d.pw, stream());
  return gx;
}
bool direct_data_grad_applies(const ConvDims& d) {
  const CudaSettings& s = CudaContext::get().settings();
  // The default since the H200 run of 2026-11-28 (session 24): from the pooled gradient 1.84x the
  // pooling's backward + cuDNN at conv 2, 0.96-1.09x at conv 3 (bench/results/2026-11-28-h200-session24.md).
  // Conv 1, whose input needs no gradient, never asks.
  return s.direct_conv &&
         kernels::cuda::conv2d_data_grad_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
}
#endif

Tensor conv_backward_data(const Tensor& g, const Tensor& w, const ConvDims& d) {
#if MUSICREC_WITH_CUDA
  if (g.is_cuda() && direct_data_grad_applies(d)) return direct_data_grad(g, Tensor(), w, d);
#endif
  Tensor gx = Tensor::empty({d.N, d.C, d.H, d.W}, g.dtype(), g.device());
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    auto& ctx = CudaContext::get();
    plan_for(d).backward_data(ctx.cudnn(), g.data<float>(), w.data<float>(), gx.data<float>(), ws(), ws_bytes());
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::conv2d_backward_data<T>(g.data<T>(), w.data<T>(), gx.data<T>(), d.N, d.C, d.H, d.W, d.K, d.KH,
                                            d.KW, d.ph, d.pw);
    });
  }
  return gx;
}

#if MUSICREC_WITH_CUDA
// The hand-written filter gradient (conv_filter_grad.cu) from the dense gradient g, or with argmax from
// the gradient of the 2x2 max pool that followed the convolution.
Tensor direct_filter_grad(const Tensor& x, const Tensor& g, const Tensor& argmax, const ConvDims& d) {
  Tensor gw = Tensor::empty({d.K, d.C, d.KH, d.KW}, g.dtype(), g.device());
  const size_t bytes =
      kernels::cuda::conv2d_filter_grad_direct_scratch_bytes(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
  Tensor scratch = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, g.device());
  kernels::cuda::conv2d_filter_grad_direct(x.data<float>(), g.data<float>(),
                                           argmax.defined() ? argmax.data<int32_t>() : nullptr, gw.data<float>(), d.N,
                                           d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw, scratch.raw_data(), stream());
  return gw;
}
// The one place that decides whether a convolution on the GPU takes the hand-written backward (the
// filter gradient here, the data gradient above); the pooled forward decides apart (below).
bool direct_filter_grad_applies(const ConvDims& d) {
  const CudaSettings& s = CudaContext::get().settings();
  // Every size it has a kernel for: conv 1's 5 x 10 (13x cuDNN's deterministic algorithm), and since the
  // H200 run of 2026-11-28 (session 24) the 2 x 2 of conv 2 and 3 (1.42-1.51x). 3 x 3, no model's size,
  // has gone with conv 1's since session 15.
  return s.direct_conv &&
         kernels::cuda::conv2d_filter_grad_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
}
#endif

Tensor conv_backward_filter(const Tensor& x, const Tensor& g, const ConvDims& d) {
#if MUSICREC_WITH_CUDA
  if (g.is_cuda() && direct_filter_grad_applies(d)) return direct_filter_grad(x, g, Tensor(), d);
#endif
  Tensor gw = Tensor::empty({d.K, d.C, d.KH, d.KW}, g.dtype(), g.device());
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    auto& ctx = CudaContext::get();
    plan_for(d).backward_filter(ctx.cudnn(), x.data<float>(), g.data<float>(), gw.data<float>(), ws(), ws_bytes());
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::conv2d_backward_filter<T>(x.data<T>(), g.data<T>(), gw.data<T>(), d.N, d.C, d.H, d.W, d.K, d.KH,
                                              d.KW, d.ph, d.pw);
    });
  }
  return gw;
}
}  // namespace

namespace {
// The checks of a convolution's inputs, with messages naming `op`; the dimensions they pass.
ConvDims checked_conv_dims(const Tensor& x, const Tensor& w, int64_t ph, int64_t pw, const char* op) {
  check_float(x, op, "x");
  check_float(w, op, "w");
  check_dim(x, 4, op, "x");
  check_dim(w, 4, op, "w");
  check_same_device({x, w}, op);
  check_same_dtype(x, w, op);
  ConvDims d{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), ph, pw};
  MR_CHECK(w.size(1) == d.C, std::string(op) + ": input has " + std::to_string(d.C) + " channels, weight " +
                                 shape_str(w.shape()) + " expects " + std::to_string(w.size(1)));
  MR_CHECK(ph >= 0 && pw >= 0, std::string(op) + ": negative padding");
  MR_CHECK(d.OH() > 0 && d.OW() > 0, std::string(op) + ": kernel " + shape_str(w.shape()) +
                                         " larger than padded input " + shape_str(x.shape()));
  return d;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, int64_t ph, int64_t pw) {
  const ConvDims d = checked_conv_dims(x, w, ph, pw, "conv2d");
  profiler::OpScope scope("conv2d", x.device());
  Tensor y = Tensor::empty({d.N, d.K, d.OH(), d.OW()}, x.dtype(), x.device());
  scope.moves(bytes_of(x, w, y));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    auto& ctx = CudaContext::get();
    plan_for(d).forward(ctx.cudnn(), x.data<float>(), w.data<float>(), y.data<float>(), ws(), ws_bytes());
#else
    no_cuda("conv2d");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::conv2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                      d.pw);
    });
  }
  if (autograd::needs_grad({x, w})) {
    const bool need_x = x.requires_grad(), need_w = w.requires_grad();
    autograd::record(y, "conv2d", {x, w}, [X = x.detach(), W = w.detach(), d, need_x, need_w](const Tensor& g) {
      profiler::OpScope s("conv2d", g.device(), true);
      // g once; the data gradient reads w and writes x's size, the filter gradient the other way round.
      s.moves(bytes_of(g) + (double(need_x) + double(need_w)) * bytes_of(X, W));
      return std::vector<Tensor>{need_x ? conv_backward_data(g, W, d) : Tensor(),
                                 need_w ? conv_backward_filter(X, g, d) : Tensor()};
    });
  }
  return y;
}

namespace {
// conv2d_maxpool2x2 and, with a bias b, conv2d_maxpool2x2_bias_sigmoid on the CPU: the fused kernels
// (conv.cpp), which save the winners and, with the sigmoid, the output for the backward.
Tensor conv_pool_cpu(const Tensor& x, const Tensor& w, const Tensor& b, int64_t ph, int64_t pw, const char* op) {
  const ConvDims d = checked_conv_dims(x, w, ph, pw, op);
  MR_CHECK(d.OH() >= 2 && d.OW() >= 2, std::string(op) + ": kernel " + shape_str(w.shape()) + " leaves less than a " +
                                           "2x2 window of input " + shape_str(x.shape()));
  MR_CHECK(d.OH() * d.OW() < (int64_t(1) << 31), std::string(op) + ": plane too large for int32 argmax");
  const bool sigmoid = b.defined();
  if (sigmoid) {
    check_float(b, op, "b");
    check_same_device({x, b}, op);
    check_same_dtype(x, b, op);
    MR_CHECK(b.dim() == 1 && b.size(0) == d.K,
             std::string(op) + ": bias of shape " + shape_str(b.shape()) + " for " + std::to_string(d.K) + " filters");
  }
  profiler::OpScope scope(op, x.device());
  Tensor y = Tensor::empty({d.N, d.K, d.OH() / 2, d.OW() / 2}, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(y.shape(), DType::I32, x.device());
  scope.moves(bytes_of(x, w, y, argmax) + (sigmoid ? bytes_of(b) : 0.0));
  dispatch_float(x.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::cpu::conv2d_maxpool_forward<T>(x.data<T>(), w.data<T>(), sigmoid ? b.data<T>() : nullptr, y.data<T>(),
                                            argmax.data<int32_t>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
  });
  const std::vector<Tensor> inputs = sigmoid ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w};
  if (autograd::needs_grad(inputs)) {
    const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = sigmoid && b.requires_grad();
    const Tensor Y = sigmoid ? y.detach() : Tensor();
    autograd::record(y, op, inputs, [X = x.detach(), W = w.detach(), Y, argmax, d, need_x, need_w, need_b, sigmoid,
                                     op](const Tensor& g) {
      profiler::OpScope s(op, g.device(), true);
      s.moves(bytes_of(g, argmax) + (double(need_x) + double(need_w)) * bytes_of(X, W) + (sigmoid ? bytes_of(Y) : 0.0));
      Tensor gx = need_x ? Tensor::empty(X.shape(), g.dtype(), g.device()) : Tensor();
      Tensor gw = need_w ? Tensor::empty(W.shape(), g.dtype(), g.device()) : Tensor();
      Tensor gb = need_b ? Tensor::empty({d.K}, g.dtype(), g.device()) : Tensor();
      dispatch_float(g.dtype(), [&](auto z) {
        using T = decltype(z);
        kernels::cpu::conv2d_maxpool_backward<T>(X.data<T>(), W.data<T>(), g.data<T>(), argmax.data<int32_t>(),
                                                 sigmoid ? Y.data<T>() : nullptr, need_x ? gx.data<T>() : nullptr,
                                                 need_w ? gw.data<T>() : nullptr, need_b ? gb.data<T>() : nullptr, d.N,
                                                 d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
      });
      return sigmoid ? std::vector<Tensor>{gx, gw, gb} : std::vector<Tensor>{gx, gw};
    });
  }
  return y;
}
}  // namespace

#if MUSICREC_WITH_CUDA
namespace {
// The hand-written convolution + pooling forward: for conv 1's 5 x 10 filters (2.3x cuDNN + the pooling
// kernel), not for 2 x 2, where on the H200 it ran 0.24-0.68x cuDNN + pooling (session 24): those take
// cuDNN's forward and the pooling kernel, whose winners the hand-written backward reads just the same,
// unless MUSICREC_CONV_KERNELS=direct-all asks for every hand-written kernel.
bool direct_pooled_forward_applies(const ConvDims& d) {
  const CudaSettings& s = CudaContext::get().settings();
  const bool slower = d.KH == 2 && d.KW == 2;
  return (!slower || s.direct_conv_2x2_forward) &&
         kernels::cuda::conv2d_maxpool_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
}

// conv2d_maxpool2x2 on the GPU with the hand-written kernels (MUSICREC_CONV_KERNELS=direct, where
// conv2d_filter_grad_direct has a kernel for the shape): forward, the convolution and pooling in one
// kernel (conv_pool_forward.cu; else cuDNN's convolution into a temporary and the pooling kernel);
// backward, the filter gradient straight from the pooled gradient and the winners, and the data
// gradient too where the hand-written one applies (else the unpooled gradient is written for cuDNN's).
// Conv 1's full output and unpooled gradient are 262 MB each at 1,024 images, each written once and
// read once on the cuDNN path.
Tensor conv_pool_cuda(const Tensor& x, const Tensor& w, const ConvDims& d) {
  const char* op = "conv2d_maxpool2x2";
  MR_CHECK(d.OH() >= 2 && d.OW() >= 2, std::string(op) + ": kernel " + shape_str(w.shape()) + " leaves less than a " +
                                           "2x2 window of input " + shape_str(x.shape()));
  MR_CHECK(d.OH() * d.OW() < (int64_t(1) << 31), std::string(op) + ": plane too large for int32 argmax");
  profiler::OpScope scope(op, x.device());
  auto& ctx = CudaContext::get();
  Tensor y = Tensor::empty({d.N, d.K, d.OH() / 2, d.OW() / 2}, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(y.shape(), DType::I32, x.device());
  double moved = bytes_of(x, w, y, argmax);
  if (direct_pooled_forward_applies(d)) {
    kernels::cuda::conv2d_maxpool_direct_forward(x.data<float>(), w.data<float>(), y.data<float>(),
                                                 argmax.data<int32_t>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                                 d.pw, ctx.stream());
  } else {
    Tensor full = Tensor::empty({d.N, d.K, d.OH(), d.OW()}, x.dtype(), x.device());
    plan_for(d).forward(ctx.cudnn(), x.data<float>(), w.data<float>(), full.data<float>(), ws(), ws_bytes());
    kernels::cuda::maxpool2x2_forward(full.data<float>(), y.data<float>(), argmax.data<int32_t>(), d.N * d.K, d.OH(),
                                      d.OW(), ctx.stream());
    moved += 2 * bytes_of(full);  // written by the convolution, read by the pooling
  }
  scope.moves(moved);
  if (autograd::needs_grad({x, w})) {
    const bool need_x = x.requires_grad(), need_w = w.requires_grad();
    autograd::record(y, op, {x, w}, [X = x.detach(), W = w.detach(), argmax, d, need_x, need_w, op](const Tensor& g) {
      profiler::OpScope s(op, g.device(), true);
      s.moves(bytes_of(g, argmax) + (double(need_x) + double(need_w)) * bytes_of(X, W));
      Tensor gx, gw = need_w ? direct_filter_grad(X, g, argmax, d) : Tensor();
      if (need_x && direct_data_grad_applies(d)) {
        gx = direct_data_grad(g, argmax, W, d);
      } else if (need_x) {
        Tensor unpooled = Tensor::empty({d.N, d.K, d.OH(), d.OW()}, g.dtype(), g.device());
        kernels::cuda::maxpool2x2_backward_v2(g.data<float>(), argmax.data<int32_t>(), unpooled.data<float>(), d.N * d.K,
                                           d.OH(), d.OW(), stream());
        gx = conv_backward_data(unpooled, W, d);
      }
      return std::vector<Tensor>{gx, gw};
    });
  }
  return y;
}
}  // namespace
#endif

Tensor conv2d_maxpool2x2(const Tensor& x, const Tensor& w, int64_t ph, int64_t pw) {
  if (x.defined() && x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    const ConvDims d = checked_conv_dims(x, w, ph, pw, "conv2d_maxpool2x2");
    if (direct_filter_grad_applies(d)) return conv_pool_cuda(x, w, d);
#endif
    return maxpool2x2(conv2d(x, w, ph, pw));  // cuDNN, then the pooling kernel
  }
  return conv_pool_cpu(x, w, Tensor(), ph, pw, "conv2d_maxpool2x2");
}

Tensor conv2d_maxpool2x2_bias_sigmoid(const Tensor& x, const Tensor& w, const Tensor& b, int64_t ph, int64_t pw) {
  if (x.defined() && x.is_cuda()) return bias_sigmoid(conv2d_maxpool2x2(x, w, ph, pw), b);  // three kernels
  MR_CHECK(b.defined(), "conv2d_maxpool2x2_bias_sigmoid: no bias");
  return conv_pool_cpu(x, w, b, ph, pw, "conv2d_maxpool2x2_bias_sigmoid");
}

Tensor bias_sigmoid(const Tensor& x, const Tensor& b) {
  check_float(x, "bias_sigmoid", "x");
  check_float(b, "bias_sigmoid", "b");
  check_dim(x, 4, "bias_sigmoid", "x");
  check_same_device({x, b}, "bias_sigmoid");
  check_same_dtype(x, b, "bias_sigmoid");
  MR_CHECK(b.dim() == 1 && b.size(0) == x.size(1),
           "bias_sigmoid: bias of shape " + shape_str(b.shape()) + " for input " + shape_str(x.shape()));
  profiler::OpScope scope("bias_sigmoid", x.device());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  Tensor y = empty_like(x);
  scope.moves(bytes_of(x, b, y));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::bias_sigmoid_nchw_forward_v2(x.data<float>(), b.data<float>(), y.data<float>(), N, C, HW, stream());
#else
    no_cuda("bias_sigmoid");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::bias_sigmoid_nchw_forward<T>(x.data<T>(), b.data<T>(), y.data<T>(), N, C, HW);
    });
  }
  if (autograd::needs_grad({x, b})) {
    autograd::record(y, "bias_sigmoid", {x, b}, [Y = y.detach(), N, C, HW](const Tensor& g) {
      profiler::OpScope s("bias_sigmoid", g.device(), true);
      Tensor gx = empty_like(g);
      Tensor gb = Tensor::empty({C}, g.dtype(), g.device());
      s.moves(bytes_of(Y, g, gx, gb));
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        const size_t bytes = kernels::cuda::channel_grad_scratch_bytes(N, C, HW);
        Tensor scratch = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, g.device());
        kernels::cuda::bias_sigmoid_nchw_backward(Y.data<float>(), g.data<float>(), gx.data<float>(),
                                                  gb.data<float>(), N, C, HW, scratch.raw_data(), stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::bias_sigmoid_nchw_backward<T>(Y.data<T>(), g.data<T>(), gx.data<T>(), gb.data<T>(), N, C, HW);
        });
      }
      return std::vector<Tensor>{gx, gb};
    });
  }
  return y;
}

Tensor maxpool2x2(const Tensor& x) {
  check_float(x, "maxpool2x2", "x");
  check_dim(x, 4, "maxpool2x2", "x");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  MR_CHECK(H >= 2 && W >= 2, "maxpool2x2: input " + shape_str(x.shape()) + " smaller than the 2x2 window");
  MR_CHECK(H * W < (int64_t(1) << 31), "maxpool2x2: plane too large for int32 argmax");
  profiler::OpScope scope("maxpool2x2", x.device());
  Tensor y = Tensor::empty({N, C, H / 2, W / 2}, x.dtype(), x.device());
  Tensor argmax = Tensor::empty({N, C, H / 2, W / 2}, DType::I32, x.device());
  scope.moves(bytes_of(x, y, argmax));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::maxpool2x2_forward(x.data<float>(), y.data<float>(), argmax.data<int32_t>(), N * C, H, W, stream());
#else
    no_cuda("maxpool2x2");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::maxpool2x2_forward<T>(x.data<T>(), y.data<T>(), argmax.data<int32_t>(), N * C, H, W);
    });
  }
  if (autograd::needs_grad({x})) {
    autograd::record(y, "maxpool2x2", {x}, [argmax, N, C, H, W](const Tensor& g) {
      profiler::OpScope s("maxpool2x2", g.device(), true);
      Tensor gx = Tensor::empty({N, C, H, W}, g.dtype(), g.device());
      s.moves(bytes_of(g, argmax, gx));
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        kernels::cuda::maxpool2x2_backward_v2(g.data<float>(), argmax.data<int32_t>(), gx.data<float>(), N * C, H, W,
                                           stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::maxpool2x2_backward<T>(g.data<T>(), argmax.data<int32_t>(), gx.data<T>(), N * C, H, W);
        });
      }
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace musicrec::ops
