// CPU convolution, stride 1 with zero padding, by im2col + matrix product (the CPU reference that
// cuDNN is checked against; without padding and with outputs at least 16 wide the direct kernels of
// conv_direct.cpp run instead, as ConvPath::Best picks), and the models' layer in one pass:
// convolution, 2x2 max pooling and the sigmoid epilogue per image, forward and backward. One image at
// a time per thread keeps the column buffer small: C*KH*KW x OH*OW.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/error.h"

namespace musicrec::kernels::cpu {
namespace {

struct Geometry {
  int64_t C, H, W, KH, KW, ph, pw, OH, OW;
  int64_t col_rows() const { return C * KH * KW; }
  int64_t col_cols() const { return OH * OW; }
};

// A run of n elements copied with fixed-size moves: im2col's runs are one output row (conv 2: 54
// floats), and std::copy's memmove call per run took 10 % of conv 2's training step (perf). The last
// 16 elements are copied again from n - 16 when n is not a multiple of 16 (the same values).
template <typename T> inline void copy_run(T* __restrict dst, const T* __restrict src, int64_t n) {
  constexpr int64_t kChunk = 64 / sizeof(T);
  if (n >= kChunk) {
    for (int64_t i = 0; i + kChunk <= n; i += kChunk) std::memcpy(dst + i, src + i, sizeof(T) * kChunk);
    if (n % kChunk) std::memcpy(dst + n - kChunk, src + n - kChunk, sizeof(T) * kChunk);
    return;
  }
  for (; n >= 4; n -= 4, dst += 4, src += 4) std::memcpy(dst, src, 4 * sizeof(T));
  for (; n > 0; --n) *dst++ = *src++;
}

// col[(c,kh,kw), (oh,ow)] = x[c, oh+kh-ph, ow+kw-pw] (0 outside the image). Each (c, kh, kw, oh) is
// one run of OW columns: the in-image part is copied, the padding on either side zeroed, so the inner
// loop has no bounds test (with the models' unpadded convolutions it is a plain copy).
template <typename T> void im2col(const T* x, const Geometry& g, T* col) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = col + ((c * g.KH + kh) * g.KW + kw) * g.col_cols();
        // Output columns ow in [lo, hi) read inside the image: 0 <= ow + kw - pw < W.
        const int64_t lo = std::clamp<int64_t>(g.pw - kw, 0, g.OW), hi = std::clamp<int64_t>(g.W + g.pw - kw, lo, g.OW);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          T* out = row + oh * g.OW;
          const int64_t ih = oh + kh - g.ph;
          if (ih < 0 || ih >= g.H) {
            std::fill(out, out + g.OW, T(0));
            continue;
          }
          std::fill(out, out + lo, T(0));
          copy_run(out + lo, x + (c * g.H + ih) * g.W + lo + kw - g.pw, hi - lo);
          std::fill(out + hi, out + g.OW, T(0));
        }
      }
}

// The adjoint of im2col, written rather than accumulated: x[c, ih, iw] = the sum of the column entries
// that read it, in (kh, kw) order from 0, one input row at a time while it is in L1. The same additions
// in the same order as zeroing x and scattering the columns into it, without the zeroing pass and the
// read-back (the zero fill alone was 6.5 % of conv 2's training step).
template <typename T> void col2im(const T* col, const Geometry& g, T* x) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t ih = 0; ih < g.H; ++ih) {
      T* dst = x + (c * g.H + ih) * g.W;
      for (int64_t iw = 0; iw < g.W; ++iw) dst[iw] = T(0);
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t oh = ih + g.ph - kh;
        if (oh < 0 || oh >= g.OH) continue;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t lo = std::clamp<int64_t>(g.pw - kw, 0, g.OW), hi = std::clamp<int64_t>(g.W + g.pw - kw, lo, g.OW);
          const T* src = col + ((c * g.KH + kh) * g.KW + kw) * g.col_cols() + oh * g.OW;
          T* d = dst + kw - g.pw;
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] += src[ow];
        }
      }
    }
}

Geometry make_geometry(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
  return Geometry{C, H, W, KH, KW, ph, pw, H + 2 * ph - KH + 1, W + 2 * pw - KW + 1};
}

