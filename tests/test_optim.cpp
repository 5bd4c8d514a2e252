// Optimizers against hand-written references, and the row-sparse (lazy) semantics documented in
// engine/optim.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/ops.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/error.h"
#include "kernels/math.h"
#include "kernels/philox.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {

TEST(Adam, MatchesTheTextbookUpdate) {
  // Minimise sum(x^2 / 2): the gradient is x.
  Tensor x = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).set_requires_grad(true);
  AdamOptions o{0.1, 0.9, 0.999, 1e-8, 0.0};
  Adam adam({{"x", x}}, o);
  double ref[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  for (int t = 1; t <= 5; ++t) {
    adam.zero_grad();
    Tensor sq = ops::rowdot(ops::reshape(x, {1, 2}), ops::reshape(x, {1, 2}));
    ops::sum(ops::scale(sq, 0.5)).backward();
    adam.step();
    for (int i = 0; i < 2; ++i) {
      double g = ref[i];
      m[i] = 0.9 * m[i] + 0.1 * g;
      v[i] = 0.999 * v[i] + 0.001 * g * g;
      double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      ref[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
    }
    std::vector<double> got = x.to_vector<double>();
    EXPECT_NEAR(got[0], ref[0], 1e-12) << "step " << t;
    EXPECT_NEAR(got[1], ref[1], 1e-12) << "step " << t;
  }
  EXPECT_EQ(adam.steps(), 5);
}

TEST(LrSchedule, CosineRunsFromBaseToTheFinalFractionAndConstantStays) {
  const LrSchedule cosine{LrSchedule::Kind::Cosine, 0.01, 101, 0.1};
  EXPECT_DOUBLE_EQ(cosine.at(0), 0.01);
  EXPECT_NEAR(cosine.at(50), 0.01 * (0.1 + 0.9 * 0.5), 1e-15);  // half way: the mean of the two ends
  EXPECT_NEAR(cosine.at(25), 0.01 * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))), 1e-15);
  EXPECT_NEAR(cosine.at(100), 0.001, 1e-15);                     // the last step
  EXPECT_NEAR(cosine.at(500), 0.001, 1e-15);                     // past the end it stays there
  for (int64_t s = 1; s <= 100; ++s) EXPECT_LT(cosine.at(s), cosine.at(s - 1)) << s;
  const LrSchedule constant{LrSchedule::Kind::Constant, 0.01, 101};
  for (int64_t s : {0, 50, 100, 1000}) EXPECT_EQ(constant.at(s), 0.01);
  // A run of 3 epochs of 1000 samples in batches of 256: 4 steps per epoch (the last one short).
  const LrSchedule run = LrSchedule::for_run("cosine", 0.01, 3, 1000, 256);
  EXPECT_EQ(run.total_steps, 12);
  EXPECT_EQ(run.at_batch(1, 0), run.at(0));
  EXPECT_EQ(run.at_batch(2, 768), run.at(7));
  EXPECT_NEAR(run.at_batch(3, 768), 0.0, 1e-18);  // the last step of the run
  EXPECT_EQ(LrSchedule::parse("cosine"), LrSchedule::Kind::Cosine);
  EXPECT_EQ(LrSchedule::parse("constant"), LrSchedule::Kind::Constant);
  EXPECT_THROW(LrSchedule::parse("linear"), Error);
}

TEST(Sgd, MomentumMatchesPyTorchDefinition) {
  Tensor x = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad(true);
  SGD sgd({{"x", x}}, SgdOptions{0.1, 0.9, 0.0});
  double ref = 1.0, buf = 0;
  for (int t = 0; t < 4; ++t) {
    sgd.zero_grad();
    ops::sum(ops::scale(x, 3.0)).backward();  // gradient 3
    sgd.step();
    buf = 0.9 * buf + 3.0;
    ref -= 0.1 * buf;
    EXPECT_NEAR(x.item(), ref, 1e-12);
  }
}

