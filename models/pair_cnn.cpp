// Song-pair CNN (see pair_cnn.h).
#include "models/pair_cnn.h"

#include <cmath>
#include <string>

#include "engine/ops.h"
#include "kernels/error.h"

namespace musicrec::models {

PairCnn::PairCnn(const PairCnnConfig& cfg, Generator& gen) : cfg_(cfg) {
  const int64_t kh[3] = {5, 2, 2}, kw[3] = {10, 2, 2};
  int64_t c = 1, h = cfg.height, w = cfg.width;
  for (int i = 0; i < 3; ++i) {
    convs_[size_t(i)] = register_module(
        "conv" + std::to_string(i + 1),
        std::make_shared<Conv2d>(c, cfg.filters[size_t(i)], kh[i], kw[i], 0, 0, ConvActivation::Sigmoid, gen,
                                 cfg.conv_init_gain));
    c = cfg.filters[size_t(i)];
    h = (h - kh[i] + 1) / 2;
    w = (w - kw[i] + 1) / 2;
    MR_CHECK(h >= 1 && w >= 1, "PairCnn: images of " + std::to_string(cfg.height) + " x " + std::to_string(cfg.width) +
                                   " are too small for three conv + pool stages");
  }
  time_positions_ = w;
  const bool time_mean = cfg.tower_output == TowerOutput::TimeMean;
  width_ = time_mean ? c * h : c * h * w;
  dot_scale_ = (time_mean ? double(w) : 1.0) / std::sqrt(double(width_));
  dense1_ = register_module("dense1", std::make_shared<Linear>(2 * width_ + 1, cfg.dense1, gen));
  dense2_ = register_module("dense2", std::make_shared<Linear>(cfg.dense1, cfg.dense2, gen, Init::HeUniform));
  out_ = register_module("out", std::make_shared<Linear>(cfg.dense2, 1, gen));
}

Tensor PairCnn::tower(const Tensor& images) const {
  MR_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == cfg_.height && images.size(3) == cfg_.width,
           "PairCnn: images must be [U, 1, " + std::to_string(cfg_.height) + ", " + std::to_string(cfg_.width) +
               "], got " + shape_str(images.shape()));
  Tensor x = images;
  for (auto& conv : convs_) x = conv->forward_maxpool2x2(x);
  if (cfg_.tower_output == TowerOutput::TimeMean) {
    // The mean over time as one product with a column of 1/W' (rows are (song, filter, frequency)).
    const int64_t U = x.size(0);
    const Tensor mean_col = Tensor::full({time_positions_, 1}, 1.0 / double(time_positions_), x.dtype(), x.device());
    return ops::reshape(ops::matmul(ops::reshape(x, {-1, time_positions_}), mean_col), {U, width_});
  }
  return ops::flatten(x);
}

CatalogueHead PairCnn::prepare_catalogue(const Tensor& vectors) const {
  MR_CHECK(vectors.dim() == 2 && vectors.size(1) == width_,
           "PairCnn: catalogue vectors must be [N, " + std::to_string(width_) + "], got " + shape_str(vectors.shape()));
  // dense 1's weight [dense1, 2D + 1] is split on the host: it is small, and this runs once.
  const Device dev = vectors.device();
  const std::vector<float> w = dense1_->weight().to(Device::cpu()).to_vector<float>();
  const int64_t out = cfg_.dense1, in = 2 * width_ + 1;
  std::vector<float> left(static_cast<size_t>(out * width_)), right(static_cast<size_t>(out * width_));
  std::vector<float> dot(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    std::copy(w.begin() + o * in, w.begin() + o * in + width_, left.begin() + o * width_);
    std::copy(w.begin() + o * in + width_, w.begin() + o * in + 2 * width_, right.begin() + o * width_);
    dot[size_t(o)] = float(double(w[size_t(o * in + 2 * width_)]) * dot_scale_);
  }
  CatalogueHead c;
  c.vectors = centred(vectors);
  c.w_left = Tensor::from_vector(left, {out, width_}, dev);
  c.w_dot = Tensor::from_vector(dot, {1, out}, dev);
  c.bias = dense1_->bias().to(dev);
  c.right = ops::matmul(c.vectors, Tensor::from_vector(right, {out, width_}, dev), false, true);
  return c;
}

