// The CPU float kernels that do not share the double reference's code: the vectorised sigmoid
// (kernels/cpu/vec_math.h), the float clones of max pooling and the AVX2 dropout mask. Each is
// compared with the double path or the scalar definition on the same values, so a wrong polynomial
// coefficient or a lane bug fails here and not only in a slower convergence.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/modules.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/philox_lanes.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/error.h"
#include "kernels/philox.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {

double ref_sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

TEST(VecMath, ExpIsWithinTwoUlpOverTheWholeClampedRange) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.00137) {
    const float xf = float(x);
    const double want = std::exp(double(xf));
    const double got = kernels::cpu::vec::exp_f32(xf);
    // One ulp of the true value: 2^(exponent - 23).
    const double ulp = std::ldexp(1.0, std::ilogb(want) - 23);
    worst = std::max(worst, std::abs(got - want) / ulp);
  }
  EXPECT_LE(worst, 2.0) << "worst error in ulp";
  // Beyond the range inputs are clamped; NaN stays NaN.
  EXPECT_FLOAT_EQ(kernels::cpu::vec::exp_f32(-1000.f), kernels::cpu::vec::exp_f32(-87.f));
  EXPECT_TRUE(std::isfinite(kernels::cpu::vec::exp_f32(1000.f)));
  EXPECT_TRUE(std::isnan(kernels::cpu::vec::exp_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST(VecMath, FloatSigmoidOpMatchesTheDoubleReference) {
  std::vector<float> xs;
  for (double x = -120; x <= 120; x += 0.0731) xs.push_back(float(x));
  for (float x : {0.f, -0.f, 1e-30f, -1e-30f, 87.5f, -87.5f, 200.f, -200.f}) xs.push_back(x);
  Tensor y = ops::sigmoid(Tensor::from_vector(xs, {int64_t(xs.size())}));
  std::vector<float> got = y.to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = ref_sigmoid(double(xs[i]));
    // A few float ulp relative, or below the smallest normal float where the clamp decides.
    ASSERT_LE(std::abs(got[i] - want), 4e-7 * want + 1.2e-38) << "x = " << xs[i] << " got " << got[i] << " want " << want;
  }
}

// Conv2d::forward_maxpool2x2 pools before the sigmoid and relies on this for giving pooling last's
// values bit for bit: every float in [-100, 100] in increasing order (beyond it the exp's clamp makes
// the sigmoid constant), about 2.2e9 values in chunks, through the float kernel that ops::sigmoid and
// ops::bias_sigmoid run.
TEST(VecMath, FloatSigmoidIsNonDecreasingOverEveryFloatInItsRange) {
  constexpr uint32_t kChunk = 1u << 22;
  const float lo = -100.f, hi = 100.f;
  uint32_t lo_bits, hi_bits;
  std::memcpy(&lo_bits, &lo, 4);
  std::memcpy(&hi_bits, &hi, 4);
  std::vector<float> xs(kChunk), ys(kChunk);
  float last_y = 0.f;
  uint64_t checked = 0;
  // Bit patterns in increasing order of value: the negative floats from lo's pattern down to -0's
  // (0x80000000, excluded: it equals +0), then +0 up to hi's.
  auto scan = [&](uint32_t first, uint64_t count, bool down) {
    for (uint64_t done = 0; done < count;) {
      const uint32_t n = uint32_t(std::min<uint64_t>(kChunk, count - done));
      for (uint32_t i = 0; i < n; ++i) {
        const uint32_t u = down ? first - uint32_t(done) - i : first + uint32_t(done) + i;
        std::memcpy(&xs[i], &u, 4);
      }
      kernels::cpu::sigmoid_forward<float>(xs.data(), ys.data(), n);
      uint32_t first_bad = n;
      for (uint32_t i = n; i-- > 0;)
        if (ys[i] < (i ? ys[i - 1] : last_y)) first_bad = i;
      ASSERT_EQ(first_bad, n) << "sigmoid(" << xs[first_bad] << ") = " << ys[first_bad] << " is below the value "
                              << "at the float before it";
      last_y = ys[n - 1];
      done += n;
      checked += n;
    }
  };
  scan(lo_bits, uint64_t(lo_bits) - 0x80000000u, true);
  scan(0u, uint64_t(hi_bits) + 1, false);
  EXPECT_GT(checked, uint64_t(2'000'000'000));
  EXPECT_EQ(last_y, 1.f);  // sigmoid(100)
}

// Pooling first (Conv2d::forward_maxpool2x2) against pooling last, at the pair CNN's three layer shapes
// (two images) and an odd padded one: the outputs bit for bit, also on inputs that saturate the
// sigmoid; and with distinct inputs (no ties) the input and filter gradients bit for bit too, and the
// bias gradient (the same terms in another order) to rounding.
TEST(Conv2dModule, PoolingFirstGivesPoolingLastsValuesAndGradients) {
  struct Case {
    int64_t c, h, w, k, kh, kw, pad;
  };
  const Case cases[] = {{1, 40, 120, 16, 5, 10, 0}, {16, 18, 55, 32, 2, 2, 0}, {32, 8, 27, 32, 2, 2, 0}, {3, 9, 11, 5, 3, 3, 1}};
  int seed = 70;
  for (const Case& c : cases)
    for (double scale : {0.3, 30.0}) {
      Generator gen{uint64_t(seed)};
      Conv2d conv(c.c, c.k, c.kh, c.kw, c.pad, c.pad, ConvActivation::Sigmoid, gen);
      const Shape in_shape{2, c.c, c.h, c.w};
      const Tensor x = scale > 1 ? test::random_tensor(in_shape, uint64_t(seed++), -scale, scale, DType::F32)
                                 : test::distinct_tensor(in_shape, uint64_t(seed++), 1e-4, DType::F32);
      const int64_t OH = (c.h + 2 * c.pad - c.kh + 1) / 2, OW = (c.w + 2 * c.pad - c.kw + 1) / 2;
      const Tensor g = test::random_tensor({2, c.k, OH, OW}, uint64_t(seed++), -1, 1, DType::F32);
      auto run = [&](bool pool_first) {
        Tensor xi = x.clone();
        xi.set_requires_grad(true);
        conv.weight().zero_grad();
        conv.bias().zero_grad();
        Tensor y = pool_first ? conv.forward_maxpool2x2(xi) : ops::maxpool2x2(conv.forward(xi));
        test::weighted_sum(y, g).backward();
        return std::vector<Tensor>{y, xi.grad(), conv.weight().grad(), conv.bias().grad()};
      };
      const auto first = run(true), last = run(false);
      const std::string what = shape_str(in_shape) + " scale " + std::to_string(scale);
      EXPECT_TRUE(test::all_close(first[0], last[0], 0, 0)) << "outputs, " << what;
      if (scale > 1) continue;  // saturated: ties may route the gradient elsewhere
      EXPECT_TRUE(test::all_close(first[1], last[1], 0, 0)) << "input gradient, " << what;
      EXPECT_TRUE(test::all_close(first[2], last[2], 0, 0)) << "filter gradient, " << what;
      EXPECT_TRUE(test::all_close(first[3], last[3], 1e-5, 1e-7)) << "bias gradient, " << what;
    }
}

// ops::conv2d_maxpool2x2 against maxpool2x2(conv2d(...)): the outputs and both gradients bit for bit,
// float and double, on the direct kernels (one channel, no padding: the model's conv 1, odd output
// sizes, an output narrower than a vector) and on the im2col ones (channels, padding; the model's conv 2
// with its odd output height).
TEST(Conv2dMaxPool, FusedOpEqualsConvThenPoolBitForBit) {
  struct Case {
    int64_t n, c, h, w, k, kh, kw, pad;
  };
  const Case cases[] = {{3, 1, 40, 120, 16, 5, 10, 0}, {2, 1, 9, 27, 5, 2, 2, 0}, {2, 1, 7, 12, 3, 3, 3, 0},
                        {2, 1, 6, 40, 4, 1, 1, 0},    {2, 3, 9, 21, 4, 2, 2, 0},   {2, 1, 8, 20, 4, 3, 3, 1},
                        {3, 16, 18, 55, 32, 2, 2, 0}, {2, 4, 7, 10, 5, 3, 2, 1}, {2, 32, 8, 27, 32, 2, 2, 0}};
  uint64_t seed = 100;
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F64}) {
      const Tensor x = test::random_tensor({c.n, c.c, c.h, c.w}, seed++, -1, 1, dt);
      const Tensor w = test::random_tensor({c.k, c.c, c.kh, c.kw}, seed++, -0.5, 0.5, dt);
      const int64_t OH = c.h + 2 * c.pad - c.kh + 1, OW = c.w + 2 * c.pad - c.kw + 1;
      const Tensor g = test::random_tensor({c.n, c.k, OH / 2, OW / 2}, seed++, -1, 1, dt);
      auto run = [&](bool fused) {
        Tensor xi = x.clone(), wi = w.clone();
        xi.set_requires_grad(true);
        wi.set_requires_grad(true);
        Tensor y = fused ? ops::conv2d_maxpool2x2(xi, wi, c.pad, c.pad) : ops::maxpool2x2(ops::conv2d(xi, wi, c.pad, c.pad));
        test::weighted_sum(y, g).backward();
        return std::vector<Tensor>{y, xi.grad(), wi.grad()};
      };
      const auto fused = run(true), twice = run(false);
      const char* what[] = {"y", "x.grad", "w.grad"};
      for (size_t i = 0; i < 3; ++i)
        EXPECT_TRUE(test::all_close(fused[i], twice[i], 0, 0))
            << what[i] << " of " << shape_str(x.shape()) << " * " << shape_str(w.shape()) << ", " << dtype_name(dt);
    }
  EXPECT_THROW(ops::conv2d_maxpool2x2(Tensor::zeros({1, 1, 5, 5}), Tensor::zeros({1, 1, 5, 4}), 0, 0), Error);
  EXPECT_THROW(ops::conv2d_maxpool2x2_bias_sigmoid(Tensor::zeros({1, 1, 5, 5}), Tensor::zeros({2, 1, 2, 2}),
                                                   Tensor::zeros({3}), 0, 0),
               Error);  // a bias per filter
  EXPECT_THROW(ops::conv2d_maxpool2x2(Tensor::zeros({1, 1, 5, 5}), Tensor::zeros({1, 2, 2, 2}), 0, 0), Error);
}

// ops::conv2d_maxpool2x2_bias_sigmoid against bias_sigmoid(maxpool2x2(conv2d(...))): the output and all
// three gradients bit for bit, float and double, with and without the input's gradient (without it,
// the direct kernels take the sigmoid inside the filter gradient's pass: the pair CNN's conv 1).
TEST(Conv2dMaxPool, SigmoidEpilogueInThePassEqualsTheThreeOpsBitForBit) {
  struct Case {
    int64_t n, c, h, w, k, kh, kw, pad;
  };
  const Case cases[] = {{3, 1, 40, 120, 16, 5, 10, 0}, {2, 1, 7, 12, 3, 3, 3, 0}, {3, 16, 18, 55, 32, 2, 2, 0},
                        {2, 4, 7, 10, 5, 3, 2, 1}, {2, 32, 8, 27, 32, 2, 2, 0}};
  uint64_t seed = 300;
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F64})
      for (bool need_x : {false, true}) {
        const Tensor x = test::random_tensor({c.n, c.c, c.h, c.w}, seed++, -1, 1, dt);
        const Tensor w = test::random_tensor({c.k, c.c, c.kh, c.kw}, seed++, -0.5, 0.5, dt);
        const Tensor b = test::random_tensor({c.k}, seed++, -0.5, 0.5, dt);
        const int64_t OH = c.h + 2 * c.pad - c.kh + 1, OW = c.w + 2 * c.pad - c.kw + 1;
        const Tensor g = test::random_tensor({c.n, c.k, OH / 2, OW / 2}, seed++, -1, 1, dt);
        auto run = [&](bool fused) {
          Tensor xi = x.clone(), wi = w.clone(), bi = b.clone();
          xi.set_requires_grad(need_x);
          wi.set_requires_grad(true);
          bi.set_requires_grad(true);
          Tensor y = fused ? ops::conv2d_maxpool2x2_bias_sigmoid(xi, wi, bi, c.pad, c.pad)
                           : ops::bias_sigmoid(ops::maxpool2x2(ops::conv2d(xi, wi, c.pad, c.pad)), bi);
          test::weighted_sum(y, g).backward();
          return std::vector<Tensor>{y, need_x ? xi.grad() : y, wi.grad(), bi.grad()};
        };
        const auto fused = run(true), three = run(false);
        const char* what[] = {"y", "x.grad", "w.grad", "b.grad"};
        for (size_t i = 0; i < 4; ++i)
          EXPECT_TRUE(test::all_close(fused[i], three[i], 0, 0))
              << what[i] << " of " << shape_str(x.shape()) << " * " << shape_str(w.shape()) << ", " << dtype_name(dt)
              << (need_x ? ", input gradient too" : "");
      }
}