TEST(Adam, SparseRowsAreLazyAndMatchDenseOnTouchedRows) {
  auto make = [](bool sparse) {
    Tensor t = test::random_tensor({6, 3}, 1).set_requires_grad(true);
    t.impl()->sparse_grad_enabled = sparse;
    return t;
  };
  Tensor ts = make(true), td = make(false);
  Adam as({{"t", ts}}), ad({{"t", td}});
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{4, 1, 4}, {3});
  Tensor g = test::random_tensor({3, 3}, 2);
  as.zero_grad();
  ad.zero_grad();
  ops::embedding(ts, idx).backward(g);
  ops::embedding(td, idx).backward(g);
  std::vector<double> before = ts.to_vector<double>();
  as.step();
  ad.step();
  std::vector<double> s = ts.to_vector<double>(), d = td.to_vector<double>();
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 3; ++c) {
      size_t k = size_t(r * 3 + c);
      if (r == 1 || r == 4) EXPECT_NEAR(s[k], d[k], 1e-15) << "touched row " << r;
      else EXPECT_EQ(s[k], before[k]) << "untouched row " << r << " must not move";
    }
  // Second step touching only row 0: lazy Adam leaves rows 1 and 4 (and their moments) alone, while
  // dense Adam keeps moving them on momentum with a zero gradient.
  as.zero_grad();
  ops::embedding(ts, Tensor::from_vector(std::vector<int32_t>{0}, {1})).backward(test::random_tensor({1, 3}, 3));
  std::vector<double> mid = ts.to_vector<double>();
  as.step();
  std::vector<double> after = ts.to_vector<double>();
  for (int r = 1; r < 6; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(after[size_t(r * 3 + c)], mid[size_t(r * 3 + c)]);
  for (auto& [name, st] : as.state())
    if (name.rfind("m/", 0) == 0) {
      EXPECT_NE(st.to_vector<double>()[0], 0.0);
    }
}

TEST(Adam, DenseAndSparseGradientOnOneTableUpdateOnce) {
  Tensor t = test::random_tensor({4, 2}, 4).set_requires_grad(true);
  t.impl()->sparse_grad_enabled = true;
  Tensor ref = t.detach().clone().set_requires_grad(true);
  Adam a({{"t", t}}), b({{"t", ref}});
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{2}, {1});
  // The table used both as an embedding and directly.
  auto loss = [&](const Tensor& table) {
    return ops::add(ops::sum(ops::embedding(table, idx)), ops::sum(ops::scale(table, 0.5)));
  };
  loss(t).backward();
  loss(ref).backward();  // ref is dense-only: the reference
  a.step();
  b.step();
  EXPECT_TRUE(test::all_close(t, ref, 0, 1e-15));
}

TEST(RowSparseKernels, SkipPaddingRowsAndTouchNothingElse) {
  // Rows -1 are padding from a coalesced gradient: writing through them would corrupt memory.
  std::vector<double> p(8, 1.0), m(8, 0.0), v(8, 0.0), buf(8, 0.0);
  const int32_t rows[3] = {-1, 1, -1};
  const double g[6] = {9, 9, 0.5, 0.5, 9, 9};
  kernels::cpu::adam_rows<double>(p.data(), m.data(), v.data(), rows, g, 3, 2, 0.9, 0.999, 0.1, 1e-8, 0);
  kernels::cpu::sgd_rows<double>(p.data(), buf.data(), rows, g, 3, 2, 0.1, 0.9, 0);
  for (int i : {0, 1, 4, 5, 6, 7}) EXPECT_EQ(p[size_t(i)], 1.0) << i;
  EXPECT_LT(p[2], 1.0);
  EXPECT_LT(p[3], 1.0);
}

