// The pair CNN: the paper's shapes, the shared tower run once per distinct song giving the same logits
// as running it per pair, gradients reaching every parameter, and a gradient check in double on a
// small configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/error.h"
#include "models/pair_cnn.h"
#include "tests/test_util.h"

namespace musicrec::models {
namespace {

// A pair CNN over 18 x 24 images with the given filter counts: small enough for exact comparisons.
PairCnnConfig small_config(std::array<int64_t, 3> filters, TowerOutput out = TowerOutput::Flatten) {
  PairCnnConfig cfg;
  cfg.height = 18;
  cfg.width = 24;
  cfg.filters = filters;
  cfg.tower_output = out;
  return cfg;
}

// Replaces every parameter, biases too, with uniform draws in [-0.5, 0.5] (seeds from `seed` on), so
// that a wrong column split or a missing bias shows; returns the parameters in registration order.
std::vector<Tensor> randomise_parameters(PairCnn& m, uint64_t seed) {
  std::vector<Tensor> params;
  for (auto& [name, p] : m.named_parameters()) {
    Tensor r = test::random_tensor(p.shape(), seed++, -0.5, 0.5, DType::F32);
    std::copy(r.data<float>(), r.data<float>() + r.numel(), p.data<float>());
    params.push_back(p);
  }
  return params;
}

TEST(PairCnn, PaperShapes) {
  Generator g(1);
  PairCnn m(PairCnnConfig{}, g);
  // 40x120 -conv 5x10-> 36x111 -pool-> 18x55 -conv 2x2-> 17x54 -pool-> 8x27 -conv-> 7x26 -pool-> 3x13.
  EXPECT_EQ(m.song_vector_width(), 32 * 3 * 13);
  Tensor images = test::random_tensor({3, 1, 40, 120}, 2, -1, 1, DType::F32);
  Tensor a = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 0}, {4});
  Tensor b = Tensor::from_vector(std::vector<int32_t>{1, 2, 0, 0}, {4});
  EXPECT_EQ(m.forward(images, a, b).shape(), (Shape{4, 1}));
  EXPECT_THROW(m.tower(Tensor::zeros({2, 1, 30, 120})), Error);
}

TEST(PairCnn, TimeMeanTowerAveragesTheLastMapOverTime) {
  Generator g(1);
  PairCnnConfig cfg;
  cfg.tower_output = TowerOutput::TimeMean;
  PairCnn m(cfg, g);
  EXPECT_EQ(m.song_vector_width(), 32 * 3);
  // The same weights flattened: the time-mean vector is the mean of the flattened one's 13 columns.
  Generator g2(1);
  PairCnn flat(PairCnnConfig{}, g2);
  Tensor images = test::random_tensor({2, 1, 40, 120}, 2, -1, 1, DType::F32);
  autograd::NoGradGuard ng;
  const std::vector<float> mean = m.tower(images).to_vector<float>(), all = flat.tower(images).to_vector<float>();
  for (int64_t u = 0; u < 2; ++u)
    for (int64_t r = 0; r < 96; ++r) {
      double s = 0;
      for (int64_t t = 0; t < 13; ++t) s += all[size_t(u * 1248 + r * 13 + t)];
      EXPECT_NEAR(mean[size_t(u * 96 + r)], s / 13, 1e-5) << "song " << u << " row " << r;
    }
}

TEST(PairCnn, SharedTowerEqualsPerPairTowers) {
  Generator g(3);
  PairCnn m(small_config({3, 4, 2}), g);
  Tensor images = test::random_tensor({4, 1, 18, 24}, 4, -1, 1, DType::F32);
  std::vector<int32_t> ia = {0, 3, 1, 3}, ib = {2, 2, 0, 1};
  autograd::NoGradGuard ng;
  std::vector<float> shared = m.forward(images, Tensor::from_vector(ia, {4}), Tensor::from_vector(ib, {4})).to_vector<float>();
  for (size_t p = 0; p < ia.size(); ++p) {
    Tensor one_a = ops::reshape(images.row(ia[p]).clone(), {1, 1, 18, 24});
    Tensor one_b = ops::reshape(images.row(ib[p]).clone(), {1, 1, 18, 24});
    const Tensor first = Tensor::from_vector(std::vector<int32_t>{0}, {1});
    const Tensor second = Tensor::from_vector(std::vector<int32_t>{1}, {1});
    float logit = float(m.head(ops::concat_rows({m.tower(one_a), m.tower(one_b)}), first, second).item());
    EXPECT_NEAR(shared[p], logit, 1e-5) << "pair " << p;
  }
}

