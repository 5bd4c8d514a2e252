// The direct CUDA filter gradient's arithmetic (kernels/cuda/conv_filter_grad.h), run on the host in
// the kernels' block and thread order: against a float64 reference, and counted exactly with ones. These
// run in every build, so the kernel's indexing is tested without a GPU; CudaParity.ConvFilterGradDirect*
// checks that the device gives the emulation's bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cuda/conv_filter_grad.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace fg = kernels::cuda::filter_grad;

std::vector<float> emulate(const std::vector<float>& x, const std::vector<float>& gy, const fg::Dims& d,
                           const int32_t* argmax = nullptr) {
  std::vector<float> gw;
  const bool compiled = fg::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
    gw = fg::emulate<decltype(kh)::value, decltype(kw)::value>(x.data(), gy.data(), d, argmax);
  });
  EXPECT_TRUE(compiled) << "no emulation for " << d.KH << "x" << d.KW;
  return gw;
}

std::vector<float> uniform(size_t n, uint64_t seed) {
  const Tensor t = test::random_tensor({int64_t(n)}, seed, -1, 1, DType::F32);
  return t.to_vector<float>();
}

// Shapes that reach every branch: conv 1's (10 groups), padding on either axis, many groups with a
// ragged split (70 images of 3 runs: 210 items in 2 groups), rows shorter than a run, exactly one run,
// one column over, C > 1, more than one block of filters (K = 20, 33), a single item; 2 x 2 filters at
// conv 2's and conv 3's shapes (16 and 32 channels, 32 filters), padded, and a one-column output.
const fg::Dims kShapes[] = {
    {5, 1, 40, 120, 3, 5, 10, 0, 0}, {7, 3, 13, 17, 4, 3, 3, 1, 1},  {3, 2, 9, 20, 2, 5, 10, 2, 4},
    {70, 1, 3, 40, 2, 3, 3, 0, 0},   {4, 1, 7, 12, 2, 5, 10, 0, 0},  {2, 2, 5, 25, 3, 5, 10, 0, 0},
    {3, 1, 4, 19, 20, 3, 3, 0, 1},   {1, 1, 3, 3, 1, 3, 3, 0, 0},    {2, 1, 6, 26, 33, 5, 10, 1, 0},
    {3, 16, 18, 55, 32, 2, 2, 0, 0}, {2, 32, 8, 27, 32, 2, 2, 0, 0}, {5, 3, 6, 9, 17, 2, 2, 1, 1},
    {2, 2, 2, 2, 3, 2, 2, 0, 0},
};

TEST(ConvFilterGradDirect, EmulationMatchesAFloat64ReferenceWithinRounding) {
  uint64_t seed = 500;
  for (const fg::Dims& d : kShapes) {
    const std::vector<float> x = uniform(size_t(d.N * d.C * d.H * d.W), seed++);
    const std::vector<float> gy = uniform(size_t(d.N * d.K * d.OH() * d.OW()), seed++);
    const std::vector<float> got = emulate(x, gy, d);
    std::vector<double> xd(x.begin(), x.end()), gd(gy.begin(), gy.end()), ax(xd.size()), ag(gd.size());
    for (size_t i = 0; i < xd.size(); ++i) ax[i] = std::fabs(xd[i]);
    for (size_t i = 0; i < gd.size(); ++i) ag[i] = std::fabs(gd[i]);
    const size_t nw = size_t(d.K * d.C * d.KH * d.KW);
    std::vector<double> want(nw), scale(nw);
    kernels::cpu::conv2d_backward_filter<double>(xd.data(), gd.data(), want.data(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW,
                                                 d.ph, d.pw);
    // sum |g| |x| per weight: float32 sums of it stay within a few ulps of that scale per term.
    kernels::cpu::conv2d_backward_filter<double>(ax.data(), ag.data(), scale.data(), d.N, d.C, d.H, d.W, d.K, d.KH,
                                                 d.KW, d.ph, d.pw);
    ASSERT_EQ(got.size(), nw);
    for (size_t i = 0; i < nw; ++i)
      ASSERT_LE(std::fabs(double(got[i]) - want[i]), 1e-6 * scale[i] + 1e-30)
          << "N=" << d.N << " C=" << d.C << " " << d.H << "x" << d.W << " K=" << d.K << " " << d.KH << "x" << d.KW
          << " pad " << d.ph << "," << d.pw << " at weight " << i << ": " << got[i] << " vs " << want[i];
  }
}

// All ones: each weight counts the (output, input) position pairs it joins, an integer float32 holds
// exactly. An item skipped or taken twice, or a padding position read as data, changes a count.
TEST(ConvFilterGradDirect, OnesCountEveryPositionOnce) {
  for (const fg::Dims& d : kShapes) {
    const std::vector<float> x(size_t(d.N * d.C * d.H * d.W), 1.f), gy(size_t(d.N * d.K * d.OH() * d.OW()), 1.f);
    const std::vector<float> got = emulate(x, gy, d);
    for (int64_t k = 0; k < d.K; ++k)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t i = 0; i < d.KH; ++i)
          for (int64_t j = 0; j < d.KW; ++j) {
            int64_t rows = 0, cols = 0;
            for (int64_t oh = 0; oh < d.OH(); ++oh) rows += oh + i - d.ph >= 0 && oh + i - d.ph < d.H;
            for (int64_t ow = 0; ow < d.OW(); ++ow) cols += ow + j - d.pw >= 0 && ow + j - d.pw < d.W;
            ASSERT_EQ(got[size_t(((k * d.C + c) * d.KH + i) * d.KW + j)], float(d.N * rows * cols))
                << d.H << "x" << d.W << " " << d.KH << "x" << d.KW << " tap " << i << "," << j;
          }
  }
}

