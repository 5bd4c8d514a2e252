// Direct CPU convolution without padding, for outputs at least one vector (16 columns) wide: the pair
// CNN's three layers (conv 1: 1 x 40 x 120 images, 16 filters of 5 x 10; conv 2 and 3: 16 and 32
// channels, 2 x 2 filters, whose filter gradient has its lanes over channels instead:
// conv_channel_lanes.cpp; FilterGrad below runs either). im2col copies each input
// value into KH x KW column rows, and writing those columns cost as much as the product itself for
// conv 1 (measured, 32 images: im2col ~1.5 ms, sgemm 1.7 ms) and 15 % of conv 2's training step
// (perf, session 14), with OpenBLAS's packing of the small per-image products another 15 %. Here an
// image's rows stay in L1 and each output block sums its taps in registers; the data gradient is the
// same forward kernel run over the zero-bordered output gradient with the filters flipped and
// transposed. The fused layers (conv.cpp) and the data gradient run the forward over the flattened
// image (flat_image), whose vectors do not stop at a row's end.
//
// Summation order is fixed (taps in (c, kh, kw) order for an output; for a filter tap, 16 lanes over
// the output columns, image after image within each of a fixed number of image groups, then each
// group's lanes in order, then the groups in order), so results depend neither on the data nor on the
// thread count; they differ from the im2col path's in float rounding only.
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/lane_vector.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/error.h"

