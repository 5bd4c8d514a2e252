// The direct CUDA data gradient's arithmetic (kernels/cuda/conv_data_grad.h), run on the host in the
// kernel's block and thread order: against a float64 reference, counted exactly with ones, and from the
// pooled gradient against the unpooled one. These run in every build, so the kernel's indexing is
// tested without a GPU; CudaParity.ConvDataGradDirectEqualsItsHostEmulation checks the device's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cuda/conv_data_grad.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace dg = kernels::cuda::data_grad;

std::vector<float> emulate(const std::vector<float>& gy, const std::vector<float>& w, const dg::Dims& d,
                           const int32_t* argmax = nullptr) {
  std::vector<float> gx;
  const bool compiled = kernels::cuda::filter_grad::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
    gx = dg::emulate<decltype(kh)::value, decltype(kw)::value>(gy.data(), w.data(), d, argmax);
  });
  EXPECT_TRUE(compiled) << "no emulation for " << d.KH << "x" << d.KW;
  return gx;
}

std::vector<float> uniform(size_t n, uint64_t seed) {
  return test::random_tensor({int64_t(n)}, seed, -1, 1, DType::F32).to_vector<float>();
}

std::string where(const dg::Dims& d) {
  return "N=" + std::to_string(d.N) + " C=" + std::to_string(d.C) + " " + std::to_string(d.H) + "x" +
         std::to_string(d.W) + " K=" + std::to_string(d.K) + " " + std::to_string(d.KH) + "x" + std::to_string(d.KW) +
         " pad " + std::to_string(d.ph) + "," + std::to_string(d.pw);
}

// conv 2's and 3's shapes (16 and 32 channels: one and two blocks of channels), ragged channel tiles and
// blocks (C = 3, 17, 20), padding on either axis and both, rows shorter than a run and one column over,
// more item blocks than one with a ragged last (40 images), a single position; conv 1's 5 x 10 and 3 x 3
// filters (one channel a thread), with padding.
const dg::Dims kShapes[] = {
    {3, 16, 18, 55, 32, 2, 2, 0, 0}, {2, 32, 8, 27, 32, 2, 2, 0, 0}, {3, 3, 6, 9, 17, 2, 2, 1, 1},
    {2, 17, 7, 17, 5, 2, 2, 0, 1},   {2, 20, 5, 16, 3, 2, 2, 1, 0},  {40, 2, 3, 5, 2, 2, 2, 0, 0},
    {1, 1, 2, 2, 1, 2, 2, 0, 0},     {2, 1, 40, 120, 16, 5, 10, 0, 0}, {3, 2, 9, 20, 3, 5, 10, 2, 4},
    {2, 5, 13, 17, 4, 3, 3, 1, 1},   {3, 1, 4, 19, 20, 3, 3, 0, 1},
};

TEST(ConvDataGradDirect, EmulationMatchesAFloat64ReferenceWithinRounding) {
  uint64_t seed = 1100;
  for (const dg::Dims& d : kShapes) {
    const std::vector<float> gy = uniform(size_t(d.N * d.K * d.OH() * d.OW()), seed++);
    const std::vector<float> w = uniform(size_t(d.K * d.C * d.KH * d.KW), seed++);
    const std::vector<float> got = emulate(gy, w, d);
    std::vector<double> gd(gy.begin(), gy.end()), wd(w.begin(), w.end()), ag(gd.size()), aw(wd.size());
    for (size_t i = 0; i < gd.size(); ++i) ag[i] = std::fabs(gd[i]);
    for (size_t i = 0; i < wd.size(); ++i) aw[i] = std::fabs(wd[i]);
    const size_t nx = size_t(d.N * d.C * d.H * d.W);
    std::vector<double> want(nx), scale(nx);
    kernels::cpu::conv2d_backward_data<double>(gd.data(), wd.data(), want.data(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW,
                                               d.ph, d.pw);
    // sum |g| |w| per input value: float32 sums of it stay within a few ulps of that scale per term.
    kernels::cpu::conv2d_backward_data<double>(ag.data(), aw.data(), scale.data(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW,
                                               d.ph, d.pw);
    ASSERT_EQ(got.size(), nx);
    for (size_t i = 0; i < nx; ++i)
      ASSERT_LE(std::fabs(double(got[i]) - want[i]), 1e-6 * scale[i] + 1e-30)
          << where(d) << " at input " << i << ": " << got[i] << " vs " << want[i];
  }
}

// All ones: each input value counts the (filter, tap) pairs whose output position lies in the plane, an
// integer float32 holds exactly. An item or channel skipped or written twice, a weight staged in the
// wrong slot, or a padding position read as data changes a count.
TEST(ConvDataGradDirect, OnesCountEveryTapOnce) {
  for (const dg::Dims& d : kShapes) {
    const std::vector<float> gy(size_t(d.N * d.K * d.OH() * d.OW()), 1.f), w(size_t(d.K * d.C * d.KH * d.KW), 1.f);
    const std::vector<float> got = emulate(gy, w, d);
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t ih = 0; ih < d.H; ++ih)
          for (int64_t iw = 0; iw < d.W; ++iw) {
            int64_t rows = 0, cols = 0;
            for (int64_t i = 0; i < d.KH; ++i) rows += ih + d.ph - i >= 0 && ih + d.ph - i < d.OH();
            for (int64_t j = 0; j < d.KW; ++j) cols += iw + d.pw - j >= 0 && iw + d.pw - j < d.OW();
            ASSERT_EQ(got[size_t(((n * d.C + c) * d.H + ih) * d.W + iw)], float(d.K * rows * cols))
                << where(d) << " at " << n << "," << c << "," << ih << "," << iw;
          }
  }
}

// A weight staged in another channel's or filter's slot still sums the right count of ones: distinct
// weights (filter k, channel c, tap q weighs 1 + q + 4 c + 64 k, exact in float32 at these sizes) and a
// gradient of ones make each input value a known integer.
TEST(ConvDataGradDirect, EachChannelGathersItsOwnWeights) {
  const dg::Dims shapes[] = {{2, 20, 5, 16, 3, 2, 2, 1, 0}, {1, 6, 4, 9, 2, 3, 3, 1, 1}};
  for (const dg::Dims& d : shapes) {
    std::vector<float> w(size_t(d.K * d.C * d.KH * d.KW));
    for (int64_t k = 0; k < d.K; ++k)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t q = 0; q < d.KH * d.KW; ++q)
          w[size_t((k * d.C + c) * d.KH * d.KW + q)] = float(1 + q + 4 * c + 64 * k);
    const std::vector<float> gy(size_t(d.N * d.K * d.OH() * d.OW()), 1.f);
    const std::vector<float> got = emulate(gy, w, d);
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t ih = 0; ih < d.H; ++ih)
          for (int64_t iw = 0; iw < d.W; ++iw) {
            double want = 0;
            for (int64_t k = 0; k < d.K; ++k)
              for (int64_t i = 0; i < d.KH; ++i)
                for (int64_t j = 0; j < d.KW; ++j) {
                  const int64_t oh = ih + d.ph - i, ow = iw + d.pw - j;
                  if (oh >= 0 && oh < d.OH() && ow >= 0 && ow < d.OW()) want += 1 + i * d.KW + j + 4 * c + 64 * k;
                }
            ASSERT_EQ(double(got[size_t(((n * d.C + c) * d.H + ih) * d.W + iw)]), want)
                << where(d) << " at " << n << "," << c << "," << ih << "," << iw;
          }
  }
}

