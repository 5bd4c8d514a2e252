// Direct CPU convolution for one input channel without padding: the pair CNN's first layer (1 x 40 x
// 120 images, 16 filters of 5 x 10). im2col there copies each input value into 50 column rows, and
// writing those columns cost as much as the product itself (measured, 32 images: im2col ~1.5 ms, sgemm
// 1.7 ms forward and 3.4 ms for the filter gradient, whose im2col is done again). Here an image's rows
// stay in L1 and each output block sums its taps in registers.
//
// Summation order is fixed (taps in (kh, kw) order for an output; for a filter tap, 16 lanes over the
// output columns, then the lanes in order), so results do not depend on the data; they differ from
// the im2col path's in float rounding only.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

// The 64-byte lane vectors cross no function boundary that is not inlined into the same clone, so
// GCC's note that returning one "changes the ABI" without AVX-512 concerns nothing here.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec::kernels::cpu {
namespace {

constexpr int64_t kLanes = 16;  // output columns per accumulator: one AVX-512 register of floats

// kLanes values as one GCC vector: each clone lowers it to its own registers (one zmm, two ymm or four
// xmm), and the accumulators stay in registers, which nested fixed-count loops over arrays did not
// (measured: 12x slower than im2col that way). Loads and stores go through memcpy (unaligned).
template <typename T> struct LaneVector {
  typedef T type __attribute__((vector_size(kLanes * sizeof(T))));
};
template <typename T> using Vec = typename LaneVector<T>::type;
template <typename T> inline Vec<T> load_lanes(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> inline void store_lanes(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof v); }

// One tile of outputs: channels k0 .. k0+CB-1, rows oh0 .. oh0+RB-1, and NB blocks of kLanes columns
// from ow0, each output summing its taps in (kh, kw) order. A tile shares each x load between its
// CB channels and each weight between its RB x NB blocks; with CB x RB x NB >= 8 accumulators the
// FMAs' latency is hidden (4 cycles, 2 a cycle), which the v2 tile of 4 channels x 1 block was not.
template <typename T, int CB, int RB, int NB>
[[gnu::always_inline]] inline void forward_tile(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                                int64_t k0, int64_t oh0, int64_t ow0, int64_t W, int64_t OH,
                                                int64_t OW, int64_t KH, int64_t KW) {
  const int64_t taps = KH * KW;
  Vec<T> acc[CB][RB][NB] = {};
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      Vec<T> xv[RB][NB];
      for (int r = 0; r < RB; ++r)
        for (int b = 0; b < NB; ++b) xv[r][b] = load_lanes(x + (oh0 + r + kh) * W + ow0 + b * kLanes + kw);
      for (int j = 0; j < CB; ++j) {
        const T wv = w[(k0 + j) * taps + kh * KW + kw];
        for (int r = 0; r < RB; ++r)
          for (int b = 0; b < NB; ++b) acc[j][r][b] += wv * xv[r][b];
      }
    }
  for (int j = 0; j < CB; ++j)
    for (int r = 0; r < RB; ++r)
      for (int b = 0; b < NB; ++b) store_lanes(y + ((k0 + j) * OH + oh0 + r) * OW + ow0 + b * kLanes, acc[j][r][b]);
}

