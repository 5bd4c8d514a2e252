// The paper's song-pair CNN. One tower, shared by both songs: three convolutions with the fused
// bias + sigmoid epilogue, each followed by 2x2 max pooling (kernels 5x10 over frequency x time, then
// 2x2 and 2x2, stride 1, no padding), flattened. Each layer pools before its epilogue
// (Conv2d::forward_maxpool2x2), which gives the same values: the bias and the sigmoid are monotone. The head concatenates the two songs' vectors h1, h2
// and their dot product, then dense 100 (sigmoid), dense 30 (ReLU) and one logit (the sigmoid is
// applied by the loss, binary cross-entropy on logits, for stability).
//
// The head reads the tower's outputs centred on the sigmoid's midpoint, c = h - 1/2, and the dot
// product as c1 . c2 / sqrt(D). This is the paper's model reparametrised, not a different one: dense 1
// over [c1, c2, c1.c2] spans the same functions as over [h1, h2, h1.h2] (c1.c2 = h1.h2 - (sum h1 +
// sum h2)/2 + D/4, and the sums are linear in h1, h2, which dense 1 absorbs). What changes is the
// conditioning: sigmoid outputs are all positive, so dense 1's weight gradients (delta * h) share one
// large common direction and the uncentred dot (0.25 D + small) barely varies between songs (LeCun et
// al., "Efficient BackProp", on why zero-mean inputs train faster). Measured on generated data
// (2026-11-25, CPU, class weights, seed 1): 200 songs, 3 epochs: balanced-test AUC 0.64 (uncentred,
// still on its initial plateau) -> 0.93 centred; 500 songs, 6 epochs: accuracy 0.905 / AUC 0.964 ->
// 0.913 / 0.971, with the first epoch's validation AUC 0.59 -> 0.76.
//
// Filter counts default to 16, 32, 32: the paper does not state them; 16 first-layer filters over 50
// inputs each and 32 later give a 32 x 3 x 13 = 1,248-wide song vector for 40 x 120 images, small
// enough that the tower of a 512-pair batch trains in well under a second on the 2-core CPU, while
// doubling the maps per layer after the first, as common for small image CNNs.
//
// forward() takes the distinct songs of a batch once and two index lists, so the tower runs once per
// distinct song however many pairs share it; gradients from both sides meet in the tower.
#pragma once
#include <array>
#include <memory>

#include "engine/modules.h"

namespace musicrec::models {

// What the tower hands the head. Flatten is the paper's: every position of the last feature map
// (32 x 3 x 13 = 1,248 values). TimeMean averages the last map over its 13 time positions (32 x 3 =
// 96 values) and scales the dot product by those 13 positions, so its size matches the flattened
// one's sum over positions. Why: the generator's similarity is a function of each song's mean
// features, and a rank-4 bilinear form with an offset on the mean timbre reaches a listed-test AUC of
// 0.9968 (scripts/analysis/mean_timbre_bilinear.py), where the flattened tower's position-by-position
// dot product must learn that averaging itself. Measured on 500 generated songs, 6 epochs, class
// weights, seed 1, CPU: balanced test 0.9132 / AUC 0.9707 flattened, 0.9285 / 0.9795 time-mean
// (ceiling 0.9768 / 0.9986).
enum class TowerOutput { Flatten, TimeMean };

struct PairCnnConfig {
  int64_t height = 40, width = 120;
  TowerOutput tower_output = TowerOutput::Flatten;
  std::array<int64_t, 3> filters{16, 32, 32};
  int64_t dense1 = 100, dense2 = 30;
  // Gain on the conv layers' Glorot range. A sigmoid's slope is at most 1/4, so with gain 1 the songs'
  // differences shrink about fourfold per layer: at initialisation the tower's 1,248 outputs varied
  // across songs by a standard deviation of 0.001 (gain 1), 0.023 (gain 4) and 0.054 (gain 8), and the
  // head settled on a constant output. Measured on synth msd (400 songs, balanced pairs, 6 epochs, Adam
  // 1e-3, seed 1, 2026-11-25): validation AUC 0.636 (gain 1) and 0.617 (gain 4, Glorot and Bengio's
  // advice for sigmoid units), both still predicting a constant; 0.715 with gain 8, which learns (and
  // 0.899 with gain 8 on another draw of the initial weights: the outcome still depends on the seed).
  double conv_init_gain = 8.0;
};

// The pair head rearranged for scoring one song against a whole catalogue (recommendation): dense 1's
// weight splits into the columns that read h1, h2 and the dot product, so the candidates' share
// W_b h is computed once per catalogue, and a seed then costs one [N, D] x [D] product for the dots
// plus the small dense 2 and output layers, instead of dense 1 over 2D + 1 inputs for every pair
// (for D = 1,248: about 60 times fewer operations per seed). Equal to head() up to rounding (tested).
struct CatalogueHead {
  Tensor vectors;  // [N, D] tower vectors of the catalogue, centred as the head reads them
  Tensor right;    // [N, dense1] = vectors W_b^T
  Tensor w_left;   // [dense1, D]
  Tensor w_dot;    // [1, dense1], already divided by the dot's scale
  Tensor bias;     // [dense1]
};

class PairCnn : public Module {
 public:
  PairCnn(const PairCnnConfig& cfg, Generator& gen);
  // images [U, 1, H, W] -> song vectors [U, D] (D = C x H' x W' flattened, or C x H' for TimeMean).
  Tensor tower(const Tensor& images) const;
  // Song vectors [U, D] and int32 [B] rows into them for each side -> logits [B, 1].
  Tensor head(const Tensor& h, const Tensor& side_a, const Tensor& side_b) const;
  // images of the distinct songs, and int32 [B] rows into them for each side -> logits [B, 1].
  Tensor forward(const Tensor& images, const Tensor& side_a, const Tensor& side_b) const;
  int64_t song_vector_width() const { return width_; }
  // See CatalogueHead. vectors: tower outputs [N, D] on the model's device.
  CatalogueHead prepare_catalogue(const Tensor& vectors) const;
  // Logits [N, 1] of the pairs (catalogue row `seed`, every catalogue row), the seed as side a.
  Tensor logits_against(const CatalogueHead& c, int64_t seed) const;
  const PairCnnConfig& config() const { return cfg_; }

 private:
  PairCnnConfig cfg_;
  std::array<std::shared_ptr<Conv2d>, 3> convs_;
  std::shared_ptr<Linear> dense1_, dense2_, out_;
  int64_t width_ = 0;           // song vector width D
  int64_t time_positions_ = 0;  // time positions of the last feature map
  double dot_scale_ = 1.0;      // the head reads the dot product times this
  Tensor centred(const Tensor& h) const;  // h - 1/2 (see the top of this file)
};

}  // namespace musicrec::models
