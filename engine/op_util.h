// Helpers shared by the op implementations: input checks with messages naming the op, the
// float/double dispatch of CPU kernels, and the CUDA stream. Internal to engine/.
#pragma once
#include <string>
#include <vector>

#include "engine/profiler.h"
#include "engine/tensor.h"
#include "kernels/error.h"
#if MUSICREC_WITH_CUDA
#include "engine/cuda_context.h"
#endif

namespace musicrec::ops::detail {

// The bytes of the given tensors together (undefined ones count 0): an op's compulsory traffic for
// OpScope::moves is bytes_of(inputs..., outputs...).
template <typename... Ts> double bytes_of(const Ts&... ts) {
  return (0.0 + ... + (ts.defined() ? double(ts.nbytes()) : 0.0));
}

inline void check_defined(const Tensor& t, const char* op, const char* arg) {
  MR_CHECK(t.defined(), std::string(op) + ": argument '" + arg + "' is undefined");
}
inline void check_float(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  MR_CHECK(is_floating(t.dtype()), std::string(op) + ": '" + arg + "' must be floating point, got " +
                                       dtype_name(t.dtype()));
  MR_CHECK(!(t.is_cuda() && t.dtype() == DType::F64),
           std::string(op) + ": float64 is CPU-only (gradient checks); CUDA ops take float32");
}
inline void check_dim(const Tensor& t, int64_t dims, const char* op, const char* arg) {
  MR_CHECK(t.dim() == dims, std::string(op) + ": '" + arg + "' must be " + std::to_string(dims) +
                                "-D, got shape " + shape_str(t.shape()));
}
// An index list: int32 [N] (the rows an embedding or rowdot_pairs reads).
inline void check_index_list(const Tensor& idx, const char* op) {
  MR_CHECK(idx.defined() && idx.dtype() == DType::I32 && idx.dim() == 1,
           std::string(op) + ": indices must be int32 [N]" +
               (idx.defined() ? ", got " + std::string(dtype_name(idx.dtype())) + " " + shape_str(idx.shape())
                              : std::string()));
}
inline void check_same_device(const std::vector<Tensor>& ts, const char* op) {
  for (const Tensor& t : ts)
    if (t.defined())
      MR_CHECK(t.device() == ts.front().device(), std::string(op) + ": inputs on different devices (" +
                                                      ts.front().device().str() + " and " + t.device().str() + ")");
}
inline void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  MR_CHECK(a.dtype() == b.dtype(), std::string(op) + ": dtypes differ (" + dtype_name(a.dtype()) + " and " +
                                       dtype_name(b.dtype()) + ")");
}

// Calls f(T{}) with T = float or double to match the tensor's dtype.
template <typename F> void dispatch_float(DType dt, F&& f) {
  if (dt == DType::F32) f(float{});
  else if (dt == DType::F64) f(double{});
  else MR_CHECK(false, "floating-point op called on an int32 tensor");
}

inline Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), t.dtype(), t.device()); }

#if MUSICREC_WITH_CUDA
inline cudaStream_t stream() { return CudaContext::get().stream(); }
#endif

[[noreturn]] inline void no_cuda(const char* op) {
  throw Error(std::string(op) + ": CUDA tensor in a build without the CUDA backend");
}

}  // namespace musicrec::ops::detail