// One image: y[k, oh, ow] = sum_{kh, kw} w[k, kh, kw] * x[oh + kh, ow + kw], in tiles of CB channels x
// RB rows x NB column blocks. The last channel, row and column tiles start early and overlap the one
// before: the overlapped outputs are computed again with the same operations, so they get the same
// values, and every tile shape gives the same bits.
template <typename T, int CB, int RB, int NB>
[[gnu::always_inline]] inline void forward_image(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                                 int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1, taps = KH * KW;
  if (OW < kLanes || K < CB) {  // too small to block: one output at a time, same tap order
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          T a = 0;
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw) a += w[k * taps + kh * KW + kw] * x[(oh + kh) * W + ow + kw];
          y[(k * OH + oh) * OW + ow] = a;
        }
    return;
  }
  if constexpr (RB > 1) {
    if (OH < RB) return forward_image<T, CB, 1, NB>(x, w, y, H, W, K, KH, KW);
  }
  for (int64_t kb = 0; kb < K; kb += CB) {
    const int64_t k0 = std::min<int64_t>(kb, K - CB);
    for (int64_t rb = 0; rb < OH; rb += RB) {
      const int64_t oh0 = std::min<int64_t>(rb, OH - RB);
      int64_t ob = 0;
      for (; ob + NB * kLanes <= OW; ob += NB * kLanes) forward_tile<T, CB, RB, NB>(x, w, y, k0, oh0, ob, W, OH, OW, KH, KW);
      for (; ob < OW; ob += kLanes)
        forward_tile<T, CB, RB, 1>(x, w, y, k0, oh0, std::min(ob, OW - kLanes), W, OH, OW, KH, KW);
    }
  }
}

// One block of columns from ow0 of a filter-gradient tile (below); `kMasked` for the last one when
// it overlaps the block before. g: channel k0's gradient row, the next channel's `plane` further.
template <typename T, int CB, int TB, bool kMasked>
[[gnu::always_inline]] inline void filter_grad_block(Vec<T> (&acc)[CB][TB], const T* __restrict xr,
                                                     const T* __restrict g, int64_t plane, int64_t ow0,
                                                     const Vec<T>& mask) {
  Vec<T> gv[CB];
  for (int j = 0; j < CB; ++j) {
    gv[j] = load_lanes(g + j * plane + ow0);
    if constexpr (kMasked) gv[j] *= mask;
  }
  for (int t = 0; t < TB; ++t) {
    const Vec<T> xv = load_lanes(xr + t + ow0);
    for (int j = 0; j < CB; ++j) acc[j][t] += gv[j] * xv;
  }
}

// One tile of one image's share of the filter gradient: for the taps (k0 + j, kh, kw0 + t), j < CB,
// t < TB, lanes[tap][l] += the products gy[k, oh, ow] * x[oh + kh, ow + kw] over oh and the column
// blocks (ow = block start + l), in that order whatever the tile. The tile shares each gradient load
// between its TB taps and each x load between its CB channels. When the width is not a multiple of the
// lanes, the last block starts early, overlapping the one before, and the overlapped columns' gy lanes
// are zeroed by `mask` so that each product is counted once. (A zeroed lane still multiplies a real x:
// an infinite input gives NaN there, where the im2col path would not form the product; such an input
// has made the forward's outputs non-finite already.) The last block is peeled off the column loop,
// so the loop has no test: v2's tile went from 130 to 147 GFLOP/s with that alone.
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_tile(const T* __restrict x, const T* __restrict gy, T* __restrict lanes,
                                                    const Vec<T>& mask, int64_t k0, int64_t kh, int64_t kw0, int64_t W,
                                                    int64_t OH, int64_t OW, int64_t KH, int64_t KW) {
  Vec<T> acc[CB][TB];
  for (int j = 0; j < CB; ++j)
    for (int t = 0; t < TB; ++t) acc[j][t] = load_lanes(lanes + (((k0 + j) * KH + kh) * KW + kw0 + t) * kLanes);
  const int64_t whole = OW / kLanes * kLanes;
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* xr = x + (oh + kh) * W + kw0;
    const T* g = gy + (k0 * OH + oh) * OW;
    for (int64_t ob = 0; ob < whole; ob += kLanes) filter_grad_block<T, CB, TB, false>(acc, xr, g, OH * OW, ob, mask);
    if (whole < OW) filter_grad_block<T, CB, TB, true>(acc, xr, g, OH * OW, OW - kLanes, mask);
  }
  for (int j = 0; j < CB; ++j)
    for (int t = 0; t < TB; ++t) store_lanes(lanes + (((k0 + j) * KH + kh) * KW + kw0 + t) * kLanes, acc[j][t]);
}

