// CPU convolution, stride 1 with zero padding, by im2col + matrix product (the CPU reference that
// cuDNN is checked against; one input channel without padding goes to conv_direct.cpp), and the
// models' layer in one pass: convolution, 2x2 max pooling and the sigmoid epilogue per image, forward
// and backward. One image at a time per thread keeps the column buffer small: C*KH*KW x OH*OW.
#include <algorithm>
#include <cstddef>
#include <vector>

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
          std::copy(x + (c * g.H + ih) * g.W + lo + kw - g.pw, x + (c * g.H + ih) * g.W + hi + kw - g.pw, out + lo);
          std::fill(out + hi, out + g.OW, T(0));
        }
      }
}

// The adjoint of im2col: x[c, ih, iw] += col[...] for every column entry that read it.
template <typename T> void col2im_accumulate(const T* col, const Geometry& g, T* x) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = col + ((c * g.KH + kh) * g.KW + kw) * g.col_cols();
        const int64_t lo = std::clamp<int64_t>(g.pw - kw, 0, g.OW), hi = std::clamp<int64_t>(g.W + g.pw - kw, lo, g.OW);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh + kh - g.ph;
          if (ih < 0 || ih >= g.H) continue;
          T* dst = x + (c * g.H + ih) * g.W + kw - g.pw;
          const T* src = row + oh * g.OW;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
        }
      }
}

Geometry make_geometry(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
  return Geometry{C, H, W, KH, KW, ph, pw, H + 2 * ph - KH + 1, W + 2 * pw - KW + 1};
}

}  // namespace

bool conv_direct_applies(int64_t C, int64_t ph, int64_t pw) { return C == 1 && ph == 0 && pw == 0; }

namespace {
bool use_direct(ConvPath path, int64_t C, int64_t ph, int64_t pw) {
  if (path == ConvPath::Im2col) return false;
  MR_CHECK(path == ConvPath::Best || conv_direct_applies(C, ph, pw),
           "conv2d: the direct path takes one input channel and no padding");
  return conv_direct_applies(C, ph, pw);
}
DirectTiles direct_tiles(ConvPath path) { return path == ConvPath::DirectOneChannelV2 ? DirectTiles::V2 : DirectTiles::Best; }
}  // namespace

// The products of one image are small (layer 2: 32 x 64 by 64 x 918), and OpenBLAS splitting each over
// the cores ran them at ~60 % of two cores (116-119 GFLOP/s here against ~100 on one). So images are
// split over parallel_for's threads, each with its own column buffer, and the copies of im2col and
// col2im run in parallel too; each gemm, called inside a chunk, runs on its thread (cpu_kernels.h).
namespace {
// The filter gradient sums over images: in a fixed number of groups of consecutive images (each summed
// in order, the groups' sums then added in order), so the result does not depend on the thread count.
int64_t filter_grad_groups(int64_t N) { return std::min<int64_t>(N, 16); }
}  // namespace

template <typename T>
void conv2d_forward(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                    int64_t KW, int64_t ph, int64_t pw, ConvPath path) {
  if (use_direct(path, C, ph, pw)) return conv2d_forward_direct_c1(x, w, y, N, H, W, K, KH, KW, direct_tiles(path));
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    for (int64_t n = n0; n < n1; ++n) {
      im2col(x + n * C * H * W, g, col.data());
      gemm<T>(false, false, K, g.col_cols(), g.col_rows(), T(1), w, col.data(), T(0), y + n * K * g.col_cols());
    }
  });
}

template <typename T>
void conv2d_backward_data(const T* gy, const T* w, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                          int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    fill<T>(gx + n0 * C * H * W, (n1 - n0) * C * H * W, T(0));
    for (int64_t n = n0; n < n1; ++n) {
      gemm<T>(true, false, g.col_rows(), g.col_cols(), K, T(1), w, gy + n * K * g.col_cols(), T(0), col.data());
      col2im_accumulate(col.data(), g, gx + n * C * H * W);
    }
  });
}

