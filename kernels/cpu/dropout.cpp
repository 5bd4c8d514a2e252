// CPU inverted dropout: the mask drawn 32 or 64 elements at a time (Philox counters in AVX2 or AVX-512
// lanes where the CPU has them, each block's four words deciding four elements: rng::dropout_keep),
// written as bits for the backward, which then only reads them.
//
// Measured before this file (session 11, `MUSICREC_PROFILE=1 musicrec_peer speed --model cf --batch
// 1024 --device cpu`): one Philox block per element in the forward and again in the backward made
// dropout 1.78 + 1.65 ms of a 7.8 ms CF training step, 44 %.
#include <algorithm>
#include <type_traits>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/philox_lanes.h"
#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::kernels::cpu {
namespace {

constexpr int64_t kBitsPerWord = 32;
// Words per parallel_for chunk at least: the forward draws Philox blocks (~30 us per 32k elements), the
// backward only selects (measured: 1024 x 128 elements took 14 us on one thread, 25 us split in four).
constexpr int64_t kMinWords = 1024, kMinWordsBackward = 8192;

template <typename T> T keep_scale(float p) { return T(1) / (T(1) - T(p)); }

// Elements first .. first + count - 1 (count <= 32) one at a time; returns their keep bits. Element i
// reads word i % 4 of counter i / 4's block (rng::dropout_keep), drawn once per counter here.
template <typename T>
uint32_t forward_block_scalar(const T* x, T* y, int64_t count, T scale, uint32_t threshold, uint64_t seed,
                              uint64_t offset, uint64_t first) {
  uint32_t bits = 0;
  r123::Philox4x32::ctr_type block{};
  for (int64_t j = 0; j < count; ++j) {
    const uint64_t i = first + static_cast<uint64_t>(j);
    if (j == 0 || i % 4 == 0) block = rng::philox_block(seed, offset, i / 4);
    const bool keep = block[static_cast<int>(i % 4)] >= threshold;
    y[j] = keep ? x[j] * scale : T(0);
    bits |= static_cast<uint32_t>(keep) << j;
  }
  return bits;
}

template <typename T> void backward_block_scalar(const T* gy, T* gx, int64_t count, T scale, uint32_t bits) {
  for (int64_t j = 0; j < count; ++j) gx[j] = (bits >> j) & 1u ? gy[j] * scale : T(0);
}

#if MR_HAVE_PHILOX_LANES
// 32 float elements from `first` (a multiple of 32): the same values as forward_block_scalar (a
// dropped element is +0, a kept one x * scale, rounded alike). Counters first / 4 .. + 7 in eight
// lanes give the 32 words; their keep masks, interleaved (element 4 l + w: lane l, word w), are the
// block's bits, and each group of eight elements is selected by its byte of them.
__attribute__((target("avx2"))) uint32_t forward_block32_avx2(const float* x, float* y, float scale,
                                                               uint32_t threshold, uint64_t seed, uint64_t offset,
                                                               uint64_t first) {
  __m256i w[4];
  simd::philox_x8(first / 4, offset, seed, w);
  uint32_t m[4];
  for (int k = 0; k < 4; ++k)
    m[k] = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(simd::keep_mask_x8(w[k], threshold))));
  const uint32_t bits = static_cast<uint32_t>(simd::interleave_words(m[0], m[1], m[2], m[3], 8));
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int k = 0; k < 4; ++k) {
    const __m256i byte = _mm256_set1_epi32(static_cast<int32_t>((bits >> (8 * k)) & 0xFFu));
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(byte, lane_bit), lane_bit));
    _mm256_storeu_ps(y + 8 * k, _mm256_and_ps(keep, _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s)));
  }
  return bits;
}

__attribute__((target("avx2"))) void backward_block32_avx2(const float* gy, float* gx, float scale, uint32_t bits) {
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int k = 0; k < 4; ++k) {
    const __m256i byte = _mm256_set1_epi32(static_cast<int32_t>((bits >> (8 * k)) & 0xFFu));
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(byte, lane_bit), lane_bit));
    _mm256_storeu_ps(gx + 8 * k, _mm256_and_ps(keep, _mm256_mul_ps(_mm256_loadu_ps(gy + 8 * k), s)));
  }
}

// 64 elements from `first` (a multiple of 32), two words of bits, with counters first / 4 .. + 15 in
// sixteen lanes; each group of sixteen elements is selected by its 16 bits as a lane mask (maskz_mul
// writes +0 where it is clear).
__attribute__((target("avx512f"))) uint64_t forward_block64_avx512(const float* x, float* y, float scale,
                                                                    uint32_t threshold, uint64_t seed, uint64_t offset,
                                                                    uint64_t first) {
  __m512i w[4];
  simd::philox_x16(first / 4, offset, seed, w);
  const __m512i th = _mm512_set1_epi32(static_cast<int32_t>(threshold));
  uint32_t m[4];
  for (int k = 0; k < 4; ++k) m[k] = _mm512_cmpge_epu32_mask(w[k], th);
  const uint64_t bits = simd::interleave_words(m[0], m[1], m[2], m[3], 16);
  const __m512 s = _mm512_set1_ps(scale);
  for (int k = 0; k < 4; ++k)
    _mm512_storeu_ps(y + 16 * k, _mm512_maskz_mul_ps(static_cast<__mmask16>(bits >> (16 * k)),
                                                      _mm512_loadu_ps(x + 16 * k), s));
  return bits;
}

