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
#include <type_traits>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define MR_WINNERS_AVX512 1
#else
#define MR_WINNERS_AVX512 0
#endif

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

// Filters k0 .. k0+KB-1, channels c0 .. c0+15: each filter's winners (Q a plane: at[], g[]) in lock
// step, entry e of every filter's list together, so that KB x 4 accumulators are in flight; each winner
// loads its 4 taps' channel vectors at its own position (the filters' winners differ).
template <typename T, int KB>
[[gnu::always_inline]] inline void pooled_filter_tile(const T* __restrict xt, const int32_t* __restrict at,
                                                      const T* __restrict g, int64_t Q, T* __restrict sums, int64_t k0,
                                                      int64_t c0, const Dims& d) {
  const int64_t C = d.C;
  const int64_t off[kTaps] = {0, C, d.W * C, (d.W + 1) * C};
  Vec<T> acc[KB][kTaps];
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) acc[j][t] = load_lanes(sums + ((k0 + j) * kTaps + t) * C + c0);
  at += k0 * Q;
  g += k0 * Q;
  for (int64_t e = 0; e < Q; ++e)
    for (int j = 0; j < KB; ++j) {
      const T* xp = xt + int64_t(at[j * Q + e]) * C + c0;
      const T gv = g[j * Q + e];
      for (int t = 0; t < kTaps; ++t) acc[j][t] += gv * load_lanes(xp + off[t]);
    }
  for (int j = 0; j < KB; ++j)
    for (int t = 0; t < kTaps; ++t) store_lanes(sums + ((k0 + j) * kTaps + t) * C + c0, acc[j][t]);
}

template <typename T, int KB>
[[gnu::always_inline]] inline void pooled_filter_image(const T* __restrict xt, const int32_t* __restrict at,
                                                       const T* __restrict g, T* __restrict sums, const Dims& d) {
  const int64_t Q = (d.OH() / 2) * (d.OW() / 2);
  for (int64_t c0 = 0; c0 < d.C; c0 += kLanes) {
    int64_t k = 0;
    for (; k + KB <= d.K; k += KB) pooled_filter_tile<T, KB>(xt, at, g, Q, sums, k, c0, d);
    for (; k < d.K; ++k) pooled_filter_tile<T, 1>(xt, at, g, Q, sums, k, c0, d);
  }
}

// gxt[H * W][C] (zeroed by the caller) += each filter's winners' products, filter after filter, a
// filter's winners in row-major order; each winner adds g * w[k, :, kh, kw] to the 16-channel vectors
// at its position + (kh, kw). Within a filter, the 4 taps of one winner reach 4 different positions,
// and winners next to each other may reach the same one: each addition reads what the one before wrote.
template <typename T>
[[gnu::always_inline]] inline void pooled_data_image(const int32_t* __restrict at, const T* __restrict g,
                                                     const T* __restrict by_channel, T* __restrict gxt, const Dims& d) {
  const int64_t C = d.C, Q = (d.OH() / 2) * (d.OW() / 2);
  const int64_t off[kTaps] = {0, C, d.W * C, (d.W + 1) * C};
  for (int64_t k = 0; k < d.K; ++k)
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      Vec<T> wv[kTaps];
      for (int t = 0; t < kTaps; ++t) wv[t] = load_lanes(by_channel + (k * kTaps + t) * C + c0);
      for (int64_t e = k * Q; e < (k + 1) * Q; ++e) {
        T* gp = gxt + int64_t(at[e]) * C + c0;
        const T gv = g[e];
        for (int t = 0; t < kTaps; ++t) store_lanes(gp + off[t], load_lanes(gp + off[t]) + gv * wv[t]);
      }
    }
}

MR_CPU_CLONES void pooled_filter_image_f32_wide(const float* xt, const int32_t* at, const float* g, float* sums,
                                                const Dims& d) {
  pooled_filter_image<float, 4>(xt, at, g, sums, d);
}
MR_CPU_CLONES void pooled_filter_image_f32_narrow(const float* xt, const int32_t* at, const float* g, float* sums,
                                                  const Dims& d) {
  pooled_filter_image<float, 1>(xt, at, g, sums, d);
}
MR_CPU_CLONES void pooled_data_image_f32(const int32_t* at, const float* g, const float* by_channel, float* gxt,
                                         const Dims& d) {
  pooled_data_image<float>(at, g, by_channel, gxt, d);
}

// ---- the winners' lists (pooled_winners) ----
// One row of windows: `first_bottom` (+ 2 j) the first output index of window j's bottom row, at the
// output's width; `wider` = W - OW, by which each output row starts further in x's plane than in the
// output, `top_shift` that for the window row's top row.
struct WindowRow {
  int32_t wider, first_bottom, top_shift;
};

