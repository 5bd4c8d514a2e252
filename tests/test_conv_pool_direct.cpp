// The direct CUDA convolution + max pool forward's arithmetic (kernels/cuda/conv_pool_forward.h), run
// on the host: pooled values within rounding of a float64 convolution then pooling, and every winner a
// true maximum of its window up to that rounding. These run in every build, so the kernel's indexing
// is tested without a GPU; CudaParity.ConvPoolDirect* checks the device gives the emulation's bits.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cuda/conv_pool_forward.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace cp = kernels::cuda::conv_pool;

void emulate(const std::vector<float>& x, const std::vector<float>& w, const cp::Dims& d, std::vector<float>& y,
             std::vector<int32_t>& argmax) {
  const bool compiled = kernels::cuda::filter_grad::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
    cp::emulate<decltype(kh)::value, decltype(kw)::value>(x.data(), w.data(), d, y, argmax);
  });
  EXPECT_TRUE(compiled) << "no emulation for " << d.KH << "x" << d.KW;
}

std::vector<float> uniform(size_t n, uint64_t seed) {
  return test::random_tensor({int64_t(n)}, seed, -1, 1, DType::F32).to_vector<float>();
}

// Conv 1's shape (odd output width: a dropped column), an odd output height, padding on either axis,
// C > 1, more than one block of filters (K = 20, 33), rows shorter than a run, a single window; 2 x 2
// filters at conv 2's and conv 3's shapes (odd output heights and widths), padded, and one window.
const cp::Dims kShapes[] = {
    {3, 1, 40, 120, 16, 5, 10, 0, 0}, {4, 3, 13, 17, 5, 3, 3, 1, 1},   {2, 2, 9, 21, 3, 5, 10, 2, 4},
    {2, 1, 6, 26, 33, 5, 10, 1, 0},   {3, 1, 5, 19, 20, 3, 3, 0, 1},   {2, 4, 7, 12, 2, 5, 10, 0, 0},
    {1, 1, 4, 4, 1, 3, 3, 0, 0},      {2, 16, 18, 55, 32, 2, 2, 0, 0}, {2, 32, 8, 27, 32, 2, 2, 0, 0},
    {3, 3, 6, 9, 17, 2, 2, 1, 1},     {1, 2, 3, 3, 2, 2, 2, 0, 0},
};