Tensor PairCnn::logits_against(const CatalogueHead& c, int64_t seed) const {
  MR_CHECK(seed >= 0 && seed < c.vectors.size(0), "PairCnn: seed row out of range");
  const Tensor h = ops::embedding(c.vectors, Tensor::from_vector(std::vector<int32_t>{int32_t(seed)}, {1}, c.vectors.device()));
  const Tensor left = ops::reshape(ops::linear(h, c.w_left, c.bias), {cfg_.dense1});  // [dense1]
  const Tensor dots = ops::matmul(c.vectors, h, false, true);                         // [N, 1]
  Tensor y = ops::sigmoid(ops::add(ops::bias_add(c.right, left), ops::matmul(dots, c.w_dot)));
  y = ops::relu(dense2_->forward(y));
  return out_->forward(y);
}

Tensor PairCnn::centred(const Tensor& h) const {
  // A bias of -1/2 per column rather than an added tensor of h's shape: the same sums, without
  // filling and reading a second 700 MB tensor when h is a 141k-song catalogue.
  return ops::bias_add(h, Tensor::full({h.size(1)}, -0.5, h.dtype(), h.device()));
}

Tensor PairCnn::head(const Tensor& h, const Tensor& side_a, const Tensor& side_b) const {
  MR_CHECK(h.dim() == 2 && h.size(1) == width_,
           "PairCnn: song vectors must be [U, " + std::to_string(width_) + "], got " + shape_str(h.shape()));
  // Dense 1 over [c_a, c_b, c_a . c_b] as one product per block of its weight's columns, so the
  // [B, 2D + 1] concatenation is never built. Where there are no more songs than pairs (one seed
  // against a whole catalogue), the blocks' products run over the songs and their [U, dense1]
  // results are gathered, and the dots are taken from the songs' rows in place; otherwise (a training
  // batch, whose pairs mostly name two songs of their own) the songs' vectors are gathered and the
  // products run over the pairs. Either way the products run over min(U, B) rows.
  Tensor& w = dense1_->weight();
  const int64_t d1 = cfg_.dense1;
  const Tensor w_a = ops::slice_cols(w, 0, width_), w_b = ops::slice_cols(w, width_, width_);
  const Tensor w_dot = ops::slice_cols(w, 2 * width_, 1);
  Tensor pre, dots, bias = dense1_->bias();
  if (h.size(0) <= side_a.size(0)) {
    // Over the songs, uncentred: (h - 1/2) W^T = h W^T - (W 1) / 2, so the centring folds into dense 1's
    // bias and the dots shift each element, and the centred [U, D] copy (700 MB for 141k songs) is
    // never written. Both sides' blocks in one product, [U, D] x [D, 2 dense1]: OpenBLAS runs it at
    // ~295 GFLOP/s on the 2-core VM against ~235 for two products [D, dense1] wide (141k songs).
    const Tensor both = ops::matmul(h, ops::concat_rows({w_a, w_b}), false, true);  // [U, 2 dense1]
    pre = ops::add(ops::embedding(ops::slice_cols(both, 0, d1), side_a),
                   ops::embedding(ops::slice_cols(both, d1, d1), side_b));
    const Tensor ones = Tensor::full({2 * width_, 1}, 1.0, w.dtype(), w.device());
    const Tensor row_sums = ops::reshape(ops::matmul(ops::slice_cols(w, 0, 2 * width_), ones), {d1});
    bias = ops::add(bias, ops::scale(row_sums, -0.5));
    dots = ops::rowdot_pairs(h, side_a, side_b, 0.5);
  } else {
    const Tensor c = centred(h);
    const Tensor c1 = ops::embedding(c, side_a), c2 = ops::embedding(c, side_b);
    pre = ops::add(ops::matmul(c1, w_a, false, true), ops::matmul(c2, w_b, false, true));
    dots = ops::rowdot(c1, c2);
  }
  Tensor y = ops::sigmoid(ops::add(pre, ops::linear(ops::scale(dots, dot_scale_), w_dot, bias)));
  y = ops::relu(dense2_->forward(y));
  return out_->forward(y);
}

Tensor PairCnn::forward(const Tensor& images, const Tensor& side_a, const Tensor& side_b) const {
  return head(tower(images), side_a, side_b);
}

}  // namespace musicrec::models