namespace musicrec::kernels::cpu::direct {
namespace {

// ---- forward ----
// (No lambdas in this file's kernels: a lambda is a function of its own, which GCC may leave outside
// the instruction-set clone that calls it, compiled for the baseline ISA without FMA: slower, and
// rounded differently. Everything below the clones is always inlined.)

// One tile of outputs: filters k0 .. k0+CB-1, rows oh0 .. oh0+RB-1, and NB blocks of kLanes columns
// from ow0, `step` apart (kLanes, or less where the blocks overlap), each output summing its taps in (c, kh, kw) order. A tile shares each x load between its
// CB filters and each weight between its RB x NB blocks; with CB x RB x NB >= 8 accumulators the
// FMAs' latency is hidden (4 cycles, 2 a cycle), which the v2 tile of 4 filters x 1 block was not.
template <typename T, int CB, int RB, int NB, int FKH, int FKW>
[[gnu::always_inline]] inline void forward_tile(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                                int64_t k0, int64_t oh0, int64_t ow0, int64_t step, const Dims& d) {
  const int64_t taps = d.taps(), OH = d.OH(), OW = d.OW();
  const int64_t KH = FKH ? FKH : d.KH, KW = FKW ? FKW : d.KW;
  Vec<T> acc[CB][RB][NB] = {};
  for (int64_t c = 0; c < d.C; ++c) {
    const T* xc = x + c * d.H * d.W;
    const T* wc = w + k0 * taps + c * KH * KW;
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) {
        Vec<T> xv[RB][NB];
        for (int r = 0; r < RB; ++r)
          for (int b = 0; b < NB; ++b) xv[r][b] = load_lanes(xc + (oh0 + r + kh) * d.W + ow0 + b * step + kw);
        for (int j = 0; j < CB; ++j) {
          const T wv = wc[j * taps + kh * KW + kw];
          for (int r = 0; r < RB; ++r)
            for (int b = 0; b < NB; ++b) acc[j][r][b] += wv * xv[r][b];
        }
      }
  }
  for (int j = 0; j < CB; ++j)
    for (int r = 0; r < RB; ++r)
      for (int b = 0; b < NB; ++b) store_lanes(y + ((k0 + j) * OH + oh0 + r) * OW + ow0 + b * step, acc[j][r][b]);
}

// One image: y[k, oh, ow] = sum_{c, kh, kw} w[k, c, kh, kw] * x[c, oh + kh, ow + kw], in tiles of CB
// filters x RB rows x NB column blocks (smaller where the image has fewer filters or rows). The last
// filter, row and column tiles start early and overlap the one before: the overlapped outputs are
// computed again with the same operations, so they get the same values, and every tile shape gives
// the same bits. Needs OW >= kLanes.
template <typename T, int CB, int RB, int NB, int FKH = 0, int FKW = 0>
[[gnu::always_inline]] inline void forward_image(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                                 const Dims& d) {
  const int64_t OH = d.OH(), OW = d.OW();
  if constexpr (CB > 1) {
    if (d.K < CB) return forward_image<T, 1, RB, NB, FKH, FKW>(x, w, y, d);
  }
  if constexpr (RB > 1) {
    if (OH < RB) return forward_image<T, CB, 1, NB, FKH, FKW>(x, w, y, d);
  }
  // Rows outermost: a tile reads RB + KH - 1 rows of every input channel (conv 2: 16 x 3 rows, 10 KB),
  // which stay in L1 for all the filter blocks; filters outermost streamed the whole image (63 KB) from
  // L2 once per block.
  for (int64_t rb = 0; rb < OH; rb += RB) {
    const int64_t oh0 = std::min<int64_t>(rb, OH - RB);
    for (int64_t kb = 0; kb < d.K; kb += CB) {
      const int64_t k0 = std::min<int64_t>(kb, d.K - CB);
      int64_t ob = 0;
      for (; ob + NB * kLanes <= OW; ob += NB * kLanes) forward_tile<T, CB, RB, NB, FKH, FKW>(x, w, y, k0, oh0, ob, kLanes, d);
      if (ob == OW) continue;
      // The columns left take a whole tile too (a tile of fewer blocks has too few accumulators to hide
      // the FMA latency: conv 2's 54 columns ran at 135 GFLOP/s with a 2-block tile and two 1-block
      // ones): one ending at OW, or, narrower than a tile (conv 3's 26 columns), blocks spread over the
      // width, overlapping.
      if (OW >= NB * kLanes) forward_tile<T, CB, RB, NB, FKH, FKW>(x, w, y, k0, oh0, OW - NB * kLanes, kLanes, d);
      else if constexpr (NB > 1) forward_tile<T, CB, RB, NB, FKH, FKW>(x, w, y, k0, oh0, 0, (OW - kLanes) / (NB - 1), d);
    }
  }
}

// ---- forward over the flattened image ----
// The same sums with the output's columns and rows run together: with the output laid out at the
// input's row stride (y[k, p], p = oh * W + ow), output p reads x[c, p + kh * W + kw], so consecutive
// outputs are consecutive loads whatever the row, and the vectors run over the image as one line.
// The KW - 1 positions at each row's end (ow >= OW) are computed too and mean nothing; in exchange
// a row's ragged last block disappears: conv 2's 17 rows of 54 columns take 60 vectors instead of 72,
// conv 3's 7 x 26, 12 instead of 16. The data gradient's zero-bordered gradient laid out at the input
// gradient's width (DataGrad) makes those positions wrap into the next row's zero border, so its
// output is the contiguous input gradient, every position meaningful.
// Each output sums its taps in (c, kh, kw) order from zero, as forward_tile's: the same bits.

// Filters k0 .. k0+CB-1 at NV consecutive vectors of positions from p0.
template <typename T, int CB, int NV, int FKH, int FKW>
[[gnu::always_inline]] inline void flat_tile(const T* __restrict x, const T* __restrict w, T* __restrict y, int64_t k0,
                                             int64_t p0, const Dims& d, const FlatLayout& f) {
  const int64_t taps = d.taps();
  const int64_t KH = FKH ? FKH : d.KH, KW = FKW ? FKW : d.KW;
  Vec<T> acc[CB][NV] = {};
  for (int64_t c = 0; c < d.C; ++c) {
    const T* xc = x + c * f.x_plane + p0;
    const T* wc = w + k0 * taps + c * KH * KW;
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw) {
        Vec<T> xv[NV];
        for (int v = 0; v < NV; ++v) xv[v] = load_lanes(xc + kh * f.row + kw + v * kLanes);
        for (int j = 0; j < CB; ++j) {
          const T wv = wc[j * taps + kh * KW + kw];
          for (int v = 0; v < NV; ++v) acc[j][v] += wv * xv[v];
        }
      }
  }
  for (int j = 0; j < CB; ++j)
    for (int v = 0; v < NV; ++v) store_lanes(y + (k0 + j) * f.y_plane + p0 + v * kLanes, acc[j][v]);
}

