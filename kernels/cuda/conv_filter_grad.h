// The arithmetic of the direct CUDA filter gradient (conv_filter_grad.cu), written once for the device
// and the host. Plain C++ outside nvcc, so the CPU tests run it in the kernels' own block and thread
// order (emulate) and catch indexing errors on a machine without a GPU; every product-sum is an
// explicit fmaf, so the host's emulation and the device give the same bits.
//
// Why a hand-written kernel: on the H200, conv 1's layer forward + backward took 7.4 ms at 1,024 images
// (1 input channel, 5 x 10 taps, 16 filters: bench/results/2026-11-26-h200-gpu-check.md); its measured
// parts other than cuDNN's deterministic filter gradient add up to 2.3 ms, which leaves about 5 ms
// (~1.3 TFLOP/s) for that one call. The sum reduces the whole batch into 800 numbers, which a
// GEMM-shaped algorithm serves badly.
//
// The work: gw[k, c, i, j] = sum over n, oh, ow of gy[n, k, oh, ow] * x[n, c, oh + i - ph, ow + j - pw].
// A work item is one run of kStrip output columns of one output row of one image; the batch's items, in
// order (image, row, run), are cut into fixed groups. A block owns one (group, block of kFilters
// filters, tile of kChannelsPerThread channels); thread t takes filter t % kFilters and, from lane
// t / kFilters, every kLanes-th item of the group. It keeps the tile's KH x KW sums in registers (the
// input row in a sliding window) and reads each gradient value once per tile. Neighbouring threads are neighbouring filters at the same item, so a warp's
// input loads hit the same one or two cache lines. The block then sums its lanes in lane order, and a
// second kernel sums the groups in group order: fixed orders, so every run gives the same bits.
#pragma once
#include <cmath>
#include <cstdint>
#include <type_traits>
#ifndef __CUDACC__
#include <vector>
#endif

#ifdef __CUDACC__
#define MR_HOST_DEVICE __host__ __device__
#else
#define MR_HOST_DEVICE
#endif

