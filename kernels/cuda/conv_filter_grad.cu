// Direct filter gradient of a convolution on the GPU (the arithmetic and its order: conv_filter_grad.h).
// Two launches: per (group of items, block of 16 filters, tile of channels) the block's sums, then per
// weight the sum over the groups. No atomics, so the result is the same on every run.
#include <string>

#include "kernels/cuda/check.h"
#include "kernels/cuda/conv_filter_grad.h"
#include "kernels/cuda/cuda_kernels.h"

namespace musicrec::kernels::cuda {
namespace {
using filter_grad::Dims;
using filter_grad::kThreads;

template <int KH, int KW>
__global__ void __launch_bounds__(kThreads) k_filter_grad_partial(const float* x, const float* gy,
                                                                  const int32_t* argmax, float* partial, Dims d) {
  constexpr int kTaps = KH * KW, CT = filter_grad::kChannelsPerThread<KH, KW>, kSums = CT * kTaps;
  // One padding column: the totals below read down a column, and rows kThreads apart share one bank.
  __shared__ float sums[kSums][kThreads + 1];
  const int64_t g = blockIdx.x, kb = blockIdx.y, c0 = int64_t(blockIdx.z) * CT;
  const int t = static_cast<int>(threadIdx.x), kk = t % filter_grad::kFilters;
  const int64_t k = kb * filter_grad::kFilters + kk;
  float acc[kSums];
  for (int q = 0; q < kSums; ++q) acc[q] = 0.f;
  if (k < d.K) filter_grad::thread_sums<KH, KW, CT>(x, gy, argmax, d, g, k, c0, t / filter_grad::kFilters, acc);
  for (int q = 0; q < kSums; ++q) sums[q][t] = acc[q];
  __syncthreads();
  // Thread t writes (filter slot, channel, tap) triples t, t + kThreads, ...: slot-major, then channel,
  // then tap, as the partials lie.
  for (int o = t; o < filter_grad::kFilters * kSums; o += kThreads) {
    const int slot = o / kSums, sq = o % kSums, ct = sq / kTaps, q = sq % kTaps;
    const int64_t ko = kb * filter_grad::kFilters + slot, c = c0 + ct;
    if (ko < d.K && c < d.C) partial[((g * d.K + ko) * d.C + c) * kTaps + q] = filter_grad::block_total(sums[sq], slot);
  }
}

__global__ void k_filter_grad_groups(const float* partial, float* gw, Dims d) {
  const int64_t total = d.K * d.C * d.KH * d.KW;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(blockDim.x) * gridDim.x)
    gw[o] = filter_grad::group_total(partial, d, o);
}

template <int KH, int KW>
void launch(const float* x, const float* gy, const int32_t* argmax, float* gw, const Dims& d, float* partial,
            cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(d.groups()), static_cast<unsigned>(d.filter_blocks()),
                  static_cast<unsigned>(d.channel_tiles(filter_grad::kChannelsPerThread<KH, KW>)));
  k_filter_grad_partial<KH, KW><<<grid, kThreads, 0, s>>>(x, gy, argmax, partial, d);
  MR_LAUNCH_CHECK("k_filter_grad_partial", s);
  const int64_t total = d.K * d.C * d.KH * d.KW;
  k_filter_grad_groups<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(partial, gw, d);
  MR_LAUNCH_CHECK("k_filter_grad_groups", s);
}
}  // namespace

bool conv2d_filter_grad_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                        int64_t ph, int64_t pw) {
  const bool compiled = filter_grad::with_filter_size(KH, KW, [](auto, auto) {});
  return compiled && C <= 65535 && K <= 65535 && Dims{N, C, H, W, K, KH, KW, ph, pw}.item_count_fits();
}

size_t conv2d_filter_grad_direct_scratch_bytes(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                                               int64_t KW, int64_t ph, int64_t pw) {
  return static_cast<size_t>(Dims{N, C, H, W, K, KH, KW, ph, pw}.partial_count()) * sizeof(float);
}

void conv2d_filter_grad_direct(const float* x, const float* gy, const int32_t* argmax, float* gw, int64_t N, int64_t C,
                               int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                               void* scratch, cudaStream_t s) {
  const Dims d{N, C, H, W, K, KH, KW, ph, pw};
  MR_CHECK(conv2d_filter_grad_direct_supports(N, C, H, W, K, KH, KW, ph, pw),
           "conv2d_filter_grad_direct: no kernel for " + std::to_string(KH) + "x" + std::to_string(KW) +
               " filters, or more than 65,535 filters or channels, or planes past 32-bit positions");
  if (K == 0 || C == 0) return;
  if (d.items() == 0) {
    fill(gw, K * C * KH * KW, 0.f, s);
    return;
  }
  float* partial = static_cast<float*>(scratch);
  filter_grad::with_filter_size(KH, KW, [&](auto kh, auto kw) {
    launch<decltype(kh)::value, decltype(kw)::value>(x, gy, argmax, gw, d, partial, s);
  });
}

}  // namespace musicrec::kernels::cuda
