// Launch checks and the sync-check switch (see check.h).
#include "kernels/cuda/check.h"

#include <cstdlib>
#include <cstring>

namespace musicrec::kernels::cuda {

bool sync_check_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("MUSICREC_SYNC_CHECK");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return enabled;
}

std::string cuda_error_text(cudaError_t e) {
  return std::string("CUDA error ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
}

void after_launch(const char* kernel, const char* file, int line, cudaStream_t stream) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && sync_check_enabled()) e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess)
    throw_error(kernel, file, line, std::string("kernel ") + kernel + " failed: " + cuda_error_text(e));
}

}  // namespace musicrec::kernels::cuda
