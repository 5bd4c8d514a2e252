// Every differentiable op: a hand-computed small case on the CPU and a finite-difference gradient
// check in double precision (with gradients prefilled to catch overwrite-instead-of-accumulate).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/error.h"
#include "kernels/philox.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
using test::gradcheck;
using test::random_tensor;
using V = std::vector<Tensor>;

Tensor dvec(std::vector<double> v, Shape s) { return Tensor::from_vector(v, s); }

void expect_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  std::vector<double> got = t.to_dtype(DType::F64).to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// ---- matmul / linear / bias_add ----
TEST(Matmul, HandComputed) {
  Tensor a = dvec({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = dvec({1, 0, 0, 1, 1, 1}, {3, 2});
  expect_values(ops::matmul(a, b), {4, 5, 10, 11});
  expect_values(ops::matmul(a, a, false, true), {14, 32, 32, 77});
  expect_values(ops::matmul(a, a, true, false), {17, 22, 27, 22, 29, 36, 27, 36, 45});
}

TEST(Matmul, GradCheckAllTransposes) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = random_tensor(ta ? Shape{4, 3} : Shape{3, 4}, 1);
      Tensor b = random_tensor(tb ? Shape{5, 4} : Shape{4, 5}, 2);
      gradcheck([=](const V& in) { return ops::matmul(in[0], in[1], ta, tb); }, {a, b});
    }
}

TEST(Matmul, InnerDimensionMismatchIsAnError) {
  EXPECT_THROW(ops::matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), Error);
}

TEST(Linear, HandComputedAndGradCheck) {
  Tensor x = dvec({1, 2}, {1, 2});
  Tensor w = dvec({1, 1, 2, -1, 0, 3}, {3, 2});
  Tensor b = dvec({0.5, 0, -1}, {3});
  expect_values(ops::linear(x, w, b), {3.5, 0, 5});
  gradcheck([](const V& in) { return ops::linear(in[0], in[1], in[2]); },
            {random_tensor({5, 4}, 3), random_tensor({3, 4}, 4), random_tensor({3}, 5)});
}

TEST(BiasAdd, RowsAndChannels) {
  expect_values(ops::bias_add(dvec({1, 2, 3, 4}, {2, 2}), dvec({10, 20}, {2})), {11, 22, 13, 24});
  expect_values(ops::bias_add(dvec({1, 2, 3, 4}, {1, 2, 1, 2}), dvec({10, 20}, {2})), {11, 12, 23, 24});
  gradcheck([](const V& in) { return ops::bias_add(in[0], in[1]); }, {random_tensor({6, 3}, 6), random_tensor({3}, 7)});
  gradcheck([](const V& in) { return ops::bias_add(in[0], in[1]); },
            {random_tensor({2, 3, 4, 5}, 8), random_tensor({3}, 9)});
}