TEST(ConvPoolDirect, EmulationMatchesAFloat64ConvolutionThenPooling) {
  uint64_t seed = 800;
  for (const cp::Dims& d : kShapes) {
    const std::vector<float> x = uniform(size_t(d.N * d.C * d.H * d.W), seed++);
    const std::vector<float> w = uniform(size_t(d.K * d.C * d.KH * d.KW), seed++);
    std::vector<float> y;
    std::vector<int32_t> argmax;
    emulate(x, w, d, y, argmax);
    const int64_t OH = d.OH(), OW = d.OW(), PH = d.PH(), PW = d.PW();
    ASSERT_GE(PH, 1);
    ASSERT_EQ(y.size(), size_t(d.N * d.K * PH * PW));
    std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), conv(size_t(d.N * d.K * OH * OW));
    std::vector<double> ax(xd.size()), aw(wd.size()), scale(conv.size());
    for (size_t i = 0; i < xd.size(); ++i) ax[i] = std::fabs(xd[i]);
    for (size_t i = 0; i < wd.size(); ++i) aw[i] = std::fabs(wd[i]);
    kernels::cpu::conv2d_forward<double>(xd.data(), wd.data(), conv.data(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                         d.pw);
    kernels::cpu::conv2d_forward<double>(ax.data(), aw.data(), scale.data(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                         d.pw);
    const std::string where = std::to_string(d.H) + "x" + std::to_string(d.W) + " C=" + std::to_string(d.C) +
                              " K=" + std::to_string(d.K) + " " + std::to_string(d.KH) + "x" + std::to_string(d.KW);
    for (int64_t p = 0; p < d.N * d.K; ++p)
      for (int64_t pr = 0; pr < PH; ++pr)
        for (int64_t pc = 0; pc < PW; ++pc) {
          const size_t o = size_t((p * PH + pr) * PW + pc);
          double best = -1e300, tol = 0;
          for (int64_t a = 0; a < 2; ++a)
            for (int64_t b = 0; b < 2; ++b) {
              const size_t i = size_t((p * OH + 2 * pr + a) * OW + 2 * pc + b);
              best = std::max(best, conv[i]);
              tol = std::max(tol, 1e-6 * scale[i]);
            }
          ASSERT_LE(std::fabs(double(y[o]) - best), tol) << where << " pooled " << o;
          const int32_t win = argmax[o];
          const int64_t wr = win / OW, wc = win % OW;
          ASSERT_TRUE(wr / 2 == pr && wc / 2 == pc && wr < 2 * PH && wc < 2 * PW) << where << " winner " << win;
          // The winner's exact value is the maximum up to float32 rounding, and y is the winner's value.
          const size_t wi = size_t(p * OH * OW + win);
          ASSERT_LE(best - conv[wi], 2 * tol) << where << " winner " << win << " of window " << o;
          ASSERT_LE(std::fabs(double(y[o]) - conv[wi]), tol) << where << " pooled " << o;
        }
  }
}

// Ties (all inputs equal: every window's four values equal) go to the top-left position, as
// maxpool2x2_forward decides them.
TEST(ConvPoolDirect, TiesGoToTheTopLeftAsThePoolingKernelDecides) {
  const cp::Dims d{2, 1, 12, 30, 3, 3, 3, 0, 0};
  const std::vector<float> x(size_t(d.N * d.H * d.W), 0.5f), w(size_t(d.K * 9), 0.25f);
  std::vector<float> y;
  std::vector<int32_t> argmax;
  emulate(x, w, d, y, argmax);
  for (int64_t p = 0; p < d.N * d.K; ++p)
    for (int64_t pr = 0; pr < d.PH(); ++pr)
      for (int64_t pc = 0; pc < d.PW(); ++pc)
        ASSERT_EQ(argmax[size_t((p * d.PH() + pr) * d.PW() + pc)], int32_t(2 * pr * d.OW() + 2 * pc));
}

TEST(ConvPoolDirect, ItemsCoverThePooledRowsInRuns) {
  const cp::Dims d{1024, 1, 40, 120, 16, 5, 10, 0, 0};
  EXPECT_EQ(d.PH(), 18);
  EXPECT_EQ(d.PW(), 55);
  EXPECT_EQ(d.strips_per_row(), 7);  // 110 pooled-over columns in runs of 16
  EXPECT_EQ(d.items(), 1024 * 18 * 7);
  EXPECT_TRUE(d.fits());
  EXPECT_FALSE((cp::Dims{1, 600, 8, 8, 16, 5, 10, 0, 0}.fits()));  // 16 x 600 x 50 weights: no room in shared memory
  // Filters' strides in shared memory: conv 1's and 3 x 3's as they are, conv 2's and 3's padded to odd,
  // and the padding counted against the room (16 x 64 channels x 4 = 4,096 weights fit only unpadded).
  EXPECT_EQ(d.weight_stride(), 50);
  EXPECT_EQ((cp::Dims{1, 3, 8, 8, 16, 3, 3, 0, 0}.weight_stride()), 27);
  EXPECT_EQ((cp::Dims{1, 16, 18, 55, 32, 2, 2, 0, 0}.weight_stride()), 65);
  EXPECT_EQ((cp::Dims{1, 32, 8, 27, 32, 2, 2, 0, 0}.weight_stride()), 129);
  EXPECT_TRUE((cp::Dims{1, 63, 8, 8, 16, 2, 2, 0, 0}.fits()));
  EXPECT_FALSE((cp::Dims{1, 64, 8, 8, 16, 2, 2, 0, 0}.fits()));
}

}  // namespace
}  // namespace musicrec
