// The direct convolution's gradients for 2 x 2 filters over a multiple of 16 input channels (the pair
// CNN's conv 2 and 3) with the vector lanes over input channels: 16 channels of one (filter, tap) in
// one accumulator. The filter gradient, gw[k, c, kh, kw] = sum over positions of gy[k, oh, ow] *
// x[c, oh + kh, ow + kw], from a dense output gradient or from the pooled one; and the data gradient
// from the pooled one (the dense data gradient is DataGrad's, conv_direct.cpp).
//
// Why not the columns-in-lanes filter gradient (conv_direct.cpp), which conv 1 keeps: there, each weight
// owns 16 lanes (one per output column of a block), so a tile's accumulators are loaded and stored once
// per kernel row and image, a row's ragged last block is masked work, and every group of images ends
// with a horizontal sum of 16 lanes for each of the K x C x 4 weights: at conv 3's 32 x 128 weights and
// 26 columns that overhead was as large as the products (perf: half the time outside the tile loop),
// and im2col + sgemm ran it instead, at 26 % of the cores' FMA peak. With the lanes over channels each
// accumulator is a finished weight sum: nothing to reduce, no masked columns (positions are visited one
// by one), the image's channels-last copy makes each load one aligned vector, and a position's gradient
// values are broadcast scalars.
//
// From the pooled gradient (conv_direct.h, pooled_winners): 2 x 2 max pooling passes one value in four
// back; the dense kernels multiply the three zeros too, and the fused layer wrote the dense gradient
// out for them. Here the filter gradient visits each filter's winners only, and the data gradient adds
// each winner's products into the input positions its taps reach: a quarter of the products, and the
// unpooled gradient is never written.
//
// Summation order. Filter gradient, every weight: the images of a group in order, within an image the
// positions (or winners) in row-major order, one accumulator from zero; then the groups in order
// (FilterGrad::finish). Data gradient, every input value: the filters in order, for each the winners
// whose taps reach it in row-major order (the dense kernel's (k, kh, kw) order). Neither depends on the
// tile, the instruction set's vector width or the thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/lane_vector.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/error.h"

namespace musicrec::kernels::cpu::direct {
namespace {

constexpr int kTaps = 4;  // (kh, kw) = (0, 0), (0, 1), (1, 0), (1, 1)

// Filters k0 .. k0+KB-1 and channels c0 .. c0+15: sums[k][tap][c] += the products over one image's
// positions, row-major. Each position loads its 4 taps' channel vectors once for the KB filters and
// each filter's gradient value once for the 4 taps: KB x 4 accumulators (16 with AVX-512's 32
// registers, enough to hide the FMA's latency; 4 where a vector is two AVX2 registers).
template <typename T, int KB>
[[gnu::always_inline]] inline void channels_tile(const T* __restrict xt, const T* __restrict gy, T* __restrict sums,
                                                 int64_t k0, int64_t c0, const Dims& d, const GradLayout& gl) {
  const int64_t C = d.C, W = d.W, OH = d.OH(), OW = d.OW();
  const int64_t off[kTaps] = {0, C, W * C, (W + 1) * C};
  Vec<T> acc[KB][kTaps];
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) acc[j][t] = load_lanes(sums + ((k0 + j) * kTaps + t) * C + c0);
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* xr = xt + oh * W * C + c0;
    const T* g = gy + k0 * gl.plane + oh * gl.row;
    for (int64_t ow = 0; ow < OW; ++ow) {
      Vec<T> xv[kTaps];
      for (int t = 0; t < kTaps; ++t) xv[t] = load_lanes(xr + ow * C + off[t]);
      for (int j = 0; j < KB; ++j) {
        const T gv = g[j * gl.plane + ow];
        for (int t = 0; t < kTaps; ++t) acc[j][t] += gv * xv[t];
      }
    }
  }
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) store_lanes(sums + ((k0 + j) * kTaps + t) * C + c0, acc[j][t]);
}

// One image: every filter in tiles of KB (the filters left over in tiles of one), every 16 channels.
template <typename T, int KB>
[[gnu::always_inline]] inline void channels_image(const T* __restrict xt, const T* __restrict gy, T* __restrict sums,
                                                  const Dims& d, const GradLayout& gl) {
  for (int64_t c0 = 0; c0 < d.C; c0 += kLanes) {
    int64_t k = 0;
    for (; k + KB <= d.K; k += KB) channels_tile<T, KB>(xt, gy, sums, k, c0, d, gl);
    for (; k < d.K; ++k) channels_tile<T, 1>(xt, gy, sums, k, c0, d, gl);
  }
}

MR_CPU_CLONES void channels_image_f32_wide(const float* xt, const float* gy, float* sums, const Dims& d,
                                           const GradLayout& gl) {
  channels_image<float, 4>(xt, gy, sums, d, gl);
}
MR_CPU_CLONES void channels_image_f32_narrow(const float* xt, const float* gy, float* sums, const Dims& d,
                                             const GradLayout& gl) {
  channels_image<float, 1>(xt, gy, sums, d, gl);
}