// ---- convolution, sigmoid conv, pooling ----
TEST(Conv2d, HandComputedNoPaddingAndPadding) {
  // 1x1x3x3 input, one 2x2 kernel of ones: each output is the sum of a 2x2 window.
  Tensor x = dvec({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = dvec({1, 1, 1, 1}, {1, 1, 2, 2});
  expect_values(ops::conv2d(x, w, 0, 0), {12, 16, 24, 28});
  // Padding 1 gives a 4x4 output whose corners see one input each.
  Tensor y = ops::conv2d(x, w, 1, 1);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  expect_values(y, {1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9});
  // Cross-correlation, not convolution: an asymmetric kernel is not flipped.
  expect_values(ops::conv2d(x, dvec({1, 0, 0, 0}, {1, 1, 2, 2}), 0, 0), {1, 2, 4, 5});
}

TEST(Conv2d, GradCheck) {
  gradcheck([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
            {random_tensor({2, 3, 5, 6}, 10), random_tensor({4, 3, 2, 3}, 11)});
  gradcheck([](const V& in) { return ops::conv2d(in[0], in[1], 1, 2); },
            {random_tensor({2, 2, 4, 5}, 12), random_tensor({3, 2, 3, 3}, 13)});
}

TEST(Conv2d, GradCheckThroughTheDirectKernels) {
  // No padding and outputs at least 16 columns wide take kernels/cpu/conv_direct.cpp: output widths of
  // 19 and 16 (a partial last block and an exact one), one input channel and three.
  ASSERT_TRUE(kernels::cpu::conv_direct_applies(21, 3, 0, 0));
  ASSERT_FALSE(kernels::cpu::conv_direct_applies(7, 2, 0, 0));
  gradcheck([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
            {random_tensor({2, 1, 4, 21}, 50), random_tensor({5, 1, 2, 3}, 51)});
  gradcheck([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
            {random_tensor({1, 1, 3, 18}, 52), random_tensor({4, 1, 2, 3}, 53)});
  gradcheck([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
            {random_tensor({2, 3, 4, 17}, 54), random_tensor({5, 3, 2, 2}, 55)});
}

TEST(Conv2d, DirectKernelsEqualIm2colWithinRounding) {
  using kernels::cpu::ConvPath;
  struct Shape6 {
    int64_t N, C, H, W, K, KH, KW;
  };
  // The pair CNN's three layers; widths around the 16 lanes and the v3 tile's 32 columns (16, 26, 31,
  // 32, 48, 54, 111); filter counts around the block of 4; odd output heights and one of a single row
  // (the v3 tile has 2); kernel rows of taps that divide by 5, by 4 and by neither.
  for (Shape6 s : {Shape6{3, 1, 40, 120, 16, 5, 10}, Shape6{3, 16, 18, 55, 32, 2, 2}, Shape6{3, 32, 8, 27, 64, 2, 2},
                   Shape6{2, 1, 6, 16, 4, 1, 1}, Shape6{2, 1, 7, 33, 6, 3, 2}, Shape6{1, 1, 9, 17, 3, 2, 2},
                   Shape6{2, 1, 5, 40, 5, 5, 10}, Shape6{2, 1, 6, 57, 9, 2, 10}, Shape6{1, 1, 8, 52, 7, 3, 5},
                   Shape6{2, 3, 6, 34, 5, 3, 3}}) {
    const int64_t OH = s.H - s.KH + 1, OW = s.W - s.KW + 1;
    for (DType dt : {DType::F32, DType::F64}) {
      Tensor x = random_tensor({s.N, s.C, s.H, s.W}, 60, -1, 1).to_dtype(dt);
      Tensor w = random_tensor({s.K, s.C, s.KH, s.KW}, 61, -1, 1).to_dtype(dt);
      Tensor gy = random_tensor({s.N, s.K, OH, OW}, 62, -1, 1).to_dtype(dt);
      std::vector<Tensor> got;
      for (ConvPath path : {ConvPath::Im2col, ConvPath::Direct, ConvPath::DirectV2}) {
        Tensor y = Tensor::empty({s.N, s.K, OH, OW}, dt), gw = Tensor::empty(w.shape(), dt), gx = Tensor::empty(x.shape(), dt);
        ops::detail::dispatch_float(dt, [&](auto z) {
          using T = decltype(z);
          kernels::cpu::conv2d_forward<T>(x.data<T>(), w.data<T>(), y.data<T>(), s.N, s.C, s.H, s.W, s.K, s.KH, s.KW, 0,
                                          0, path);
          kernels::cpu::conv2d_backward_filter<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), s.N, s.C, s.H, s.W, s.K, s.KH,
                                                  s.KW, 0, 0, path);
          kernels::cpu::conv2d_backward_data<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), s.N, s.C, s.H, s.W, s.K, s.KH,
                                                s.KW, 0, 0, path);
        });
        for (const Tensor& t : {y, gw, gx}) got.push_back(t.to_dtype(DType::F64));
      }
      // Sums of up to 128 (forward, data gradient) and ~20k products (filter gradient) in another order.
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      const std::string what = std::to_string(s.C) + " x " + std::to_string(s.H) + " x " + std::to_string(s.W) +
                               ", K " + std::to_string(s.K) + ", " + dtype_name(dt);
      EXPECT_TRUE(test::all_close(got[3], got[0], tol, tol)) << "forward, " << what;
      EXPECT_TRUE(test::all_close(got[4], got[1], tol * 10, tol * 10)) << "filter gradient, " << what;
      EXPECT_TRUE(test::all_close(got[5], got[2], tol, tol)) << "data gradient, " << what;
      // The register tiles change which sums share registers, never a sum's order: the same bits.
      for (int i = 0; i < 3; ++i) EXPECT_TRUE(test::all_close(got[size_t(6 + i)], got[size_t(3 + i)], 0, 0)) << "v2 tiles, " << what;
      // The flattened forward (the fused layers'): rows at the input's stride, every meaningful column
      // the direct forward's bits, with either tiles.
      for (auto tiles : {kernels::cpu::DirectTiles::Best, kernels::cpu::DirectTiles::V2}) {
        Tensor flat = Tensor::empty({s.N, s.K, OH, s.W}, dt);
        ops::detail::dispatch_float(dt, [&](auto z) {
          using T = decltype(z);
          kernels::cpu::conv2d_forward_direct_flat<T>(x.data<T>(), w.data<T>(), flat.data<T>(), s.N, s.C, s.H, s.W, s.K,
                                                      s.KH, s.KW, tiles);
        });
        const std::vector<double> f = flat.to_dtype(DType::F64).to_vector<double>();
        const std::vector<double> direct = got[3].to_vector<double>();
        int64_t differing = 0;
        for (int64_t r = 0; r < s.N * s.K * OH; ++r)
          for (int64_t c = 0; c < OW; ++c) differing += f[size_t(r * s.W + c)] != direct[size_t(r * OW + c)];
        EXPECT_EQ(differing, 0) << "flattened forward, " << what;
      }
    }
  }
  // Padding, or an output narrower than a vector, is not the direct kernels' (Best takes im2col there).
  EXPECT_THROW(kernels::cpu::conv2d_forward<double>(nullptr, nullptr, nullptr, 1, 2, 4, 20, 1, 2, 2, 1, 0,
                                                    ConvPath::Direct),
               Error);
  EXPECT_THROW(kernels::cpu::conv2d_forward<double>(nullptr, nullptr, nullptr, 1, 2, 4, 16, 1, 2, 2, 0, 0,
                                                    ConvPath::Direct),
               Error);
}

TEST(Conv2d, BadShapesAreErrors) {
  EXPECT_THROW(ops::conv2d(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({1, 3, 2, 2}), 0, 0), Error);
  EXPECT_THROW(ops::conv2d(Tensor::zeros({1, 1, 2, 2}), Tensor::zeros({1, 1, 3, 3}), 0, 0), Error);
}

TEST(BiasSigmoid, HandComputedAndGradCheck) {
  Tensor x = dvec({0, 1, -1, 2}, {1, 2, 1, 2});
  Tensor b = dvec({0, -1}, {2});
  auto s = [](double v) { return 1 / (1 + std::exp(-v)); };
  expect_values(ops::bias_sigmoid(x, b), {s(0), s(1), s(-2), s(1)});
  gradcheck([](const V& in) { return ops::bias_sigmoid(in[0], in[1]); },
            {random_tensor({2, 3, 4, 5}, 14, -3, 3), random_tensor({3}, 15)});
}

TEST(BiasSigmoid, EqualsSigmoidOfBiasAdd) {
  Tensor x = random_tensor({3, 4, 5, 7}, 16, -5, 5), b = random_tensor({4}, 17);
  EXPECT_TRUE(test::all_close(ops::bias_sigmoid(x, b), ops::sigmoid(ops::bias_add(x, b)), 1e-14, 1e-15));
}

TEST(MaxPool2x2, HandComputedFloorOnOddSizes) {
  // 3x5 input: output is 1x2; the last row and column are dropped.
  Tensor x = dvec({1, 9, 2, 3, 7, 4, 5, 8, 6, 0, 9, 9, 9, 9, 9}, {1, 1, 3, 5});
  Tensor y = ops::maxpool2x2(x);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 1, 2}));
  expect_values(y, {9, 8});
}

