// The direct convolution kernels' vector of kLanes values (conv_direct.cpp, conv_channel_lanes.cpp).
// Internal to kernels/cpu; for files whose kernels are always inlined into their instruction-set clones
// (MR_CPU_CLONES).
#pragma once
#include <cstring>
#include <utility>

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

// ---- a 16 x 16 transpose in registers (the channels-last copies, conv_channel_lanes.cpp; the matrix
// product's packing, sgemm_avx512.cpp) ----

// Swaps the off-diagonal D x D blocks of rows a and b (D apart in a 16 x 16 block): lanes of a whose
// bit D is set take b's lanes D to their left; b's lanes whose bit D is clear take a's lanes D to
// their right. Two two-source shuffles (one vpermt2ps each with AVX-512).
template <int D, typename T, size_t... J>
[[gnu::always_inline]] inline void swap_blocks(Vec<T>& a, Vec<T>& b, std::index_sequence<J...>) {
  constexpr int L = int(kLanes);
  const Vec<T> lo = __builtin_shufflevector(a, b, ((J & D) == 0 ? int(J) : L + int(J) - D)...);
  const Vec<T> hi = __builtin_shufflevector(a, b, ((J & D) == 0 ? int(J) + D : L + int(J))...);
  a = lo;
  b = hi;
}
template <int D, typename T> [[gnu::always_inline]] inline void swap_round(Vec<T> (&r)[kLanes]) {
  for (int i = 0; i < int(kLanes); ++i)
    if ((i & D) == 0) swap_blocks<D, T>(r[i], r[i + D], std::make_index_sequence<kLanes>());
}
// Row i's lane j to row j's lane i: the 8 x 8, 4 x 4, 2 x 2 and 1 x 1 blocks swapped in turn (64
// shuffles for 256 values, against 256 scalar loads and stores).
template <typename T> [[gnu::always_inline]] inline void transpose_lanes(Vec<T> (&r)[kLanes]) {
  swap_round<8, T>(r);
  swap_round<4, T>(r);
  swap_round<2, T>(r);
  swap_round<1, T>(r);
}

}  // namespace musicrec::kernels::cpu::direct