// From the pooled gradient and the winners, the sums are those from the unpooled gradient, bit for bit:
// shapes with an odd output height and width (a dropped row and column), conv 1's, 2's and 3's among them.
TEST(ConvFilterGradDirect, PooledGradientGivesTheUnpooledSumsBitForBit) {
  const fg::Dims shapes[] = {{5, 1, 40, 120, 3, 5, 10, 0, 0},
                             {7, 3, 13, 17, 4, 3, 3, 1, 1},
                             {3, 2, 9, 21, 2, 5, 10, 2, 4},
                             {2, 1, 6, 26, 33, 5, 10, 1, 0},
                             {3, 1, 5, 19, 20, 3, 3, 0, 1},
                             {2, 16, 18, 55, 32, 2, 2, 0, 0},
                             {3, 32, 8, 27, 32, 2, 2, 0, 0}};
  uint64_t seed = 600;
  for (const fg::Dims& d : shapes) {
    const int64_t OH = d.OH(), OW = d.OW(), planes = d.N * d.K;
    ASSERT_GE(OH, 2);
    ASSERT_GE(OW, 2);
    const std::vector<float> x = uniform(size_t(d.N * d.C * d.H * d.W), seed++);
    const test::PooledGradient g = test::pooled_gradient(planes, OH, OW, seed);
    seed += 2;
    const std::vector<float> want = emulate(x, g.dense, d), got = emulate(x, g.pooled, d, g.argmax.data());
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << d.H << "x" << d.W << " " << d.KH << "x" << d.KW << " weight " << i;
  }
}

// A thread's tile of channels changes which thread adds a product, never the order of any sum's terms:
// every tile size gives the bits of one channel per thread, with ragged last tiles (C = 3 or 20 by 16,
// 16 by 5) and padding, from a dense and from a pooled gradient.
TEST(ConvFilterGradDirect, ChannelTilesGiveTheSameBits) {
  const fg::Dims shapes[] = {{3, 16, 18, 55, 32, 2, 2, 0, 0}, {2, 20, 8, 27, 17, 2, 2, 1, 0},
                             {4, 3, 6, 9, 5, 2, 2, 1, 1},     {2, 3, 9, 20, 4, 3, 3, 1, 1}};
  uint64_t seed = 650;
  for (const fg::Dims& d : shapes) {
    const std::vector<float> x = uniform(size_t(d.N * d.C * d.H * d.W), seed++);
    const std::vector<float> gy = uniform(size_t(d.N * d.K * d.OH() * d.OW()), seed++);
    const test::PooledGradient pooled = test::pooled_gradient(d.N * d.K, d.OH(), d.OW(), seed);
    seed += 2;
    for (const int32_t* winners : {static_cast<const int32_t*>(nullptr), pooled.argmax.data()}) {
      const float* g = winners ? pooled.pooled.data() : gy.data();
      std::vector<std::vector<float>> got;
      if (d.KH == 2) {
        got = {fg::emulate<2, 2, 1>(x.data(), g, d, winners), fg::emulate<2, 2, 5>(x.data(), g, d, winners),
               fg::emulate<2, 2, 16>(x.data(), g, d, winners), fg::emulate<2, 2>(x.data(), g, d, winners)};
      } else {
        got = {fg::emulate<3, 3, 1>(x.data(), g, d, winners), fg::emulate<3, 3, 2>(x.data(), g, d, winners)};
      }
      for (size_t v = 1; v < got.size(); ++v)
        ASSERT_EQ(got[v], got[0]) << d.KH << "x" << d.KW << " C=" << d.C << " tile variant " << v
                                  << (winners ? " (pooled)" : " (dense)");
    }
  }
  static_assert(fg::kChannelsPerThread<2, 2> == 16 && fg::kChannelsPerThread<5, 10> == 1);
}

// Groups hold whole runs of items in order, every item in exactly one, at least kItemsPerGroup each
// below the cap, and depend on the shape alone.
TEST(ConvFilterGradDirect, GroupsCoverTheItemsInOrder) {
  for (int64_t n : {1, 2, 63, 64, 65, 70, 256, 1000, 4096}) {
    const fg::Dims d{n, 1, 40, 120, 16, 5, 10, 0, 0};
    ASSERT_EQ(d.items(), n * 36 * 7);
    const int64_t want = std::min<int64_t>((d.items() + fg::kItemsPerGroup - 1) / fg::kItemsPerGroup, fg::kMaxGroups);
    EXPECT_EQ(d.groups(), want) << n;
    EXPECT_EQ(d.first_item(0), 0);
    EXPECT_EQ(d.first_item(d.groups()), d.items());
    for (int64_t g = 0; g < d.groups(); ++g) EXPECT_GT(d.first_item(g + 1), d.first_item(g)) << n << " group " << g;
  }
  EXPECT_EQ((fg::Dims{0, 1, 40, 120, 16, 5, 10, 0, 0}.groups()), 0);
  EXPECT_EQ((fg::Dims{3, 1, 4, 120, 16, 5, 10, 0, 0}.items()), 0);  // no output rows
}

}  // namespace
}  // namespace musicrec
