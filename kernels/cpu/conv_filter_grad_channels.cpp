// The direct filter gradient of 2 x 2 filters over a multiple of 16 input channels (the pair CNN's
// conv 2 and 3), with the vector lanes over input channels: gw[k, c, kh, kw] = sum over positions of
// gy[k, oh, ow] * x[c, oh + kh, ow + kw], 16 channels of one (k, kh, kw) in one accumulator.
//
// Why not the columns-in-lanes kernel (conv_direct.cpp), which conv 1 keeps: there, each weight owns
// 16 lanes (one per output column of a block), so a tile's accumulators are loaded and stored once per
// kernel row and image, a row's ragged last block is masked work, and every group of images ends with a
// horizontal sum of 16 lanes for each of the K x C x 4 weights: at conv 3's 32 x 128 weights and 26
// columns that overhead was as large as the products (perf: half the time outside the tile loop), and
// im2col + sgemm ran it instead, at 26 % of the cores' FMA peak. With the lanes over channels each
// accumulator is a finished weight sum: nothing to reduce, no masked columns (positions are visited one
// by one), the image's channels-last copy makes each load one aligned vector, and a position's gradient
// values are broadcast scalars.
//
// Summation order, for every weight: the images of a group in order, within an image the positions in
// row-major order, one accumulator from zero; then the groups in order (FilterGrad::finish). It does not
// depend on the tile, the instruction set's vector width or the thread count.
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

}  // namespace

bool channel_filter_grad_applies(const Dims& d) { return d.KH == 2 && d.KW == 2 && d.C % kLanes == 0; }

template <typename T> T* channels_last(const T* x, const Dims& d, std::vector<T>& scratch) {
  const int64_t C = d.C, P = d.H * d.W;
  // 64 bytes of slack to start the copy on a cache line: each position's 16 floats are then one line,
  // and no load of the kernel splits two.
  scratch.resize(static_cast<size_t>(C * P) + 64 / sizeof(T));
  T* xt = scratch.data();
  while (reinterpret_cast<uintptr_t>(xt) % 64 != 0) ++xt;
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
  MR_CHECK(channel_filter_grad_applies(d), "image_filter_grad_channels: needs 2 x 2 filters and a multiple of 16 channels");
  if constexpr (std::is_same_v<T, float>) {
    (wide ? channels_image_f32_wide : channels_image_f32_narrow)(xt, gy, sums, d, gl);
  } else {
    channels_image<T, 1>(xt, gy, sums, d, gl);
  }
}

#define MR_INST(T)                                                                                           \
  template T* channels_last<T>(const T*, const Dims&, std::vector<T>&);                                      \
  template void image_filter_grad_channels<T>(const T*, const T*, T*, const Dims&, const GradLayout&, bool);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu::direct
