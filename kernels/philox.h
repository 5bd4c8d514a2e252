// Counter-based random numbers (Philox-4x32-10 from Random123) shared by host and device.
// A number is a pure function of (seed, stream offset, element index), so the CPU and the GPU draw
// the same values for the same tensor, and a run is reproducible from its seed alone: there is no
// generator state to save except the offset counter (see engine/random.h).
#pragma once
#include <Random123/philox.h>

#include <math.h>  // the C names (expf, log1pf, sqrtf) exist for host and device alike

#include <cmath>
#include <cstdint>

#include "kernels/hd.h"

namespace musicrec::rng {

// Four independent 32-bit words for element `index` of the draw that starts at `offset`.
MR_HD r123::Philox4x32::ctr_type philox_block(uint64_t seed, uint64_t offset, uint64_t index) {
  r123::Philox4x32 gen;
  r123::Philox4x32::ctr_type ctr = {{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                                     static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)}};
  r123::Philox4x32::key_type key = {{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  return gen(ctr, key);
}

// Uniform in (0, 1]: never 0, so log() in Box-Muller is safe. 24 bits, exactly representable in float.
MR_HD float u32_to_unit_float(uint32_t x) { return (static_cast<float>(x >> 8) + 1.0f) * (1.0f / 16777216.0f); }

MR_HD float uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return u32_to_unit_float(philox_block(seed, offset, index)[0]);
}

// Standard normal by Box-Muller from the first two words of the element's block. Computed in float
// with the same operations on host and device; device code may differ in the last ulp of log/cos.
MR_HD float normal(uint64_t seed, uint64_t offset, uint64_t index) {
  auto b = philox_block(seed, offset, index);
  float u1 = u32_to_unit_float(b[0]);
  float u2 = u32_to_unit_float(b[1]);
  const float two_pi = 6.283185307179586f;
  return sqrtf(-2.0f * logf(u1)) * cosf(two_pi * u2);
}

// Dropout keeps element `index` with probability 1 - p. The decision compares integers, so it is
// bit-identical on host and device. One Philox block decides four elements, as curand_uniform4 would
// serve them: element 4c + w reads word w of counter c. (Until session 17 each element took a block
// of its own and used word 0: the CPU's dropout was compute-bound on those blocks, ~1.2 ns an element
// on two AVX-512 cores, 7 % of the CF step at batch 4096.)
// The word value below which an element is dropped: p * 2^32, saturated.
MR_HD uint32_t dropout_threshold(float p) {
  return static_cast<uint32_t>(static_cast<double>(p) * 4294967296.0 > 4294967295.0
                                   ? 4294967295.0
                                   : static_cast<double>(p) * 4294967296.0);
}
MR_HD bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t index, float p) {
  return philox_block(seed, offset, index / 4)[static_cast<int>(index % 4)] >= dropout_threshold(p);
}

}  // namespace musicrec::rng