TEST(MaxPool2x2, BackwardRoutesToTheWinnerOnly) {
  Tensor x = dvec({1, 9, 2, 3, 7, 4, 5, 8, 6, 0, 9, 9, 9, 9, 9}, {1, 1, 3, 5});
  x.set_requires_grad(true);
  ops::sum(ops::maxpool2x2(x)).backward();
  expect_values(x.grad(), {0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
}

TEST(Conv2dMaxPool, GradCheckOnTheFusedPath) {
  // One input channel, no padding: the direct CPU kernels, both gradients.
  gradcheck([](const V& in) { return ops::conv2d_maxpool2x2(in[0], in[1], 0, 0); },
            {test::distinct_tensor({2, 1, 7, 20}, 22, 0.01), random_tensor({3, 1, 2, 3}, 23)});
  // Channels and padding: the im2col kernels, image by image (both gradients from one unpooled scratch).
  gradcheck([](const V& in) { return ops::conv2d_maxpool2x2(in[0], in[1], 1, 0); },
            {test::distinct_tensor({2, 3, 5, 6}, 24, 0.01), random_tensor({4, 3, 2, 2}, 25)});
}

TEST(Conv2dMaxPool, GradCheckWithTheSigmoidEpilogue) {
  // All three gradients; the direct kernels (one channel) and im2col (channels, padding).
  gradcheck([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 0, 0); },
            {test::distinct_tensor({2, 1, 7, 20}, 26, 0.01), random_tensor({3, 1, 2, 3}, 27), random_tensor({3}, 28)});
  gradcheck([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 1, 0); },
            {test::distinct_tensor({2, 3, 5, 6}, 29, 0.01), random_tensor({4, 3, 2, 2}, 30), random_tensor({4}, 31)});
}

TEST(MaxPool2x2, GradCheckAwayFromTies) {
  gradcheck([](const V& in) { return ops::maxpool2x2(in[0]); }, {test::distinct_tensor({2, 3, 5, 7}, 18)});
}

