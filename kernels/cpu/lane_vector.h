// The direct convolution kernels' vector of kLanes values (conv_direct.cpp, conv_channel_lanes.cpp).
// Internal to kernels/cpu; for files whose kernels are always inlined into their instruction-set clones
// (MR_CPU_CLONES).
#pragma once
#include <cstring>

#include "kernels/cpu/conv_direct.h"

// The 64-byte vectors cross no function boundary that is not inlined into the same clone, so GCC's note
// that returning one "changes the ABI" without AVX-512 concerns nothing in the files that include this.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec::kernels::cpu::direct {

// kLanes values as one GCC vector: each clone lowers it to its own registers (one zmm, two ymm or four
// xmm), and the accumulators stay in registers, which nested fixed-count loops over arrays did not
// (measured: 12x slower than im2col that way). Loads and stores go through memcpy (unaligned).
template <typename T> struct LaneVector {
  typedef T type __attribute__((vector_size(kLanes * sizeof(T))));
};
template <typename T> using Vec = typename LaneVector<T>::type;
template <typename T> [[gnu::always_inline]] inline Vec<T> load_lanes(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> [[gnu::always_inline]] inline void store_lanes(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace musicrec::kernels::cpu::direct