// Positions outermost (a tile's input span stays in L1 for every filter block, as forward_image's
// rows); the last position and filter tiles start early and overlap the ones before (recomputed
// with the same operations: the same values). Needs L >= NV * kLanes.
template <typename T, int CB, int NV, int FKH = 0, int FKW = 0>
[[gnu::always_inline]] inline void flat_image(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                              const Dims& d, const FlatLayout& f) {
  if constexpr (CB > 1) {
    if (d.K < CB) return flat_image<T, 1, NV, FKH, FKW>(x, w, y, d, f);
  }
  constexpr int64_t span = NV * kLanes;
  for (int64_t pb = 0; pb < f.L; pb += span) {
    const int64_t p0 = std::min<int64_t>(pb, f.L - span);
    for (int64_t kb = 0; kb < d.K; kb += CB)
      flat_tile<T, CB, NV, FKH, FKW>(x, w, y, std::min<int64_t>(kb, d.K - CB), p0, d, f);
  }
}

// ---- filter gradient ----

// One block of columns from ow0 of a filter-gradient tile (below); `kMasked` for the last one when
// it overlaps the block before. g: filter k0's gradient row, the next filter's `plane` further; the
// tile's taps read x at xr + xo[t].
template <typename T, int CB, int TB, bool kMasked>
[[gnu::always_inline]] inline void filter_grad_block(Vec<T> (&acc)[CB][TB], const T* __restrict xr,
                                                     const int64_t (&xo)[TB], const T* __restrict g, int64_t plane,
                                                     int64_t ow0, const Vec<T>& mask) {
  Vec<T> gv[CB];
  for (int j = 0; j < CB; ++j) {
    gv[j] = load_lanes(g + j * plane + ow0);
    if constexpr (kMasked) gv[j] *= mask;
  }
  for (int t = 0; t < TB; ++t) {
    const Vec<T> xv = load_lanes(xr + xo[t] + ow0);
    for (int j = 0; j < CB; ++j) acc[j][t] += gv[j] * xv;
  }
}

// One tile of one image's share of the filter gradient: for filters k0 + j (j < CB) and the TB taps
// (c_t, kh, kw_t) of one kernel row kh, lanes[tap][l] += the products gy[k, oh, ow] * x[c, oh + kh,
// ow + kw] over oh and the column blocks (ow = block start + l), in that order whatever the tile.
// xo[t] = c_t * H * W + kw_t locates tap t's input, at[t] = (c_t * KH + kh) * KW + kw_t its weight. The
// tile shares each gradient load between its TB taps and each x load between its CB filters. When
// the width is not a multiple of the lanes, the last block starts early, overlapping the one before,
// and the overlapped columns' gy lanes are zeroed by `mask` so that each product is counted once. (A
// zeroed lane still multiplies a real x: an infinite input gives NaN there, where the im2col path
// would not form the product; such an input has made the forward's outputs non-finite already.) The
// last block is peeled off the column loop, so the loop has no test: v2's tile went from 130 to 147
// GFLOP/s with that alone.
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_tile(const T* __restrict x, const T* __restrict gy, T* __restrict lanes,
                                                    const Vec<T>& mask, int64_t k0, int64_t kh,
                                                    const int64_t (&xo)[TB], const int64_t (&at)[TB], const Dims& d,
                                                    const GradLayout& gl) {
  const int64_t OH = d.OH(), OW = d.OW(), taps = d.taps();
  Vec<T> acc[CB][TB];
  for (int j = 0; j < CB; ++j)
    for (int t = 0; t < TB; ++t) acc[j][t] = load_lanes(lanes + ((k0 + j) * taps + at[t]) * kLanes);
  const int64_t whole = OW / kLanes * kLanes;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* xr = x + (oh + kh) * d.W;
    const T* g = gy + k0 * gl.plane + oh * gl.row;
    for (int64_t ob = 0; ob < whole; ob += kLanes) filter_grad_block<T, CB, TB, false>(acc, xr, xo, g, gl.plane, ob, mask);
    if (whole < OW) filter_grad_block<T, CB, TB, true>(acc, xr, xo, g, gl.plane, OW - kLanes, mask);
  }
  for (int j = 0; j < CB; ++j)
    for (int t = 0; t < TB; ++t) store_lanes(lanes + ((k0 + j) * taps + at[t]) * kLanes, acc[j][t]);
}