__attribute__((target("avx512f"))) void backward_block32_avx512(const float* gy, float* gx, float scale,
                                                                 uint32_t bits) {
  const __m512 s = _mm512_set1_ps(scale);
  for (int k = 0; k < 2; ++k)
    _mm512_storeu_ps(gx + 16 * k,
                     _mm512_maskz_mul_ps(static_cast<__mmask16>(bits >> (16 * k)), _mm512_loadu_ps(gy + 16 * k), s));
}
#endif

DropoutPath resolve(DropoutPath path) {
  if (path == DropoutPath::Best) {
#if MR_HAVE_PHILOX_LANES
    if (simd::have_avx512()) return DropoutPath::Avx512;
    if (simd::have_avx2()) return DropoutPath::Avx2;
#endif
    return DropoutPath::Scalar;
  }
  MR_CHECK(dropout_path_available(path), "dropout: the requested instruction set is not available on this CPU");
  return path;
}

}  // namespace

bool dropout_path_available(DropoutPath path) {
  switch (path) {
    case DropoutPath::Best:
    case DropoutPath::Scalar:
      return true;
#if MR_HAVE_PHILOX_LANES
    case DropoutPath::Avx2:
      return simd::have_avx2();
    case DropoutPath::Avx512:
      return simd::have_avx512();
#else
    default:
      return false;
#endif
  }
  return false;
}

template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, float p, uint64_t seed, uint64_t offset, uint32_t* keep_bits,
                     DropoutPath path) {
  path = std::is_same_v<T, float> ? resolve(path) : DropoutPath::Scalar;
  const T scale = keep_scale<T>(p);
  const uint32_t threshold = rng::dropout_threshold(p);
  // By 32-element word: each element's draw depends on its index only, and each word of the mask is
  // written by one thread. The AVX-512 lanes take two words at a time, the AVX2 ones one (also the
  // AVX-512 path's odd word), and the scalar path the rest (the last, partial word, and double).
  parallel_for((n + kBitsPerWord - 1) / kBitsPerWord, kMinWords, [&](int64_t w0, int64_t w1) {
    const int64_t end = std::min(n, w1 * kBitsPerWord);
    for (int64_t base = w0 * kBitsPerWord; base < end;) {
      const uint64_t first = static_cast<uint64_t>(base);
      uint32_t* word = keep_bits ? keep_bits + base / kBitsPerWord : nullptr;
      if constexpr (std::is_same_v<T, float>) {
#if MR_HAVE_PHILOX_LANES
        if (path == DropoutPath::Avx512 && end - base >= 2 * kBitsPerWord) {
          const uint64_t bits = forward_block64_avx512(x + base, y + base, scale, threshold, seed, offset, first);
          if (word) word[0] = static_cast<uint32_t>(bits), word[1] = static_cast<uint32_t>(bits >> 32);
          base += 2 * kBitsPerWord;
          continue;
        }
        if ((path == DropoutPath::Avx2 || (path == DropoutPath::Avx512 && simd::have_avx2())) &&
            end - base >= kBitsPerWord) {
          const uint32_t bits = forward_block32_avx2(x + base, y + base, scale, threshold, seed, offset, first);
          if (word) *word = bits;
          base += kBitsPerWord;
          continue;
        }
#endif
      }
      const int64_t count = std::min(kBitsPerWord, end - base);
      const uint32_t bits = forward_block_scalar(x + base, y + base, count, scale, threshold, seed, offset, first);
      if (word) *word = bits;
      base += count;
    }
  });
}

template <typename T>
void dropout_backward(const T* gy, T* gx, int64_t n, float p, const uint32_t* keep_bits, DropoutPath path) {
  path = std::is_same_v<T, float> ? resolve(path) : DropoutPath::Scalar;
  const T scale = keep_scale<T>(p);
  parallel_for((n + kBitsPerWord - 1) / kBitsPerWord, kMinWordsBackward, [&](int64_t w0, int64_t w1) {
    for (int64_t base = w0 * kBitsPerWord; base < std::min(n, w1 * kBitsPerWord); base += kBitsPerWord) {
      const int64_t count = std::min(kBitsPerWord, n - base);
      const uint32_t bits = keep_bits[base / kBitsPerWord];
      if constexpr (std::is_same_v<T, float>) {
#if MR_HAVE_PHILOX_LANES
        if (count == kBitsPerWord && path == DropoutPath::Avx512) {
          backward_block32_avx512(gy + base, gx + base, scale, bits);
          continue;
        }
        if (count == kBitsPerWord && path == DropoutPath::Avx2) {
          backward_block32_avx2(gy + base, gx + base, scale, bits);
          continue;
        }
#endif
      }
      backward_block_scalar(gy + base, gx + base, count, scale, bits);
    }
  });
}

#define MR_INST(T)                                                                                        \
  template void dropout_forward<T>(const T*, T*, int64_t, float, uint64_t, uint64_t, uint32_t*, DropoutPath); \
  template void dropout_backward<T>(const T*, T*, int64_t, float, const uint32_t*, DropoutPath);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