// A value's sigmoid does not depend on where it falls in a span (the vector body or the compiler's
// epilogue for length % 16; the fused layers run it on short pooled planes, the op on chunks split
// anywhere): each value's bits, in a plane of every length from 1 to 40, equal those of the same value
// inside a plane of 64. (Padding the tail into a vector block of its own, tried in session 21: faster
// at 990 values a plane, 0.31 -> 0.24 ns a value, slower at 216 and 39, 0.24 -> 0.30 and 0.69 -> 0.81:
// not kept.)
TEST(VecMath, FloatSigmoidTailsGiveTheBulksBits) {
  const std::vector<float> x = test::random_tensor({64}, 41, -12, 12, DType::F32).to_vector<float>();
  const float b[1] = {0.375f};
  std::vector<float> bulk(64);
  kernels::cpu::bias_sigmoid_nchw_forward<float>(x.data(), b, bulk.data(), 1, 1, 64);
  for (int64_t n = 1; n <= 40; ++n) {
    std::vector<float> y(static_cast<size_t>(n), NAN);
    kernels::cpu::bias_sigmoid_nchw_forward<float>(x.data(), b, y.data(), 1, 1, n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::memcmp(&y[size_t(i)], &bulk[size_t(i)], sizeof(float)), 0) << "length " << n << ", value " << i;
  }
}