// The taps of channels k0 .. k0+CB-1, in tiles of TB taps and single taps for the rest of a row.
// (No lambdas in this file's kernels: a lambda is a function of its own, which GCC may leave outside
// the instruction-set clone that calls it, compiled for the baseline ISA without FMA: slower, and
// rounded differently.)
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_channels(const T* __restrict x, const T* __restrict gy,
                                                        T* __restrict lanes, const Vec<T>& mask, int64_t k0, int64_t W,
                                                        int64_t OH, int64_t OW, int64_t KH, int64_t KW) {
  for (int64_t kh = 0; kh < KH; ++kh) {
    int64_t kw0 = 0;
    for (; kw0 + TB <= KW; kw0 += TB) filter_grad_tile<T, CB, TB>(x, gy, lanes, mask, k0, kh, kw0, W, OH, OW, KH, KW);
    for (; kw0 < KW; ++kw0) filter_grad_tile<T, CB, 1>(x, gy, lanes, mask, k0, kh, kw0, W, OH, OW, KH, KW);
  }
}

// One image's share of the filter gradient for K channels (gy's planes and the lane rows of those
// channels), in tiles of CB channels x TB taps; the channels left over take tiles of one (tiles
// cannot overlap here: they accumulate).
template <typename T, int CB, int TB>
[[gnu::always_inline]] inline void filter_grad_image(const T* __restrict x, const T* __restrict gy, T* __restrict lanes,
                                                     const T* __restrict last_mask, int64_t H, int64_t W, int64_t K,
                                                     int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1;
  const Vec<T> mask = load_lanes(last_mask);
  int64_t k = 0;
  for (; k + CB <= K; k += CB) filter_grad_channels<T, CB, TB>(x, gy, lanes, mask, k, W, OH, OW, KH, KW);
  for (; k < K; ++k) filter_grad_channels<T, 1, TB>(x, gy, lanes, mask, k, W, OH, OW, KH, KW);
}

// Register tiles. v2 (session 9): forward 4 channels x 1 row x 1 column block, whose 4 accumulators
// cannot hide the FMA's latency (4 cycles, 2 a cycle: 8 needed), and filter gradient 1 channel x 5
// taps. v3: forward 4 x 2 rows x 2 blocks and filter gradient 4 channels x 5 taps, 16 and 20
// accumulators, which need AVX-512's 32 vector registers: with AVX2's 16 (a 16-lane vector is two of
// them) they would spill, so other CPUs and double keep v2's. Every tile gives the same bits (each sum
// keeps its order). Conv 1 at 32 images, 2 threads on the AVX-512 VM: forward 234 -> 305 GFLOP/s,
// filter gradient 130 -> 209 (a sgemm reaches ~320 there); BM_Conv1_Kernels keeps v2 as variant 2.
// (Filter tiles of 2 x 10 and 4 x 10 taps measured 154-219, within the noise of 4 x 5 or worse; 8
// channels, 141-154.)
bool use_v3_tiles(DirectTiles tiles) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return tiles == DirectTiles::Best && avx512;
}

// The float versions are compiled once per instruction set (vec_math.h); double keeps one.
MR_CPU_CLONES void forward_image_f32_v2(const float* x, const float* w, float* y, int64_t H, int64_t W, int64_t K,
                                        int64_t KH, int64_t KW) {
  forward_image<float, 4, 1, 1>(x, w, y, H, W, K, KH, KW);
}
MR_CPU_CLONES void forward_image_f32_v3(const float* x, const float* w, float* y, int64_t H, int64_t W, int64_t K,
                                        int64_t KH, int64_t KW) {
  forward_image<float, 4, 2, 2>(x, w, y, H, W, K, KH, KW);
}
MR_CPU_CLONES void filter_grad_image_f32_v2(const float* x, const float* gy, float* lanes, const float* last_mask,
                                            int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  filter_grad_image<float, 1, 5>(x, gy, lanes, last_mask, H, W, K, KH, KW);
}
MR_CPU_CLONES void filter_grad_image_f32_v3(const float* x, const float* gy, float* lanes, const float* last_mask,
                                            int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  filter_grad_image<float, 4, 5>(x, gy, lanes, last_mask, H, W, K, KH, KW);
}