// ---- activations ----
TEST(Sigmoid, HandComputedStableAndGradCheck) {
  expect_values(ops::sigmoid(dvec({0, 1000, -1000}, {3})), {0.5, 1, 0});
  gradcheck([](const V& in) { return ops::sigmoid(in[0]); }, {random_tensor({7, 3}, 19, -6, 6)});
}

TEST(Relu, HandComputedAndGradCheckAwayFromKink) {
  expect_values(ops::relu(dvec({-1, 0, 2}, {3})), {0, 0, 2});
  Tensor x = random_tensor({9, 5}, 20, -2, 2);
  std::vector<double> xv = x.to_vector<double>();
  test::GradCheckOptions opt;
  opt.skip = [xv](size_t, int64_t k) { return std::fabs(xv[size_t(k)]) < 1e-4; };
  gradcheck([](const V& in) { return ops::relu(in[0]); }, {x}, opt);
}

TEST(Dropout, IdentityInEvalAndZeroProbability) {
  Generator gen(1);
  Tensor x = random_tensor({4, 4}, 21);
  EXPECT_TRUE(ops::dropout(x, 0.5f, false, gen).same_as(x));
  EXPECT_TRUE(ops::dropout(x, 0.0f, true, gen).same_as(x));
  EXPECT_THROW(ops::dropout(x, 1.0f, true, gen), Error);
}

TEST(Dropout, KeepsAboutOneMinusPAndScales) {
  Generator gen(7);
  Tensor x = Tensor::full({100000}, 1.0, DType::F64);
  std::vector<double> y = ops::dropout(x, 0.3f, true, gen).to_vector<double>();
  int64_t kept = 0;
  for (double v : y) {
    ASSERT_TRUE(v == 0.0 || std::fabs(v - 1 / (1 - double(0.3f))) < 1e-12) << v;
    kept += v != 0.0;
  }
  EXPECT_NEAR(double(kept) / 1e5, 0.7, 0.01);  // 7 standard deviations of a binomial(1e5, 0.7)
}

TEST(Dropout, GradCheckWithAFixedMask) {
  // The generator is re-seeded inside f so every evaluation draws the same mask.
  gradcheck(
      [](const V& in) {
        Generator gen(5);
        return ops::dropout(in[0], 0.4f, true, gen);
      },
      {random_tensor({6, 7}, 22)});
}

// ---- embedding, concat, rowdot, reshape ----
TEST(Embedding, HandComputed) {
  Tensor table = dvec({0, 1, 10, 11, 20, 21}, {3, 2});
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{2, 0, 2}, {3});
  expect_values(ops::embedding(table, idx), {20, 21, 0, 1, 20, 21});
  EXPECT_THROW(ops::embedding(table, Tensor::from_vector(std::vector<int32_t>{3}, {1})), Error);
  EXPECT_THROW(ops::embedding(table, Tensor::from_vector(std::vector<int32_t>{-1}, {1})), Error);
}

TEST(Embedding, DenseGradCheckWithRepeatedIndices) {
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{3, 1, 3, 0, 3, 1}, {6});
  gradcheck([idx](const V& in) { return ops::embedding(in[0], idx); }, {random_tensor({5, 4}, 23)});
}

TEST(Embedding, SparseGradientEqualsDenseAndIsSortedAndPadded) {
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{3, 1, 3, 0, 3, 1}, {6});
  Tensor g = random_tensor({6, 4}, 24);
  Tensor dense_table = random_tensor({5, 4}, 25).set_requires_grad(true);
  ops::embedding(dense_table, idx).backward(g);
  Tensor sparse_table = dense_table.detach().clone().set_requires_grad(true);
  sparse_table.impl()->sparse_grad_enabled = true;
  ops::embedding(sparse_table, idx).backward(g);
  ASSERT_FALSE(sparse_table.grad().defined());
  ASSERT_TRUE(sparse_table.impl()->sparse_grad);
  const SparseRows& sr = *sparse_table.impl()->sparse_grad;
  EXPECT_EQ(sr.rows.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 3, -1, -1, -1}));
  EXPECT_TRUE(test::all_close(autograd::densify(sr, {5, 4}), dense_table.grad(), 0, 1e-15));
  // A second backward merges into the same sparse gradient: the sum of both.
  ops::embedding(sparse_table, Tensor::from_vector(std::vector<int32_t>{4, 1}, {2})).backward(random_tensor({2, 4}, 26));
  Tensor twice = dense_table.grad().clone();
  ops::embedding(dense_table, Tensor::from_vector(std::vector<int32_t>{4, 1}, {2})).backward(random_tensor({2, 4}, 26));
  EXPECT_EQ(sparse_table.impl()->sparse_grad->rows.to_vector<int32_t>(),
            (std::vector<int32_t>{0, 1, 3, 4, -1, -1, -1, -1}));
  EXPECT_TRUE(test::all_close(autograd::densify(*sparse_table.impl()->sparse_grad, {5, 4}), dense_table.grad(), 0, 1e-15));
  (void)twice;
}