// The im2col path one image at a time (col: the thread's column buffer), shared by the separate
// kernels and the fused layer, which therefore make the same calls and get the same bits.
template <typename T> void im2col_forward_image(const T* x, const T* w, T* y, int64_t K, const Geometry& g, T* col) {
  im2col(x, g, col);
  gemm<T>(false, false, K, g.col_cols(), g.col_rows(), T(1), w, col, T(0), y);
}
template <typename T> void im2col_data_grad_image(const T* gy, const T* w, T* gx, int64_t K, const Geometry& g, T* col) {
  gemm<T>(true, false, g.col_rows(), g.col_cols(), K, T(1), w, gy, T(0), col);
  col2im(col, g, gx);
}
// One image's filter gradient added into its group's partial sums (`first`: the group's first image,
// which overwrites them); gy's rows and planes lie gl.row and gl.plane apart. The product takes gy
// transposed (gy_t: the caller's K x P scratch): with both operands transposed OpenBLAS ran conv 3's
// per-image product (32 x 128, 182 deep) at 163-190 GFLOP/s on one core here against 74-78 for gy as
// it lies (session 15; it packs that layout worst), and the transpose is P x K copies against
// P x K x C*KH*KW multiply-adds.
template <typename T>
void im2col_filter_grad_image(const T* x, const T* gy, const direct::GradLayout& gl, T* partial, bool first, int64_t K,
                              const Geometry& g, T* col, T* gy_t) {
  im2col(x, g, col);
  const int64_t P = g.col_cols();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) gy_t[(oh * g.OW + ow) * K + k] = gy[k * gl.plane + oh * gl.row + ow];
  gemm<T>(true, true, K, g.col_rows(), P, T(1), gy_t, col, first ? T(0) : T(1), partial);
}
// gw = the groups' partial sums added in order.
template <typename T> void add_filter_grad_groups(T* gw, const std::vector<T>& partial, int64_t groups, int64_t size) {
  fill<T>(gw, size, T(0));
  for (int64_t grp = 0; grp < groups; ++grp) add_into<T>(gw, partial.data() + grp * size, size);
}

bool use_direct(ConvPath path, int64_t W, int64_t KW, int64_t ph, int64_t pw) {
  if (path == ConvPath::Im2col) return false;
  MR_CHECK(path == ConvPath::Best || conv_direct_applies(W, KW, ph, pw),
           "conv2d: the direct path takes no padding and an output at least 16 columns wide");
  return conv_direct_applies(W, KW, ph, pw);
}
// The filter gradient: with column lanes the direct kernels' 16 lanes per weight are loaded and stored
// once per tile and kernel row, which a narrow, short output does not repay (cpu_kernels.h); channel
// lanes have no such cost.
bool use_direct_filter(ConvPath path, const direct::Dims& d, int64_t ph, int64_t pw) {
  if (path == ConvPath::Best && d.OW() < 2 * direct::kLanes && !direct::channel_lanes_apply(d)) return false;
  return use_direct(path, d.W, d.KW, ph, pw);
}
DirectTiles direct_tiles(ConvPath path) {
  return path == ConvPath::DirectV2 ? DirectTiles::V2
         : path == ConvPath::DirectColumnLanes ? DirectTiles::ColumnLanes
                                               : DirectTiles::Best;
}

// The filter gradient sums over images in direct::filter_grad_groups(N) groups of consecutive images
// (each summed in order, the groups' sums then added in order), as the direct kernels do, so the result
// does not depend on the thread count.
using direct::filter_grad_groups;
using direct::first_image_of_group;
}  // namespace

// The products of one image are small (layer 2: 32 x 64 by 64 x 918), and OpenBLAS splitting each over
// the cores ran them at ~60 % of two cores (116-119 GFLOP/s here against ~100 on one). So images are
// split over parallel_for's threads, each with its own column buffer, and the copies of im2col and
// col2im run in parallel too; each gemm, called inside a chunk, runs on its thread (cpu_kernels.h).

template <typename T>
void conv2d_forward(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                    int64_t KW, int64_t ph, int64_t pw, ConvPath path) {
  if (use_direct(path, W, KW, ph, pw)) return conv2d_forward_direct(x, w, y, N, C, H, W, K, KH, KW, direct_tiles(path));
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    for (int64_t n = n0; n < n1; ++n) im2col_forward_image(x + n * C * H * W, w, y + n * K * g.col_cols(), K, g, col.data());
  });
}

template <typename T>
void conv2d_backward_data(const T* gy, const T* w, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                          int64_t KH, int64_t KW, int64_t ph, int64_t pw, ConvPath path) {
  if (use_direct(path, W, KW, ph, pw))
    return conv2d_backward_data_direct(gy, w, gx, N, C, H, W, K, KH, KW, direct_tiles(path));
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    for (int64_t n = n0; n < n1; ++n)
      im2col_data_grad_image(gy + n * K * g.col_cols(), w, gx + n * C * H * W, K, g, col.data());
  });
}

