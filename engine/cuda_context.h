// The CUDA state of the process: one stream, cuBLAS and cuDNN handles bound to it, the caching
// allocator for device memory, one cuDNN workspace that grows on demand, and the convolution plans
// chosen once per shape. Only compiled into CUDA builds; the engine reaches it through cuda_context().
#pragma once
#if MUSICREC_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "kernels/cuda/cudnn_conv.h"

namespace musicrec {

struct CudaSettings {
  bool allow_tf32 = false;            // MUSICREC_TF32=1
  bool deterministic = true;          // MUSICREC_NONDETERMINISTIC=1 allows any cuDNN backward algorithm
  // MUSICREC_CUDNN_FIND=1: choose each convolution shape's algorithms by running and timing all of
  // them once (as PyTorch's cudnn.benchmark) instead of by cuDNN's heuristics. Off until a GPU run has
  // measured it; the choice, and so the rounding, can then differ between processes.
  bool measure_conv_algorithms = false;
  size_t workspace_limit = size_t(256) << 20;  // MUSICREC_CUDNN_WORKSPACE_MB
  // MUSICREC_CONV_KERNELS=direct (the default) | direct-all | cudnn: the hand-written convolution
  // kernels (conv_pool_forward.cu, conv_filter_grad.cu) where they have one for the shape, else cuDNN's.
  // On since the H200 run of 2026-11-28 (bench/results/2026-11-28-h200.md): the pair CNN trains
  // 1.7-2.6x faster than with cuDNN's deterministic algorithms (conv 1's filter gradient: 0.44 ms
  // against 5.6 ms at 1024 images), bit for bit repeatable and equal to the CPU within rounding.
  bool direct_conv = true;
  // direct-all: also the hand-written convolution + pooling forward for 2 x 2 filters (conv 2's and 3's),
  // which the H200 run of 2026-11-28 (session 24) timed at 0.24-0.68x cuDNN's forward + the pooling
  // kernel; plain `direct` takes cuDNN's there, with the hand-written filter and data gradients (1.4-1.8x)
  // behind it (direct_pooled_forward_applies in ops_conv.cpp).
  bool direct_conv_2x2_forward = false;
};

class CudaContext {
 public:
  static CudaContext& get();
  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  CachingAllocator& allocator() { return *allocator_; }
  const CudaSettings& settings() const { return settings_; }
  // For tests and benchmarks that compare both filter-gradient paths in one process.
  void set_direct_conv(bool on, bool forward_2x2 = false) {
    settings_.direct_conv = on;
    settings_.direct_conv_2x2_forward = on && forward_2x2;
  }
  // For benchmarks that compare cuDNN's ways of choosing in one process: plans are kept per shape and
  // per choice, so switching these takes effect at the next convolution.
  void set_measure_conv_algorithms(bool on) { settings_.measure_conv_algorithms = on; }
  void set_deterministic(bool on) { settings_.deterministic = on; }
  void synchronize();

  // Scratch that lives until the next call: grown (never shrunk) when a larger size is asked for.
  // Returns nullptr when that much cannot be had even after emptying the allocator's cache.
  void* workspace(size_t bytes);
  size_t workspace_size() const { return workspace_bytes_; }

  // The plan for this convolution shape under the current settings, created (algorithms chosen) on
  // first use. If its workspace cannot be allocated, the plan switches to zero-workspace algorithms.
  kernels::cuda::ConvPlan& conv_plan(const kernels::cuda::ConvShape& shape);
  size_t conv_plan_count() const { return plans_.size(); }

  std::string device_name() const;

 private:
  CudaContext();
  ~CudaContext() = delete;  // lives until exit: tensors in static storage may free into it late
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::unique_ptr<CachingAllocator> allocator_;
  CudaSettings settings_;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  // Re-chooses the plan's algorithms by timing each on scratch buffers of its shape and up to the
  // workspace limit, allocated for the purpose and released after. Where that memory cannot be had
  // the heuristic choice stays (the plan's algos().measured says which). Called with mu_ held.
  void measure_conv_algorithms(kernels::cuda::ConvPlan& plan);
  struct PlanEntry {
    std::unique_ptr<kernels::cuda::ConvPlan> plan;
    bool measure_asked;  // chosen under MUSICREC_CUDNN_FIND (whether or not the scratch could be had)
  };
  std::vector<PlanEntry> plans_;
  std::mutex mu_;
};

}  // namespace musicrec
#endif
