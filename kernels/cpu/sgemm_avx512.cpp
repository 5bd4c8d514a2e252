// A hand-written float32 matrix product for CPUs with AVX-512 (blas.cpp calls it for each block of a
// split product where the CPU has AVX-512; the BLAS library elsewhere and for double).
//
// Why: the library cannot be trusted to use AVX-512 here. Debian 12's OpenBLAS (0.3.21) predates Zen 4
// and 5, and where its detection goes wrong the machine pins it to its AVX2 kernels (OPENBLAS_CORETYPE=
// Haswell; its own note: older builds compute wrong results or crash on those CPUs). On the Zen 5 VM
// that measured 246-249 GFLOP/s for a 4096^3 product on 2 threads against 446-452 with the AVX-512
// kernels forced, a 1.5x slower dense layer, and the pair head and CF training paid for it (session 22).
//
// How (the GotoBLAS layering): the inner dimension in blocks of kKC, C's columns in blocks of kNC, rows
// in blocks of kMC. Each (kKC x kNC) block of op(B) is packed into micro-panels of kNR columns, each
// (kMC x kKC) block of op(A) into micro-panels of kMR rows, both padded with zeros, so the transposes
// cost only the packing and the micro-kernel never tests an edge. The micro-kernel keeps a kMR x kNR
// tile of C in 24 of the 32 vector registers (12 rows x 2 vectors of 16): per step of the inner
// dimension, 2 loads of B, 12 broadcasts of A, 24 FMAs. A B micro-panel (32 KB) stays in L1 while the
// A micro-panels of a row block stream from L2.
//
// Summation order, every element of C: the inner dimension's blocks in order, within a block the terms
// in order from zero, each block's sum then scaled by alpha and added to C (the first onto beta * C):
// a function of the shape only, the same bits at any thread count and wherever the block falls.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/lane_vector.h"

namespace musicrec::kernels::cpu {
namespace {
using direct::load_lanes;
using direct::store_lanes;
using V = direct::Vec<float>;

constexpr int64_t kMR = 12, kNR = 2 * direct::kLanes, kKC = 256, kMC = 10 * kMR, kNC = 512;
// The order in sgemm_avx512 that packs op(B) whole: for a C of at least kLargeC floats (1 MB, a Zen 4 /
// 5 core's L2: it leaves L2 between inner blocks) and a packed B of at most kWholeB (4 MB, from L3;
// one inner block of it, at most 512 x 256 floats, is read at a time).
constexpr int64_t kLargeC = 256 * 1024, kWholeB = 1024 * 1024;

inline int64_t smaller(int64_t a, int64_t b) { return a < b ? a : b; }

// One micro-panel of kW lanes (n of them real, the rest zero) over kc steps into dst[kc][kW], from
// `src` where a step's lanes lie together (op(A) transposed, op(B) not): step k at src + k * ld.
template <int64_t kW>
[[gnu::always_inline]] inline void pack_steps_together(const float* src, int64_t ld, int64_t kc, int64_t n,
                                                       float* __restrict dst) {
  for (int64_t k = 0; k < kc; ++k, src += ld) {
    if (n == kW) {
      std::memcpy(dst + k * kW, src, sizeof(float) * kW);
      continue;
    }
    for (int64_t l = 0; l < kW; ++l) dst[k * kW + l] = l < n ? src[l] : 0.f;
  }
}
// The same where each lane's steps lie together (op(A) as stored, op(B) transposed): lane l at src + l
// * ld, from step k0 on (the steps before done by the caller).
template <int64_t kW>
[[gnu::always_inline]] inline void pack_lanes_together(const float* src, int64_t ld, int64_t k0, int64_t kc, int64_t n,
                                                       float* __restrict dst) {
  for (int64_t l = 0; l < kW; ++l)
    for (int64_t k = k0; k < kc; ++k) dst[k * kW + l] = l < n ? src[l * ld + k] : 0.f;
}

// Rows i0 .. i0+mc of op(A) over the inner range p0 .. p0+kc into `ap`: micro-panels of kMR rows, each
// [kc][kMR] (a step's kMR values together), rows past the block zero.
[[gnu::always_inline]] inline void pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                                          int64_t kc, float* __restrict ap) {
  for (int64_t ir = 0; ir < mc; ir += kMR) {
    const int64_t mr = smaller(kMR, mc - ir);
    float* dst = ap + ir * kc;
    if (ta) {  // op(A)[i][k] = A[k][i]
      pack_steps_together<kMR>(A + p0 * lda + i0 + ir, lda, kc, mr, dst);
      continue;
    }
    // A's rows run along the inner dimension: 16 steps of the panel's 12 rows at a time through a
    // register transpose (rows 12-15 zero), each step's 12 values stored as a whole vector whose last
    // 4 lanes the next step's store overwrites (the last one's land in the next panel, packed later,
    // or the buffer's slack). One by one, the packing was 17 % of the pair head's product (perf).
    int64_t k0 = 0;
    if (mr == kMR)
      for (; k0 + direct::kLanes <= kc; k0 += direct::kLanes) {
        V r[direct::kLanes];
        for (int64_t i = 0; i < direct::kLanes; ++i)
          r[i] = i < kMR ? load_lanes(A + (i0 + ir + i) * lda + p0 + k0) : V{};
        direct::transpose_lanes<float>(r);
        for (int64_t j = 0; j < direct::kLanes; ++j) store_lanes(dst + (k0 + j) * kMR, r[j]);
      }
    pack_lanes_together<kMR>(A + (i0 + ir) * lda + p0, lda, k0, kc, mr, dst);
  }
}

// Columns j0 .. j0+nc of op(B) over p0 .. p0+kc into `bp`: micro-panels of kNR columns, each [kc][kNR],
// columns past the block zero.
[[gnu::always_inline]] inline void pack_b(bool tb, const float* B, int64_t ldb, int64_t j0, int64_t nc, int64_t p0,
                                          int64_t kc, float* __restrict bp) {
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = smaller(kNR, nc - jr);
    if (!tb)  // op(B)[k][j] = B[k][j]
      pack_steps_together<kNR>(B + p0 * ldb + j0 + jr, ldb, kc, nr, bp + jr * kc);
    else
      pack_lanes_together<kNR>(B + (j0 + jr) * ldb + p0, ldb, 0, kc, nr, bp + jr * kc);
  }
}