// The head takes dense 1 as one product per block of its weight's columns, over the songs or over
// the pairs; both must give the paper's dense 1 over the concatenation [c_a, c_b, c_a . c_b / sqrt(D)],
// values and gradients (to the song vectors and to every head parameter).
TEST(PairCnn, HeadEqualsTheDenseLayerOverTheConcatenationOnBothPaths) {
  Generator g(5);
  PairCnn m(small_config({3, 4, 2}), g);
  std::vector<Tensor> params = randomise_parameters(m, 70);
  uint64_t seed = 90;
  const int64_t D = m.song_vector_width();
  struct Case {
    int64_t songs;
    std::vector<int32_t> a, b;
  };
  // Fewer songs than pairs (products over the songs, dots in place), then more (gathered rows).
  const std::vector<Case> cases = {{5, {0, 4, 4, 2, 1, 3, 0}, {1, 1, 4, 0, 3, 3, 2}}, {9, {8, 0, 5, 5}, {2, 6, 5, 0}}};
  for (const Case& k : cases) {
    const int64_t B = int64_t(k.a.size());
    const Tensor ia = Tensor::from_vector(k.a, {B}), ib = Tensor::from_vector(k.b, {B});
    const Tensor h0 = test::random_tensor({k.songs, D}, seed++, 0, 1, DType::F32);
    const Tensor weights = test::random_tensor({B, 1}, seed++, -1, 1, DType::F32);
    for (Tensor& p : params) p.zero_grad();
    Tensor h = h0.clone().set_requires_grad(true);
    const Tensor got = m.head(h, ia, ib);
    test::weighted_sum(got, weights).backward();

    std::vector<Tensor> ref_params;
    for (const Tensor& p : params) ref_params.push_back(p.detach().clone().set_requires_grad(true));
    Tensor hr = h0.clone().set_requires_grad(true);
    const Tensor c = ops::bias_add(hr, Tensor::full({D}, -0.5));
    const Tensor c1 = ops::embedding(c, ia), c2 = ops::embedding(c, ib);
    const Tensor z = ops::concat_cols({c1, c2, ops::scale(ops::rowdot(c1, c2), 1.0 / std::sqrt(double(D)))});
    Tensor y = ops::sigmoid(ops::linear(z, ref_params[6], ref_params[7]));
    y = ops::relu(ops::linear(y, ref_params[8], ref_params[9]));
    const Tensor want = ops::linear(y, ref_params[10], ref_params[11]);
    test::weighted_sum(want, weights).backward();

    EXPECT_TRUE(test::all_close(got, want, 1e-5, 1e-6)) << k.songs << " songs";
    EXPECT_TRUE(test::all_close(h.grad(), hr.grad(), 1e-4, 1e-6)) << k.songs << " songs: song vectors' gradient";
    for (size_t i = 6; i < params.size(); ++i)
      EXPECT_TRUE(test::all_close(params[i].grad(), ref_params[i].grad(), 1e-4, 1e-6))
          << k.songs << " songs: gradient of head parameter " << i;
  }
}

class CatalogueHeadTest : public ::testing::TestWithParam<TowerOutput> {};

