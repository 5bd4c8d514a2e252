// CUDA Gaussian kernel-density estimates (exact, O(n^2)) and inverse-density sample weights.
// Two variants of the same sum, kept side by side as the benchmark's numbered-variant baseline:
//  naive: every thread streams all of y from global memory (relies on L1/L2);
//  tiled: the block stages 256 values of y in shared memory, each read once per block.
// Both add the kernel values in chunks of 256 in float and the chunks in double, in the same order,
// so they agree with each other to the last bit and with the CPU's double sum to float rounding.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/math.h"

namespace musicrec::kernels::cuda {
namespace {

constexpr int kTile = kBlock;

__global__ void k_kde_naive(const float* y, int64_t n, float inv_h, float* density) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float yi = y[i];
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kTile) {
    int64_t end = start + kTile < n ? start + kTile : n;
    float chunk = 0.f;
    for (int64_t j = start; j < end; ++j) chunk += math::gaussian_kernel(yi - y[j], inv_h);
    total += chunk;
  }
  density[i] = static_cast<float>(total / static_cast<double>(n));
}

__global__ void k_kde_tiled(const float* y, int64_t n, float inv_h, float* density) {
  __shared__ float tile[kTile];
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const float yi = i < n ? y[i] : 0.f;
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kTile) {
    int64_t j = start + threadIdx.x;
    tile[threadIdx.x] = j < n ? y[j] : 0.f;
    __syncthreads();
    int count = n - start < kTile ? static_cast<int>(n - start) : kTile;
    float chunk = 0.f;
    for (int k = 0; k < count; ++k) chunk += math::gaussian_kernel(yi - tile[k], inv_h);
    total += chunk;
    __syncthreads();
  }
  if (i < n) density[i] = static_cast<float>(total / static_cast<double>(n));
}

__global__ void k_reciprocal(const float* d, float* inv, int64_t n) {
  MR_GRID_STRIDE(i, n) inv[i] = 1.0f / d[i];
}
__global__ void k_normalise(const float* inv, const float* inv_sum, float* w, int64_t n) {
  const float mean = *inv_sum / static_cast<float>(n);
  MR_GRID_STRIDE(i, n) w[i] = inv[i] / mean;
}

size_t align256(size_t b) { return (b + 255) & ~size_t(255); }

}  // namespace

void kde_density_naive(const float* y, int64_t n, float bandwidth, float* density, cudaStream_t s) {
  if (n == 0) return;
  k_kde_naive<<<static_cast<unsigned>((n + kBlock - 1) / kBlock), kBlock, 0, s>>>(y, n, 1.0f / bandwidth, density);
  MR_LAUNCH_CHECK("kde_density_naive", s);
}
void kde_density_tiled(const float* y, int64_t n, float bandwidth, float* density, cudaStream_t s) {
  if (n == 0) return;
  k_kde_tiled<<<static_cast<unsigned>((n + kBlock - 1) / kBlock), kBlock, 0, s>>>(y, n, 1.0f / bandwidth, density);
  MR_LAUNCH_CHECK("kde_density_tiled", s);
}

size_t kde_weights_scratch_bytes(int64_t n) {
  return align256(sizeof(float) * static_cast<size_t>(n)) + align256(sizeof(float)) + sum_scratch_bytes(n);
}

void kde_weights_from_density(const float* density, float* weights, int64_t n, void* scratch, cudaStream_t s) {
  if (n == 0) return;
  char* base = static_cast<char*>(scratch);
  float* inv = reinterpret_cast<float*>(base);
  float* inv_sum = reinterpret_cast<float*>(base + align256(sizeof(float) * static_cast<size_t>(n)));
  void* sum_scratch = base + align256(sizeof(float) * static_cast<size_t>(n)) + align256(sizeof(float));
  k_reciprocal<<<grid_for(n), kBlock, 0, s>>>(density, inv, n);
  MR_LAUNCH_CHECK("kde_reciprocal", s);
  sum(inv, n, inv_sum, sum_scratch, s);
  k_normalise<<<grid_for(n), kBlock, 0, s>>>(inv, inv_sum, weights, n);
  MR_LAUNCH_CHECK("kde_normalise", s);
}

}  // namespace musicrec::kernels::cuda
