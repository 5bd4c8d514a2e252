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

constexpr int64_t kLanes = 16;        // output columns per accumulator: one AVX-512 register of floats
constexpr int64_t kChannelBlock = 4;  // filters sharing each input load in the forward
constexpr int64_t kTapBlock = 5;      // filter columns sharing each gradient load in the filter gradient

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

// One image: y[k, oh, ow] = sum_{kh, kw} w[k, kh, kw] * x[oh + kh, ow + kw].
template <typename T>
[[gnu::always_inline]] inline void forward_image(const T* __restrict x, const T* __restrict w, T* __restrict y,
                                                 int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1, taps = KH * KW;
  if (OW < kLanes || K < kChannelBlock) {  // too small to block: one output at a time, same tap order
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
  // The last channel and column blocks start early and overlap the one before: the overlapped
  // outputs are computed again with the same operations, so they get the same values.
  for (int64_t kb = 0; kb < K; kb += kChannelBlock) {
    const int64_t k0 = std::min(kb, K - kChannelBlock);
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ob = 0; ob < OW; ob += kLanes) {
        const int64_t ow0 = std::min(ob, OW - kLanes);
        Vec<T> acc[kChannelBlock] = {};
        for (int64_t kh = 0; kh < KH; ++kh) {
          const T* xr = x + (oh + kh) * W + ow0;
          for (int64_t kw = 0; kw < KW; ++kw) {
            const Vec<T> xv = load_lanes(xr + kw);
            for (int64_t j = 0; j < kChannelBlock; ++j) acc[j] += w[(k0 + j) * taps + kh * KW + kw] * xv;
          }
        }
        for (int64_t j = 0; j < kChannelBlock; ++j) store_lanes(y + ((k0 + j) * OH + oh) * OW + ow0, acc[j]);
      }
  }
}

// One image's share of the filter gradient: for every tap (k, kh, kw), lanes[tap][l] += the products
// gy[k, oh, ow] * x[oh + kh, ow + kw] over oh and the column blocks (ow = block start + l). When the
// width is not a multiple of the lanes, the last block starts early, overlapping the one before, and
// the overlapped columns' gy lanes are zeroed by `last_mask` so that each product is counted once.
// (A zeroed lane still multiplies a real x: an infinite input gives NaN there, where the im2col path
// would not form the product; such an input has made the forward's outputs non-finite already.)
template <typename T>
[[gnu::always_inline]] inline void filter_grad_image(const T* __restrict x, const T* __restrict gy,
                                                     T* __restrict lanes, const T* __restrict last_mask, int64_t H,
                                                     int64_t W, int64_t K, int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1;
  const Vec<T> mask = load_lanes(last_mask);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw0 = 0; kw0 < KW; kw0 += kTapBlock) {
        const int64_t nb = std::min(kTapBlock, KW - kw0);
        T* lane_rows = lanes + ((k * KH + kh) * KW + kw0) * kLanes;
        Vec<T> acc[kTapBlock];
        for (int64_t t = 0; t < nb; ++t) acc[t] = load_lanes(lane_rows + t * kLanes);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const T* g = gy + (k * OH + oh) * OW;
          const T* xr = x + (oh + kh) * W + kw0;
          for (int64_t ob = 0; ob < OW; ob += kLanes) {
            const bool last = ob + kLanes > OW;
            const int64_t ow0 = last ? OW - kLanes : ob;
            const Vec<T> gv = last ? load_lanes(g + ow0) * mask : load_lanes(g + ow0);
            if (nb == kTapBlock) {  // the common case, with a fixed count the compiler unrolls
              for (int64_t t = 0; t < kTapBlock; ++t) acc[t] += gv * load_lanes(xr + t + ow0);
            } else {
              for (int64_t t = 0; t < nb; ++t) acc[t] += gv * load_lanes(xr + t + ow0);
            }
          }
        }
        for (int64_t t = 0; t < nb; ++t) store_lanes(lane_rows + t * kLanes, acc[t]);
      }
}

// The float versions are compiled once per instruction set (vec_math.h); double keeps one.
MR_CPU_CLONES void forward_image_f32(const float* x, const float* w, float* y, int64_t H, int64_t W, int64_t K,
                                     int64_t KH, int64_t KW) {
  forward_image(x, w, y, H, W, K, KH, KW);
}
MR_CPU_CLONES void filter_grad_image_f32(const float* x, const float* gy, float* lanes, const float* last_mask,
                                         int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  filter_grad_image(x, gy, lanes, last_mask, H, W, K, KH, KW);
}

// The float versions above run in their instruction-set clone; double keeps the template.
template <typename T>
inline void image_forward(const T* x, const T* w, T* y, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  if constexpr (std::is_same_v<T, float>) forward_image_f32(x, w, y, H, W, K, KH, KW);
  else forward_image(x, w, y, H, W, K, KH, KW);
}
template <typename T>
inline void image_filter_grad(const T* x, const T* gy, T* lanes, const T* last_mask, int64_t H, int64_t W, int64_t K,
                              int64_t KH, int64_t KW) {
  if constexpr (std::is_same_v<T, float>) filter_grad_image_f32(x, gy, lanes, last_mask, H, W, K, KH, KW);
  else filter_grad_image(x, gy, lanes, last_mask, H, W, K, KH, KW);
}

