// Direct data gradient of a convolution on the GPU (the arithmetic and its order: conv_data_grad.h). A
// block stages its channels' weights (every filter's) in shared memory, then each thread gathers its
// items' input gradients; every value is written once, by one thread: no atomics, the same bits each run.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_data_grad.h"
#include "kernels/cuda/cuda_kernels.h"

namespace musicrec::kernels::cuda {
namespace {
using data_grad::Dims;
using data_grad::kThreads;

template <int KH, int KW>
__global__ void __launch_bounds__(kThreads) k_conv_data_grad(const float* gy, const int32_t* argmax, const float* w,
                                                             float* gx, Dims d) {
  constexpr int CT = data_grad::kChannelsPerThread<KH, KW>;
  __shared__ float wblock[data_grad::kMaxBlockWeights];
  const int64_t c_first = int64_t(blockIdx.y) * d.block_channels(CT), stride = d.weight_stride();
  const int64_t channels = d.C - c_first < d.block_channels(CT) ? d.C - c_first : d.block_channels(CT);
  const int staged = int(channels * d.K * KH * KW);  // at most kMaxBlockWeights
  for (int i = static_cast<int>(threadIdx.x); i < staged; i += kThreads) {
    int slot;
    float v;
    data_grad::staged_weight(w, d, c_first, i, slot, v);
    wblock[slot] = v;
  }
  __syncthreads();
  const int t = static_cast<int>(threadIdx.x), tile = t % data_grad::kTiles, lane = t / data_grad::kTiles;
  const int64_t c0 = c_first + int64_t(tile) * CT;
  if (c0 >= d.C) return;
  const int64_t first = blockIdx.x * int64_t(data_grad::kLanes * data_grad::kItemsPerLane), items = d.items();
  for (int step = 0; step < data_grad::kItemsPerLane; ++step) {
    const int64_t item = first + lane + int64_t(step) * data_grad::kLanes;
    if (item >= items) break;
    data_grad::item_gradient<KH, KW, CT>(gy, argmax, wblock + tile * CT * stride, stride, d, c0, int(item), gx);
  }
}

template <int KH, int KW>
void launch(const float* gy, const int32_t* argmax, const float* w, float* gx, const Dims& d, cudaStream_t s) {
  constexpr int CT = data_grad::kChannelsPerThread<KH, KW>;
  const dim3 grid(static_cast<unsigned>(d.item_blocks()), static_cast<unsigned>(d.channel_blocks(CT)));
  k_conv_data_grad<KH, KW><<<grid, kThreads, 0, s>>>(gy, argmax, w, gx, d);
  MR_LAUNCH_CHECK("k_conv_data_grad", s);
}

// The channels per thread of the kernel compiled for the filter size (0: none is).
int channels_per_thread(int64_t KH, int64_t KW) {
  int ct = 0;
  filter_grad::with_filter_size(KH, KW, [&](auto kh, auto kw) {
    ct = data_grad::kChannelsPerThread<decltype(kh)::value, decltype(kw)::value>;
  });
  return ct;
}
}  // namespace

bool conv2d_data_grad_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                      int64_t ph, int64_t pw) {
  const int ct = channels_per_thread(KH, KW);
  const Dims d{N, C, H, W, K, KH, KW, ph, pw};
  return ct > 0 && d.fits(ct) && d.item_blocks() < (int64_t(1) << 31) && d.channel_blocks(ct) <= 65535;
}

void conv2d_data_grad_direct(const float* gy, const int32_t* argmax, const float* w, float* gx, int64_t N, int64_t C,
                             int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                             cudaStream_t s) {
  MR_CHECK(conv2d_data_grad_direct_supports(N, C, H, W, K, KH, KW, ph, pw),
           "conv2d_data_grad_direct: no kernel for " + std::to_string(KH) + "x" + std::to_string(KW) +
               " filters, or " + std::to_string(K) + " filters' weights past its shared memory, or planes past "
               "32-bit positions");
  const Dims d{N, C, H, W, K, KH, KW, ph, pw};
  if (N * C * H * W == 0) return;
  if (d.items() == 0 || K == 0) {  // no gradient reaches the input
    fill(gx, N * C * H * W, 0.f, s);
    return;
  }
  filter_grad::with_filter_size(KH, KW, [&](auto kh, auto kw) {
    launch<decltype(kh)::value, decltype(kw)::value>(gy, argmax, w, gx, d, s);
  });
}

}  // namespace musicrec::kernels::cuda
