// The arithmetic of the direct CUDA convolution + 2 x 2 max pool forward (conv_pool_forward.cu), written
// once for the device and the host, like conv_filter_grad.h: plain C++ outside nvcc, so the CPU tests
// run it in the kernel's thread order (emulate), and explicit fmaf, so both give the same bits.
//
// Why: at conv 1's shape on the H200, cuDNN's forward ran at 17 % of the sgemm rate (746 us at 1,024
// images) and wrote the whole 262 MB output for the pooling kernel to read back. Here a thread computes
// one pooling row pair of a run of kStrip output columns for one filter, in registers (the filter's taps
// in registers, the input rows in a sliding window), pools them and writes only the pooled values and
// their winners: a quarter of the output.
//
// y[n, k, pr, pc] = max over the window of conv[n, k, 2 pr + a, 2 pc + b] with the winner's position
// oh * OW + ow in argmax, exactly as maxpool2x2_forward picks it (top left first, then top right,
// bottom left, bottom right, each taken only when strictly greater). Each conv value sums its channels,
// then filter rows, then filter columns, in order, one fmaf each.
#pragma once
#include <cmath>
#include <cstdint>
#ifndef __CUDACC__
#include <vector>
#endif

#include "kernels/cuda/conv_filter_grad.h"  // MR_HOST_DEVICE, load_row_window

namespace musicrec::kernels::cuda::conv_pool {

constexpr int kStrip = 16;    // output columns per work item (8 pooled columns)
constexpr int kFilters = 16;  // neighbouring threads: neighbouring filters at the same item
constexpr int kLanes = 8;     // threads per filter
constexpr int kThreads = kFilters * kLanes;
constexpr int kItemsPerLane = 8;
constexpr int64_t kMaxBlockWeights = 4096;  // the block's filters' weights, staged in shared memory (16 KB)

struct Dims {
  int64_t N, C, H, W, K, KH, KW, ph, pw;
  MR_HOST_DEVICE int64_t OH() const { return H + 2 * ph - KH + 1; }
  MR_HOST_DEVICE int64_t OW() const { return W + 2 * pw - KW + 1; }
  MR_HOST_DEVICE int64_t PH() const { return OH() / 2; }
  MR_HOST_DEVICE int64_t PW() const { return OW() / 2; }
  MR_HOST_DEVICE int64_t strips_per_row() const { return (2 * PW() + kStrip - 1) / kStrip; }
  // Work items in order (image, pooled row, run). A block takes kLanes * kItemsPerLane consecutive
  // items for kFilters filters: thread t the filter t % kFilters and, from lane t / kFilters, every
  // kLanes-th item.
  MR_HOST_DEVICE int64_t items() const { return PH() > 0 && PW() > 0 ? N * PH() * strips_per_row() : 0; }
  MR_HOST_DEVICE int64_t item_blocks() const {
    return (items() + kLanes * kItemsPerLane - 1) / (kLanes * kItemsPerLane);
  }
  MR_HOST_DEVICE int64_t filter_blocks() const { return (K + kFilters - 1) / kFilters; }
  // A filter's weights' stride in the block's shared copy. The kFilters neighbouring threads read the
  // same tap of their own filters at once: at a stride that is a multiple of 4 (C x 2 x 2 for conv 2 and
  // 3: 64, 128) those reads fall into at most 8 of the 32 banks and wait on one another, so such a
  // stride gets one float of padding (odd: 16 distinct banks). Conv 1's 50 (and 3 x 3's 9 C) stay as
  // they are: 50 x kk mod 32 already differs for the 16 filters.
  MR_HOST_DEVICE int64_t weight_stride() const {
    const int64_t per_filter = C * KH * KW;
    return per_filter % 4 == 0 ? per_filter + 1 : per_filter;
  }
  MR_HOST_DEVICE bool fits() const {
    const int64_t lim = int64_t(1) << 30;
    return H * W < lim && OH() * OW() < lim && items() < lim && kFilters * weight_stride() <= kMaxBlockWeights;
  }
};

// Item `item` for filter k, whose weights [C][KH][KW] start at wk: writes its pooled values and winners
// into y and argmax ([N, K, PH, PW]).
template <int KH, int KW>
MR_HOST_DEVICE inline void pooled_item(const float* x, const float* wk, float* y, int32_t* argmax, const Dims& d,
                                       int64_t k, int item) {
  const int H = int(d.H), W = int(d.W), ph = int(d.ph), pw = int(d.pw), OW = int(d.OW());
  const int PH = int(d.PH()), PW = int(d.PW()), strips = int(d.strips_per_row()), per_image = PH * strips;
  const int n = item / per_image, r = item - n * per_image;
  const int pr = r / strips, ow0 = (r - pr * strips) * kStrip;
  float acc[2][kStrip];
  for (int s = 0; s < kStrip; ++s) acc[0][s] = acc[1][s] = 0.f;
  for (int c = 0; c < int(d.C); ++c) {
    const float* wv = wk + c * KH * KW;
    const float* xp = x + (int64_t(n) * d.C + c) * H * W;
    // Input rows 2 pr + r - ph for r in [0, KH]: row r feeds output row 0 with filter row r and output
    // row 1 with filter row r - 1, so each output sums its filter rows in order.
    for (int rr = 0; rr <= KH; ++rr) {
      const int ih = 2 * pr + rr - ph;
      if (ih < 0 || ih >= H) continue;  // a padding row: its products are zero
      float xv[kStrip + KW - 1];
      filter_grad::load_row_window<kStrip + KW - 1>(xp + int64_t(ih) * W, ow0 - pw, W, xv);
      if (rr < KH)
        for (int j = 0; j < KW; ++j)
          for (int s = 0; s < kStrip; ++s) acc[0][s] = fmaf(wv[rr * KW + j], xv[s + j], acc[0][s]);
      if (rr >= 1)
        for (int j = 0; j < KW; ++j)
          for (int s = 0; s < kStrip; ++s) acc[1][s] = fmaf(wv[(rr - 1) * KW + j], xv[s + j], acc[1][s]);
    }
  }
  const int64_t row = ((int64_t(n) * d.K + k) * PH + pr) * PW;
  for (int s = 0; s < kStrip; s += 2) {
    const int pc = (ow0 + s) / 2;
    if (pc >= PW) break;
    const int top = 2 * pr * OW + ow0 + s;
    float best = acc[0][s];
    int win = top;
    if (acc[0][s + 1] > best) best = acc[0][s + 1], win = top + 1;
    if (acc[1][s] > best) best = acc[1][s], win = top + OW;
    if (acc[1][s + 1] > best) best = acc[1][s + 1], win = top + OW + 1;
    y[row + pc] = best;
    argmax[row + pc] = win;
  }
}

#ifndef __CUDACC__
// The kernel on the host, item by item (each item's values depend on nothing but its inputs, so the
// thread order does not matter here).
template <int KH, int KW>
void emulate(const float* x, const float* w, const Dims& d, std::vector<float>& y, std::vector<int32_t>& argmax) {
  y.assign(size_t(d.N * d.K * d.PH() * d.PW()), 0.f);
  argmax.assign(y.size(), -1);
  for (int64_t item = 0; item < d.items(); ++item)
    for (int64_t k = 0; k < d.K; ++k)
      pooled_item<KH, KW>(x, w + k * d.C * KH * KW, y.data(), argmax.data(), d, k, int(item));
}
#endif

}  // namespace musicrec::kernels::cuda::conv_pool