// The filter gradient for outputs at least a block wide, by output channel: each thread sums its
// channels' taps over every image, in the serial order. planes(n, k0, k1, scratch) gives image n's
// output-gradient planes k0..k1-1 (contiguous), from the dense gradient or unpooled into `scratch`
// (the thread's own).
template <typename T, typename Planes>
void filter_grad_by_channel(const T* x, T* gw, int64_t N, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                            const Planes& planes) {
  const int64_t OW = W - KW + 1, taps = K * KH * KW, per_k = KH * KW * kLanes;
  // The last block's lanes already covered by the block before it are masked off (OW % kLanes new ones).
  T last_mask[kLanes];
  const int64_t fresh = OW % kLanes == 0 ? kLanes : OW % kLanes;
  for (int64_t l = 0; l < kLanes; ++l) last_mask[l] = l >= kLanes - fresh ? T(1) : T(0);
  std::vector<T> lanes(static_cast<size_t>(taps * kLanes), T(0));
  parallel_for(K, 1, [&](int64_t k0, int64_t k1) {
    std::vector<T> scratch;
    for (int64_t n = 0; n < N; ++n)
      image_filter_grad(x + n * H * W, planes(n, k0, k1, scratch), lanes.data() + k0 * per_k, last_mask, H, W,
                        k1 - k0, KH, KW);
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
                              int64_t KW) {
  const int64_t in = H * W, out = K * (H - KH + 1) * (W - KW + 1);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {  // by image
    for (int64_t n = n0; n < n1; ++n) image_forward(x + n * in, w, y + n * out, H, W, K, KH, KW);
  });
}

template <typename T>
void conv2d_backward_filter_direct_c1(const T* x, const T* gy, T* gw, int64_t N, int64_t H, int64_t W, int64_t K,
                                      int64_t KH, int64_t KW) {
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
  filter_grad_by_channel(x, gw, N, H, W, K, KH, KW,
                         [&](int64_t n, int64_t k0, int64_t, std::vector<T>&) { return gy + n * out + k0 * plane; });
}

// Convolution and 2x2 max pooling together: each image's full conv output (conv 1: 16 x 36 x 111, 256 KB)
// goes to a per-thread scratch that stays in L2 and is pooled from there, so only the pooled quarter and
// its winners reach memory. Same kernels as conv2d_forward_direct_c1 + maxpool2x2_forward: same bits.
template <typename T>
void conv2d_maxpool_forward_direct_c1(const T* x, const T* w, T* y, int32_t* argmax, int64_t N, int64_t H, int64_t W,
                                      int64_t K, int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1, in = H * W, out = K * OH * OW, pooled = K * (OH / 2) * (OW / 2);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {  // by image
    std::vector<T> conv(static_cast<size_t>(out));
    for (int64_t n = n0; n < n1; ++n) {
      image_forward(x + n * in, w, conv.data(), H, W, K, KH, KW);
      maxpool2x2_forward<T>(conv.data(), y + n * pooled, argmax + n * pooled, K, OH, OW);
    }
  });
}

// The filter gradient from the pooled output's gradient: each image's planes of the thread's output
// channels are unpooled into a scratch (in L2) and summed from there, in the order
// conv2d_backward_filter_direct_c1 sums the dense gradient: same bits, without writing the dense
// gradient (all zeros but a quarter) to memory and reading it back.
template <typename T>
void conv2d_maxpool_backward_filter_direct_c1(const T* x, const T* gp, const int32_t* argmax, T* gw, int64_t N,
                                              int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW) {
  const int64_t OH = H - KH + 1, OW = W - KW + 1, plane = OH * OW, pplane = (OH / 2) * (OW / 2);
  if (OW < kLanes) {  // the narrow path sums in (n, oh, ow) order: give it the dense gradient
    std::vector<T> gy(static_cast<size_t>(N * K * plane));
    maxpool2x2_backward<T>(gp, argmax, gy.data(), N * K, OH, OW);
    return conv2d_backward_filter_direct_c1<T>(x, gy.data(), gw, N, H, W, K, KH, KW);
  }
  filter_grad_by_channel(x, gw, N, H, W, K, KH, KW,
                         [&](int64_t n, int64_t k0, int64_t k1, std::vector<T>& scratch) -> const T* {
                           scratch.resize(static_cast<size_t>((k1 - k0) * plane));
                           const int64_t first = (n * K + k0) * pplane;
                           maxpool2x2_backward<T>(gp + first, argmax + first, scratch.data(), k1 - k0, OH, OW);
                           return scratch.data();
                         });
}

#define MR_INST(T)                                                                                                \
  template void conv2d_maxpool_forward_direct_c1<T>(const T*, const T*, T*, int32_t*, int64_t, int64_t, int64_t,  \
                                                    int64_t, int64_t, int64_t);                                   \
  template void conv2d_maxpool_backward_filter_direct_c1<T>(const T*, const T*, const int32_t*, T*, int64_t,       \
                                                            int64_t, int64_t, int64_t, int64_t, int64_t);         \
  template void conv2d_forward_direct_c1<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                            int64_t);                                                             \
  template void conv2d_backward_filter_direct_c1<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t,    \
                                                    int64_t, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
