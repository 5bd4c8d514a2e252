// Status checks for CUDA, cuBLAS and cuDNN calls and for kernel launches. Every call into those
// libraries goes through one of these macros; a failure raises musicrec::Error naming the call, the
// file and line, and the library's message. MUSICREC_SYNC_CHECK=1 synchronises after each launch so
// an asynchronous fault is reported at the kernel that caused it.
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "kernels/error.h"

namespace musicrec::kernels::cuda {

// True when MUSICREC_SYNC_CHECK=1 (read once).
bool sync_check_enabled();
// Checks for a launch error (and with sync-check, an execution error) of the kernel just launched.
void after_launch(const char* kernel, const char* file, int line, cudaStream_t stream);
std::string cuda_error_text(cudaError_t e);

}  // namespace musicrec::kernels::cuda

#define MR_CUDA_CHECK(call)                                                                         \
  do {                                                                                              \
    cudaError_t mr_e_ = (call);                                                                     \
    if (mr_e_ != cudaSuccess)                                                                       \
      ::musicrec::throw_error(#call, __FILE__, __LINE__, ::musicrec::kernels::cuda::cuda_error_text(mr_e_)); \
  } while (0)

#define MR_LAUNCH_CHECK(kernel_name, stream) \
  ::musicrec::kernels::cuda::after_launch(kernel_name, __FILE__, __LINE__, stream)