// The CPU kernel's coalescing (a radix sort by index in 1 to 3 passes, kernels/cpu/embedding.cpp)
// against the definition: the distinct non-negative indices ascending, each row the sum of its
// lookups' gradient rows in position order (the first copied, the rest added), then padding rows
// (-1, zeros) up to n. Bit for bit, for tables that need each number of passes, with padding indices
// in the input and row widths of 1, 8 and 64, in float and double.
template <typename T> void expect_coalesced_as_defined(int64_t V, int64_t n, int64_t dim, uint64_t seed) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::vector<T> gy(static_cast<size_t>(n * dim));
  uint64_t draw = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t r = rng::philox_block(seed, draw++, 0)[0];
    // Mostly a few hot indices (repeats), some anywhere in [0, V), some padding.
    idx[size_t(i)] = r % 7 == 0 ? -1 : r % 3 == 0 ? int32_t(r % uint32_t(V)) : int32_t((V - 1) - int64_t(r % 5));
  }
  for (T& x : gy) x = T(int32_t(rng::philox_block(seed, draw++, 1)[0] % 2001) - 1000) / T(7);
  std::map<int32_t, std::vector<T>> want;
  for (int64_t i = 0; i < n; ++i) {
    if (idx[size_t(i)] < 0) continue;
    auto [it, fresh] = want.try_emplace(idx[size_t(i)], gy.begin() + i * dim, gy.begin() + (i + 1) * dim);
    if (!fresh)
      for (int64_t d = 0; d < dim; ++d) it->second[size_t(d)] += gy[size_t(i * dim + d)];
  }
  std::vector<int32_t> rows(static_cast<size_t>(n), 123);
  std::vector<T> vals(static_cast<size_t>(n * dim), T(5));
  const int64_t U = kernels::cpu::embedding_backward<T>(idx.data(), gy.data(), n, dim, rows.data(), vals.data());
  const std::string where = "V " + std::to_string(V) + ", n " + std::to_string(n) + ", dim " + std::to_string(dim);
  ASSERT_EQ(U, int64_t(want.size())) << where;
  int64_t u = 0;
  for (const auto& [row, sum] : want) {
    EXPECT_EQ(rows[size_t(u)], row) << where << ", row " << u;
    EXPECT_EQ(std::memcmp(vals.data() + u * dim, sum.data(), sizeof(T) * size_t(dim)), 0) << where << ", row " << u;
    ++u;
  }
  for (; u < n; ++u) {
    EXPECT_EQ(rows[size_t(u)], -1) << where << ", padding " << u;
    for (int64_t d = 0; d < dim; ++d) EXPECT_EQ(vals[size_t(u * dim + d)], T(0)) << where << ", padding " << u;
  }
}

TEST(Embedding, CpuCoalescingSumsEachRowInPositionOrderForEveryIndexWidth) {
  uint64_t seed = 40;
  for (int64_t V : {int64_t(1), int64_t(9), int64_t(2048), int64_t(2049), int64_t(359967), int64_t(1) << 22,
                    int64_t(0x7FFFFFFF)})
    for (int64_t n : {1, 37, 4096})
      for (int64_t dim : {1, 8, 64}) {
        expect_coalesced_as_defined<float>(V, n, dim, ++seed);
        if (dim == 8) expect_coalesced_as_defined<double>(V, n, dim, ++seed);
      }
}

TEST(ConcatCols, HandComputedAndGradCheck) {
  expect_values(ops::concat_cols({dvec({1, 2}, {2, 1}), dvec({3, 4, 5, 6}, {2, 2})}), {1, 3, 4, 2, 5, 6});
  EXPECT_THROW(ops::concat_cols({Tensor::zeros({2, 1}), Tensor::zeros({3, 1})}), Error);
  gradcheck([](const V& in) { return ops::concat_cols({in[0], in[1], in[2]}); },
            {random_tensor({3, 2}, 27), random_tensor({3, 5}, 28), random_tensor({3, 1}, 29)});
}

