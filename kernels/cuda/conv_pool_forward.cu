// Direct convolution + 2 x 2 max pool forward on the GPU (the arithmetic: conv_pool_forward.h). A block
// stages its 16 filters' weights in shared memory, then each thread computes its items.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_pool_forward.h"
#include "kernels/cuda/cuda_kernels.h"

namespace musicrec::kernels::cuda {
namespace {
using conv_pool::Dims;
using conv_pool::kFilters;
using conv_pool::kThreads;

template <int KH, int KW>
__global__ void __launch_bounds__(kThreads) k_conv_pool_forward(const float* x, const float* w, float* y,
                                                                int32_t* argmax, Dims d) {
  __shared__ float wblock[conv_pool::kMaxBlockWeights];
  const int64_t kb = blockIdx.y, per_filter = d.C * KH * KW, stride = d.weight_stride();
  const int64_t filters = d.K - kb * kFilters < kFilters ? d.K - kb * kFilters : kFilters;
  // Filter f's weights at f * stride (padded against bank conflicts: Dims::weight_stride).
  for (int64_t i = threadIdx.x; i < filters * per_filter; i += kThreads)
    wblock[(i / per_filter) * stride + i % per_filter] = w[kb * kFilters * per_filter + i];
  __syncthreads();
  const int t = static_cast<int>(threadIdx.x), kk = t % kFilters, lane = t / kFilters;
  if (kk >= filters) return;
  const int64_t first = blockIdx.x * int64_t(conv_pool::kLanes * conv_pool::kItemsPerLane), items = d.items();
  for (int step = 0; step < conv_pool::kItemsPerLane; ++step) {
    const int64_t item = first + lane + int64_t(step) * conv_pool::kLanes;
    if (item >= items) break;
    conv_pool::pooled_item<KH, KW>(x, wblock + kk * stride, y, argmax, d, kb * kFilters + kk, int(item));
  }
}

template <int KH, int KW>
void launch(const float* x, const float* w, float* y, int32_t* argmax, const Dims& d, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(d.item_blocks()), static_cast<unsigned>(d.filter_blocks()));
  k_conv_pool_forward<KH, KW><<<grid, kThreads, 0, s>>>(x, w, y, argmax, d);
  MR_LAUNCH_CHECK("k_conv_pool_forward", s);
}
}  // namespace

bool conv2d_maxpool_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                    int64_t ph, int64_t pw) {
  const bool compiled = filter_grad::with_filter_size(KH, KW, [](auto, auto) {});
  const Dims d{N, C, H, W, K, KH, KW, ph, pw};
  return compiled && d.fits() && d.item_blocks() < (int64_t(1) << 31) && d.filter_blocks() <= 65535;
}

void conv2d_maxpool_direct_forward(const float* x, const float* w, float* y, int32_t* argmax, int64_t N, int64_t C,
                                   int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                                   cudaStream_t s) {
  MR_CHECK(conv2d_maxpool_direct_supports(N, C, H, W, K, KH, KW, ph, pw),
           "conv2d_maxpool_direct_forward: no kernel for " + std::to_string(KH) + "x" + std::to_string(KW) +
               " filters with " + std::to_string(C) + " channels, or planes past 32-bit positions");
  const Dims d{N, C, H, W, K, KH, KW, ph, pw};
  if (d.items() == 0 || K == 0) return;
  filter_grad::with_filter_size(KH, KW, [&](auto kh, auto kw) {
    launch<decltype(kh)::value, decltype(kw)::value>(x, w, y, argmax, d, s);
  });
}

}  // namespace musicrec::kernels::cuda