// One kMR x kNR tile of C (mr x nr of it real) from a packed A and B micro-panel over kc steps; kHalf:
// the panel's real columns fit the first vector (nr <= 16), whose products alone are formed (the N % 32
// edge of 205- and 200-column products: 13 and 8 real columns of 32).
template <bool kHalf>
[[gnu::always_inline]] inline void tile(int64_t kc, const float* __restrict ap, const float* __restrict bp,
                                        float* __restrict c, int64_t ldc, int64_t mr, int64_t nr, float alpha,
                                        float beta, bool first) {
  V lo[kMR], hi[kMR];
  for (int64_t i = 0; i < kMR; ++i) lo[i] = hi[i] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = load_lanes(bp + k * kNR);
    if constexpr (kHalf) {
      for (int64_t i = 0; i < kMR; ++i) lo[i] += ap[k * kMR + i] * b0;
      continue;
    }
    const V b1 = load_lanes(bp + k * kNR + direct::kLanes);
    for (int64_t i = 0; i < kMR; ++i) {
      const float a = ap[k * kMR + i];
      lo[i] += a * b0;
      hi[i] += a * b1;
    }
  }
  // C = alpha * sum + (first block ? beta * C, with C not read when beta is 0, as BLAS : C).
  const bool read = !first || beta != 0.f;
  const float scale = first ? beta : 1.f;
  if (mr == kMR && nr == kNR) {
    for (int64_t i = 0; i < kMR; ++i) {
      float* row = c + i * ldc;
      V r0 = alpha * lo[i], r1 = alpha * hi[i];
      if (read) {
        r0 += scale * load_lanes(row);
        r1 += scale * load_lanes(row + direct::kLanes);
      }
      store_lanes(row, r0);
      store_lanes(row + direct::kLanes, r1);
    }
    return;
  }
  alignas(64) float t[kMR][kNR];
  for (int64_t i = 0; i < kMR; ++i) {
    store_lanes(t[i], lo[i]);
    store_lanes(t[i] + direct::kLanes, hi[i]);
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      float r = alpha * t[i][j];
      if (read) r += scale * c[i * ldc + j];
      c[i * ldc + j] = r;
    }
}

// Rows i0 .. i0+mc of C over the inner block p0 .. p0+kc, from the packed B block at bp (columns j0 ..
// j0+nc): A's block packed into ap, then every tile.
[[gnu::always_inline]] inline void row_block(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t j0,
                                             int64_t nc, int64_t p0, int64_t kc, float* __restrict ap,
                                             const float* __restrict bp, float* C, int64_t ldc, float alpha,
                                             float beta) {
  pack_a(ta, A, lda, i0, mc, p0, kc, ap);
  for (int64_t jr = 0; jr < nc; jr += kNR) {
    const int64_t nr = smaller(kNR, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += kMR) {
      float* c = C + (i0 + ir) * ldc + j0 + jr;
      const int64_t mr = smaller(kMR, mc - ir);
      if (nr > direct::kLanes)
        tile<false>(kc, ap + ir * kc, bp + jr * kc, c, ldc, mr, nr, alpha, beta, p0 == 0);
      else
        tile<true>(kc, ap + ir * kc, bp + jr * kc, c, ldc, mr, nr, alpha, beta, p0 == 0);
    }
  }
}