// The taps of filters k0 .. k0+CB-1, kernel row by kernel row: a row's C x KW taps (input channel,
// then kernel column) in tiles of TB, single taps for the rest.
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_filters(const T* __restrict x, const T* __restrict gy,
                                                       T* __restrict lanes, const Vec<T>& mask, int64_t k0,
                                                       const Dims& d, const GradLayout& gl) {
  const int64_t row_taps = d.C * d.KW;
  for (int64_t kh = 0; kh < d.KH; ++kh) {
    int64_t t0 = 0;
    for (; t0 + TB <= row_taps; t0 += TB) {
      int64_t xo[TB], at[TB];
      for (int t = 0; t < TB; ++t) {
        const int64_t c = (t0 + t) / d.KW, kw = (t0 + t) % d.KW;
        xo[t] = c * d.H * d.W + kw;
        at[t] = (c * d.KH + kh) * d.KW + kw;
      }
      filter_grad_tile<T, CB, TB>(x, gy, lanes, mask, k0, kh, xo, at, d, gl);
    }
    for (; t0 < row_taps; ++t0) {
      const int64_t c = t0 / d.KW, kw = t0 % d.KW;
      const int64_t xo[1] = {c * d.H * d.W + kw}, at[1] = {(c * d.KH + kh) * d.KW + kw};
      filter_grad_tile<T, CB, 1>(x, gy, lanes, mask, k0, kh, xo, at, d, gl);
    }
  }
}

// One image's share of the filter gradient, added into lanes[K * taps][kLanes], in tiles of CB
// filters (the filters left over take tiles of one: tiles cannot overlap here, they accumulate).
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_image(const T* __restrict x, const T* __restrict gy, T* __restrict lanes,
                                                     const T* __restrict last_mask, const Dims& d,
                                                     const GradLayout& gl) {
  const Vec<T> mask = load_lanes(last_mask);
  int64_t k = 0;
  for (; k + CB <= d.K; k += CB) filter_grad_filters<T, CB, TB>(x, gy, lanes, mask, k, d, gl);
  for (; k < d.K; ++k) filter_grad_filters<T, 1, TB>(x, gy, lanes, mask, k, d, gl);
}

// ---- register tiles and instruction sets ----
// v2 (session 9): forward 4 filters x 1 row x 1 column block, whose 4 accumulators cannot hide the
// FMA's latency (4 cycles, 2 a cycle: 8 needed), and filter gradient 1 filter x 5 taps. v3 (session
// 14): forward 4 x 2 rows x 2 blocks and filter gradient 4 filters x 5 or 4 taps (5 where a kernel
// row's taps divide by 5, as conv 1's 10 do; conv 2's 2 x 16 take 4), 16 to 20 accumulators, which
// need AVX-512's 32 vector registers: with AVX2's 16 (a 16-lane vector is two of them) they would
// spill, so other CPUs and double keep v2's. Every tile gives the same bits (each sum keeps its
// order). Conv 1 at 32 images, 2 threads on the AVX-512 VM: forward 234 -> 305 GFLOP/s, filter
// gradient 130 -> 209 (a sgemm reaches ~320 there); BM_Conv1_Kernels keeps v2 as variant 2. (Filter
// tiles of 2 x 10 and 4 x 10 taps measured 154-219, within the noise of 4 x 5 or worse; 8 filters,
// 141-154.)