TEST(VecMath, FloatBiasSigmoidForwardAndBackwardMatchDouble) {
  Tensor x = test::random_tensor({3, 4, 7, 13}, 31, -9, 9), b = test::random_tensor({4}, 32, -2, 2);
  Tensor g = test::random_tensor({3, 4, 7, 13}, 33);
  auto run = [&](DType dt) {
    Tensor xi = x.to_dtype(dt), bi = b.to_dtype(dt);
    xi.set_requires_grad(true);
    bi.set_requires_grad(true);
    Tensor y = ops::bias_sigmoid(xi, bi);
    test::weighted_sum(y, g.to_dtype(dt)).backward();
    return std::vector<Tensor>{y.to_dtype(DType::F64), xi.grad().to_dtype(DType::F64), bi.grad().to_dtype(DType::F64)};
  };
  auto f = run(DType::F32), d = run(DType::F64);
  EXPECT_TRUE(test::all_close(f[0], d[0], 1e-6, 1e-7));
  EXPECT_TRUE(test::all_close(f[1], d[1], 1e-5, 1e-7));
  EXPECT_TRUE(test::all_close(f[2], d[2], 1e-5, 1e-6));
}

TEST(VecMath, FloatMaxPoolMatchesDoubleIncludingTiesAndOddSizes) {
  // Values on a coarse grid so that windows hold ties: the first maximum (row-major) must win in both.
  for (auto shape : {Shape{2, 3, 6, 40}, Shape{1, 2, 7, 33}, Shape{1, 1, 3, 3}}) {
    Tensor x = test::random_tensor(shape, 41, 0, 4);
    std::vector<double> v = x.to_vector<double>();
    for (double& e : v) e = std::floor(e);
    x = Tensor::from_vector(v, shape);
    Tensor g = test::random_tensor({shape[0], shape[1], shape[2] / 2, shape[3] / 2}, 42);
    auto run = [&](DType dt) {
      Tensor xi = x.to_dtype(dt);
      xi.set_requires_grad(true);
      Tensor y = ops::maxpool2x2(xi);
      test::weighted_sum(y, g.to_dtype(dt)).backward();
      return std::vector<Tensor>{y.to_dtype(DType::F64), xi.grad().to_dtype(DType::F64)};
    };
    auto f = run(DType::F32), d = run(DType::F64);
    EXPECT_TRUE(test::all_close(f[0], d[0], 0, 0)) << shape_str(shape);
    EXPECT_TRUE(test::all_close(f[1], d[1], 1e-7, 0)) << shape_str(shape);
  }
}