// Aligned to a cache line, kept per thread between calls (products come by the thousand per step).
float* packing_buffer(std::vector<float>& v, int64_t n) {
  if (int64_t(v.size()) < n + 16) v.resize(static_cast<size_t>(n + 16));
  float* p = v.data();
  while (reinterpret_cast<uintptr_t>(p) % 64 != 0) ++p;
  return p;
}

}  // namespace

bool sgemm_avx512_available() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return yes;
#else
  return false;
#endif
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("arch=x86-64-v4")))
#endif
void sgemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  thread_local std::vector<float> a_pack, b_pack;
  const int64_t kc_max = smaller(kKC, K);
  float* ap = packing_buffer(a_pack, (smaller(kMC, M) + kMR) * kc_max);
  // A narrow op(B) over several inner blocks with many rows (the pair head's dense 1 over a catalogue:
  // 200 columns, 1,248 deep, 141k rows): all of B packed once, and the row blocks outermost, so that a
  // row block's C (120 x N) stays in L2 through the inner blocks instead of passing through memory
  // once per inner block (14 % of the pair head's product went to C's loads and stores, perf). Each
  // element's sum is the same: its inner blocks in order, each added onto C as before.
  const int64_t panels_width = (N + kNR - 1) / kNR * kNR;
  if (N <= kNC && K > kKC && M * N >= kLargeC && panels_width * K <= kWholeB) {
    float* bp = packing_buffer(b_pack, panels_width * K);
    for (int64_t p0 = 0; p0 < K; p0 += kKC) pack_b(tb, B, ldb, 0, N, p0, smaller(kKC, K - p0), bp + panels_width * p0);
    for (int64_t i0 = 0; i0 < M; i0 += kMC)
      for (int64_t p0 = 0; p0 < K; p0 += kKC)
        row_block(ta, A, lda, i0, smaller(kMC, M - i0), 0, N, p0, smaller(kKC, K - p0), ap, bp + panels_width * p0,
                  C, ldc, alpha, beta);
    return;
  }
  float* bp = packing_buffer(b_pack, (smaller(kNC, N) + kNR) * kc_max);
  for (int64_t j0 = 0; j0 < N; j0 += kNC) {
    const int64_t nc = smaller(kNC, N - j0);
    for (int64_t p0 = 0; p0 < K; p0 += kKC) {
      const int64_t kc = smaller(kKC, K - p0);
      pack_b(tb, B, ldb, j0, nc, p0, kc, bp);
      for (int64_t i0 = 0; i0 < M; i0 += kMC)
        row_block(ta, A, lda, i0, smaller(kMC, M - i0), j0, nc, p0, kc, ap, bp, C, ldc, alpha, beta);
    }
  }
}

// One row's dot with x: four 16-lane sums over the steps in order, 64 at a time, added (0 + 1) + (2 +
// 3), then their lanes in a fixed tree and the last K % 64 steps one by one: an order of K only. (Kept
// out of the target function below, as the tile is: clang rejects a 64-byte vector returned from a
// function without AVX-512 into one with it, which inlining would make moot but its check precedes.)
namespace {
[[gnu::always_inline]] inline float row_dot(const float* __restrict a, const float* __restrict x, int64_t K) {
  constexpr int64_t L = direct::kLanes;
  const int64_t whole = K / (4 * L) * (4 * L);
  V s0{}, s1{}, s2{}, s3{};
  for (int64_t k = 0; k < whole; k += 4 * L) {
    s0 += load_lanes(a + k) * load_lanes(x + k);
    s1 += load_lanes(a + k + L) * load_lanes(x + k + L);
    s2 += load_lanes(a + k + 2 * L) * load_lanes(x + k + 2 * L);
    s3 += load_lanes(a + k + 3 * L) * load_lanes(x + k + 3 * L);
  }
  alignas(64) float lanes[L];
  store_lanes(lanes, (s0 + s1) + (s2 + s3));
  for (int64_t w = L / 2; w >= 1; w /= 2)
    for (int64_t l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  float dot = lanes[0];
  for (int64_t k = whole; k < K; ++k) dot += a[k] * x[k];
  return dot;
}
}  // namespace

// Matrix times vector: y[i * ldy] = alpha * (row i of A) . x + beta * y (y not read when beta is 0).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
__attribute__((target("arch=x86-64-v4")))
#endif
void sgemv_rows_avx512(int64_t M, int64_t K, float alpha, const float* A, int64_t lda, const float* x, float beta,
                       float* y, int64_t ldy) {
  for (int64_t i = 0; i < M; ++i) {
    float r = alpha * row_dot(A + i * lda, x, K);
    if (beta != 0.f) r += beta * y[i * ldy];
    y[i * ldy] = r;
  }
}

}  // namespace musicrec::kernels::cpu
