// Matrix product, linear layer and bias add: cuBLAS on the GPU, CBLAS on the CPU.
#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/blas.h"
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec::ops {
using namespace detail;

namespace {

// C = op(A) op(B) without recording; the building block of matmul's forward and backward.
Tensor matmul_raw(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t M = ta ? a.size(1) : a.size(0);
  const int64_t K = ta ? a.size(0) : a.size(1);
  const int64_t Kb = tb ? b.size(1) : b.size(0);
  const int64_t N = tb ? b.size(0) : b.size(1);
  MR_CHECK(K == Kb, "matmul: inner dimensions differ: " + shape_str(a.shape()) + (ta ? "^T" : "") + " @ " +
                        shape_str(b.shape()) + (tb ? "^T" : ""));
  Tensor c = Tensor::empty({M, N}, a.dtype(), a.device());
  if (a.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::gemm(CudaContext::get().cublas(), ta, tb, M, N, K, 1.f, a.data<float>(), b.data<float>(), 0.f,
                        c.data<float>());
#else
    no_cuda("matmul");
#endif
  } else {
    dispatch_float(a.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::gemm<T>(ta, tb, M, N, K, T(1), a.data<T>(), b.data<T>(), T(0), c.data<T>());
    });
  }
  return c;
}

Tensor bias_grad(const Tensor& g) {
  const int64_t C = g.size(1);
  Tensor gb = Tensor::empty({C}, g.dtype(), g.device());
  const int64_t N = g.size(0);
  const int64_t HW = g.dim() == 4 ? g.size(2) * g.size(3) : 1;
  if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
    if (g.dim() == 2) kernels::cuda::bias_grad_rows(g.data<float>(), gb.data<float>(), N, C, stream());
    else {
      const size_t bytes = kernels::cuda::channel_grad_scratch_bytes(N, C, HW);
      Tensor scratch = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, g.device());
      kernels::cuda::bias_grad_nchw(g.data<float>(), gb.data<float>(), N, C, HW, scratch.raw_data(), stream());
    }
#endif
  } else {
    dispatch_float(g.dtype(), [&](auto z) {
      using T = decltype(z);
      if (g.dim() == 2) kernels::cpu::bias_grad_rows<T>(g.data<T>(), gb.data<T>(), N, C);
      else kernels::cpu::bias_grad_nchw<T>(g.data<T>(), gb.data<T>(), N, C, HW);
    });
  }
  return gb;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_float(a, "matmul", "a");
  check_float(b, "matmul", "b");
  check_dim(a, 2, "matmul", "a");
  check_dim(b, 2, "matmul", "b");
  check_same_device({a, b}, "matmul");
  check_same_dtype(a, b, "matmul");
  profiler::OpScope scope("matmul", a.device());
  Tensor c = matmul_raw(a, b, ta, tb);
  scope.moves(bytes_of(a, b, c));
  if (autograd::needs_grad({a, b})) {
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record(c, "matmul", {a, b}, [A = a.detach(), B = b.detach(), ta, tb, need_a, need_b](const Tensor& g) {
      profiler::OpScope s("matmul", g.device(), true);
      // g once; each gradient reads the other operand and writes its own operand's size.
      s.moves(bytes_of(g) + (double(need_a) + double(need_b)) * bytes_of(A, B));
      Tensor ga, gb;
      // C = op(A) op(B): the four transpose cases, each two products.
      if (!ta && !tb) {
        if (need_a) ga = matmul_raw(g, B, false, true);
        if (need_b) gb = matmul_raw(A, g, true, false);
      } else if (!ta && tb) {
        if (need_a) ga = matmul_raw(g, B, false, false);
        if (need_b) gb = matmul_raw(g, A, true, false);
      } else if (ta && !tb) {
        if (need_a) ga = matmul_raw(B, g, false, true);
        if (need_b) gb = matmul_raw(A, g, false, false);
      } else {
        if (need_a) ga = matmul_raw(B, g, true, true);
        if (need_b) gb = matmul_raw(g, A, true, true);
      }
      return std::vector<Tensor>{ga, gb};
    });
  }
  return c;
}

Tensor bias_add(const Tensor& x, const Tensor& b) {
  check_float(x, "bias_add", "x");
  check_float(b, "bias_add", "b");
  check_same_device({x, b}, "bias_add");
  check_same_dtype(x, b, "bias_add");
  MR_CHECK(x.dim() == 2 || x.dim() == 4, "bias_add: x must be [N, C] or [N, C, H, W], got " + shape_str(x.shape()));
  MR_CHECK(b.dim() == 1 && b.size(0) == x.size(1),
           "bias_add: bias of shape " + shape_str(b.shape()) + " for input " + shape_str(x.shape()));
  profiler::OpScope scope("bias_add", x.device());
  Tensor y = empty_like(x);
  scope.moves(bytes_of(x, b, y));
  const int64_t N = x.size(0), C = x.size(1), HW = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    if (x.dim() == 2) kernels::cuda::bias_add_rows(x.data<float>(), b.data<float>(), y.data<float>(), N, C, stream());
    else kernels::cuda::bias_add_nchw_v2(x.data<float>(), b.data<float>(), y.data<float>(), N, C, HW, stream());
#else
    no_cuda("bias_add");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      if (x.dim() == 2) kernels::cpu::bias_add_rows<T>(x.data<T>(), b.data<T>(), y.data<T>(), N, C);
      else kernels::cpu::bias_add_nchw<T>(x.data<T>(), b.data<T>(), y.data<T>(), N, C, HW);
    });
  }
  if (autograd::needs_grad({x, b})) {
    const bool need_b = b.requires_grad();
    autograd::record(y, "bias_add", {x, b}, [need_b](const Tensor& g) {
      profiler::OpScope s("bias_add", g.device(), true);
      s.moves(need_b ? bytes_of(g) : 0.0);  // dx is dy itself; the bias gradient reads dy
      return std::vector<Tensor>{g, need_b ? bias_grad(g) : Tensor()};
    });
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_float(x, "linear", "x");
  check_float(w, "linear", "w");
  check_dim(x, 2, "linear", "x");
  check_dim(w, 2, "linear", "w");
  MR_CHECK(x.size(1) == w.size(1), "linear: input has " + std::to_string(x.size(1)) + " features, weight " +
                                       shape_str(w.shape()) + " expects " + std::to_string(w.size(1)));
  profiler::OpScope scope("linear", x.device());
  scope.moves(bytes_of(x, w, b) + double(x.size(0) * w.size(0)) * double(dtype_size(x.dtype())));
  Tensor y = matmul(x, w, false, true);
  return b.defined() ? bias_add(y, b) : y;
}

}  // namespace musicrec::ops