// The pooling forward's two variants (pool.cpp) give the same maxima, bit for bit, and the same winners:
// ties (first maximum wins), NaN (the first candidate's NaN stays, a later one never wins), signed zeros,
// widths of whole 16-window blocks, an overlapping last block, a single block and rows narrower than one;
// and the strided form (the fused layers') the same as the contiguous one.
TEST(MaxPoolCpu, ForwardVariantsGiveTheSameMaximaAndWinners) {
  for (auto shape : {Shape{3, 36, 111}, Shape{2, 6, 64}, Shape{2, 5, 33}, Shape{2, 4, 32}, Shape{2, 4, 31},
                     Shape{2, 3, 80}, Shape{1, 2, 2}}) {
    const int64_t planes = shape[0], H = shape[1], W = shape[2], outs = planes * (H / 2) * (W / 2);
    std::vector<double> v = test::random_tensor(shape, 83, 0, 3).template to_vector<double>();
    std::vector<float> x(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      x[i] = float(std::floor(v[i]));  // ties
      if (i % 37 == 5) x[i] = NAN;
      if (i % 41 == 7) x[i] = -0.0f;
      if (i % 43 == 9) x[i] = 0.0f;
    }
    std::vector<float> y1(static_cast<size_t>(outs)), y2(y1.size());
    std::vector<int32_t> a1(y1.size()), a2(y1.size(), -1);
    kernels::cpu::maxpool2x2_forward_v1<float>(x.data(), y1.data(), a1.data(), planes, H, W);
    kernels::cpu::maxpool2x2_forward<float>(x.data(), y2.data(), a2.data(), planes, H, W);
    // And from a strided copy (rows W + 3 apart, planes H + 1 rows apart, the gaps NaN): the winners
    // still count W per row.
    const int64_t row = W + 3, plane = (H + 1) * row;
    std::vector<float> xs(static_cast<size_t>(planes * plane), NAN), y3(y1.size());
    std::vector<int32_t> a3(y1.size(), -1);
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t r = 0; r < H; ++r)
        std::memcpy(xs.data() + p * plane + r * row, x.data() + (p * H + r) * W, sizeof(float) * size_t(W));
    kernels::cpu::maxpool2x2_forward_strided<float>(xs.data(), y3.data(), a3.data(), planes, H, W, row, plane);
    for (size_t i = 0; i < y1.size(); ++i) {
      ASSERT_EQ(std::memcmp(&y1[i], &y2[i], sizeof(float)), 0) << shape_str(shape) << " maximum " << i;
      ASSERT_EQ(a1[i], a2[i]) << shape_str(shape) << " winner " << i;
      ASSERT_EQ(std::memcmp(&y1[i], &y3[i], sizeof(float)), 0) << shape_str(shape) << " strided maximum " << i;
      ASSERT_EQ(a1[i], a3[i]) << shape_str(shape) << " strided winner " << i;
    }
  }
}

