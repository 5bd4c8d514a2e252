// Thin row-major wrappers over cuBLAS, with status checks that raise musicrec::Error.
#pragma once
#include <cublas_v2.h>

#include <cstdint>

#include "kernels/error.h"

namespace musicrec::kernels::cuda {

const char* cublas_status_text(cublasStatus_t s);

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, float32, on the handle's stream.
void gemm(cublasHandle_t h, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, float* C);

}  // namespace musicrec::kernels::cuda

#define MR_CUBLAS_CHECK(call)                                                                              \
  do {                                                                                                     \
    cublasStatus_t mr_s_ = (call);                                                                         \
    if (mr_s_ != CUBLAS_STATUS_SUCCESS)                                                                    \
      ::musicrec::throw_error(#call, __FILE__, __LINE__,                                                   \
                              std::string("cuBLAS error: ") + ::musicrec::kernels::cuda::cublas_status_text(mr_s_)); \
  } while (0)