TEST_P(CatalogueHeadTest, EqualsThePairHead) {
  Generator g(5);
  PairCnn m(small_config({3, 4, 2}, GetParam()), g);
  randomise_parameters(m, 50);
  autograd::NoGradGuard ng;
  Tensor H = m.tower(test::random_tensor({7, 1, 18, 24}, 6, -1, 1, DType::F32));
  CatalogueHead c = m.prepare_catalogue(H);
  for (int32_t s : {0, 4, 6}) {
    std::vector<float> fast = m.logits_against(c, s).to_vector<float>();
    std::vector<int32_t> a(7, s), b = {0, 1, 2, 3, 4, 5, 6};
    std::vector<float> slow =
        m.head(H, Tensor::from_vector(a, {7}), Tensor::from_vector(b, {7})).to_vector<float>();
    ASSERT_EQ(fast.size(), slow.size());
    for (size_t i = 0; i < fast.size(); ++i) EXPECT_NEAR(fast[i], slow[i], 1e-5) << "seed " << s << " candidate " << i;
  }
  EXPECT_THROW(m.logits_against(c, 7), Error);
}
INSTANTIATE_TEST_SUITE_P(PairCnn, CatalogueHeadTest, ::testing::Values(TowerOutput::Flatten, TowerOutput::TimeMean),
                         [](const auto& info) { return info.param == TowerOutput::Flatten ? "Flatten" : "TimeMean"; });

class GradientTest : public ::testing::TestWithParam<TowerOutput> {};

TEST_P(GradientTest, EveryParameterGetsAGradient) {
  Generator g(5);
  PairCnn m(small_config({2, 3, 2}, GetParam()), g);
  Tensor images = test::random_tensor({3, 1, 18, 24}, 6, -1, 1, DType::F32);
  Tensor logits = m.forward(images, Tensor::from_vector(std::vector<int32_t>{0, 1}, {2}),
                            Tensor::from_vector(std::vector<int32_t>{2, 2}, {2}));
  Tensor y = Tensor::from_vector(std::vector<float>{1, 0}, {2, 1});
  Tensor w = Tensor::from_vector(std::vector<float>{10, 1}, {2, 1});
  ops::mean(ops::bce_with_logits(logits, y, w)).backward();
  for (auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    double norm = 0;
    for (float v : p.grad().to_vector<float>()) norm += double(v) * v;
    EXPECT_GT(norm, 0.0) << name;
  }
}
INSTANTIATE_TEST_SUITE_P(PairCnn, GradientTest, ::testing::Values(TowerOutput::Flatten, TowerOutput::TimeMean),
                         [](const auto& info) { return info.param == TowerOutput::Flatten ? "Flatten" : "TimeMean"; });

TEST(PairCnn, GradCheckThroughTheWholeModelInDouble) {
  // The model's parameters are float32; the check runs the same architecture's ops in double on the
  // images, through both sides and the shared tower.
  Generator g(7);
  PairCnn m(small_config({2, 2, 2}), g);
  std::vector<Tensor> params;
  for (auto& [n, p] : m.named_parameters()) params.push_back(p.cpu().to_dtype(DType::F64));
  Tensor ia = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2}), ib = Tensor::from_vector(std::vector<int32_t>{1, 1}, {2});
  test::gradcheck(
      [&](const std::vector<Tensor>& in) {
        Tensor x = in[0];
        for (int i = 0; i < 3; ++i)
          x = ops::maxpool2x2(ops::bias_sigmoid(ops::conv2d(x, params[size_t(2 * i)], 0, 0), params[size_t(2 * i + 1)]));
        Tensor h = ops::flatten(x);
        Tensor h1 = ops::embedding(h, ia), h2 = ops::embedding(h, ib);
        Tensor z = ops::concat_cols({h1, h2, ops::scale(ops::rowdot(h1, h2), 1.0 / double(m.song_vector_width()))});
        Tensor y = ops::sigmoid(ops::linear(z, params[6], params[7]));
        y = ops::relu(ops::linear(y, params[8], params[9]));
        return ops::linear(y, params[10], params[11]);
      },
      {test::distinct_tensor({2, 1, 18, 24}, 8, 0.01)}, test::GradCheckOptions{1e-6, 1e-5, nullptr});
}

}  // namespace
}  // namespace musicrec::models