// The pooling backward's three variants (pool.cpp) write the same gradient, every element (outputs
// poisoned with NaN first), on odd sizes, a width of 1 (no windows), ties, and rows of 16, 17 and 55
// windows (the vectors' whole blocks, a last block overlapping by 15 and a ragged one).
template <typename T> void expect_pool_backward_variants_equal() {
  for (auto shape : {Shape{3, 36, 111}, Shape{5, 7, 9}, Shape{2, 4, 1}, Shape{4, 3, 2}, Shape{2, 6, 32}, Shape{3, 5, 35}}) {
    const int64_t planes = shape[0], H = shape[1], W = shape[2], outs = planes * (H / 2) * (W / 2);
    std::vector<double> v = test::random_tensor(shape, 81, 0, 3).template to_vector<double>();
    for (double& e : v) e = std::floor(e);  // ties
    const std::vector<T> x(v.begin(), v.end());
    const std::vector<double> gv = test::random_tensor({outs}, 82).template to_vector<double>();
    const std::vector<T> gy(gv.begin(), gv.end());
    std::vector<T> y(static_cast<size_t>(outs)), v1(x.size(), T(NAN)), v2(x.size(), T(NAN)), v3(x.size(), T(NAN));
    std::vector<int32_t> argmax(static_cast<size_t>(outs));
    kernels::cpu::maxpool2x2_forward<T>(x.data(), y.data(), argmax.data(), planes, H, W);
    kernels::cpu::maxpool2x2_backward_v1<T>(gy.data(), argmax.data(), v1.data(), planes, H, W);
    kernels::cpu::maxpool2x2_backward_v2<T>(gy.data(), argmax.data(), v2.data(), planes, H, W);
    kernels::cpu::maxpool2x2_backward<T>(gy.data(), argmax.data(), v3.data(), planes, H, W);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(v1[i] == v2[i] && !std::signbit(v2[i]) == !std::signbit(v1[i])) << shape_str(shape) << " at " << i;
      ASSERT_TRUE(v3[i] == v2[i] && !std::signbit(v2[i]) == !std::signbit(v3[i])) << shape_str(shape) << " v3 at " << i;
    }
    // Into a strided buffer (rows W + 3 apart, planes (H + 2) rows apart): the gaps between a plane's
    // rows are zeroed, the rest keeps a sentinel.
    const int64_t row = W + 3, plane = (H + 2) * row;
    std::vector<T> strided(static_cast<size_t>(planes * plane), T(7));
    kernels::cpu::maxpool2x2_backward_strided<T>(gy.data(), argmax.data(), strided.data(), planes, H, W, row, plane);
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t r = 0; r < H + 2; ++r)
        for (int64_t c = 0; c < row; ++c) {
          const T got = strided[size_t(p * plane + r * row + c)];
          if (r < H && c < W) {
            const T want = v2[size_t((p * H + r) * W + c)];
            ASSERT_TRUE(got == want && !std::signbit(got) == !std::signbit(want))
                << shape_str(shape) << " strided at " << p << "," << r << "," << c;
          } else {
            const bool gap = r < H - 1 && c >= W;
            ASSERT_EQ(got, gap ? T(0) : T(7)) << shape_str(shape) << " at " << p << "," << r << "," << c;
          }
        }
  }
}
TEST(MaxPoolCpu, BackwardVariantsWriteTheSameGradient) {
  expect_pool_backward_variants_equal<float>();
  expect_pool_backward_variants_equal<double>();
}

