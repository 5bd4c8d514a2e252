// Philox-4x32-10's four output words for 8 (AVX2) or 16 (AVX-512) consecutive counters at once, for
// the CPU dropout mask (kernels/cpu/dropout.cpp). Bit-identical to rng::philox_block(seed, offset, i)
// for i = first, first + 1, ..., so the CPU mask stays the GPU's mask (tests: PhiloxLanes.*).
//
// Why by hand: one Philox block is ten rounds of two 32x32->64-bit products; scalar it costs ~12 ns
// an element here, which made dropout 44 % of the CF baseline's CPU training step. GCC does not
// vectorise Random123's scalar code (the 64-bit product's high half defeats it), and
// _mm256_mul_epu32 / _mm512_mul_epu32 do four / eight such products per instruction.
#pragma once
#include <cstdint>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MR_HAVE_PHILOX_LANES 1
// GCC 12's AVX-512 intrinsics (_mm512_mul_epu32, _mm512_srli_epi64) warn "__Y is used uninitialized"
// wherever they are inlined: a false positive on the header's own _mm512_undefined_epi32. Warnings
// are judged at the header's lines, so the header is included with the warning off.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

namespace musicrec::kernels::cpu::simd {

// Whether this CPU runs the AVX2 / AVX-512 code below (asked once).
inline bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
inline bool have_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

// The low and high 32 bits of a * m for each 32-bit lane of a (m below 2^32, in every 64-bit lane).
__attribute__((target("avx2"))) inline void mulhilo_x8(__m256i a, __m256i m, __m256i& lo, __m256i& hi) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6 as 64-bit products
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox4x32-10 at counters (first + l, offset), l = 0..7, under key `seed`: lane l of w[k] is word k of
// counter first + l's block. The counter words are (index low, index high, offset low, offset high) and the key
// (seed low, seed high), as in rng::philox_block. The round is Random123's: with (hi0, lo0) = M0 * c0
// and (hi1, lo1) = M1 * c2, c becomes (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), and the key is bumped
// by the Weyl constants between rounds; the block is c after the tenth.
__attribute__((target("avx2"))) inline void philox_x8(uint64_t first, uint64_t offset, uint64_t seed, __m256i w[4]) {
  const __m256i flip = _mm256_set1_epi32(INT32_MIN);  // unsigned compares through signed ones
  const __m256i base_lo = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(first)));
  __m256i c0 = _mm256_add_epi32(base_lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // A lane whose low word wrapped past 2^32 carries one into its high word (cmpgt gives -1 there).
  const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(base_lo, flip), _mm256_xor_si256(c0, flip));
  __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(first >> 32))), wrapped);
  __m256i c2 = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(offset)));
  __m256i c3 = _mm256_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(offset >> 32)));
  const __m256i m0 = _mm256_set1_epi64x(0xD2511F53), m1 = _mm256_set1_epi64x(0xCD9E8D57);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m256i lo0, hi0, lo1, hi1;
    mulhilo_x8(c0, m0, lo0, hi0);
    mulhilo_x8(c2, m1, lo1, hi1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int32_t>(k0)));
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int32_t>(k1)));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}

// The same blocks in memory, word-major: out[w * 8 + l] (for callers built without AVX2, such as the tests).
__attribute__((target("avx2"))) inline void philox_x8_store(uint64_t first, uint64_t offset, uint64_t seed,
                                                             uint32_t out[32]) {
  __m256i w[4];
  philox_x8(first, offset, seed, w);
  for (int k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * k), w[k]);
}

// Eight lanes of all-ones where word >= threshold (unsigned): the elements dropout keeps.
__attribute__((target("avx2"))) inline __m256i keep_mask_x8(__m256i word, uint32_t threshold) {
  const __m256i flip = _mm256_set1_epi32(INT32_MIN);
  const __m256i th = _mm256_set1_epi32(static_cast<int32_t>(threshold ^ 0x80000000u));
  // keep = !(threshold > word)
  return _mm256_xor_si256(_mm256_cmpgt_epi32(th, _mm256_xor_si256(word, flip)), _mm256_set1_epi32(-1));
}

// ---- AVX-512: the same rounds on 16 lanes; the products' halves are merged with lane masks ----

__attribute__((target("avx512f"))) inline void mulhilo_x16(__m512i a, __m512i m, __m512i& lo, __m512i& hi) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

__attribute__((target("avx512f"))) inline void philox_x16(uint64_t first, uint64_t offset, uint64_t seed,
                                                           __m512i w[4]) {
  const __m512i base_lo = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(first)));
  __m512i c0 = _mm512_add_epi32(base_lo, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __mmask16 wrapped = _mm512_cmplt_epu32_mask(c0, base_lo);  // these lanes carry into the high word
  const __m512i base_hi = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(first >> 32)));
  __m512i c1 = _mm512_mask_add_epi32(base_hi, wrapped, base_hi, _mm512_set1_epi32(1));
  __m512i c2 = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(offset)));
  __m512i c3 = _mm512_set1_epi32(static_cast<int32_t>(static_cast<uint32_t>(offset >> 32)));
  const __m512i m0 = _mm512_set1_epi64(0xD2511F53), m1 = _mm512_set1_epi64(0xCD9E8D57);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i lo0, hi0, lo1, hi1;
    mulhilo_x16(c0, m0, lo0, hi0);
    mulhilo_x16(c2, m1, lo1, hi1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(static_cast<int32_t>(k0)));
    c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(static_cast<int32_t>(k1)));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = c0;
  w[1] = c1;
  w[2] = c2;
  w[3] = c3;
}

// out[w * 16 + l], as philox_x8_store.
__attribute__((target("avx512f"))) inline void philox_x16_store(uint64_t first, uint64_t offset, uint64_t seed,
                                                                 uint32_t out[64]) {
  __m512i w[4];
  philox_x16(first, offset, seed, w);
  for (int k = 0; k < 4; ++k) _mm512_storeu_si512(out + 16 * k, w[k]);
}

// Element bits from per-word lane masks: bit l of m (counter l's word w) becomes bit 4 l + w of the
// result, as element 4 l + w reads word w of counter l (rng::dropout_keep). By bytes through a table.
struct SpreadBits {
  uint32_t by_byte[256];  // bit b of the byte -> bit 4 b
  constexpr SpreadBits() : by_byte() {
    for (int v = 0; v < 256; ++v)
      for (int b = 0; b < 8; ++b)
        if ((v >> b) & 1) by_byte[v] |= uint32_t(1) << (4 * b);
  }
};
inline constexpr SpreadBits kSpread{};
inline uint64_t interleave_words(uint32_t m0, uint32_t m1, uint32_t m2, uint32_t m3, int lanes) {
  uint64_t bits = 0;
  const uint32_t m[4] = {m0, m1, m2, m3};
  for (int byte = 0; byte * 8 < lanes; ++byte)
    for (int w = 0; w < 4; ++w)
      bits |= uint64_t(kSpread.by_byte[(m[w] >> (8 * byte)) & 0xFFu]) << (32 * byte + w);
  return bits;
}

}  // namespace musicrec::kernels::cpu::simd
#endif