// The float versions are compiled once per instruction set (vec_math.h); double keeps one.
MR_CPU_CLONES void forward_image_f32_v2(const float* x, const float* w, float* y, const Dims& d) {
  forward_image<float, 4, 1, 1>(x, w, y, d);
}
MR_CPU_CLONES void forward_image_f32_v3(const float* x, const float* w, float* y, const Dims& d) {
  forward_image<float, 4, 2, 2>(x, w, y, d);
}
// 2 x 2 filters (conv 2 and 3, and their data gradients) with the tap loops unrolled: with run-time
// counts of 2 the loops' own instructions (counters, branches, addresses) were as many as the FMAs.
MR_CPU_CLONES void forward_image_f32_v3_2x2(const float* x, const float* w, float* y, const Dims& d) {
  forward_image<float, 4, 2, 2, 2, 2>(x, w, y, d);
}
MR_CPU_CLONES void filter_grad_image_f32_v2(const float* x, const float* gy, float* lanes, const float* last_mask,
                                            const Dims& d, const GradLayout& gl) {
  filter_grad_image<float, 1, 5>(x, gy, lanes, last_mask, d, gl);
}
MR_CPU_CLONES void filter_grad_image_f32_v3_5(const float* x, const float* gy, float* lanes, const float* last_mask,
                                              const Dims& d, const GradLayout& gl) {
  filter_grad_image<float, 4, 5>(x, gy, lanes, last_mask, d, gl);
}
MR_CPU_CLONES void filter_grad_image_f32_v3_4(const float* x, const float* gy, float* lanes, const float* last_mask,
                                              const Dims& d, const GradLayout& gl) {
  filter_grad_image<float, 4, 4>(x, gy, lanes, last_mask, d, gl);
}

// v3 tiles: 4 filters x 4 vectors (16 accumulators, as forward_image_f32_v3's 4 x 2 rows x 2 blocks);
// otherwise v2's 4 filters x 1 vector.
MR_CPU_CLONES void flat_image_f32_v3_2x2(const float* x, const float* w, float* y, const Dims& d, const FlatLayout& f) {
  flat_image<float, 4, 4, 2, 2>(x, w, y, d, f);
}
MR_CPU_CLONES void flat_image_f32_v3(const float* x, const float* w, float* y, const Dims& d, const FlatLayout& f) {
  flat_image<float, 4, 4>(x, w, y, d, f);
}
MR_CPU_CLONES void flat_image_f32_v2(const float* x, const float* w, float* y, const Dims& d, const FlatLayout& f) {
  flat_image<float, 4, 1>(x, w, y, d, f);
}

template <typename T>
void image_filter_grad(const T* x, const T* gy, T* lanes, const T* last_mask, const Dims& d, bool v3,
                       const GradLayout& gl) {
  if constexpr (std::is_same_v<T, float>) {
    if (!v3) return filter_grad_image_f32_v2(x, gy, lanes, last_mask, d, gl);
    (d.C * d.KW % 5 == 0 ? filter_grad_image_f32_v3_5 : filter_grad_image_f32_v3_4)(x, gy, lanes, last_mask, d, gl);
  } else {
    filter_grad_image<T, 1, 5>(x, gy, lanes, last_mask, d, gl);
  }
}

}  // namespace

bool v3_tiles(DirectTiles tiles) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return tiles != DirectTiles::V2 && avx512;
}