// ---- from the pooled gradient ----

// Filters k0 .. k0+KB-1, channels c0 .. c0+15: each filter's winners (Q a plane) in lock step, entry e
// of every filter's list together, so that KB x 4 accumulators are in flight; each winner loads its 4
// taps' channel vectors at its own position (the filters' winners differ).
template <typename T, int KB>
[[gnu::always_inline]] inline void pooled_filter_tile(const T* __restrict xt, const Winner<T>* __restrict winners,
                                                      int64_t Q, T* __restrict sums, int64_t k0, int64_t c0,
                                                      const Dims& d) {
  const int64_t C = d.C;
  const int64_t off[kTaps] = {0, C, d.W * C, (d.W + 1) * C};
  Vec<T> acc[KB][kTaps];
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) acc[j][t] = load_lanes(sums + ((k0 + j) * kTaps + t) * C + c0);
  const Winner<T>* list = winners + k0 * Q;
  for (int64_t e = 0; e < Q; ++e)
    for (int j = 0; j < KB; ++j) {
      const Winner<T> w = list[j * Q + e];
      const T* xp = xt + w.at * C + c0;
      for (int t = 0; t < kTaps; ++t) acc[j][t] += w.g * load_lanes(xp + off[t]);
    }
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) store_lanes(sums + ((k0 + j) * kTaps + t) * C + c0, acc[j][t]);
}

template <typename T, int KB>
[[gnu::always_inline]] inline void pooled_filter_image(const T* __restrict xt, const Winner<T>* __restrict winners,
                                                       T* __restrict sums, const Dims& d) {
  const int64_t Q = (d.OH() / 2) * (d.OW() / 2);
  for (int64_t c0 = 0; c0 < d.C; c0 += kLanes) {
    int64_t k = 0;
    for (; k + KB <= d.K; k += KB) pooled_filter_tile<T, KB>(xt, winners, Q, sums, k, c0, d);
    for (; k < d.K; ++k) pooled_filter_tile<T, 1>(xt, winners, Q, sums, k, c0, d);
  }
}

// gxt[H * W][C] (zeroed by the caller) += each filter's winners' products, filter after filter, a
// filter's winners in row-major order; each winner adds g * w[k, :, kh, kw] to the 16-channel vectors
// at its position + (kh, kw). Within a filter, the 4 taps of one winner reach 4 different positions,
// and winners next to each other may reach the same one: each addition reads what the one before wrote.
template <typename T>
[[gnu::always_inline]] inline void pooled_data_image(const Winner<T>* __restrict winners, const T* __restrict by_channel,
                                                     T* __restrict gxt, const Dims& d) {
  const int64_t C = d.C, Q = (d.OH() / 2) * (d.OW() / 2);
  const int64_t off[kTaps] = {0, C, d.W * C, (d.W + 1) * C};
  for (int64_t k = 0; k < d.K; ++k)
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      Vec<T> wv[kTaps];
      for (int t = 0; t < kTaps; ++t) wv[t] = load_lanes(by_channel + (k * kTaps + t) * C + c0);
      const Winner<T>* list = winners + k * Q;
      for (int64_t e = 0; e < Q; ++e) {
        T* gp = gxt + list[e].at * C + c0;
        const T g = list[e].g;
        for (int t = 0; t < kTaps; ++t) store_lanes(gp + off[t], load_lanes(gp + off[t]) + g * wv[t]);
      }
    }
}

MR_CPU_CLONES void pooled_filter_image_f32_wide(const float* xt, const Winner<float>* winners, float* sums,
                                                const Dims& d) {
  pooled_filter_image<float, 4>(xt, winners, sums, d);
}
MR_CPU_CLONES void pooled_filter_image_f32_narrow(const float* xt, const Winner<float>* winners, float* sums,
                                                  const Dims& d) {
  pooled_filter_image<float, 1>(xt, winners, sums, d);
}
MR_CPU_CLONES void pooled_data_image_f32(const Winner<float>* winners, const float* by_channel, float* gxt,
                                         const Dims& d) {
  pooled_data_image<float>(winners, by_channel, gxt, d);
}

// A cache-line-aligned [H * W][C] in scratch.
template <typename T> T* aligned_channels_last(const Dims& d, std::vector<T>& scratch) {
  scratch.resize(static_cast<size_t>(d.C * d.H * d.W) + 64 / sizeof(T));
  T* p = scratch.data();
  while (reinterpret_cast<uintptr_t>(p) % 64 != 0) ++p;
  return p;
}

}  // namespace

bool channel_lanes_apply(const Dims& d) { return d.KH == 2 && d.KW == 2 && d.C % kLanes == 0; }