// ---- dropout: the Philox lanes and the bit mask (kernels/cpu/philox_lanes.h, dropout.cpp) ----

#if MR_HAVE_PHILOX_LANES
// Word w of lane l (got[w * Lanes + l]) against word w of the scalar block at counter first + l, over
// counters where the low word wraps into the high one and keys and offsets with both halves set.
template <int Lanes, typename Draw> void expect_lanes_equal_scalar_blocks(Draw draw) {
  const uint64_t firsts[] = {0, 8, 1000003, 0xFFFFFFFCull, 0xFFFFFFF1ull, 0x1FFFFFFFAull, 0x123456789ABCull};
  const uint64_t seeds[] = {0, 1, 0xDEADBEEFCAFEF00Dull};
  const uint64_t offsets[] = {0, 7, 0xFFFFFFFF00000001ull};
  for (uint64_t first : firsts)
    for (uint64_t seed : seeds)
      for (uint64_t offset : offsets) {
        uint32_t got[4 * Lanes];
        draw(first, offset, seed, got);
        for (int l = 0; l < Lanes; ++l)
          for (int w = 0; w < 4; ++w)
            ASSERT_EQ(got[w * Lanes + l], rng::philox_block(seed, offset, first + uint64_t(l))[w])
                << Lanes << " lanes, counter " << first + uint64_t(l) << " word " << w << " seed " << seed
                << " offset " << offset;
      }
}
#endif

