// Branch-free float exp and sigmoid that GCC vectorises, for the CPU loops whose time is spent in exp
// (the sigmoid convolutions' epilogue; and exp_f64, on GCC vectors of doubles, for the exact KDE). glibc's expf is accurate but scalar, and the two-sided
// sigmoid in kernels/math.h branches on the sign, which mispredicts on every other element of a
// conv output: measured before this file, a scalar loop took 14 ms per 2M random-normal floats but
// 4.5 ms over smooth inputs. These take no branch and no libm call, so an AVX2 / AVX-512 clone of the
// loop does 8 or 16 elements at once (MR_CPU_CLONES).
//
// Accuracy: exp_f32 is Cephes' expf (Cody-Waite reduction by ln 2 in two parts, degree-6 polynomial),
// within 2 ulp of the true value for x in [-87, 88]; inputs beyond are clamped there (e^-87 is still
// a normal float; e^88 = 1.65e38 < FLT_MAX), NaN stays NaN (without reaching the integer
// conversion). sigmoid_f32 = 1 / (1 + exp(-x)) has no cancellation for either sign (for x << 0 it is
// 1 / (1 + huge), relatively exact), so the float CPU path stays within a few ulp of math::sigmoid,
// which the double reference and the GPU use.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
// One copy of the function per instruction set, chosen once at load time (GNU ifunc).
#define MR_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MR_CPU_CLONES
#endif

namespace musicrec::kernels::cpu::vec {

// Eight doubles as one GCC vector: each clone lowers it to one zmm, two ymm or four xmm (the exact KDE's
// rows, the full sum's running lanes). Files using it inside MR_CPU_CLONES functions ignore -Wpsabi.
typedef double Double8 __attribute__((vector_size(64)));

inline float exp_f32(float x) {
  // The clamps are written so that NaN fails both comparisons and leaves them as -87: it takes the
  // arithmetic below as -87 (never reaching the integer conversion with NaN, which would be undefined:
  // UBSan, a shift of a negative value) and is returned as it came by the last select. (The first
  // version zeroed NaN first and tested it twice more; GCC predicated the whole polynomial on those
  // tests: the same bits for every float input, checked over all 2^32, and the sigmoid loop 26 %
  // slower on AVX-512: 0.46 against 0.34 ns per element in L1.)
  const float in = x;
  x = x > -87.0f ? x : -87.0f;
  x = x < 88.0f ? x : 88.0f;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (round to nearest even; needs no -ffast-math, which
  // this project never uses).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;  // ln 2 in two parts: the first is exact in 9 bits
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float e = p * scale;
  return in != in ? in : e;
}

inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// exp on a GCC vector of doubles (V: double __attribute__((vector_size(...)))), for the exact KDE's
// n^2 kernel evaluations, where glibc's scalar exp was the whole cost. Cody-Waite reduction by ln 2
// in two parts (Cephes' constants: n * the first is exact for |n| < 2^35), then e^r = 1 + r + r^2 q(r)
// with q the Taylor series to r^11 / 13! (truncation under 4e-18 for |r| <= ln 2 / 2): within 2 ulp of
// the true value on [-708, ln(DBL_MAX)] (tested against glibc). Below -708 the result is 0 (the true
// value is under 2.3e-308, subnormal), above ln(DBL_MAX) infinity, NaN stays NaN; the clamps are
// comparisons NaN fails, as exp_f32's, so no NaN reaches the integer arithmetic.
// (Always inlined into its caller's clone; GCC's note that returning a 64-byte vector "changes the ABI"
// without AVX-512 concerns no call that is made.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <typename V> [[gnu::always_inline]] inline V exp_f64(V x) {
  typedef decltype(x < x) I;  // the integer vector of the same lanes (int64)
  const V zero = V{}, lo = zero - 708.0, hi = zero + 709.782712893384;  // ln(DBL_MAX)
  const V in = x;
  x = x > lo ? x : lo;
  x = x < hi ? x : hi;
  // n = round(x / ln 2) by the 1.5 * 2^52 trick; n also sits in the low bits of t's mantissa.
  const V shift = zero + 6755399441055744.0;
  const V t = x * 1.4426950408889634 + shift;
  const V n = t - shift;
  V r = x - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  V q = zero + 1.0 / 6227020800.0;  // 1 / 13!
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  const V p = 1.0 + (r + r * r * q);
  // 2^n as 2^(n - 1) * 2, so that n = 1024 (x near ln(DBL_MAX)) stays finite: n in [-1021, 1024].
  const I bits = (((I)t - (I)shift) + 1022) << 52;
  V e = p * (V)bits * 2.0;
  e = in < lo ? zero : e;
  e = in > hi ? zero + __builtin_inf() : e;
  return in != in ? in : e;
}
#pragma GCC diagnostic pop

}  // namespace musicrec::kernels::cpu::vec