template <typename T>
void conv2d_backward_filter(const T* x, const T* gy, T* gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                            int64_t KH, int64_t KW, int64_t ph, int64_t pw, ConvPath path) {
  if (use_direct_filter(path, {C, H, W, K, KH, KW}, ph, pw))
    return conv2d_backward_filter_direct(x, gy, gw, N, C, H, W, K, KH, KW, direct_tiles(path));
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const int64_t size = K * g.col_rows(), groups = filter_grad_groups(N);
  std::vector<T> partial(static_cast<std::size_t>(groups * size));
  parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    std::vector<T> gy_t(static_cast<std::size_t>(K * g.col_cols()));
    for (int64_t grp = g0; grp < g1; ++grp)
      for (int64_t n = first_image_of_group(N, grp); n < first_image_of_group(N, grp + 1); ++n)
        im2col_filter_grad_image(x + n * C * H * W, gy + n * K * g.col_cols(), {g.OW, g.col_cols()},
                                 partial.data() + grp * size, n == first_image_of_group(N, grp), K, g, col.data(),
                                 gy_t.data());
  });
  add_filter_grad_groups(gw, partial, groups, size);
}

// Convolution then 2x2 max pooling (then, with sigmoid_bias, the sigmoid epilogue), image by image: the
// conv output (conv 1: 16 x 36 x 111, 256 KB; conv 2: 32 x 17 x 54, 117 KB) goes to the thread's
// scratch, in L2, and is pooled from there; only the op's output and the winners reach memory. The same
// sums as conv2d_forward (flattened: conv_direct.h), maxpool2x2_forward and bias_sigmoid_nchw_forward:
// the same bits.
template <typename T>
void conv2d_maxpool_forward(const T* x, const T* w, const T* sigmoid_bias, T* y, int32_t* argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const bool direct = conv_direct_applies(W, KW, ph, pw), v3 = direct::v3_tiles(DirectTiles::Best);
  const direct::Dims dims{C, H, W, K, KH, KW};
  const int64_t pplane = (g.OH / 2) * (g.OW / 2), pooled = K * pplane;
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(direct ? 0 : static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    // The direct kernel runs flattened, its output at the input's row stride W (direct::FlatLayout:
    // conv 2's rows of 54 take 60 vectors instead of 72), and the pooling reads it at that stride.
    const direct::FlatLayout flat = direct::image_flat_layout(dims);
    const int64_t row = direct ? W : g.OW, plane = direct ? flat.y_plane : g.col_cols();
    std::vector<T> conv(static_cast<std::size_t>(K * plane));
    std::vector<T> pool(sigmoid_bias ? static_cast<std::size_t>(pooled) : 0);
    for (int64_t n = n0; n < n1; ++n) {
      if (direct) direct::image_forward_flat(x + n * C * H * W, w, conv.data(), dims, flat, v3);
      else im2col_forward_image(x + n * C * H * W, w, conv.data(), K, g, col.data());
      maxpool2x2_forward_strided<T>(conv.data(), sigmoid_bias ? pool.data() : y + n * pooled, argmax + n * pooled, K,
                                    g.OH, g.OW, row, plane);
      if (sigmoid_bias) bias_sigmoid_nchw_forward<T>(pool.data(), sigmoid_bias, y + n * pooled, 1, K, pplane);
    }
  });
}