TEST(PhiloxLanes, EightAvx2LanesEqualTheScalarBlocks) {
#if MR_HAVE_PHILOX_LANES
  if (!kernels::cpu::simd::have_avx2()) GTEST_SKIP() << "this CPU has no AVX2";
  expect_lanes_equal_scalar_blocks<8>(kernels::cpu::simd::philox_x8_store);
#else
  GTEST_SKIP() << "no x86-64 lanes in this build";
#endif
}

TEST(PhiloxLanes, SixteenAvx512LanesEqualTheScalarBlocks) {
#if MR_HAVE_PHILOX_LANES
  if (!kernels::cpu::simd::have_avx512()) GTEST_SKIP() << "this CPU has no AVX-512";
  expect_lanes_equal_scalar_blocks<16>(kernels::cpu::simd::philox_x16_store);
#else
  GTEST_SKIP() << "no x86-64 lanes in this build";
#endif
}

TEST(DropoutCpu, EveryFloatPathGivesTheScalarDefinitionsValuesBitsAndGradient) {
  using kernels::cpu::DropoutPath;
  int paths_run = 0;
  for (DropoutPath path : {DropoutPath::Scalar, DropoutPath::Avx2, DropoutPath::Avx512, DropoutPath::Best}) {
    if (!kernels::cpu::dropout_path_available(path)) continue;
    ++paths_run;
    // Lengths around the 32- and 64-element blocks the lanes take (a tail goes one element at a time),
    // and one of several parallel chunks (1,024 words each at least) ending in an odd word.
    for (int64_t n : {1, 3, 5, 31, 32, 33, 63, 64, 65, 96, 1000, 4096 + 17, 3 * 32768 + 32 + 7})
      for (float p : {0.1f, 0.37f, 0.5f, 0.9f}) {
        const uint64_t seed = 0xABCDEF12345ull, offset = 3ull << 33;
        const size_t len = static_cast<size_t>(n);
        std::vector<float> x(len), gy(len), y(len), gx(len);
        for (size_t i = 0; i < len; ++i) {
          x[i] = float(i % 97) - 48.5f;
          gy[i] = float(i % 13) * 0.25f - 1.f;
        }
        std::vector<uint32_t> bits((len + 31) / 32);
        kernels::cpu::dropout_forward<float>(x.data(), y.data(), n, p, seed, offset, bits.data(), path);
        kernels::cpu::dropout_backward<float>(gy.data(), gx.data(), n, p, bits.data(), path);
        const float scale = 1.f / (1.f - p);
        for (size_t i = 0; i < len; ++i) {
          const bool keep = rng::dropout_keep(seed, offset, uint64_t(i), p);
          const auto at = [&] { return ::testing::Message() << "path " << int(path) << " n " << n << " p " << p << " i " << i; };
          ASSERT_EQ(bool((bits[i / 32] >> (i % 32)) & 1u), keep) << at();
          ASSERT_EQ(y[i], keep ? x[i] * scale : 0.f) << at();
          ASSERT_FALSE(std::signbit(y[i]) && !keep) << at() << ": a dropped element must be +0";
          ASSERT_EQ(gx[i], keep ? gy[i] * scale : 0.f) << at();
        }
      }
  }
  EXPECT_GE(paths_run, 2);  // the reference and Best at least
}

}  // namespace
}  // namespace musicrec