// The float versions above run in their instruction-set clone; double keeps the template.
template <typename T> void image_forward(const T* x, const T* w, T* y, const Dims& d, bool v3) {
  if constexpr (std::is_same_v<T, float>)
    (!v3 ? forward_image_f32_v2 : d.KH == 2 && d.KW == 2 ? forward_image_f32_v3_2x2 : forward_image_f32_v3)(x, w, y, d);
  else forward_image<T, 4, 1, 1>(x, w, y, d);
}
// ---- the per-image pieces (conv_direct.h), shared by the separate and the fused kernels ----
template <typename T>
void image_forward_flat(const T* x, const T* w, T* y, const Dims& d, const FlatLayout& f, bool v3) {
  MR_CHECK(f.L >= kLanes, "image_forward_flat: fewer positions than one vector");
  if constexpr (std::is_same_v<T, float>) {
    if (!v3 || f.L < 4 * kLanes) return flat_image_f32_v2(x, w, y, d, f);  // (under 4 vectors: 1 at a time)
    (d.KH == 2 && d.KW == 2 ? flat_image_f32_v3_2x2 : flat_image_f32_v3)(x, w, y, d, f);
  } else {
    flat_image<T, 4, 1>(x, w, y, d, f);
  }
}



template <typename T>
FilterGrad<T>::FilterGrad(const Dims& d, int64_t N, DirectTiles tiles)
    : d_(d), v3_(v3_tiles(tiles)), channels_(tiles != DirectTiles::ColumnLanes && channel_lanes_apply(d)),
      groups_(filter_grad_groups(N)), weights_(d.K * d.taps()), partial_(static_cast<size_t>(groups_ * weights_)) {
  // The last block's lanes already covered by the block before it are masked off (OW % kLanes new ones).
  const int64_t fresh = d.OW() % kLanes == 0 ? kLanes : d.OW() % kLanes;
  for (int64_t l = 0; l < kLanes; ++l) last_mask_[l] = l >= kLanes - fresh ? T(1) : T(0);
}

template <typename T> void FilterGrad<T>::start_group(FilterGradScratch<T>& s) const {
  s.sums.assign(static_cast<size_t>(channels_ ? weights_ : weights_ * kLanes), T(0));
}

template <typename T>
void FilterGrad<T>::add_image(FilterGradScratch<T>& s, const T* x, const T* gy, const GradLayout& layout) const {
  if (channels_)
    image_filter_grad_channels(channels_last(x, d_, s.transposed), gy, s.sums.data(), d_, layout, v3_);
  else
    image_filter_grad(x, gy, s.sums.data(), last_mask_, d_, v3_, layout);
}

template <typename T>
void FilterGrad<T>::add_image_pooled(FilterGradScratch<T>& s, const T* x, const Winners<T>& winners) const {
  MR_CHECK(channels_, "FilterGrad::add_image_pooled: only with the channel lanes");
  image_filter_grad_pooled(channels_last(x, d_, s.transposed), winners, s.sums.data(), d_, v3_);
}

template <typename T> void FilterGrad<T>::end_group(int64_t group, const FilterGradScratch<T>& s) {
  T* out = partial_.data() + group * weights_;
  if (channels_) {  // kept in the kernel's order, [k][tap][c], until finish
    std::copy(s.sums.begin(), s.sums.end(), out);
    return;
  }
  for (int64_t t = 0; t < weights_; ++t) {
    T a = 0;
    for (int64_t l = 0; l < kLanes; ++l) a += s.sums[size_t(t * kLanes + l)];
    out[t] = a;
  }
}

// Each weight: the groups' sums added in group order from zero (a loop over the weights inside the
// loop over the groups, so it runs in vectors: at conv 3's 4,096 weights x 16 groups the scalar
// loop the other way round was 8 % of the filter gradient).
template <typename T> void FilterGrad<T>::finish(T* gw) const {
  std::vector<T> total(static_cast<size_t>(weights_), T(0));
  for (int64_t g = 0; g < groups_; ++g) {
    const T* p = partial_.data() + g * weights_;
    for (int64_t t = 0; t < weights_; ++t) total[size_t(t)] += p[t];
  }
  if (!channels_) {
    std::copy(total.begin(), total.end(), gw);
    return;
  }
  const int64_t C = d_.C, taps = d_.KH * d_.KW;  // [k][tap][c] to the weights' order [k][c][tap]
  for (int64_t k = 0; k < d_.K; ++k)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = 0; c < C; ++c) gw[(k * C + c) * taps + t] = total[size_t((k * taps + t) * C + c)];
}