template <typename T>
void conv2d_backward_filter(const T* x, const T* gy, T* gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                            int64_t KH, int64_t KW, int64_t ph, int64_t pw, ConvPath path) {
  if (use_direct(path, C, ph, pw))
    return conv2d_backward_filter_direct_c1(x, gy, gw, N, H, W, K, KH, KW, direct_tiles(path));
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const int64_t size = K * g.col_rows(), groups = filter_grad_groups(N);
  fill<T>(gw, size, T(0));
  if (groups == 0) return;
  std::vector<T> partial(static_cast<std::size_t>(groups * size));
  parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
    std::vector<T> col(static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    for (int64_t grp = g0; grp < g1; ++grp)
      for (int64_t n = N * grp / groups; n < N * (grp + 1) / groups; ++n) {
        im2col(x + n * C * H * W, g, col.data());
        gemm<T>(false, true, K, g.col_rows(), g.col_cols(), T(1), gy + n * K * g.col_cols(), col.data(),
                n == N * grp / groups ? T(0) : T(1), partial.data() + grp * size);
      }
  });
  for (int64_t grp = 0; grp < groups; ++grp) add_into<T>(gw, partial.data() + grp * size, size);
}

// Convolution then 2x2 max pooling (then, with sigmoid_bias, the sigmoid epilogue), image by image: the
// conv output (conv 1: 16 x 36 x 111, 256 KB; conv 2: 32 x 17 x 54, 117 KB) goes to the thread's
// scratch, in L2, and is pooled from there; only the op's output and the winners reach memory. The same
// kernels as conv2d_forward, maxpool2x2_forward and bias_sigmoid_nchw_forward: the same bits.
template <typename T>
void conv2d_maxpool_forward(const T* x, const T* w, const T* sigmoid_bias, T* y, int32_t* argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const bool direct = conv_direct_applies(C, ph, pw);
  const int64_t pplane = (g.OH / 2) * (g.OW / 2), pooled = K * pplane;
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<T> col(direct ? 0 : static_cast<std::size_t>(g.col_rows() * g.col_cols()));
    std::vector<T> conv(static_cast<std::size_t>(K * g.col_cols()));
    std::vector<T> pool(sigmoid_bias ? static_cast<std::size_t>(pooled) : 0);
    for (int64_t n = n0; n < n1; ++n) {
      if (direct) {
        conv2d_forward_direct_c1<T>(x + n * H * W, w, conv.data(), 1, H, W, K, KH, KW);
      } else {
        im2col(x + n * C * H * W, g, col.data());
        gemm<T>(false, false, K, g.col_cols(), g.col_rows(), T(1), w, col.data(), T(0), conv.data());
      }
      maxpool2x2_forward<T>(conv.data(), sigmoid_bias ? pool.data() : y + n * pooled, argmax + n * pooled, K, g.OH,
                            g.OW);
      if (sigmoid_bias) bias_sigmoid_nchw_forward<T>(pool.data(), sigmoid_bias, y + n * pooled, 1, K, pplane);
    }
  });
}