// From the pooled gradient and the winners, the input gradient is the one from the unpooled gradient,
// bit for bit: odd output heights and widths (a dropped row and column), padding, conv 2's and 3's shapes.
TEST(ConvDataGradDirect, PooledGradientGivesTheUnpooledValuesBitForBit) {
  const dg::Dims shapes[] = {{3, 16, 18, 55, 32, 2, 2, 0, 0}, {3, 32, 8, 27, 32, 2, 2, 0, 0},
                             {3, 3, 6, 9, 17, 2, 2, 1, 1},    {2, 17, 7, 17, 5, 2, 2, 0, 1},
                             {2, 2, 9, 21, 3, 5, 10, 2, 4},   {3, 1, 5, 19, 20, 3, 3, 0, 1}};
  uint64_t seed = 1200;
  for (const dg::Dims& d : shapes) {
    const int64_t OH = d.OH(), OW = d.OW(), planes = d.N * d.K;
    ASSERT_GE(OH, 2);
    ASSERT_GE(OW, 2);
    const std::vector<float> w = uniform(size_t(d.K * d.C * d.KH * d.KW), seed++);
    const test::PooledGradient g = test::pooled_gradient(planes, OH, OW, seed);
    seed += 2;
    const std::vector<float> want = emulate(g.dense, w, d), got = emulate(g.pooled, w, d, g.argmax.data());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << where(d) << " input " << i;
  }
}

TEST(ConvDataGradDirect, ItemsAndStagedWeightsFitTheBlock) {
  const dg::Dims conv2{1024, 16, 18, 55, 32, 2, 2, 0, 0}, conv3{1024, 32, 8, 27, 32, 2, 2, 0, 0};
  EXPECT_EQ(conv2.strips_per_row(), 4);  // 55 columns in runs of 16
  EXPECT_EQ(conv2.items(), 1024 * 18 * 4);
  EXPECT_EQ(conv2.channel_blocks(4), 1);
  EXPECT_EQ(conv3.channel_blocks(4), 2);
  // Odd strides: the four tiles' reads of one tap fall into four banks (32 filters x 4 taps = 128 -> 129).
  EXPECT_EQ(conv2.weight_stride(), 129);
  EXPECT_EQ((dg::Dims{1, 1, 40, 120, 16, 5, 10, 0, 0}.weight_stride()), 801);
  EXPECT_TRUE(conv2.fits(4));
  EXPECT_TRUE(conv3.fits(4));
  EXPECT_TRUE((dg::Dims{1, 1, 40, 120, 16, 5, 10, 0, 0}.fits(1)));
  // 16 channels x (127 x 4 | 1) = 8,144 weights fit; 128 filters' 8,208 do not.
  EXPECT_TRUE((dg::Dims{1, 16, 8, 8, 127, 2, 2, 0, 0}.fits(4)));
  EXPECT_FALSE((dg::Dims{1, 16, 8, 8, 128, 2, 2, 0, 0}.fits(4)));
}

}  // namespace
}  // namespace musicrec