// The float versions above run in their instruction-set clone; double keeps the template.
template <typename T>
inline void image_forward(const T* x, const T* w, T* y, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                          bool v3) {
  if constexpr (std::is_same_v<T, float>) (v3 ? forward_image_f32_v3 : forward_image_f32_v2)(x, w, y, H, W, K, KH, KW);
  else forward_image<T, 4, 1, 1>(x, w, y, H, W, K, KH, KW);
}
template <typename T>
inline void image_filter_grad(const T* x, const T* gy, T* lanes, const T* last_mask, int64_t H, int64_t W, int64_t K,
                              int64_t KH, int64_t KW, bool v3) {
  if constexpr (std::is_same_v<T, float>)
    (v3 ? filter_grad_image_f32_v3 : filter_grad_image_f32_v2)(x, gy, lanes, last_mask, H, W, K, KH, KW);
  else filter_grad_image<T, 1, 5>(x, gy, lanes, last_mask, H, W, K, KH, KW);
}

// The filter gradient for outputs at least a block wide, by output channel: each thread sums its
// channels' taps over every image, in the serial order. planes(n, k0, k1, scratch) gives image n's
// output-gradient planes k0..k1-1 (contiguous), from the dense gradient or unpooled into `scratch`
// (the thread's own).
template <typename T, typename Planes>
void filter_grad_by_channel(const T* x, T* gw, int64_t N, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                            DirectTiles tiles, const Planes& planes) {
  const bool v3 = use_v3_tiles(tiles);
  const int64_t OW = W - KW + 1, taps = K * KH * KW, per_k = KH * KW * kLanes;
  // The last block's lanes already covered by the block before it are masked off (OW % kLanes new ones).
  T last_mask[kLanes];
  const int64_t fresh = OW % kLanes == 0 ? kLanes : OW % kLanes;
  for (int64_t l = 0; l < kLanes; ++l) last_mask[l] = l >= kLanes - fresh ? T(1) : T(0);
  std::vector<T> lanes(static_cast<size_t>(taps * kLanes), T(0));
  // Threads take whole tiles of v3's 4 channels (parallel_for would cut 16 channels into 8 chunks of
  // 2 on two threads, too few for the tile), unless that leaves a thread without work.
  const int64_t block = v3 && K / 4 >= cpu_threads() ? 4 : 1;
  parallel_for((K + block - 1) / block, 1, [&](int64_t b0, int64_t b1) {
    const int64_t k0 = b0 * block, k1 = std::min(K, b1 * block);
    std::vector<T> scratch;
    for (int64_t n = 0; n < N; ++n)
      image_filter_grad(x + n * H * W, planes(n, k0, k1, scratch), lanes.data() + k0 * per_k, last_mask, H, W,
                        k1 - k0, KH, KW, v3);
  });
  for (int64_t t = 0; t < taps; ++t) {
    T a = 0;
    for (int64_t l = 0; l < kLanes; ++l) a += lanes[size_t(t * kLanes + l)];
    gw[t] = a;
  }
}

}  // namespace

template <typename T>
void conv2d_forward_direct_c1(const T* x, const T* w, T* y, int64_t N, int64_t H, int64_t W, int64_t K, int64_t KH,
                              int64_t KW, DirectTiles tiles) {
  const int64_t in = H * W, out = K * (H - KH + 1) * (W - KW + 1);
  const bool v3 = use_v3_tiles(tiles);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {  // by image
    for (int64_t n = n0; n < n1; ++n) image_forward(x + n * in, w, y + n * out, H, W, K, KH, KW, v3);
  });
}

