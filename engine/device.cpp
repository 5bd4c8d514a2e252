// Device selection (see device.h).
#include "engine/device.h"

#include <cstdlib>
#include <cstring>

#include "kernels/error.h"
#if MUSICREC_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace musicrec {

std::string Device::str() const { return is_cuda() ? "cuda:" + std::to_string(index) : "cpu"; }

bool cuda_compiled() { return MUSICREC_WITH_CUDA != 0; }

namespace {
struct CudaProbe {
  int count = 0;
  std::string reason;
};
const CudaProbe& probe() {
  static const CudaProbe p = [] {
    CudaProbe r;
#if MUSICREC_WITH_CUDA
    cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")";
      cudaGetLastError();  // clear the sticky error so later calls are not blamed for it
    } else if (r.count == 0) {
      r.reason = "no CUDA device present";
    }
#else
    r.reason = "this build has no CUDA backend (configured with MUSICREC_CUDA=OFF or without a toolkit)";
#endif
    return r;
  }();
  return p;
}
}  // namespace

int cuda_device_count() { return probe().count; }
std::string cuda_unavailable_reason() { return probe().reason; }

Device auto_device() {
  const char* env = std::getenv("MUSICREC_DEVICE");
  if (env && std::strcmp(env, "auto") != 0 && env[0] != '\0') {
    if (std::strcmp(env, "cpu") == 0) return Device::cpu();
    return parse_device(env);
  }
  return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
}

Device parse_device(const std::string& spec) {
  if (spec == "auto") return auto_device();
  if (spec == "cpu") return Device::cpu();
  if (spec.rfind("cuda", 0) == 0) {
    int index = 0;
    if (spec.size() > 4) {
      MR_CHECK(spec[4] == ':' && spec.size() > 5, "bad device '" + spec + "': expected cuda or cuda:N");
      char* end = nullptr;
      long v = std::strtol(spec.c_str() + 5, &end, 10);
      MR_CHECK(*end == '\0' && v >= 0, "bad device '" + spec + "': expected cuda or cuda:N");
      index = static_cast<int>(v);
    }
    MR_CHECK(cuda_device_count() > 0, "device '" + spec + "' requested but " + cuda_unavailable_reason());
    MR_CHECK(index < cuda_device_count(), "device '" + spec + "' requested but only " +
                                              std::to_string(cuda_device_count()) + " CUDA device(s) exist");
    return Device::cuda(index);
  }
  MR_CHECK(false, "unknown device '" + spec + "': expected auto, cpu, cuda or cuda:N");
  return Device::cpu();
}

}  // namespace musicrec
