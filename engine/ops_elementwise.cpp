// Element-wise ops: sigmoid, ReLU, dropout, add, scale, and in-place accumulation.
#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec::ops {
using namespace detail;

namespace {
Tensor sigmoid_backward(const Tensor& y, const Tensor& g) {
  Tensor gx = empty_like(g);
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::sigmoid_backward(y.data<float>(), g.data<float>(), gx.data<float>(), g.numel(), stream());
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::sigmoid_backward<T>(y.data<T>(), g.data<T>(), gx.data<T>(), g.numel());
    });
  }
  return gx;
}

Tensor relu_backward(const Tensor& x, const Tensor& g) {
  Tensor gx = empty_like(g);
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::relu_backward(x.data<float>(), g.data<float>(), gx.data<float>(), g.numel(), stream());
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::relu_backward<T>(x.data<T>(), g.data<T>(), gx.data<T>(), g.numel());
    });
  }
  return gx;
}

// The GPU draws the mask again in the backward (cheap there, and no mask memory); the CPU's forward
// keeps it as bits in `keep_bits` (int32 words) when given one, and its backward reads them, since a
// Philox draw costs more on a CPU core than the whole rest of the element's work.
Tensor dropout_forward_op(const Tensor& x, float p, uint64_t seed, uint64_t offset, Tensor* keep_bits) {
  Tensor y = empty_like(x);
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::dropout_forward(x.data<float>(), y.data<float>(), x.numel(), p, seed, offset, stream());
#else
    no_cuda("dropout");
#endif
  } else {
    uint32_t* bits = nullptr;
    if (keep_bits) {
      *keep_bits = Tensor::empty({(x.numel() + 31) / 32}, DType::I32, x.device());
      bits = reinterpret_cast<uint32_t*>(keep_bits->data<int32_t>());
    }
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::dropout_forward<T>(x.data<T>(), y.data<T>(), x.numel(), p, seed, offset, bits);
    });
  }
  return y;
}

Tensor dropout_backward_op(const Tensor& g, float p, uint64_t seed, uint64_t offset, const Tensor& keep_bits) {
  Tensor gx = empty_like(g);
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::dropout_backward(g.data<float>(), gx.data<float>(), g.numel(), p, seed, offset, stream());
#else
    (void)seed, (void)offset;  // only the GPU draws the mask again
    no_cuda("dropout");
#endif
  } else {
    const auto* bits = reinterpret_cast<const uint32_t*>(keep_bits.data<int32_t>());
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::dropout_backward<T>(g.data<T>(), gx.data<T>(), g.numel(), p, bits);
    });
  }
  return gx;
}

Tensor scale_raw(const Tensor& x, double s) {
  Tensor y = x.clone();
  if (y.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::scale_into(y.data<float>(), y.numel(), static_cast<float>(s), stream());
#endif
  } else {
    dispatch_float(y.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::scale_into<T>(y.data<T>(), y.numel(), static_cast<T>(s));
    });
  }
  return y;
}
}  // namespace

Tensor sigmoid(const Tensor& x) {
  check_float(x, "sigmoid", "x");
  profiler::OpScope scope("sigmoid", x.device());
  Tensor y = empty_like(x);
  scope.moves(bytes_of(x, y));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::sigmoid_forward(x.data<float>(), y.data<float>(), x.numel(), stream());
#else
    no_cuda("sigmoid");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::sigmoid_forward<T>(x.data<T>(), y.data<T>(), x.numel());
    });
  }
  if (autograd::needs_grad({x})) {
    autograd::record(y, "sigmoid", {x}, [Y = y.detach()](const Tensor& g) {
      profiler::OpScope s("sigmoid", g.device(), true);
      s.moves(3 * bytes_of(g));  // y and dy read, dx written
      return std::vector<Tensor>{sigmoid_backward(Y, g)};
    });
  }
  return y;
}

Tensor relu(const Tensor& x) {
  check_float(x, "relu", "x");
  profiler::OpScope scope("relu", x.device());
  Tensor y = empty_like(x);
  scope.moves(bytes_of(x, y));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::relu_forward(x.data<float>(), y.data<float>(), x.numel(), stream());
#else
    no_cuda("relu");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::relu_forward<T>(x.data<T>(), y.data<T>(), x.numel());
    });
  }
  if (autograd::needs_grad({x})) {
    autograd::record(y, "relu", {x}, [X = x.detach()](const Tensor& g) {
      profiler::OpScope s("relu", g.device(), true);
      s.moves(3 * bytes_of(g));  // x and dy read, dx written
      return std::vector<Tensor>{relu_backward(X, g)};
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  check_float(x, "dropout", "x");
  MR_CHECK(p >= 0.f && p < 1.f, "dropout: probability must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.f) return x;
  profiler::OpScope scope("dropout", x.device());
  const uint64_t seed = gen.seed(), offset = gen.next_offset();
  const bool grad = autograd::needs_grad({x});
  Tensor keep_bits;  // CPU only (see dropout_forward_op)
  Tensor y = dropout_forward_op(x, p, seed, offset, grad && !x.is_cuda() ? &keep_bits : nullptr);
  scope.moves(bytes_of(x, y, keep_bits));
  if (grad) {
    autograd::record(y, "dropout", {x}, [p, seed, offset, keep_bits](const Tensor& g) {
      profiler::OpScope s("dropout", g.device(), true);
      s.moves(2 * bytes_of(g) + bytes_of(keep_bits));
      return std::vector<Tensor>{dropout_backward_op(g, p, seed, offset, keep_bits)};
    });
  }
  return y;
}

void add_(Tensor& dst, const Tensor& src) {
  check_float(dst, "add_", "dst");
  check_float(src, "add_", "src");
  check_same_device({dst, src}, "add_");
  check_same_dtype(dst, src, "add_");
  MR_CHECK(dst.numel() == src.numel(), "add_: sizes differ: " + shape_str(dst.shape()) + " and " + shape_str(src.shape()));
  profiler::OpScope scope("add_", dst.device());
  scope.moves(bytes_of(src) + 2 * bytes_of(dst));
  if (dst.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::add_into(dst.data<float>(), src.data<float>(), dst.numel(), stream());
#else
    no_cuda("add_");
#endif
  } else {
    dispatch_float(dst.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::add_into<T>(dst.data<T>(), src.data<T>(), dst.numel());
    });
  }
}

Tensor add(const Tensor& a, const Tensor& b) {
  check_float(a, "add", "a");
  check_float(b, "add", "b");
  MR_CHECK(a.shape() == b.shape(), "add: shapes differ: " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  profiler::OpScope scope("add", a.device());
  scope.moves(3 * bytes_of(a));
  Tensor y = a.clone();
  add_(y, b);
  if (autograd::needs_grad({a, b})) {
    autograd::record(y, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  }
  return y;
}

Tensor scale(const Tensor& x, double s) {
  check_float(x, "scale", "x");
  profiler::OpScope scope("scale", x.device());
  scope.moves(2 * bytes_of(x));
  Tensor y = scale_raw(x, s);
  if (autograd::needs_grad({x})) {
    autograd::record(y, "scale", {x}, [s](const Tensor& g) {
      profiler::OpScope sc("scale", g.device(), true);
      sc.moves(2 * bytes_of(g));
      return std::vector<Tensor>{scale_raw(g, s)};
    });
  }
  return y;
}

}  // namespace musicrec::ops