template <typename T> T* channels_last(const T* x, const Dims& d, std::vector<T>& scratch) {
  const int64_t C = d.C, P = d.H * d.W;
  // Starting on a cache line, each position's 16 floats are one line: no load of the kernels splits two.
  T* xt = aligned_channels_last(d, scratch);
  // In blocks of 16 positions, so that a block's rows of every channel (C x 64 bytes) stay in L1 while
  // its C-wide rows are written. (A transpose of 16 x 16 blocks in registers, four rounds of shuffles,
  // measured the same: the copy's time is reading x from memory, which it is the first to touch.)
  for (int64_t p0 = 0; p0 < P; p0 += kLanes) {
    const int64_t n = std::min<int64_t>(kLanes, P - p0);
    for (int64_t c = 0; c < C; ++c) {
      const T* src = x + c * P + p0;
      for (int64_t i = 0; i < n; ++i) xt[(p0 + i) * C + c] = src[i];
    }
  }
  return xt;
}

template <typename T>
void image_filter_grad_channels(const T* xt, const T* gy, T* sums, const Dims& d, const GradLayout& gl, bool wide) {
  MR_CHECK(channel_lanes_apply(d), "image_filter_grad_channels: needs 2 x 2 filters and a multiple of 16 channels");
  if constexpr (std::is_same_v<T, float>) {
    (wide ? channels_image_f32_wide : channels_image_f32_narrow)(xt, gy, sums, d, gl);
  } else {
    channels_image<T, 1>(xt, gy, sums, d, gl);
  }
}

template <typename T>
void pooled_winners(const T* gp, const int32_t* argmax, const Dims& d, std::vector<Winner<T>>& out) {
  const int64_t OW = d.OW(), PH = d.OH() / 2, PW = OW / 2, Q = PH * PW;
  out.resize(static_cast<size_t>(d.K * Q + PW));  // PW spare entries: the bottom row's list, below
  Winner<T>* __restrict bottom = out.data() + d.K * Q;
  const int32_t wider = int32_t(d.W - OW);  // an output row oh starts oh * (W - OW) further in x's plane
  for (int64_t k = 0; k < d.K; ++k) {
    const T* __restrict g = gp + k * Q;
    const int32_t* __restrict a = argmax + k * Q;
    Winner<T>* __restrict o = out.data() + k * Q;
    // A row of windows in one pass: each winner is stored in both the top row's list (in place) and the
    // bottom row's (spare entries), and counted in its own (no branch); the bottom row's then follow.
    for (int64_t i = 0; i < PH; ++i, o += PW) {
      const int32_t first_bottom = int32_t((2 * i + 1) * OW);  // winners at or past it are in the bottom row
      const int32_t top_shift = int32_t(2 * i) * wider;
      int64_t top = 0, low = 0;
      for (int64_t j = 0; j < PW; ++j) {
        const int32_t at = a[i * PW + j], down = at >= first_bottom + int32_t(2 * j);
        const Winner<T> w{at + top_shift + down * wider, g[i * PW + j]};
        o[top] = w;
        bottom[low] = w;
        top += 1 - down;
        low += down;
      }
      std::copy(bottom, bottom + low, o + top);
    }
  }
}

template <typename T>
void image_filter_grad_pooled(const T* xt, const Winner<T>* winners, T* sums, const Dims& d, bool wide) {
  MR_CHECK(channel_lanes_apply(d), "image_filter_grad_pooled: needs 2 x 2 filters and a multiple of 16 channels");
  if constexpr (std::is_same_v<T, float>) {
    (wide ? pooled_filter_image_f32_wide : pooled_filter_image_f32_narrow)(xt, winners, sums, d);
  } else {
    pooled_filter_image<T, 1>(xt, winners, sums, d);
  }
}

template <typename T>
void image_data_grad_pooled(const Winner<T>* winners, const T* by_channel, T* gx, const Dims& d,
                            std::vector<T>& scratch) {
  MR_CHECK(channel_lanes_apply(d), "image_data_grad_pooled: needs 2 x 2 filters and a multiple of 16 channels");
  const int64_t C = d.C, P = d.H * d.W;
  T* gxt = aligned_channels_last(d, scratch);
  std::fill(gxt, gxt + C * P, T(0));
  if constexpr (std::is_same_v<T, float>) {
    pooled_data_image_f32(winners, by_channel, gxt, d);
  } else {
    pooled_data_image<T>(winners, by_channel, gxt, d);
  }
  for (int64_t p0 = 0; p0 < P; p0 += kLanes) {  // back to [C, H, W], in blocks as channels_last
    const int64_t n = std::min<int64_t>(kLanes, P - p0);
    for (int64_t c = 0; c < C; ++c) {
      T* dst = gx + c * P + p0;
      for (int64_t i = 0; i < n; ++i) dst[i] = gxt[(p0 + i) * C + c];
    }
  }
}

#define MR_INST(T)                                                                                           \
  template T* channels_last<T>(const T*, const Dims&, std::vector<T>&);                                      \
  template void image_filter_grad_channels<T>(const T*, const T*, T*, const Dims&, const GradLayout&, bool); \
  template void pooled_winners<T>(const T*, const int32_t*, const Dims&, std::vector<Winner<T>>&);          \
  template void image_filter_grad_pooled<T>(const T*, const Winner<T>*, T*, const Dims&, bool);            \
  template void image_data_grad_pooled<T>(const Winner<T>*, const T*, T*, const Dims&, std::vector<T>&);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu::direct