// All gradients from the op's output gradient, image by image: each image's gradient is taken through
// the sigmoid (when the forward had it) and unpooled once into the thread's scratch (in L2), and serves
// the data gradient (product, then col2im) and the filter gradient (im2col, then product) while it is
// there, instead of the dense gradient of every image being written to memory, then read by each
// gradient in turn. The images go in conv2d_backward_filter's fixed groups, each image's calls are
// those of conv2d_backward_data and conv2d_backward_filter, and the bias gradient sums the planes'
// sums in image order as bias_sigmoid_nchw_backward does: the same bits as the separate kernels.
template <typename T>
void conv2d_maxpool_backward(const T* x, const T* w, const T* gp, const int32_t* argmax, const T* sigmoid_y, T* gx,
                             T* gw, T* gb, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                             int64_t ph, int64_t pw) {
  MR_CHECK(!gb || sigmoid_y, "conv2d_maxpool_backward: a bias gradient needs the sigmoid's output");
  const Geometry g = make_geometry(C, H, W, KH, KW, ph, pw);
  const int64_t P = g.col_cols(), pplane = (g.OH / 2) * (g.OW / 2), pooled = K * pplane;
  std::vector<double> plane_sums(sigmoid_y ? static_cast<std::size_t>(N * K) : 0);
  if (conv_direct_applies(C, ph, pw)) {
    // The pair CNN's conv 1 wants the filter gradient only, which takes the sigmoid in its own pass;
    // otherwise the whole gradient goes through the sigmoid first.
    const bool inside = sigmoid_y && gw && !gx;
    std::vector<T> through(sigmoid_y && !inside ? static_cast<std::size_t>(N * pooled) : 0);
    if (sigmoid_y && !inside) sigmoid_grad_planes<T>(sigmoid_y, gp, through.data(), N * K, pplane, plane_sums.data());
    const T* gpool = sigmoid_y && !inside ? through.data() : gp;
    if (gw)
      conv2d_maxpool_backward_filter_direct_c1<T>(x, gpool, argmax, gw, N, H, W, K, KH, KW, inside ? sigmoid_y : nullptr,
                                                  plane_sums.data());
    if (gx) {  // not the pair CNN's case (its first layer's input is the data): the dense gradient, then the data path
      std::vector<T> gy(static_cast<std::size_t>(N * K * P));
      maxpool2x2_backward<T>(gpool, argmax, gy.data(), N * K, g.OH, g.OW);
      conv2d_backward_data<T>(gy.data(), w, gx, N, C, H, W, K, KH, KW, ph, pw);
    }
  } else {
    const int64_t size = K * g.col_rows(), groups = filter_grad_groups(N);
    std::vector<T> partial(gw ? static_cast<std::size_t>(groups * size) : 0);
    parallel_for(groups, 1, [&](int64_t g0, int64_t g1) {
      std::vector<T> col(static_cast<std::size_t>(g.col_rows() * P)), gy(static_cast<std::size_t>(K * P));
      std::vector<T> through(sigmoid_y ? static_cast<std::size_t>(pooled) : 0);
      for (int64_t grp = g0; grp < g1; ++grp)
        for (int64_t n = N * grp / groups; n < N * (grp + 1) / groups; ++n) {
          const T* gpool = gp + n * pooled;
          if (sigmoid_y) {
            sigmoid_grad_planes<T>(sigmoid_y + n * pooled, gpool, through.data(), K, pplane, plane_sums.data() + n * K);
            gpool = through.data();
          }
          maxpool2x2_backward<T>(gpool, argmax + n * pooled, gy.data(), K, g.OH, g.OW);
          if (gx) {
            gemm<T>(true, false, g.col_rows(), P, K, T(1), w, gy.data(), T(0), col.data());
            fill<T>(gx + n * C * H * W, C * H * W, T(0));
            col2im_accumulate(col.data(), g, gx + n * C * H * W);
          }
          if (gw) {
            im2col(x + n * C * H * W, g, col.data());
            gemm<T>(false, true, K, g.col_rows(), P, T(1), gy.data(), col.data(), n == N * grp / groups ? T(0) : T(1),
                    partial.data() + grp * size);
          }
        }
    });
    if (gw) {
      fill<T>(gw, size, T(0));
      for (int64_t grp = 0; grp < groups; ++grp) add_into<T>(gw, partial.data() + grp * size, size);
    }
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
                                        int64_t, int64_t, int64_t, int64_t);                                    \
  template void conv2d_backward_filter<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t,  \
                                          int64_t, int64_t, int64_t, int64_t, ConvPath);                         \
  template void conv2d_maxpool_forward<T>(const T*, const T*, const T*, T*, int32_t*, int64_t, int64_t, int64_t,  \
                                          int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);                   \
  template void conv2d_maxpool_backward<T>(const T*, const T*, const T*, const int32_t*, const T*, T*, T*, T*,    \
                                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                           int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