TEST(ConcatCols, BlocksOfEveryWidthLandInPlaceAndTheirGradientsComeBack) {
  // Widths on both sides of the CPU copy's 8-element chunks and its 4, 2, 1 tails, in float (the CF
  // model's dtype) and double.
  const std::vector<int64_t> widths = {64, 13, 1, 8, 7, 2, 9, 16, 3};
  const int64_t rows = 5;
  int64_t cols = 0;
  for (int64_t w : widths) cols += w;
  for (DType dt : {DType::F32, DType::F64}) {
    std::vector<Tensor> parts;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::vector<double> v;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < widths[i]; ++c) v.push_back(double(i) * 1000 + double(r) * 100 + double(c));
      parts.push_back(Tensor::from_vector(v, {rows, widths[i]}).to_dtype(dt).set_requires_grad(true));
    }
    Tensor y = ops::concat_cols(parts);
    ASSERT_EQ(y.shape(), (Shape{rows, cols}));
    const std::vector<double> got = y.to_dtype(DType::F64).to_vector<double>();
    std::vector<double> g(got.size());
    for (size_t k = 0; k < g.size(); ++k) g[k] = double(k);
    int64_t off = 0;
    for (size_t i = 0; i < widths.size(); ++i, off += widths[i - 1])
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < widths[i]; ++c)
          ASSERT_EQ(got[size_t(r * cols + off + c)], double(i) * 1000 + double(r) * 100 + double(c))
              << dtype_name(dt) << " block " << i << " row " << r << " col " << c;
    test::weighted_sum(y, Tensor::from_vector(g, {rows, cols}).to_dtype(dt)).backward();
    off = 0;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::vector<double> gi = parts[i].grad().to_dtype(DType::F64).to_vector<double>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < widths[i]; ++c)
          ASSERT_EQ(gi[size_t(r * widths[i] + c)], double(r * cols + off + c))
              << dtype_name(dt) << " gradient of block " << i << " row " << r << " col " << c;
      off += widths[i];
    }
  }
}

TEST(Rowdot, HandComputedAndGradCheck) {
  expect_values(ops::rowdot(dvec({1, 2, 3, 4}, {2, 2}), dvec({5, 6, 7, 8}, {2, 2})), {17, 53});
  gradcheck([](const V& in) { return ops::rowdot(in[0], in[1]); }, {random_tensor({4, 6}, 30), random_tensor({4, 6}, 31)});
  // The same tensor on both sides: the gradient is 2 x g x a, through two accumulated paths.
  gradcheck([](const V& in) { return ops::rowdot(in[0], in[0]); }, {random_tensor({3, 5}, 32)});
}

TEST(RowdotPairs, EqualsRowdotOfGatheredRowsAndGradChecks) {
  // Repeated rows, a pair naming one row twice, and rows no pair names (their gradient stays 0).
  const Tensor ia = Tensor::from_vector(std::vector<int32_t>{3, 1, 3, 0, 2, 3}, {6});
  const Tensor ib = Tensor::from_vector(std::vector<int32_t>{1, 1, 0, 3, 3, 5}, {6});
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor table = random_tensor({7, 37}, 34, -1, 1, dt);
    const Tensor pairs = ops::rowdot_pairs(table, ia, ib);
    const Tensor gathered = ops::rowdot(ops::embedding(table, ia), ops::embedding(table, ib));
    ASSERT_EQ(pairs.shape(), (Shape{6, 1}));
    // The same kernel row by row: the same bits.
    EXPECT_TRUE(test::all_close(pairs, gathered, 0, 0)) << dtype_name(dt);
  }
  gradcheck([ia, ib](const V& in) { return ops::rowdot_pairs(in[0], ia, ib); }, {random_tensor({7, 5}, 35)});
  // Shifted: the dots of the centred rows, as the pair head takes them from uncentred song vectors.
  const Tensor table = random_tensor({7, 37}, 36, 0, 1, DType::F64);
  const Tensor centred = ops::bias_add(table, Tensor::full({37}, -0.5, DType::F64));
  EXPECT_TRUE(test::all_close(ops::rowdot_pairs(table, ia, ib, 0.5),
                              ops::rowdot(ops::embedding(centred, ia), ops::embedding(centred, ib)), 1e-14, 1e-14));
  gradcheck([ia, ib](const V& in) { return ops::rowdot_pairs(in[0], ia, ib, 0.5); }, {random_tensor({7, 5}, 37)});
  EXPECT_THROW(ops::rowdot_pairs(random_tensor({7, 5}, 35), ia, Tensor::from_vector(std::vector<int32_t>{7}, {1})),
               Error);
  EXPECT_THROW(ops::rowdot_pairs(random_tensor({7, 5}, 35), ia,
                                 Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3, 4, 7}, {6})),
               Error);
}