namespace musicrec::kernels::cuda::filter_grad {

constexpr int kStrip = 16;    // output columns per work item: 16 gradient values in registers
constexpr int kFilters = 16;  // filters per block, neighbouring threads
constexpr int kLanes = 8;     // threads per filter, each taking every kLanes-th item
constexpr int kThreads = kFilters * kLanes;
constexpr int64_t kItemsPerGroup = 128;  // at least, up to the cap on groups
constexpr int64_t kMaxGroups = 1024;

// Channels a thread sums at once. One for the large filters: conv 1's 50 taps fill the registers, and
// it has one channel. For 2 x 2 filters (conv 2's 16 channels, conv 3's 32), a thread with one channel
// would do 64 multiply-adds per item against 16 gradient loads, each a different cache line across the
// warp's 16 filters: sixteen channels per thread load each gradient value once for 1,024 of them. Each
// sum still takes its terms in the same order (items, filter rows, columns, run), so every tile size
// gives the same bits (ConvFilterGradDirect.ChannelTilesGiveTheSameBits).
template <int KH, int KW>
constexpr int kChannelsPerThread = KH * KW <= 4 ? 16 : 1;

struct Dims {
  int64_t N, C, H, W, K, KH, KW, ph, pw;
  MR_HOST_DEVICE int64_t OH() const { return H + 2 * ph - KH + 1; }
  MR_HOST_DEVICE int64_t OW() const { return W + 2 * pw - KW + 1; }
  MR_HOST_DEVICE int64_t strips_per_row() const { return (OW() + kStrip - 1) / kStrip; }
  MR_HOST_DEVICE int64_t items() const { return OH() > 0 && OW() > 0 ? N * OH() * strips_per_row() : 0; }
  // Groups of items: a function of the shape alone (never of the card), so the sums' order is too.
  MR_HOST_DEVICE int64_t groups() const {
    const int64_t g = (items() + kItemsPerGroup - 1) / kItemsPerGroup;
    return g < kMaxGroups ? g : kMaxGroups;
  }
  MR_HOST_DEVICE int64_t first_item(int64_t g) const { return g * items() / groups(); }
  MR_HOST_DEVICE int64_t filter_blocks() const { return (K + kFilters - 1) / kFilters; }
  // Whether items and an image's positions count in 32 bits (thread_sums).
  MR_HOST_DEVICE bool item_count_fits() const {
    const int64_t lim = int64_t(1) << 30;
    return H * W < lim && OH() * OW() < lim && items() < lim;
  }
  // Partial sums: [groups][K][C][KH * KW].
  MR_HOST_DEVICE int64_t partial_count() const { return groups() * K * C * KH * KW; }
  MR_HOST_DEVICE int64_t channel_tiles(int per_thread) const { return (C + per_thread - 1) / per_thread; }
};

// The filter sizes both direct kernels (this one and conv_pool_forward.h's) are compiled for, in one
// list: with_filter_size(KH, KW, f) calls f(std::integral_constant<int, KH>{}, ...<int, KW>{}) for one
// of them and returns true, else returns false. The kernels' launches and supports(), their emulations'
// callers and the tests all dispatch through it, so a new size is one line here.
template <typename F>
bool with_filter_size(int64_t KH, int64_t KW, F&& f) {
  using std::integral_constant;
  if (KH == 5 && KW == 10) return f(integral_constant<int, 5>{}, integral_constant<int, 10>{}), true;
  if (KH == 3 && KW == 3) return f(integral_constant<int, 3>{}, integral_constant<int, 3>{}), true;
  if (KH == 2 && KW == 2) return f(integral_constant<int, 2>{}, integral_constant<int, 2>{}), true;
  return false;
}

// Input row xr's values at columns first, first + 1, ... (n of them) into xv, zero outside [0, W): the
// window a run of output columns reads (both direct kernels; padding columns give zeros).
template <int n>
MR_HOST_DEVICE inline void load_row_window(const float* xr, int first, int W, float* xv) {
  for (int m = 0; m < n; ++m) {
    const int iw = first + m;
    xv[m] = iw >= 0 && iw < W ? xr[iw] : 0.f;
  }
}

// One item's kStrip gradient values: from the dense gradient gy[N, K, OH, OW], or, with argmax, from the
// gradient of the 2 x 2 max pool that followed the convolution, gy[N, K, OH / 2, OW / 2] with its
// winners' positions in the convolution's plane (oh * OW + ow): a value goes to its window's winner,
// every other position gets 0, the dropped odd last row and column too. Either way the values are those
// of the dense gradient the pooling's backward would write, so both give the same sums, bit for bit;
// the pooled form spares writing and reading that gradient (conv 1's at 1,024 images: 262 MB).
MR_HOST_DEVICE inline void item_gradient(const float* gy, const int32_t* argmax, const Dims& d, int64_t n, int64_t k,
                                         int oh, int ow0, float* gv) {
  const int OH = int(d.OH()), OW = int(d.OW());
  if (argmax == nullptr) {
    const float* gp = gy + ((n * d.K + k) * OH + oh) * OW + ow0;
    // Columns past the row's end take a zero gradient: they add nothing and need no other branch.
    for (int s = 0; s < kStrip; ++s) gv[s] = ow0 + s < OW ? gp[s] : 0.f;
    return;
  }
  const int PH = OH / 2, PW = OW / 2;
  const int64_t row = ((n * d.K + k) * PH + oh / 2) * PW;
  const int here = oh * OW;
  for (int s = 0; s < kStrip; s += 2) {  // ow0 is even (a multiple of kStrip): s, s + 1 share a window
    const int pc = (ow0 + s) / 2;
    const bool in = oh < 2 * PH && pc < PW;
    const int32_t win = in ? argmax[row + pc] : -1;
    const float v = in ? gy[row + pc] : 0.f;
    gv[s] = win == here + ow0 + s ? v : 0.f;
    gv[s + 1] = win == here + ow0 + s + 1 ? v : 0.f;
  }
}

// The sums of filter k, channels c0 .. c0 + CT - 1 (those below C) over the items of group g that lane
// `lane` takes, added into acc[CT][KH * KW] (zeroed by the caller). argmax: nullptr for a dense gy, else
// see item_gradient.
template <int KH, int KW, int CT>
MR_HOST_DEVICE inline void thread_sums(const float* x, const float* gy, const int32_t* argmax, const Dims& d, int64_t g,
                                       int64_t k, int64_t c0, int lane, float* acc) {
  // 32-bit positions (item_count_fits() holds): a 64-bit division costs a GPU thread more than a
  // quarter of an item's 800 multiply-adds.
  const int H = int(d.H), W = int(d.W), ph = int(d.ph), pw = int(d.pw), OH = int(d.OH());
  const int strips = int(d.strips_per_row()), per_image = OH * strips;
  const int end = int(d.first_item(g + 1));
  for (int item = int(d.first_item(g)) + lane; item < end; item += kLanes) {
    const int n = item / per_image, r = item - n * per_image;
    const int oh = r / strips, ow0 = (r - oh * strips) * kStrip;
    float gv[kStrip];
    item_gradient(gy, argmax, d, n, k, oh, ow0, gv);
    // Unrolled with a predicate rather than a break, so that acc's indices are constants and it stays
    // in registers (with a break the compiler put the 2 x 2 tile's 64 sums on the stack).
#ifdef __CUDACC__
#pragma unroll
#endif
    for (int ct = 0; ct < CT; ++ct) {
      if (c0 + ct < d.C) {
        const float* xp = x + (int64_t(n) * d.C + c0 + ct) * H * W;
        for (int i = 0; i < KH; ++i) {
          const int ih = oh + i - ph;
          if (ih < 0 || ih >= H) continue;  // a padding row: every product is zero
          float xv[kStrip + KW - 1];
          load_row_window<kStrip + KW - 1>(xp + int64_t(ih) * W, ow0 - pw, W, xv);
          for (int j = 0; j < KW; ++j)
            for (int s = 0; s < kStrip; ++s)
              acc[(ct * KH + i) * KW + j] = fmaf(gv[s], xv[s + j], acc[(ct * KH + i) * KW + j]);
        }
      }
    }
  }
}

// The block's total for filter slot kk and one tap, from its threads' sums (values[t] = thread t's,
// t = lane * kFilters + kk), in lane order.
MR_HOST_DEVICE inline float block_total(const float* values, int kk) {
  float s = 0.f;
  for (int lane = 0; lane < kLanes; ++lane) s += values[lane * kFilters + kk];
  return s;
}

// gw at flat index o in [K * C * KH * KW) from the groups' partials, in group order.
MR_HOST_DEVICE inline float group_total(const float* partial, const Dims& d, int64_t o) {
  const int64_t stride = d.K * d.C * d.KH * d.KW;
  float s = 0.f;
  for (int64_t g = 0; g < d.groups(); ++g) s += partial[g * stride + o];
  return s;
}

#ifndef __CUDACC__
// The two kernels run on the host, block by block and thread by thread in the kernels' orders: the same
// bits as the device (tests compare both), for the filter sizes the kernels are compiled for. CT: the
// channels per thread (the kernel's is kChannelsPerThread; any gives the same bits).
template <int KH, int KW, int CT = kChannelsPerThread<KH, KW>>
std::vector<float> emulate(const float* x, const float* gy, const Dims& d, const int32_t* argmax = nullptr) {
  constexpr int kTaps = KH * KW, kSums = CT * kTaps;
  std::vector<float> partial(static_cast<size_t>(d.partial_count())), gw(static_cast<size_t>(d.K * d.C * kTaps));
  std::vector<float> sums(static_cast<size_t>(kSums * kThreads));  // [sum][thread], as the kernel's shared array
  for (int64_t g = 0; g < d.groups(); ++g)
    for (int64_t kb = 0; kb < d.filter_blocks(); ++kb)
      for (int64_t tile = 0; tile < d.channel_tiles(CT); ++tile) {
        for (int t = 0; t < kThreads; ++t) {
          const int64_t k = kb * kFilters + t % kFilters;
          float acc[kSums] = {};
          if (k < d.K) thread_sums<KH, KW, CT>(x, gy, argmax, d, g, k, tile * CT, t / kFilters, acc);
          for (int q = 0; q < kSums; ++q) sums[size_t(q * kThreads + t)] = acc[q];
        }
        for (int kk = 0; kk < kFilters && kb * kFilters + kk < d.K; ++kk)
          for (int ct = 0; ct < CT && tile * CT + ct < d.C; ++ct)
            for (int q = 0; q < kTaps; ++q)
              partial[size_t(((g * d.K + kb * kFilters + kk) * d.C + tile * CT + ct) * kTaps + q)] =
                  block_total(&sums[size_t((ct * kTaps + q) * kThreads)], kk);
      }
  for (int64_t o = 0; o < d.K * d.C * kTaps; ++o) gw[size_t(o)] = group_total(partial.data(), d, o);
  return gw;
}
#endif

}  // namespace musicrec::kernels::cuda::filter_grad