// All gradients from the op's output gradient, image by image: each image's gradient is taken through
// the sigmoid (when the forward had it) and unpooled once into the thread's scratch (in L2; where the
// direct kernels take the data gradient, straight into their zero-bordered buffer, and the filter
// gradient reads it there), and serves the data gradient and the filter gradient, each by the direct
// kernels or by im2col as the separate kernels choose, while it is there, instead of the dense
// gradient of every image being written to memory, then read by each gradient in turn. The images go
// in the filter gradient's fixed groups, each image's sums are those of conv2d_backward_data and
// conv2d_backward_filter in the same order, and the bias gradient sums the planes' sums in image order
// as bias_sigmoid_nchw_backward does: the same bits as the separate kernels.
template <typename T>
void conv2d_maxpool_backward(const T* x, const T* w, const T* gp, const int32_t* argmax, const T* sigmoid_y, T* gx,
                             T* gw, T* gb, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                             int64_t ph, int64_t pw, PooledGradFrom from) {
  MR_CHECK(!gb || sigmoid_y, "conv2d_maxpool_backward: a bias gradient needs the sigmoid's output");
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const int64_t P = g.col_cols(), pplane = (g.OH / 2) * (g.OW / 2), pooled = K * pplane;
  const int64_t size = K * g.col_rows(), groups = filter_grad_groups(N);
  const direct::Dims dims{C, H, W, K, KH, KW};
  const bool v3 = direct::v3_tiles(DirectTiles::Best);
  const bool data_direct = gx && use_direct(ConvPath::Best, W, KW, ph, pw);
  const bool filter_direct = gw && use_direct_filter(ConvPath::Best, dims, ph, pw);
  std::optional<direct::DataGrad<T>> data;
  std::optional<direct::FilterGrad<T>> filter;
  if (data_direct) data.emplace(w, dims, v3);
  if (filter_direct) filter.emplace(dims, N, DirectTiles::Best);
  // Both wanted gradients by the channel lanes: from the winners, nothing unpooled.
  const bool from_winners = from == PooledGradFrom::Best && direct::channel_lanes_apply(dims) && (!gx || data_direct) &&
                            (!gw || filter_direct);
  std::vector<T> partial(gw && !filter_direct ? static_cast<std::size_t>(groups * size) : 0);
  std::vector<double> plane_sums(sigmoid_y ? static_cast<std::size_t>(N * K) : 0);
  parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    const bool need_col = (gx && !data_direct) || (gw && !filter_direct);
    std::vector<T> col(need_col ? static_cast<std::size_t>(g.col_rows() * P) : 0);
    // The unpooled gradient: in the bordered buffer where the data gradient is direct, none from the winners.
    std::vector<T> gy(data_direct || from_winners ? 0 : static_cast<std::size_t>(K * P));
    std::vector<T> gy_t(gw && !filter_direct ? static_cast<std::size_t>(K * P) : 0);
    std::vector<T> through(sigmoid_y ? static_cast<std::size_t>(pooled) : 0), bordered, gx_channels_last;
    direct::FilterGradScratch<T> lanes;
    direct::Winners<T> winners;
    for (int64_t grp = g0; grp < g1; ++grp) {
      if (filter_direct) filter->start_group(lanes);
      for (int64_t n = first_image_of_group(N, grp); n < first_image_of_group(N, grp + 1); ++n) {
        const T* gpool = gp + n * pooled;
        if (sigmoid_y) {
          sigmoid_grad_planes<T>(sigmoid_y + n * pooled, gpool, through.data(), K, pplane, plane_sums.data() + n * K);
          gpool = through.data();
        }
        if (from_winners) {
          direct::pooled_winners(gpool, argmax + n * pooled, dims, winners);
          if (gx) data->image_pooled(winners, gx + n * C * H * W, gx_channels_last);
          if (gw) filter->add_image_pooled(lanes, x + n * C * H * W, winners);
          continue;
        }
        // The unpooled gradient: straight into the data gradient's zero-bordered buffer where the
        // direct kernels take the data gradient (the filter gradient reads it there, strided), which
        // spares copying it in (6.3 % of conv 2's layer, by perf); else into gy.
        const T* gyp = gy.data();
        direct::GradLayout gl{g.OW, P};
        if (data_direct) {
          T* in = data->interior(bordered, &gl);
          maxpool2x2_backward_strided<T>(gpool, argmax + n * pooled, in, K, g.OH, g.OW, gl.row, gl.plane);
          data->image_bordered(bordered, gx + n * C * H * W);
          gyp = in;
        } else {
          maxpool2x2_backward<T>(gpool, argmax + n * pooled, gy.data(), K, g.OH, g.OW);
          if (gx) im2col_data_grad_image(gy.data(), w, gx + n * C * H * W, K, g, col.data());
        }
        if (filter_direct) {
          filter->add_image(lanes, x + n * C * H * W, gyp, gl);
        } else if (gw) {
          im2col_filter_grad_image(x + n * C * H * W, gyp, gl, partial.data() + grp * size,
                                   n == first_image_of_group(N, grp), K, g, col.data(), gy_t.data());
        }
      }
      if (filter_direct) filter->end_group(grp, lanes);
    }
  });
  if (filter_direct) {
    filter->finish(gw);
  } else if (gw) {
    add_filter_grad_groups(gw, partial, groups, size);
  }
  if (!gb) return;
  for (int64_t k = 0; k < K; ++k) {
    double acc = 0;
    for (int64_t n = 0; n < N; ++n) acc += plane_sums[static_cast<std::size_t>(n * K + k)];
    gb[k] = static_cast<T>(acc);
  }
}

#define MR_INST(T)                                                                                              \
  template void conv2d_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                  int64_t, int64_t, int64_t, ConvPath);                                         \
  template void conv2d_backward_data<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                        int64_t, int64_t, int64_t, int64_t, ConvPath);                          \
  template void conv2d_backward_filter<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                          int64_t, int64_t, int64_t, int64_t, ConvPath);                         \
  template void conv2d_maxpool_forward<T>(const T*, const T*, const T*, T*, int32_t*, int64_t, int64_t, int64_t,  \
                                          int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);                   \
  template void conv2d_maxpool_backward<T>(const T*, const T*, const T*, const int32_t*, const T*, T*, T*, T*,    \
                                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                           int64_t, PooledGradFrom);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
