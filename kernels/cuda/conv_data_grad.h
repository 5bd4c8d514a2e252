// The arithmetic of the direct CUDA data gradient of a convolution (conv_data_grad.cu), written once for
// the device and the host like conv_filter_grad.h: plain C++ outside nvcc, so the CPU tests run it in the
// kernel's block and thread order (emulate), and explicit fmaf, so both give the same bits.
//
// Why: with the hand-written forward and filter gradient for conv 2's and 3's 2 x 2 filters
// (MUSICREC_CONV_KERNELS=direct-all), the only cuDNN call left in those layers is the data gradient,
// and cuDNN takes the dense gradient: the pooling's backward writes it (conv 2 at 1,024 images: 120 MB,
// three values in four zero) for cuDNN to read back. Here each input value gathers its products
// straight from the pooled gradient and the winners, so that gradient is never written.
//
// gx[n, c, ih, iw] = sum over k, then i, then j of w[k, c, i, j] * g[n, k, ih + ph - i, iw + pw - j], one
// fmaf each, where g is the dense gradient [N, K, OH, OW] (zero outside its plane) or, with argmax, the
// gradient of the 2 x 2 max pool that followed the convolution: [N, K, OH / 2, OW / 2], each value at
// its window's winner and zero elsewhere (the dropped odd last row and column too), exactly the values
// maxpool2x2_backward would write, so both forms give the same bits.
//
// A work item is one run of kStrip input columns of one input row of one image, items in order (image,
// row, run). A block owns kLanes * kItemsPerLane consecutive items and a block of kTiles x CT channels,
// whose weights for every filter it stages in shared memory. Thread t takes the channel tile t % kTiles
// (CT channels: a tile's CT x kStrip sums in registers) and, from lane t / kTiles, every kLanes-th item.
// Neighbouring threads are neighbouring tiles at the same item, so they read the same gradient values:
// one load serves them, and each value loaded serves CT x KW x kStrip multiply-adds' worth of a window.
#pragma once
#include <cmath>
#include <cstdint>
#ifndef __CUDACC__
#include <vector>
#endif

#include "kernels/cuda/conv_filter_grad.h"  // MR_HOST_DEVICE, with_filter_size