// One by one: counting the bottom-row winners first places every window without a branch (window j goes
// to j - (bottom ones before it) if in the top row, else after all the top ones; arithmetic, since which
// row wins is a coin toss).
template <typename T>
void winners_row(const int32_t* __restrict a, const T* __restrict g, int64_t PW, const WindowRow& r,
                 int32_t* __restrict at, T* __restrict gout) {
  int32_t bottoms = 0;
  for (int64_t j = 0; j < PW; ++j) bottoms += a[j] >= r.first_bottom + int32_t(2 * j);
  const int32_t tops = int32_t(PW) - bottoms;
  int32_t before = 0;  // bottom-row winners before window j
  for (int64_t j = 0; j < PW; ++j) {
    const int32_t down = a[j] >= r.first_bottom + int32_t(2 * j), top_place = int32_t(j) - before;
    const int32_t place = top_place + down * (tops + before - top_place);
    at[place] = a[j] + r.top_shift + down * r.wider;
    gout[place] = g[j];
    before += down;
  }
}

#if MR_WINNERS_AVX512
// 16 windows at a time: the vector compress packs a block's top-row winners after those before them,
// and its bottom-row ones into `bottom_*`, which then follow the row's top ones. Each store writes a
// whole vector past the entries it keeps (into the next row's entries, written after, or the slack).
// (One by one this took 5 cycles a window: a fifth of conv 2's backward.)
__attribute__((target("avx512f"))) void winners_row_avx512(const int32_t* a, const float* g, int64_t PW,
                                                           const WindowRow& r, int32_t* at, float* gout,
                                                           int32_t* bottom_at, float* bottom_g) {
  const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t tops = 0, bottoms = 0;
  for (int64_t j0 = 0; j0 < PW; j0 += 16) {
    const int64_t n = std::min<int64_t>(16, PW - j0);
    const __mmask16 valid = n == 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
    const __m512i av = _mm512_maskz_loadu_epi32(valid, a + j0);
    const __m512 gv = _mm512_maskz_loadu_ps(valid, g + j0);
    const __m512i first_bottom = _mm512_add_epi32(_mm512_set1_epi32(r.first_bottom + int32_t(2 * j0)), twice);
    const __mmask16 down = _mm512_mask_cmpge_epi32_mask(valid, av, first_bottom);
    const __mmask16 top = __mmask16(valid & ~down);
    __m512i place = _mm512_add_epi32(av, _mm512_set1_epi32(r.top_shift));
    place = _mm512_mask_add_epi32(place, down, place, _mm512_set1_epi32(r.wider));
    _mm512_storeu_si512(at + tops, _mm512_maskz_compress_epi32(top, place));
    _mm512_storeu_ps(gout + tops, _mm512_maskz_compress_ps(top, gv));
    _mm512_storeu_si512(bottom_at + bottoms, _mm512_maskz_compress_epi32(down, place));
    _mm512_storeu_ps(bottom_g + bottoms, _mm512_maskz_compress_ps(down, gv));
    tops += __builtin_popcount(unsigned(top));
    bottoms += __builtin_popcount(unsigned(down));
  }
  std::copy(bottom_at, bottom_at + bottoms, at + tops);
  std::copy(bottom_g, bottom_g + bottoms, gout + tops);
}
#endif

