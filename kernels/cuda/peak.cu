// The GPU's float32 multiply-add peak for the benchmarks' ceilings (bench/bench_gpu.cpp BM_Peak_Fma):
// chains of fmaf in registers, enough threads and independent chains per thread to cover the FMA
// pipes' latency on every SM, no memory traffic but one store per thread (so the work is not removed).
// cuBLAS's large sgemm is the table's GFLOP/s ceiling (the best product the library does); this is the
// bound no kernel passes, as BM_Peak_Fma is on the CPU (bench/bench_ops.cpp).
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"

namespace musicrec::kernels::cuda {
namespace {
constexpr int kChains = 8, kThreads = 256, kBlocksPerSm = 4;

__global__ void __launch_bounds__(kThreads) k_fma_peak(int64_t iters, float* out) {
  float acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = 1e-3f * float(k + threadIdx.x % 7);
  const float a = 0.999999f, b = 1e-7f;
  for (int64_t it = 0; it < iters; ++it) {
#pragma unroll
    for (int k = 0; k < kChains; ++k) acc[k] = fmaf(acc[k], a, b);
  }
  float total = 0.f;
  for (int k = 0; k < kChains; ++k) total += acc[k];
  out[blockIdx.x * int64_t(kThreads) + threadIdx.x] = total;
}

int sm_count() {
  int device = 0, sms = 0;
  MR_CUDA_CHECK(cudaGetDevice(&device));
  MR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}
}  // namespace

int64_t fma_peak_threads() { return int64_t(sm_count()) * kBlocksPerSm * kThreads; }

double fma_peak(int64_t iters, float* out, cudaStream_t s) {
  const int blocks = sm_count() * kBlocksPerSm;
  k_fma_peak<<<blocks, kThreads, 0, s>>>(iters, out);
  MR_LAUNCH_CHECK("k_fma_peak", s);
  return 2.0 * double(blocks) * kThreads * double(iters) * kChains;
}

}  // namespace musicrec::kernels::cuda
