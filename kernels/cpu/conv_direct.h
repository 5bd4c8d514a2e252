// The direct convolution's pieces (conv_direct.cpp), one image at a time, for the kernels in conv.cpp
// that run a layer in one pass: the forward, the data gradient and the filter gradient's image groups.
// Internal to kernels/cpu.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace musicrec::kernels::cpu::direct {

constexpr int64_t kLanes = 16;  // output columns per accumulator: one AVX-512 register of floats

// A convolution's dimensions: C input channels of H x W, K filters of KH x KW, no padding.
struct Dims {
  int64_t C, H, W, K, KH, KW;
  int64_t OH() const { return H - KH + 1; }
  int64_t OW() const { return W - KW + 1; }
  int64_t taps() const { return C * KH * KW; }  // one filter's weights
};

// Where one image's output gradient lies: row and plane strides in elements. Contiguous, gy[K, OH, OW];
// the fused layer also unpools straight into the data gradient's zero-bordered buffer (DataGrad).
struct GradLayout {
  int64_t row, plane;
};
inline GradLayout contiguous(const Dims& d) { return {d.OW(), d.OH() * d.OW()}; }

// The filter gradient sums over images in this many groups of consecutive images (each summed in
// order, the groups then added in order): a function of the image count only, so the result does not
// depend on the thread count. The im2col path (conv.cpp) groups the same way.
inline int64_t filter_grad_groups(int64_t N) { return std::min<int64_t>(N, 16); }
inline int64_t first_image_of_group(int64_t N, int64_t group) { return N * group / filter_grad_groups(N); }

// Whether the larger v3 register tiles run here: AVX-512, and `tiles` is Best.
bool v3_tiles(DirectTiles tiles);

// One image's forward, y[K, OH, OW] from x[C, H, W]; needs OW >= kLanes.
template <typename T> void image_forward(const T* x, const T* w, T* y, const Dims& d, bool v3);

// The same sums over the flattened image (conv_direct.cpp): y[k * y_plane + p] for positions p < L, p =
// oh * row + ow, from x[c * x_plane + p + kh * row + kw]. Positions whose ow >= OW mean nothing (they
// read across a row's end); d's W is not used (row is). Needs L >= kLanes, and every read inside x.
struct FlatLayout {
  int64_t x_plane, row, y_plane, L;
};
// The forward of a contiguous image x[C, H, W] flattened: y[K, OH, W], the last row ending at OW.
inline FlatLayout image_flat_layout(const Dims& d) {
  return {d.H * d.W, d.W, d.OH() * d.W, (d.OH() - 1) * d.W + d.OW()};
}
template <typename T>
void image_forward_flat(const T* x, const T* w, T* y, const Dims& d, const FlatLayout& f, bool v3);

// ---- lanes over input channels (conv_channel_lanes.cpp): 2 x 2 filters over a multiple of 16
// channels (conv 2 and 3) ----
bool channel_lanes_apply(const Dims& d);
// channels_last copies one image x[C, H, W] to [H * W, C] in `scratch` (aligned to a cache line) and
// returns it.
template <typename T> T* channels_last(const T* x, const Dims& d, std::vector<T>& scratch);
// The filter gradient: adds the image's products into sums[K][kh * 2 + kw][C], for each weight the
// positions in row-major order (`wide`: tiles of 4 filters, for AVX-512's registers; the same bits).
template <typename T>
void image_filter_grad_channels(const T* xt, const T* gy, T* sums, const Dims& d, const GradLayout& gl, bool wide);