// [C][P] to [P][C] (kToChannelsLast), or back; C a multiple of 16. Blocks of 16 positions x 16
// channels go through registers (transpose_lanes), the last P % 16 positions one by one. The scalar
// copies this replaces (a load and a store per value) were 5.2 % (x in) and 4.9 % (the data gradient
// out) of a pair CNN training step at 256 by perf, at about one value per cycle; these take 1.7 % and
// 3.0 %, and the step is 6-7 % faster (session 22: the closing note has the A/B). (Session 21 measured a
// register transpose of x alone no faster; software prefetch of the next image's x changed nothing
// measurable either way this time.)
template <bool kToChannelsLast, typename T>
[[gnu::always_inline]] inline void copy_layout_body(const T* __restrict src, T* __restrict dst, int64_t C, int64_t P) {
  const int64_t full = P - P % kLanes;
  for (int64_t p0 = 0; p0 < full; p0 += kLanes)
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      Vec<T> r[kLanes];
      for (int64_t i = 0; i < kLanes; ++i)
        r[i] = load_lanes(kToChannelsLast ? src + (c0 + i) * P + p0 : src + (p0 + i) * C + c0);
      transpose_lanes<T>(r);
      for (int64_t j = 0; j < kLanes; ++j)
        store_lanes(kToChannelsLast ? dst + (p0 + j) * C + c0 : dst + (c0 + j) * P + p0, r[j]);
    }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = full; i < P; ++i) {
      if constexpr (kToChannelsLast) dst[i * C + c] = src[c * P + i];
      else dst[c * P + i] = src[i * C + c];
    }
}
MR_CPU_CLONES void to_channels_last_f32(const float* src, float* dst, int64_t C, int64_t P) {
  copy_layout_body<true>(src, dst, C, P);
}
MR_CPU_CLONES void from_channels_last_f32(const float* src, float* dst, int64_t C, int64_t P) {
  copy_layout_body<false>(src, dst, C, P);
}
template <bool kToChannelsLast, typename T> void copy_layout(const T* src, T* dst, int64_t C, int64_t P) {
  if constexpr (std::is_same_v<T, float>)
    (kToChannelsLast ? to_channels_last_f32 : from_channels_last_f32)(src, dst, C, P);
  else
    copy_layout_body<kToChannelsLast>(src, dst, C, P);
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
  copy_layout<true>(x, xt, C, P);
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
void pooled_winners(const T* gp, const int32_t* argmax, const Dims& d, Winners<T>& out, bool vectors) {
  const int64_t OW = d.OW(), PH = d.OH() / 2, PW = OW / 2, Q = PH * PW;
  out.at.resize(static_cast<size_t>(d.K * Q + kLanes));  // the slack takes the vector stores' overrun
  out.g.resize(static_cast<size_t>(d.K * Q + kLanes));
  bool compress = false;
#if MR_WINNERS_AVX512
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  compress = std::is_same_v<T, float> && vectors && avx512;
  if (compress) {
    out.bottom_at.resize(static_cast<size_t>(PW + kLanes));
    out.bottom_g.resize(static_cast<size_t>(PW + kLanes));
  }
#endif
  const int32_t wider = int32_t(d.W - OW);
  for (int64_t k = 0; k < d.K; ++k)
    for (int64_t i = 0; i < PH; ++i) {
      const int64_t first = k * Q + i * PW;  // the row's first window, and its first list entry
      const WindowRow r{wider, int32_t((2 * i + 1) * OW), int32_t(2 * i) * wider};
#if MR_WINNERS_AVX512
      if constexpr (std::is_same_v<T, float>)
        if (compress) {
          winners_row_avx512(argmax + first, gp + first, PW, r, out.at.data() + first, out.g.data() + first,
                             out.bottom_at.data(), out.bottom_g.data());
          continue;
        }
#endif
      winners_row(argmax + first, gp + first, PW, r, out.at.data() + first, out.g.data() + first);
    }
}

template <typename T>
void image_filter_grad_pooled(const T* xt, const Winners<T>& winners, T* sums, const Dims& d, bool wide) {
  MR_CHECK(channel_lanes_apply(d), "image_filter_grad_pooled: needs 2 x 2 filters and a multiple of 16 channels");
  if constexpr (std::is_same_v<T, float>) {
    (wide ? pooled_filter_image_f32_wide : pooled_filter_image_f32_narrow)(xt, winners.at.data(), winners.g.data(),
                                                                           sums, d);
  } else {
    pooled_filter_image<T, 1>(xt, winners.at.data(), winners.g.data(), sums, d);
  }
}

template <typename T>
void image_data_grad_pooled(const Winners<T>& winners, const T* by_channel, T* gx, const Dims& d,
                            std::vector<T>& scratch) {
  MR_CHECK(channel_lanes_apply(d), "image_data_grad_pooled: needs 2 x 2 filters and a multiple of 16 channels");
  const int64_t C = d.C, P = d.H * d.W;
  T* gxt = aligned_channels_last(d, scratch);
  std::fill(gxt, gxt + C * P, T(0));
  if constexpr (std::is_same_v<T, float>) {
    pooled_data_image_f32(winners.at.data(), winners.g.data(), by_channel, gxt, d);
  } else {
    pooled_data_image<T>(winners.at.data(), winners.g.data(), by_channel, gxt, d);
  }
  copy_layout<false>(gxt, gx, C, P);  // back to [C, H, W]
}

#define MR_INST(T)                                                                                           \
  template T* channels_last<T>(const T*, const Dims&, std::vector<T>&);                                      \
  template void image_filter_grad_channels<T>(const T*, const T*, T*, const Dims&, const GradLayout&, bool); \
  template void pooled_winners<T>(const T*, const int32_t*, const Dims&, Winners<T>&, bool);                \
  template void image_filter_grad_pooled<T>(const T*, const Winners<T>&, T*, const Dims&, bool);           \
  template void image_data_grad_pooled<T>(const Winners<T>&, const T*, T*, const Dims&, std::vector<T>&);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu::direct