// The data gradient as a forward: gx = the full correlation of gy with the filters, which is the
// forward kernel over gy with a (KH - 1, KW - 1) zero border and the filters flipped and transposed
// (flipped_: [C, K, KH, KW]).
template <typename T>
DataGrad<T>::DataGrad(const T* w, const Dims& d, bool v3) : d_(d), v3_(v3), flipped_(static_cast<size_t>(d.K * d.taps())) {
  for (int64_t k = 0; k < d.K; ++k)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t kh = 0; kh < d.KH; ++kh)
        for (int64_t kw = 0; kw < d.KW; ++kw)
          flipped_[size_t(((c * d.K + k) * d.KH + kh) * d.KW + kw)] =
              w[((k * d.C + c) * d.KH + d.KH - 1 - kh) * d.KW + d.KW - 1 - kw];
  if (!channel_lanes_apply(d)) return;
  by_channel_.resize(static_cast<size_t>(d.K * d.taps()));  // [K][tap][C] for the pooled data gradient
  const int64_t taps = d.KH * d.KW;
  for (int64_t k = 0; k < d.K; ++k)
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t c = 0; c < d.C; ++c) by_channel_[size_t((k * taps + t) * d.C + c)] = w[(k * d.C + c) * taps + t];
}

template <typename T> void DataGrad<T>::image_pooled(const Winners<T>& winners, T* gx, std::vector<T>& scratch) const {
  MR_CHECK(!by_channel_.empty(), "DataGrad::image_pooled: only for 2 x 2 filters over a multiple of 16 channels");
  image_data_grad_pooled(winners, by_channel_.data(), gx, d_, scratch);
}

// The bordered gradient's rows are W = OW + KW - 1 wide, not OW + 2 (KW - 1): KW - 1 zeros lead each
// row, and a row's right border is the next row's left one (the flattened forward reads past a row's
// end into them); KW - 1 zeros after the last plane do the same for the last row. So the forward runs
// flattened (image_forward_flat) and writes gx[C, H, W] as it lies.
template <typename T> T* DataGrad<T>::interior(std::vector<T>& bordered, GradLayout* layout) const {
  const int64_t BH = d_.OH() + 2 * (d_.KH - 1), W = d_.W;
  // Zeroed when first sized: the border stays zero, since callers write only the interior and the
  // forward only reads (a fill every image was 1.9 % of conv 2's layer, by perf).
  const size_t size = static_cast<size_t>(d_.K * BH * W + d_.KW - 1);
  if (bordered.size() != size) bordered.assign(size, T(0));
  *layout = GradLayout{W, BH * W};
  return bordered.data() + (d_.KH - 1) * W + d_.KW - 1;
}

template <typename T> void DataGrad<T>::image_bordered(const std::vector<T>& bordered, T* gx) const {
  const int64_t BH = d_.OH() + 2 * (d_.KH - 1), W = d_.W;
  // The bordered gradient's forward: K channels of BH rows, C filters (its W is the row stride only).
  const Dims bd{d_.K, BH, W, d_.C, d_.KH, d_.KW};
  image_forward_flat(bordered.data(), flipped_.data(), gx, bd, FlatLayout{BH * W, W, d_.H * W, d_.H * W}, v3_);
}

template <typename T> void DataGrad<T>::image(const T* gy, T* gx, std::vector<T>& bordered) const {
  const int64_t OH = d_.OH(), OW = d_.OW();
  GradLayout gl;
  T* in = interior(bordered, &gl);
  for (int64_t k = 0; k < d_.K; ++k)
    for (int64_t oh = 0; oh < OH; ++oh)
      std::memcpy(in + k * gl.plane + oh * gl.row, gy + (k * OH + oh) * OW, sizeof(T) * size_t(OW));
  image_bordered(bordered, gx);
}