namespace musicrec::kernels::cuda::data_grad {

constexpr int kStrip = 16;  // input columns per work item
constexpr int kTiles = 4;   // neighbouring threads: channel tiles at the same item
constexpr int kLanes = 32;  // threads per tile
constexpr int kThreads = kTiles * kLanes;
constexpr int kItemsPerLane = 2;
constexpr int64_t kMaxBlockWeights = 8192;  // the block's channels' weights in shared memory (32 KB)

// Channels a thread sums at once: four for 2 x 2 filters (64 sums in registers; a gradient window of 17
// values then feeds 128 multiply-adds), one for the larger ones, whose windows are wider.
template <int KH, int KW>
constexpr int kChannelsPerThread = KH * KW <= 4 ? 4 : 1;

struct Dims {
  int64_t N, C, H, W, K, KH, KW, ph, pw;
  MR_HOST_DEVICE int64_t OH() const { return H + 2 * ph - KH + 1; }
  MR_HOST_DEVICE int64_t OW() const { return W + 2 * pw - KW + 1; }
  MR_HOST_DEVICE int64_t strips_per_row() const { return (W + kStrip - 1) / kStrip; }
  MR_HOST_DEVICE int64_t items() const { return OH() > 0 && OW() > 0 ? N * H * strips_per_row() : 0; }
  MR_HOST_DEVICE int64_t item_blocks() const {
    return (items() + kLanes * kItemsPerLane - 1) / (kLanes * kItemsPerLane);
  }
  MR_HOST_DEVICE int64_t block_channels(int per_thread) const { return int64_t(kTiles) * per_thread; }
  MR_HOST_DEVICE int64_t channel_blocks(int per_thread) const {
    return (C + block_channels(per_thread) - 1) / block_channels(per_thread);
  }
  // A channel's weights' stride in the block's shared copy: all K filters' taps, made odd. A warp's
  // weight loads read the same tap of its kTiles tiles' channels, CT x stride floats apart; an odd
  // stride puts them in different banks for CT = 1 and 4 (conv 2's and 3's 128 would put all four in one).
  MR_HOST_DEVICE int64_t weight_stride() const { return (K * KH * KW) | 1; }
  MR_HOST_DEVICE bool fits(int per_thread) const {
    const int64_t lim = int64_t(1) << 30;
    return H * W < lim && OH() * OW() < lim && items() < lim && N * K < lim &&
           block_channels(per_thread) * weight_stride() <= kMaxBlockWeights;
  }
};

// The gradient reaching output row oh of plane `plane` (= n * K + k) at columns first .. first + n - 1,
// into gv, zero outside the plane: from the dense gradient, or (argmax set) from the pooled gradient and
// its winners, each window's value and winner loaded once for both its columns. `first` may be odd (a
// run starts at an even input column; 2 x 2 filters then read from one column left): the windows from
// the even column at or before it are expanded, then shifted by one, with constant register indices.
template <int n>
MR_HOST_DEVICE inline void gradient_window(const float* gy, const int32_t* argmax, const Dims& d, int64_t plane, int oh,
                                           int first, float* gv) {
  const int OH = int(d.OH()), OW = int(d.OW());
  if (argmax == nullptr) {
    const bool row_in = oh >= 0 && oh < OH;
    const float* gp = gy + (plane * OH + (row_in ? oh : 0)) * OW;
    for (int m = 0; m < n; ++m) gv[m] = row_in && first + m >= 0 && first + m < OW ? gp[first + m] : 0.f;
    return;
  }
  const int PH = OH / 2, PW = OW / 2, odd = first & 1, pc0 = (first - odd) / 2;  // exact: first - odd is even
  const bool row_in = oh >= 0 && oh < 2 * PH;  // the pooling drops an odd last row
  const int64_t row = (plane * PH + (row_in ? oh / 2 : 0)) * PW;
  const int here = oh * OW;
  constexpr int kWindows = (n + 2) / 2;  // columns 2 pc0 .. 2 pc0 + 2 kWindows - 1: first + n - 1 at most
  float ge[2 * kWindows];
  for (int q = 0; q < kWindows; ++q) {
    const int pc = pc0 + q;
    const bool in = row_in && pc >= 0 && pc < PW;  // and an odd last column
    const int32_t win = in ? argmax[row + pc] : -1;
    const float v = in ? gy[row + pc] : 0.f;
    ge[2 * q] = win == here + 2 * pc ? v : 0.f;
    ge[2 * q + 1] = win == here + 2 * pc + 1 ? v : 0.f;
  }
  for (int m = 0; m < n; ++m) gv[m] = odd ? ge[m + 1] : ge[m];
}

// Item `item` for channels c0 .. c0 + CT - 1 (those below C), whose weights lie at wc + ct * wstride as
// [K][KH][KW]: writes their gx values of the item's run.
template <int KH, int KW, int CT>
MR_HOST_DEVICE inline void item_gradient(const float* gy, const int32_t* argmax, const float* wc, int64_t wstride,
                                         const Dims& d, int64_t c0, int item, float* gx) {
  // 32-bit positions (fits() holds), as in the other direct kernels.
  const int H = int(d.H), W = int(d.W), ph = int(d.ph), pw = int(d.pw), OH = int(d.OH());
  const int strips = int(d.strips_per_row()), per_image = H * strips;
  const int n = item / per_image, r = item - n * per_image;
  const int ih = r / strips, iw0 = (r - ih * strips) * kStrip;
  float acc[CT * kStrip];
  for (int q = 0; q < CT * kStrip; ++q) acc[q] = 0.f;
  for (int k = 0; k < int(d.K); ++k) {
    for (int i = 0; i < KH; ++i) {
      const int oh = ih + ph - i;
      if (oh < 0 || oh >= OH) continue;  // outside the gradient's plane: every product is zero
      // The window of gradient columns the run reads: column iw0 + s takes iw0 + s + pw - j for tap j.
      const int first = iw0 + pw - (KW - 1);
      float gv[kStrip + KW - 1];
      gradient_window<kStrip + KW - 1>(gy, argmax, d, int64_t(n) * d.K + k, oh, first, gv);
      // Unrolled with a predicate rather than a break, so that acc's indices are constants (registers).
#ifdef __CUDACC__
#pragma unroll
#endif
      for (int ct = 0; ct < CT; ++ct) {
        if (c0 + ct < d.C) {
          const float* wk = wc + ct * wstride + (k * KH + i) * KW;
          for (int j = 0; j < KW; ++j)
            for (int s = 0; s < kStrip; ++s)
              acc[ct * kStrip + s] = fmaf(wk[j], gv[s + KW - 1 - j], acc[ct * kStrip + s]);
        }
      }
    }
  }
  for (int ct = 0; ct < CT; ++ct) {
    if (c0 + ct >= d.C) break;
    float* out = gx + ((int64_t(n) * d.C + c0 + ct) * H + ih) * W;
    for (int s = 0; s < kStrip && iw0 + s < W; ++s) out[iw0 + s] = acc[ct * kStrip + s];
  }
}

// Weight i of the channel block starting at c_first, in the order the kernel's threads share the block's
// weights out: its slot in the shared copy (channel cl's [K][KH][KW] at cl * weight_stride()) and value.
// 32-bit divisions: the block's weights number at most kMaxBlockWeights (fits()).
MR_HOST_DEVICE inline void staged_weight(const float* w, const Dims& d, int64_t c_first, int i, int& slot,
                                         float& value) {
  const int taps = int(d.KH * d.KW), per_channel = int(d.K) * taps;
  const int cl = i / per_channel, rem = i - cl * per_channel, k = rem / taps, q = rem - k * taps;
  slot = cl * int(d.weight_stride()) + rem;
  value = w[(k * d.C + c_first + cl) * taps + q];
}

#ifndef __CUDACC__
// The kernel on the host, block by block and thread by thread (each output is written once, by one
// thread, from its own sums: any order gives the same bits; this one is the kernel's).
template <int KH, int KW>
std::vector<float> emulate(const float* gy, const float* w, const Dims& d, const int32_t* argmax = nullptr) {
  constexpr int CT = kChannelsPerThread<KH, KW>;
  std::vector<float> gx(static_cast<size_t>(d.N * d.C * d.H * d.W), 0.f);
  std::vector<float> wblock(static_cast<size_t>(d.block_channels(CT) * d.weight_stride()));
  const int64_t stride = d.weight_stride();
  for (int64_t cb = 0; cb < d.channel_blocks(CT); ++cb) {
    const int64_t c_first = cb * d.block_channels(CT);
    const int64_t channels = d.C - c_first < d.block_channels(CT) ? d.C - c_first : d.block_channels(CT);
    for (int i = 0; i < int(channels * d.K * KH * KW); ++i) {
      int slot;
      float v;
      staged_weight(w, d, c_first, i, slot, v);
      wblock[size_t(slot)] = v;
    }
    for (int64_t b = 0; b < d.item_blocks(); ++b)
      for (int t = 0; t < kThreads; ++t) {
        const int tile = t % kTiles, lane = t / kTiles;
        const int64_t c0 = c_first + int64_t(tile) * CT;
        if (c0 >= d.C) continue;
        for (int step = 0; step < kItemsPerLane; ++step) {
          const int64_t item = b * kLanes * kItemsPerLane + lane + int64_t(step) * kLanes;
          if (item >= d.items()) break;
          item_gradient<KH, KW, CT>(gy, argmax, wblock.data() + tile * CT * stride, stride, d, c0, int(item),
                                    gx.data());
        }
      }
  }
  return gx;
}
#endif

}  // namespace musicrec::kernels::cuda::data_grad
