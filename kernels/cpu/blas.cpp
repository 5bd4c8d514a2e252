// CPU matrix product through CBLAS (OpenBLAS from Debian): row-major sgemm/dgemm, and the scope that
// keeps OpenBLAS to the calling thread while our own threads call it.
#include <cblas.h>

#include "kernels/cpu/cpu_kernels.h"

namespace musicrec::kernels::cpu {
namespace {
// BLAS rejects a leading dimension of 0, so an empty inner dimension is handled here: C = beta * C.
template <typename T> void scale_only(int64_t M, int64_t N, T beta, T* C) {
  for (int64_t i = 0; i < M * N; ++i) C[i] = beta == T(0) ? T(0) : beta * C[i];
}
}  // namespace

template <>
void gemm<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
                 float beta, float* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              ta ? M : K, B, tb ? K : N, beta, C, N);
}

template <>
void gemm<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, const double* B,
                  double beta, double* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale_only(M, N, beta, C);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              ta ? M : K, B, tb ? K : N, beta, C, N);
}

#if MUSICREC_BLAS_OPENBLAS
SerialBlasScope::SerialBlasScope() : saved_threads_(openblas_get_num_threads()) {
  if (saved_threads_ > 1) openblas_set_num_threads(1);
}
SerialBlasScope::~SerialBlasScope() {
  if (saved_threads_ > 1) openblas_set_num_threads(saved_threads_);
}
#else  // the reference BLAS runs on its caller's thread anyway
SerialBlasScope::SerialBlasScope() = default;
SerialBlasScope::~SerialBlasScope() = default;
#endif

}  // namespace musicrec::kernels::cpu
