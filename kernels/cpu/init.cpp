// CPU initialisers from Philox: element i of a draw at `offset` is a pure function of (seed, offset, i),
// the same function the CUDA initialiser calls, so a model initialised on either device is identical.
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/philox.h"

namespace musicrec::kernels::cpu {

template <typename T> void fill_uniform(T* x, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(lo + (hi - lo) * rng::uniform(seed, offset, i));
}
template <typename T> void fill_normal(T* x, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<T>(mean + stddev * rng::normal(seed, offset, i));
}

#define MR_INST(T)                                                                            \
  template void fill_uniform<T>(T*, int64_t, float, float, uint64_t, uint64_t);               \
  template void fill_normal<T>(T*, int64_t, float, float, uint64_t, uint64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