// From the pooled gradient (the convolution's output max-pooled 2 x 2 after it): each pooling window's
// winner, as the input offset of its output (oh * W + ow: where its taps' top left lies in x[c]) and its
// gradient, plane by plane, each plane's winners in row-major order of the convolution's output. That
// is the order in which the dense kernels meet the non-zero values of the unpooled gradient, and the
// zeros they also meet add nothing (acc + (+-0) is acc, for finite inputs and weights, and no running
// sum from +0 is ever -0), so sums over the winners alone have the dense sums' bits: the fused layer's
// gradients stay those of maxpool2x2 then conv2d, in a quarter of the products and without the dense
// gradient in memory.
template <typename T> struct Winners {
  std::vector<int32_t> at;  // [K][PH * PW], and a vector of slack after
  std::vector<T> g;
  std::vector<int32_t> bottom_at;  // the vector split's scratch: a row's bottom-row winners
  std::vector<T> bottom_g;
};
// gp[K, PH, PW] and argmax as maxpool2x2_forward's (winners' indices at the output's width OW). With
// `vectors` (float, AVX-512), each row of windows is split into its top- and bottom-row winners 16 at a
// time by the vector compress; else one by one. The same lists.
template <typename T>
void pooled_winners(const T* gp, const int32_t* argmax, const Dims& d, Winners<T>& out, bool vectors = true);
// The filter gradient from the winners: the same sums as image_filter_grad_channels over the unpooled
// gradient, into the same sums[K][4][C].
template <typename T>
void image_filter_grad_pooled(const T* xt, const Winners<T>& winners, T* sums, const Dims& d, bool wide);
// The data gradient from the winners: gx[C, H, W] = for each input, over the filters in order, the
// products with the winners whose taps reach it, in row-major order: the dense data gradient's sums
// (DataGrad, over the bordered gradient) term for term. by_channel: the weights as [K][kh * 2 + kw][C];
// scratch: the channels-last sums.
template <typename T>
void image_data_grad_pooled(const Winners<T>& winners, const T* by_channel, T* gx, const Dims& d,
                            std::vector<T>& scratch);

// The data gradient, image by image: the forward kernel over the output gradient with a zero border,
// the filters flipped and transposed (once, here).
template <typename T> class DataGrad {
 public:
  DataGrad(const T* w, const Dims& d, bool v3);
  // gx[C, H, W] of one image from its gy[K, OH, OW]; `bordered` is the calling thread's scratch, for this
  // DataGrad's images only (its border is zeroed once, when it is first sized, and kept).
  void image(const T* gy, T* gx, std::vector<T>& bordered) const;
  // The same in two steps, for a caller that writes gy itself: interior() sizes `bordered` and returns
  // where gy[0, 0, 0] goes in it, with the layout to write in (every interior element must be written);
  // image_bordered() then takes gx from it.
  T* interior(std::vector<T>& bordered, GradLayout* layout) const;
  void image_bordered(const std::vector<T>& bordered, T* gx) const;
  // From the pooling's winners (pooled_winners), where channel_lanes_apply: the same bits as image()
  // over the unpooled gradient; `scratch` the thread's, as `bordered`.
  void image_pooled(const Winners<T>& winners, T* gx, std::vector<T>& scratch) const;

 private:
  Dims d_;
  bool v3_;
  std::vector<T> flipped_;
  std::vector<T> by_channel_;  // [K][kh * 2 + kw][C], where channel_lanes_apply
};

// A thread's scratch for FilterGrad: the group's running sums (16 lanes per weight, over output columns,
// or one per weight with the channel lanes) and the channel kernel's channels-last image.
template <typename T> struct FilterGradScratch {
  std::vector<T> sums, transposed;
};

// The filter gradient, image group by image group (filter_grad_groups): a group's images run on one
// thread, in order, adding into that thread's scratch; at the group's end the sums go to the group's
// partial sums (with column lanes, each weight's 16 lanes summed in order), and finish adds the groups'
// partial sums in order. (Lanes for every group at once were 16 x 512 KB at conv 3's 64 x 128 weights.)
// Channel lanes where they apply (channel_lanes_apply) unless `tiles` is ColumnLanes.
template <typename T> class FilterGrad {
 public:
  FilterGrad(const Dims& d, int64_t N, DirectTiles tiles);
  void start_group(FilterGradScratch<T>& s) const;  // zeroes the thread's sums
  // One image, x[C, H, W] and its output gradient gy laid out as `layout` says (contiguous(d): [K, OH, OW]).
  void add_image(FilterGradScratch<T>& s, const T* x, const T* gy, const GradLayout& layout) const;
  // The same from the pooling's winners (pooled_winners), with channel lanes only: the same bits.
  void add_image_pooled(FilterGradScratch<T>& s, const T* x, const Winners<T>& winners) const;
  void end_group(int64_t group, const FilterGradScratch<T>& s);  // threads end different groups
  void finish(T* gw) const;

 private:
  Dims d_;
  bool v3_, channels_;
  int64_t groups_, weights_;
  std::vector<T> partial_;  // [groups][weights]
  T last_mask_[kLanes];
};

}  // namespace musicrec::kernels::cpu::direct
