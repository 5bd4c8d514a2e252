// The hand-written AVX-512 float matrix product (sgemm_avx512.cpp), for blas.cpp's blocks.
#pragma once
#include <cstdint>

namespace musicrec::kernels::cpu {
// Whether this CPU runs it (AVX-512 F, DQ, BW and VL: x86-64-v4).
bool sgemm_avx512_available();
// Row-major C[M,N] = alpha * op(A) * op(B) + beta * C with leading dimensions, as cblas_sgemm; single
// threaded. Only where sgemm_avx512_available().
void sgemm_avx512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// y[i * ldy] = alpha * A[i, :] . x + beta * y[i * ldy] for M rows of K (row stride lda): a product with
// one column (op(A) not transposed), which the tiles above would compute 32 columns wide and the
// library packs A for (sgemm_avx512_available() only).
void sgemv_rows_avx512(int64_t M, int64_t K, float alpha, const float* A, int64_t lda, const float* x, float beta,
                       float* y, int64_t ldy);
}  // namespace musicrec::kernels::cpu