// The optimizer kernels update a span as a vector loop (kernels/cpu/optim.cpp) with a scalar tail:
// every element, in the loop and in the tail, must be the per-element definition's value to the bit,
// in float and double, for row widths around the vector widths (and the tables' 8 and 64), sparse
// rows then the dense step, Adam and SGD.
template <typename T> void expect_rows_match_the_scalar_update() {
  const int64_t V = 9;
  for (int64_t dim : {1, 3, 4, 5, 7, 8, 15, 16, 17, 31, 64, 67}) {
    std::vector<T> p(size_t(V * dim)), m(p.size()), v(p.size());
    const int32_t rows[4] = {7, -1, 2, 4};
    std::vector<T> g(size_t(4 * dim));
    uint64_t draw = 0;
    auto uniform = [&draw](T lo, T hi) {
      return lo + (hi - lo) * T(rng::philox_block(11, draw++, 0)[0] >> 8) / T(1 << 24);
    };
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] = uniform(-1, 1);
      m[i] = uniform(-0.1, 0.1);
      v[i] = uniform(0, 0.01);
    }
    for (T& x : g) x = uniform(-1, 1);
    std::vector<T> want_p = p, want_m = m, want_v = v;
    const T b1 = 0.9, b2 = 0.999, lr = 0.01, eps = 1e-8, wd = 0.01;
    for (int u = 0; u < 4; ++u) {
      if (rows[u] < 0) continue;
      for (int64_t d = 0; d < dim; ++d) {
        const size_t i = size_t(rows[u] * dim + d);
        math::adam_update(want_p[i], want_m[i], want_v[i], g[size_t(u * dim + d)], b1, b2, lr, eps, wd);
      }
    }
    kernels::cpu::adam_rows<T>(p.data(), m.data(), v.data(), rows, g.data(), 4, dim, b1, b2, lr, eps, wd);
    EXPECT_EQ(std::memcmp(p.data(), want_p.data(), p.size() * sizeof(T)), 0) << "p, dim " << dim;
    EXPECT_EQ(std::memcmp(m.data(), want_m.data(), m.size() * sizeof(T)), 0) << "m, dim " << dim;
    EXPECT_EQ(std::memcmp(v.data(), want_v.data(), v.size() * sizeof(T)), 0) << "v, dim " << dim;
    // The dense step over the whole table (gradient: the table's first rows again), and SGD both ways.
    for (size_t i = 0; i < p.size(); ++i)
      math::adam_update(want_p[i], want_m[i], want_v[i], g[i % g.size()], b1, b2, lr, eps, wd);
    std::vector<T> g_dense(p.size());
    for (size_t i = 0; i < p.size(); ++i) g_dense[i] = g[i % g.size()];
    kernels::cpu::adam_dense<T>(p.data(), m.data(), v.data(), g_dense.data(), int64_t(p.size()), b1, b2, lr, eps, wd);
    EXPECT_EQ(std::memcmp(p.data(), want_p.data(), p.size() * sizeof(T)), 0) << "dense p, dim " << dim;
    EXPECT_EQ(std::memcmp(v.data(), want_v.data(), v.size() * sizeof(T)), 0) << "dense v, dim " << dim;
    std::vector<T> buf = m, want_buf = m;
    for (int u = 0; u < 4; ++u)
      for (int64_t d = 0; rows[u] >= 0 && d < dim; ++d) {
        const size_t i = size_t(rows[u] * dim + d);
        math::sgd_momentum_update(want_p[i], want_buf[i], g[size_t(u * dim + d)], lr, T(0.9), wd);
      }
    for (size_t i = 0; i < p.size(); ++i) math::sgd_momentum_update(want_p[i], want_buf[i], g_dense[i], lr, T(0.9), wd);
    kernels::cpu::sgd_rows<T>(p.data(), buf.data(), rows, g.data(), 4, dim, lr, T(0.9), wd);
    kernels::cpu::sgd_dense<T>(p.data(), buf.data(), g_dense.data(), int64_t(p.size()), lr, T(0.9), wd);
    EXPECT_EQ(std::memcmp(p.data(), want_p.data(), p.size() * sizeof(T)), 0) << "sgd p, dim " << dim;
    EXPECT_EQ(std::memcmp(buf.data(), want_buf.data(), buf.size() * sizeof(T)), 0) << "sgd buf, dim " << dim;
  }
}

TEST(OptimizerKernels, GiveThePerElementUpdateBitForBit) {
  expect_rows_match_the_scalar_update<float>();
  expect_rows_match_the_scalar_update<double>();
}

}  // namespace
}  // namespace musicrec