template <typename T>
void conv2d_backward_filter_direct_c1(const T* x, const T* gy, T* gw, int64_t N, int64_t H, int64_t W, int64_t K,
                                      int64_t KH, int64_t KW, DirectTiles tiles) {
  const int64_t OW = W - KW + 1, in = H * W, plane = (H - KH + 1) * OW, out = K * plane, taps = K * KH * KW;
  if (OW < kLanes) {  // narrower than one block: plain sums, in (n, oh, ow) order
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t k = t / (KH * KW), kh = t / KW % KH, kw = t % KW, OH = H - KH + 1;
      T a = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow)
            a += gy[n * out + (k * OH + oh) * OW + ow] * x[n * in + (oh + kh) * W + ow + kw];
      gw[t] = a;
    }
    return;
  }
  filter_grad_by_channel(x, gw, N, H, W, K, KH, KW, tiles,
                         [&](int64_t n, int64_t k0, int64_t, std::vector<T>&) { return gy + n * out + k0 * plane; });
}

// The filter gradient from the pooled output's gradient: each image's planes of the thread's output
// channels are unpooled into a scratch (in L2) and summed from there, in the order
// conv2d_backward_filter_direct_c1 sums the dense gradient: same bits, without writing the dense
// gradient (all zeros but a quarter) to memory and reading it back. With `sigmoid_y`, gp is the
// gradient of sigmoid_y = sigmoid(pooled + bias) and is taken through the sigmoid on the way, each
// plane's sum going to plane_sums (sigmoid_grad_planes), so that it never makes a pass of its own.
template <typename T>
void conv2d_maxpool_backward_filter_direct_c1(const T* x, const T* gp, const int32_t* argmax, T* gw, int64_t N,
                                              int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                              const T* sigmoid_y, double* plane_sums) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1, plane = OH * OW, pplane = (OH / 2) * (OW / 2);
  if (OW < kLanes) {  // the narrow path sums in (n, oh, ow) order: give it the dense gradient
    std::vector<T> through(sigmoid_y ? static_cast<size_t>(N * K * pplane) : 0);
    if (sigmoid_y) sigmoid_grad_planes<T>(sigmoid_y, gp, through.data(), N * K, pplane, plane_sums);
    std::vector<T> gy(static_cast<size_t>(N * K * plane));
    maxpool2x2_backward<T>(sigmoid_y ? through.data() : gp, argmax, gy.data(), N * K, OH, OW);
    return conv2d_backward_filter_direct_c1<T>(x, gy.data(), gw, N, H, W, K, KH, KW);
  }
  filter_grad_by_channel(x, gw, N, H, W, K, KH, KW, DirectTiles::Best,
                         [&](int64_t n, int64_t k0, int64_t k1, std::vector<T>& scratch) -> const T* {
                           const int64_t first = (n * K + k0) * pplane, planes = k1 - k0;
                           scratch.resize(static_cast<size_t>(planes * (plane + (sigmoid_y ? pplane : 0))));
                           const T* g = gp + first;
                           if (sigmoid_y) {
                             T* through = scratch.data() + planes * plane;
                             sigmoid_grad_planes<T>(sigmoid_y + first, g, through, planes, pplane,
                                                    plane_sums + n * K + k0);
                             g = through;
                           }
                           maxpool2x2_backward<T>(g, argmax + first, scratch.data(), planes, OH, OW);
                           return scratch.data();
                         });
}

#define MR_INST(T)                                                                                                \
  template void conv2d_maxpool_backward_filter_direct_c1<T>(const T*, const T*, const int32_t*, T*, int64_t,       \
                                                            int64_t, int64_t, int64_t, int64_t, int64_t, const T*, \
                                                            double*);                                             \
  template void conv2d_forward_direct_c1<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                            int64_t, DirectTiles);                                                \
  template void conv2d_backward_filter_direct_c1<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t,    \
                                                    int64_t, int64_t, DirectTiles);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
