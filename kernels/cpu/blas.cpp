// CPU matrix product: row-major sgemm/dgemm, split over the kernel threads (parallel.h), each block
// through CBLAS (OpenBLAS from Debian, itself kept to one thread) or, for float on a CPU with AVX-512,
// the hand-written kernel (sgemm_avx512.cpp: the library is pinned to AVX2 on such CPUs here).
//
// Why not OpenBLAS's own threads: between products they spin on the other cores, where our kernels'
// threads (dropout, Adam, element-wise) then ran at half speed: the CF step at batch 4096 took 13.5-14.9 ms
// at one or two kernel threads alike (session 12). And OpenBLAS's threaded product rounds differently
// from its serial one, so results depended on the machine's core count.
//
// The split is a function of the shape only: the larger of C's dimensions in blocks (a multiple of 16
// rows or columns each), each block one serial product over the whole inner dimension. Every element of
// C is summed by the same call at any thread count, so the result is the same bits at 1, 2 or 8 threads
// (tests/test_cpu_threads.cpp).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm_avx512.h"
#include "kernels/error.h"

namespace musicrec::kernels::cpu {
namespace {
// BLAS rejects a leading dimension of 0, so an empty inner dimension is handled here: C = beta * C.
template <typename T> void scale_only(int64_t M, int64_t N, T beta, T* C) {
  for (int64_t i = 0; i < M * N; ++i) C[i] = beta == T(0) ? T(0) : beta * C[i];
}

void keep_blas_serial() {
#if MUSICREC_BLAS_OPENBLAS
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
#endif  // the reference BLAS runs on its caller's thread anyway
}

// Each block gets at least this many multiply-adds (~25 us of one core's sgemm): a block repacks its
// share of the other operand, and waking a thread costs microseconds even when it spins (parallel.cpp).
constexpr double kMinBlockMacs = double(1 << 21);
constexpr int64_t kMaxBlocks = 16;

// The float kernel in use, Library or Own (Best resolved), starting from MUSICREC_CPU_SGEMM.
SgemmKernel resolve(SgemmKernel k) {
  if (k == SgemmKernel::Library) return k;
  return sgemm_avx512_available() ? SgemmKernel::Own : SgemmKernel::Library;
}
SgemmKernel from_environment() {
  const char* v = std::getenv("MUSICREC_CPU_SGEMM");
  if (v == nullptr || *v == 0 || std::strcmp(v, "best") == 0) return resolve(SgemmKernel::Best);
  if (std::strcmp(v, "library") == 0) return SgemmKernel::Library;
  if (std::strcmp(v, "own") == 0) return resolve(SgemmKernel::Own);
  MR_CHECK(false, std::string("MUSICREC_CPU_SGEMM='") + v + "': expected best, library or own");
  return SgemmKernel::Library;
}
std::atomic<SgemmKernel>& sgemm_setting() {
  static std::atomic<SgemmKernel> k{from_environment()};
  return k;
}

void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  // The kernel's 12 x 32 tile computes whole tiles: a product of fewer than 16 columns or 8 rows goes
  // to the library, whose kernels have narrow edges, except one column of a row-major A (the pair head's
  // 141,000 x 1 x 1,248): row dots, which read A once where the library packed it first (its packing
  // was 10 % of the pair head's time, perf). op(B)'s one column is contiguous either way.
  if (sgemm_setting().load(std::memory_order_relaxed) == SgemmKernel::Own) {
    if (N >= 16 && M >= 8) return sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (N == 1 && !ta) return sgemv_rows_avx512(M, K, alpha, A, lda, B, beta, C, ldc);
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
              B, ldb, beta, C, ldc);
}
void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
              B, ldb, beta, C, ldc);
}

// How many blocks the split dimension of `dim` takes: a power of two (an even share for 1, 2, 4 or 8
// threads), at most kMaxBlocks, each at least 64 wide and kMinBlockMacs of work. Shape only.
int64_t blocks_for(int64_t M, int64_t N, int64_t K, int64_t dim) {
  const double by_work = double(M) * double(N) * double(K) / kMinBlockMacs;
  int64_t blocks = 1;
  while (blocks * 2 <= kMaxBlocks && double(blocks * 2) <= by_work && blocks * 2 * 64 <= dim) blocks *= 2;
  return blocks;
}

}  // namespace

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta, T* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C);
  keep_blas_serial();
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const bool by_rows = M >= N;
  const int64_t dim = by_rows ? M : N, blocks = blocks_for(M, N, K, dim);
  if (blocks == 1) return blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
  // Block b covers [start(b), start(b + 1)), starts rounded to 16 (the kernels' register tiles: the
  // library's, and the hand-written one's half tile).
  auto start = [&](int64_t b) { return std::min(dim, (dim * b / blocks + 15) / 16 * 16); };
  parallel_for(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = start(b), n = start(b + 1) - lo;
      if (n <= 0) continue;
      if (by_rows)  // rows lo.. of op(A): A's rows, or its columns when transposed
        blas(ta, tb, n, N, K, alpha, A + (ta ? lo : lo * lda), lda, B, ldb, beta, C + lo * N, N);
      else  // columns lo.. of op(B): B's columns, or its rows when transposed
        blas(ta, tb, M, n, K, alpha, A, lda, B + (tb ? lo * ldb : lo), ldb, beta, C + lo, N);
    }
  });
}

void set_sgemm_kernel(SgemmKernel k) { sgemm_setting().store(resolve(k)); }
SgemmKernel sgemm_kernel_in_use() { return sgemm_setting().load(); }

void sgemm_library_threads(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  keep_blas_serial();
#if MUSICREC_BLAS_OPENBLAS
  openblas_set_num_threads(cpu_threads());
#endif
  blas(false, false, M, N, K, 1.f, A, K, B, N, 0.f, C, N);
#if MUSICREC_BLAS_OPENBLAS
  openblas_set_num_threads(1);
#endif
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, const double*, double,
                           double*);

}  // namespace musicrec::kernels::cpu