// The CPU backward in one pass (kernels::cpu::rowdot_pairs_backward) against the way the GPU forms it:
// the gathered, shifted rows' products g[r] * (other row - shift), coalesced over [ia; ib] as the
// embedding's backward does, then added into a zero table. Bit for bit, unshifted and shifted, float and
// double, with rows named by several pairs (on both sides, twice by one pair) and rows none names.
TEST(RowdotPairs, OnePassBackwardEqualsTheGatheredRowsGradientBitForBit) {
  const Tensor ia = Tensor::from_vector(std::vector<int32_t>{3, 1, 3, 0, 2, 3, 6, 1}, {8});
  const Tensor ib = Tensor::from_vector(std::vector<int32_t>{1, 1, 0, 3, 3, 5, 3, 6}, {8});
  for (DType dt : {DType::F32, DType::F64})
    for (double shift : {0.0, 0.5}) {
      const Tensor table = random_tensor({8, 37}, 38, 0, 1, dt), g = random_tensor({8, 1}, 39, -1, 1, dt);
      Tensor t = table.clone();
      t.set_requires_grad(true);
      ops::rowdot_pairs(t, ia, ib, shift).backward(g);
      autograd::NoGradGuard no_grad;
      Tensor a = ops::embedding(table, ia), b = ops::embedding(table, ib);
      if (shift != 0.0) {
        const Tensor minus = Tensor::full({37}, -shift, dt);
        a = ops::bias_add(a, minus);
        b = ops::bias_add(b, minus);
      }
      Tensor ga = Tensor::empty(a.shape(), dt), gb = Tensor::empty(b.shape(), dt);
      ops::detail::dispatch_float(dt, [&](auto z) {
        using T = decltype(z);
        kernels::cpu::rowdot_backward<T>(a.data<T>(), b.data<T>(), g.data<T>(), ga.data<T>(), gb.data<T>(), 8, 37);
      });
      const Tensor want = autograd::densify(ops::coalesce_rows(ops::concat_rows({ia, ib}), ops::concat_rows({ga, gb})),
                                            table.shape());
      EXPECT_TRUE(test::all_close(t.grad(), want, 0, 0)) << dtype_name(dt) << ", shift " << shift;
    }
}

TEST(Rowdot, LongRowsSumInTheirFixedOrder) {
  // 16 interleaved partial sums added pairwise: checked against that order in double, exactly, for
  // lengths around the 16-element step (the tail goes to the first sums).
  for (int64_t cols : {1, 15, 16, 17, 33, 1248}) {
    const Tensor a = random_tensor({3, cols}, 36, -1, 1, DType::F32), b = random_tensor({3, cols}, 37, -1, 1, DType::F32);
    const std::vector<float> got = ops::rowdot(a, b).to_vector<float>();
    const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
    for (int64_t r = 0; r < 3; ++r) {
      float lanes[16] = {};
      for (int64_t c = 0; c < cols; ++c) lanes[c % 16] = std::fma(av[size_t(r * cols + c)], bv[size_t(r * cols + c)], lanes[c % 16]);
      float lanes_plain[16] = {};
      for (int64_t c = 0; c < cols; ++c) lanes_plain[c % 16] += av[size_t(r * cols + c)] * bv[size_t(r * cols + c)];
      for (int w = 8; w > 0; w /= 2)
        for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w], lanes_plain[l] += lanes_plain[l + w];
      // Fused or not, as the compiler's contraction for this CPU decides.
      EXPECT_TRUE(got[size_t(r)] == lanes[0] || got[size_t(r)] == lanes_plain[0])
          << cols << " columns, row " << r << ": " << got[size_t(r)] << " vs " << lanes[0] << " / " << lanes_plain[0];
    }
  }
}

TEST(SliceCols, HandComputedAndGradCheck) {
  expect_values(ops::slice_cols(dvec({1, 2, 3, 4, 5, 6}, {2, 3}), 1, 2), {2, 3, 5, 6});
  EXPECT_EQ(ops::slice_cols(dvec({1, 2, 3, 4, 5, 6}, {2, 3}), 3, 0).shape(), (Shape{2, 0}));
  EXPECT_THROW(ops::slice_cols(dvec({1, 2, 3, 4, 5, 6}, {2, 3}), 2, 2), Error);
  EXPECT_THROW(ops::slice_cols(dvec({1, 2, 3, 4, 5, 6}, {2, 3}), -1, 1), Error);
  gradcheck([](const V& in) { return ops::slice_cols(in[0], 2, 3); }, {random_tensor({4, 6}, 38)});
  // Slices that together cover the tensor, recombined: every column's gradient arrives once.
  gradcheck(
      [](const V& in) {
        return ops::concat_cols({ops::slice_cols(in[0], 4, 2), ops::slice_cols(in[0], 0, 4)});
      },
      {random_tensor({3, 6}, 39)});
}

TEST(ConcatRows, HandComputedAndGradCheck) {
  expect_values(ops::concat_rows({dvec({1, 2}, {1, 2}), dvec({3, 4, 5, 6}, {2, 2})}), {1, 2, 3, 4, 5, 6});
  gradcheck([](const V& in) { return ops::concat_rows({in[0], in[1], in[0]}); },
            {random_tensor({2, 3}, 40), random_tensor({4, 3}, 41)});
}