template class DataGrad<float>;
template class DataGrad<double>;
template class FilterGrad<float>;
template class FilterGrad<double>;
template void image_forward<float>(const float*, const float*, float*, const Dims&, bool);
template void image_forward<double>(const double*, const double*, double*, const Dims&, bool);
template void image_forward_flat<float>(const float*, const float*, float*, const Dims&, const FlatLayout&, bool);
template void image_forward_flat<double>(const double*, const double*, double*, const Dims&, const FlatLayout&, bool);

}  // namespace musicrec::kernels::cpu::direct

namespace musicrec::kernels::cpu {
using direct::Dims;

bool conv_direct_applies(int64_t W, int64_t KW, int64_t ph, int64_t pw) {
  return ph == 0 && pw == 0 && W - KW + 1 >= direct::kLanes;
}

namespace {
// The entry points' dimensions, checked: the direct kernels take no padding and outputs 16 columns wide.
Dims direct_dims(int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, const char* what) {
  const Dims d{C, H, W, K, KH, KW};
  MR_CHECK(conv_direct_applies(W, KW, 0, 0) && d.OH() >= 1, std::string(what) + ": output narrower than 16 columns");
  return d;
}
}  // namespace

template <typename T>
void conv2d_forward_direct(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                           int64_t KH, int64_t KW, DirectTiles tiles) {
  const Dims d = direct_dims(C, H, W, K, KH, KW, "conv2d_forward_direct");
  const bool v3 = direct::v3_tiles(tiles);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {  // by image
    for (int64_t n = n0; n < n1; ++n) direct::image_forward(x + n * C * H * W, w, y + n * K * d.OH() * d.OW(), d, v3);
  });
}

template <typename T>
void conv2d_forward_direct_flat(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                int64_t KH, int64_t KW, DirectTiles tiles) {
  const Dims d = direct_dims(C, H, W, K, KH, KW, "conv2d_forward_direct_flat");
  const direct::FlatLayout f = direct::image_flat_layout(d);
  const bool v3 = direct::v3_tiles(tiles);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) direct::image_forward_flat(x + n * C * H * W, w, y + n * K * f.y_plane, d, f, v3);
  });
}

template <typename T>
void conv2d_backward_data_direct(const T* gy, const T* w, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                 int64_t KH, int64_t KW, DirectTiles tiles) {
  const Dims d = direct_dims(C, H, W, K, KH, KW, "conv2d_backward_data_direct");
  const direct::DataGrad<T> data(w, d, direct::v3_tiles(tiles));
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> bordered;
    for (int64_t n = n0; n < n1; ++n) data.image(gy + n * K * d.OH() * d.OW(), gx + n * C * H * W, bordered);
  });
}

template <typename T>
void conv2d_backward_filter_direct(const T* x, const T* gy, T* gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                   int64_t KH, int64_t KW, DirectTiles tiles) {
  const Dims d = direct_dims(C, H, W, K, KH, KW, "conv2d_backward_filter_direct");
  direct::FilterGrad<T> filter(d, N, tiles);
  parallel_for(direct::filter_grad_groups(N), 1, [&](int64_t g0, int64_t g1) {
    direct::FilterGradScratch<T> lanes;
    for (int64_t g = g0; g < g1; ++g) {
      filter.start_group(lanes);
      for (int64_t n = direct::first_image_of_group(N, g); n < direct::first_image_of_group(N, g + 1); ++n)
        filter.add_image(lanes, x + n * C * H * W, gy + n * K * d.OH() * d.OW(), direct::contiguous(d));
      filter.end_group(g, lanes);
    }
  });
  filter.finish(gw);
}

#define MR_INST(T)                                                                                                \
  template void conv2d_forward_direct<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,     \
                                         int64_t, int64_t, DirectTiles);                                          \
  template void conv2d_forward_direct_flat<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                              int64_t, int64_t, DirectTiles);                                       \
  template void conv2d_backward_data_direct<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t,        \
                                               int64_t, int64_t, int64_t, DirectTiles);                           \
  template void conv2d_backward_filter_direct<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t,      \
                                                 int64_t, int64_t, int64_t, DirectTiles);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
