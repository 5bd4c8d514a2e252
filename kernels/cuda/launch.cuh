// Grid helpers shared by the .cu files: a grid-stride loop over n elements with a capped grid, so a
// launch never exceeds the grid limits and odd sizes are handled by the loop bound alone.
#pragma once
#include <cstdint>

namespace musicrec::kernels::cuda {

constexpr int kBlock = 256;

inline unsigned grid_for(int64_t n, int block = kBlock) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65535LL * 8) g = 65535LL * 8;
  return static_cast<unsigned>(g);
}

#define MR_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Sum over a block in a fixed tree order (deterministic). `shared` holds blockDim.x floats;
// blockDim.x must be a power of two. The result is valid in thread 0.
__device__ inline float block_sum(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  float total = shared[0];
  __syncthreads();  // so a following call may reuse `shared`
  return total;
}

}  // namespace musicrec::kernels::cuda
