// cuBLAS matrix product for row-major operands: cuBLAS is column-major, and a row-major C = A B is the
// column-major C^T = B^T A^T, so the operands are passed swapped with no copies.
#include "kernels/cuda/blas.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/check.h"

namespace musicrec::kernels::cuda {

const char* cublas_status_text(cublasStatus_t s) { return cublasGetStatusString(s); }

void gemm(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C) {
  if (M == 0 || N == 0) return;
  MR_CHECK(M < (1LL << 31) && N < (1LL << 31) && K < (1LL << 31), "gemm: dimension exceeds cuBLAS int range");
  MR_CUBLAS_CHECK(cublasSgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
                              static_cast<int>(M), static_cast<int>(K), &alpha, B, static_cast<int>(std::max<int64_t>(1, tb ? K : N)), A,
                              static_cast<int>(std::max<int64_t>(1, ta ? M : K)), &beta, C, static_cast<int>(N)));
  if (sync_check_enabled()) {
    cudaStream_t s = nullptr;
    MR_CUBLAS_CHECK(cublasGetStream(h, &s));
    after_launch("cublasSgemm", __FILE__, __LINE__, s);
  }
}

}  // namespace musicrec::kernels::cuda