TEST(Reshape, SharesStorageInfersAndGradChecks) {
  Tensor x = random_tensor({2, 3, 4}, 33);
  Tensor y = ops::reshape(x, {4, -1});
  EXPECT_EQ(y.shape(), (Shape{4, 6}));
  EXPECT_EQ(y.raw_data(), x.raw_data());
  EXPECT_THROW(ops::reshape(x, {5, -1}), Error);
  EXPECT_EQ(ops::flatten(Tensor::zeros({2, 3, 4, 5})).shape(), (Shape{2, 60}));
  gradcheck([](const V& in) { return ops::flatten(ops::maxpool2x2(ops::reshape(in[0], {1, 2, 4, 6}))); },
            {test::distinct_tensor({8, 6}, 34)});
}

// ---- arithmetic and reductions ----
TEST(Reductions, HandComputedAndGradCheck) {
  Tensor x = dvec({1, 2, 3, 4}, {2, 2});
  EXPECT_DOUBLE_EQ(ops::sum(x).item(), 10);
  EXPECT_DOUBLE_EQ(ops::mean(x).item(), 2.5);
  EXPECT_EQ(ops::sum(x).dim(), 0);
  gradcheck([](const V& in) { return ops::sum(in[0]); }, {random_tensor({3, 4}, 35)});
  gradcheck([](const V& in) { return ops::mean(in[0]); }, {random_tensor({3, 4}, 36)});
  gradcheck([](const V& in) { return ops::add(ops::scale(in[0], -2.5), in[1]); },
            {random_tensor({3, 4}, 37), random_tensor({3, 4}, 38)});
}

// ---- losses ----
TEST(SoftmaxCrossEntropy, HandComputedStableAndGradCheck) {
  Tensor logits = dvec({0, 0, 1000, 0}, {2, 2});
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, 1}, {2});
  expect_values(ops::softmax_cross_entropy(logits, targets), {std::log(2.0), 1000}, 1e-9);
  EXPECT_THROW(ops::softmax_cross_entropy(logits, Tensor::from_vector(std::vector<int32_t>{0, 2}, {2})), Error);
  Tensor t = Tensor::from_vector(std::vector<int32_t>{0, 2, 1, 2, 0}, {5});
  gradcheck([t](const V& in) { return ops::softmax_cross_entropy(in[0], t); }, {random_tensor({5, 3}, 39, -3, 3)});
}

TEST(BceWithLogits, HandComputedStableForLargeLogits) {
  Tensor x = dvec({0, 100, -100, 2}, {4});
  Tensor y = dvec({1, 1, 1, 0}, {4});
  expect_values(ops::bce_with_logits(x, y), {std::log(2.0), 0, 100, 2 + std::log1p(std::exp(-2.0))}, 1e-12);
  Tensor w = dvec({2, 1, 0.5, 10}, {4});
  expect_values(ops::bce_with_logits(x, y, w), {2 * std::log(2.0), 0, 50, 10 * (2 + std::log1p(std::exp(-2.0)))}, 1e-11);
}

TEST(BceWithLogits, GradCheckWeightedAndUnweighted) {
  Tensor y = random_tensor({8}, 40, 0, 1), w = random_tensor({8}, 41, 0.1, 3);
  gradcheck([y](const V& in) { return ops::bce_with_logits(in[0], y); }, {random_tensor({8}, 42, -8, 8)});
  gradcheck([y, w](const V& in) { return ops::bce_with_logits(in[0], y, w); }, {random_tensor({8}, 43, -8, 8)});
}

// ---- a composite: the pair-CNN head in miniature ----
TEST(Composite, PairHeadGradCheck) {
  gradcheck(
      [](const V& in) {
        Tensor h1 = ops::flatten(ops::maxpool2x2(ops::bias_sigmoid(ops::conv2d(in[0], in[2], 1, 1), in[3])));
        Tensor h2 = ops::flatten(ops::maxpool2x2(ops::bias_sigmoid(ops::conv2d(in[1], in[2], 1, 1), in[3])));
        Tensor z = ops::concat_cols({h1, h2, ops::rowdot(h1, h2)});
        return ops::relu(ops::linear(z, in[4], in[5]));
      },
      {test::distinct_tensor({2, 1, 4, 6}, 44, 0.05), test::distinct_tensor({2, 1, 4, 6}, 45, 0.05),
       random_tensor({2, 1, 3, 3}, 46), random_tensor({2}, 47), random_tensor({3, 25}, 48), random_tensor({3}, 49, 1, 2)});
}

}  // namespace
}  // namespace musicrec
