// Initialisers over Philox (see random.h).
#include "engine/random.h"

#include <cmath>

#include "engine/op_util.h"
#include "engine/tensor.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec::init {

void uniform_(Tensor& t, float lo, float hi, Generator& gen) {
  ops::detail::check_float(t, "uniform_", "t");
  const uint64_t offset = gen.next_offset();
  if (t.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::fill_uniform(t.data<float>(), t.numel(), lo, hi, gen.seed(), offset, ops::detail::stream());
#endif
    return;
  }
  ops::detail::dispatch_float(t.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::cpu::fill_uniform<T>(t.data<T>(), t.numel(), lo, hi, gen.seed(), offset);
  });
}

void normal_(Tensor& t, float mean, float stddev, Generator& gen) {
  ops::detail::check_float(t, "normal_", "t");
  const uint64_t offset = gen.next_offset();
  if (t.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::fill_normal(t.data<float>(), t.numel(), mean, stddev, gen.seed(), offset, ops::detail::stream());
#endif
    return;
  }
  ops::detail::dispatch_float(t.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::cpu::fill_normal<T>(t.data<T>(), t.numel(), mean, stddev, gen.seed(), offset);
  });
}

void glorot_uniform_(Tensor& t, int64_t fan_in, int64_t fan_out, Generator& gen) {
  float a = static_cast<float>(std::sqrt(6.0 / double(fan_in + fan_out)));
  uniform_(t, -a, a, gen);
}
void he_normal_(Tensor& t, int64_t fan_in, Generator& gen) {
  normal_(t, 0.f, static_cast<float>(std::sqrt(2.0 / double(fan_in))), gen);
}
void he_uniform_(Tensor& t, int64_t fan_in, Generator& gen) {
  float a = static_cast<float>(std::sqrt(6.0 / double(fan_in)));
  uniform_(t, -a, a, gen);
}

}  // namespace musicrec::init
