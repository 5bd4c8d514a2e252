// CUDA context (see cuda_context.h).
#include "engine/cuda_context.h"
#if MUSICREC_WITH_CUDA

#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/tensor.h"
#include "kernels/cuda/blas.h"
#include "kernels/cuda/check.h"

namespace musicrec {
namespace {

class CudaBackend final : public AllocatorBackend {
 public:
  explicit CudaBackend(cudaStream_t s) : stream_(s) {}
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // out of memory is not sticky; clear it so the retry starts clean
      return nullptr;
    }
    MR_CUDA_CHECK(e);
    return p;
  }
  void raw_free(void* p) override { cudaFree(p); }
  void fill_bytes(void* p, size_t bytes, unsigned char v) override { MR_CUDA_CHECK(cudaMemsetAsync(p, v, bytes, stream_)); }
  std::string name() const override { return "CUDA device"; }

 private:
  cudaStream_t stream_;
};

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

}  // namespace

CudaContext& CudaContext::get() {
  static CudaContext* ctx = new CudaContext();
  return *ctx;
}

CudaContext::CudaContext() {
  MR_CUDA_CHECK(cudaSetDevice(device_));
  MR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  MR_CUBLAS_CHECK(cublasCreate(&cublas_));
  MR_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  MR_CUDNN_CHECK(cudnnCreate(&cudnn_));
  MR_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
  settings_.allow_tf32 = env_flag("MUSICREC_TF32");
  settings_.deterministic = !env_flag("MUSICREC_NONDETERMINISTIC");
  settings_.measure_conv_algorithms = env_flag("MUSICREC_CUDNN_FIND");
  if (const char* mb = std::getenv("MUSICREC_CUDNN_WORKSPACE_MB")) settings_.workspace_limit = size_t(std::atoll(mb)) << 20;
  if (const char* ck = std::getenv("MUSICREC_CONV_KERNELS"); ck && ck[0] != '\0') {
    const std::string v = ck;
    MR_CHECK(v == "direct" || v == "direct-all" || v == "cudnn",
             "MUSICREC_CONV_KERNELS is '" + v + "': expected direct, direct-all or cudnn");
    settings_.direct_conv = v != "cudnn";
    settings_.direct_conv_2x2_forward = v == "direct-all";
  }
  // Default math for float32 is plain FP32 (as PyTorch with allow_tf32 = False); TF32 only when asked.
  MR_CUBLAS_CHECK(cublasSetMathMode(cublas_, settings_.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  allocator_ = std::make_unique<CachingAllocator>(std::make_unique<CudaBackend>(stream_));
}

void CudaContext::synchronize() { MR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void* CudaContext::workspace(size_t bytes) {
  if (bytes == 0) return workspace_;
  if (bytes <= workspace_bytes_) return workspace_;
  // Allocate the larger block before releasing the old one: if it cannot be had, the plans already
  // sized for the old workspace keep working.
  void* bigger = nullptr;
  try {
    bigger = allocator_->allocate(bytes);
  } catch (const Error&) {
    return nullptr;
  }
  if (workspace_) allocator_->deallocate(workspace_);
  workspace_ = bigger;
  workspace_bytes_ = bytes;
  return workspace_;
}

kernels::cuda::ConvPlan& CudaContext::conv_plan(const kernels::cuda::ConvShape& shape) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool measured = settings_.measure_conv_algorithms;
  for (auto& e : plans_)
    if (e.plan->shape() == shape && e.plan->deterministic() == settings_.deterministic && e.measure_asked == measured)
      return *e.plan;
  auto plan = std::make_unique<kernels::cuda::ConvPlan>(cudnn_, shape, settings_.allow_tf32, settings_.deterministic,
                                                        settings_.workspace_limit);
  if (measured) measure_conv_algorithms(*plan);
  if (plan->algos().max_ws() > 0 && workspace(plan->algos().max_ws()) == nullptr) plan->use_zero_workspace_algorithms(cudnn_);
  plans_.push_back({std::move(plan), measured});
  return *plans_.back().plan;
}

void CudaContext::measure_conv_algorithms(kernels::cuda::ConvPlan& plan) {
  const kernels::cuda::ConvShape& s = plan.shape();
  // Scratch as tensors: zeroed (timings should not meet the NaNs of poisoned allocations, or
  // denormals) and back in the allocator's cache when they go. Where it cannot be had, the heuristic
  // choice stays.
  auto zeros = [&](int64_t floats) {
    try {
      return Tensor::zeros({floats}, DType::F32, Device::cuda(device_));
    } catch (const Error&) {
      return Tensor();
    }
  };
  const Tensor x = zeros(s.input_elems()), w = zeros(s.filter_elems()), y = zeros(s.output_elems());
  if (!x.defined() || !w.defined() || !y.defined()) return;
  // The workspace at the limit if it can be had; else whatever the shared one holds now.
  const Tensor ws = settings_.workspace_limit > 0 ? zeros(int64_t(settings_.workspace_limit / sizeof(float))) : Tensor();
  kernels::cuda::ConvScratch scratch{x.raw_data(), w.raw_data(), y.raw_data(), ws.defined() ? ws.raw_data() : workspace_,
                                     ws.defined() ? ws.nbytes() : workspace_bytes_};
  plan.measure_algorithms(cudnn_, scratch, settings_.workspace_limit);
  // cuDNN times on the handle's stream; the tensors' blocks are reused only after it has finished.
  synchronize();
}

std::string CudaContext::device_name() const {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device_) != cudaSuccess) return "unknown";
  return prop.name;
}

}  // namespace musicrec
#endif
