// The CPU direct filter gradient with its vector lanes over input channels (kernels/cpu/conv_channel_lanes.cpp:
// 2 x 2 filters over a multiple of 16 channels, the pair CNN's conv 2 and 3), through the public kernels:
// against a float64 reference within the rounding of its sums, with counts of ones, with weights that
// differ per channel and tap, and against the column-lanes kernel it replaced; and the fused layer's
// backward from the pooling's winners (the same file) against the same from the unpooled gradient, bit
// for bit, and the winners' lists it reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/op_util.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_kernels.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace k = kernels::cpu;
namespace direct = kernels::cpu::direct;

struct Case {
  int64_t N, C, H, W, K, KH = 2, KW = 2;
  int64_t OH() const { return H - KH + 1; }
  int64_t OW() const { return W - KW + 1; }
  int64_t weights() const { return K * C * KH * KW; }
  std::string str() const {
    return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " " + std::to_string(H) + "x" + std::to_string(W) +
           " K=" + std::to_string(K) + " " + std::to_string(KH) + "x" + std::to_string(KW);
  }
};
// Conv 2's and 3's shapes (groups of one image, of two, and 21 images: groups of one and two), 48
// channels (three channel vectors), filter counts off the tile of 4 (7: one tile and three single
// filters; 1; 5), one output row, exactly 16 columns, and 33.
const Case kCases[] = {{3, 16, 18, 55, 32}, {32, 32, 8, 27, 32}, {21, 32, 8, 27, 32}, {2, 48, 5, 20, 7},
                       {2, 16, 2, 17, 1},   {3, 32, 3, 34, 5},   {17, 16, 4, 18, 4}};

template <typename T>
std::vector<T> filter_grad(const std::vector<T>& x, const std::vector<T>& gy, const Case& c, k::ConvPath path) {
  std::vector<T> gw(static_cast<size_t>(c.weights()), std::numeric_limits<T>::quiet_NaN());
  k::conv2d_backward_filter<T>(x.data(), gy.data(), gw.data(), c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, 0, 0, path);
  return gw;
}

std::vector<float> uniform(int64_t n, uint64_t seed) {
  return test::random_tensor({n}, seed, -1, 1, DType::F32).to_vector<float>();
}

// Float: every weight within the worst-case rounding of a running sum of its terms (one rounding per
// term added, per image group and per group added: (terms + groups) ulp-units of sum |g| |x|) of the
// exact float64 sum; double likewise at its own unit. A tap, channel or filter taken from the wrong place
// is off by the size of the terms themselves.
TEST(LanesFilterGrad, MatchesAFloat64ReferenceWithinRounding) {
  uint64_t seed = 900;
  for (const Case& c : kCases) {
    const std::vector<float> x = uniform(c.N * c.C * c.H * c.W, seed++), gy = uniform(c.N * c.K * c.OH() * c.OW(), seed++);
    const std::vector<double> xd(x.begin(), x.end()), gd(gy.begin(), gy.end());
    std::vector<double> ax(xd.size()), ag(gd.size());
    for (size_t i = 0; i < xd.size(); ++i) ax[i] = std::fabs(xd[i]);
    for (size_t i = 0; i < gd.size(); ++i) ag[i] = std::fabs(gd[i]);
    const std::vector<double> want = filter_grad(xd, gd, c, k::ConvPath::Im2col);
    const std::vector<double> scale = filter_grad(ax, ag, c, k::ConvPath::Im2col);
    const std::vector<float> got = filter_grad(x, gy, c, k::ConvPath::Direct);
    const std::vector<double> got_d = filter_grad(xd, gd, c, k::ConvPath::Direct);
    const double terms = double(c.N * c.OH() * c.OW() + 16);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_LE(std::fabs(double(got[i]) - want[i]), terms * 0x1p-24 * scale[i]) << c.str() << " float, weight " << i;
      ASSERT_LE(std::fabs(got_d[i] - want[i]), terms * 0x1p-53 * scale[i] * 4) << c.str() << " double, weight " << i;
    }
  }
}

// All ones: each weight counts the positions it joins (N x OH x OW), held exactly.
TEST(LanesFilterGrad, OnesCountEveryPositionOnce) {
  for (const Case& c : kCases) {
    const std::vector<float> x(static_cast<size_t>(c.N * c.C * c.H * c.W), 1.f);
    const std::vector<float> gy(static_cast<size_t>(c.N * c.K * c.OH() * c.OW()), 1.f);
    for (float v : filter_grad(x, gy, c, k::ConvPath::Direct)) ASSERT_EQ(v, float(c.N * c.OH() * c.OW())) << c.str();
  }
}

// Small integers, so that every sum is exact and every weight different: x[n, c, h, w] = (c + 1) +
// 64 (w % 17) + 1100 (h % 8), distinct over a filter's taps and channels, and gy = k + 1 at one position per plane, (k % OH, k % OW); the weight (k, c, kh, kw) is
// then (k + 1) x x[c, k % OH + kh, k % OW + kw] x N (under 2^24), which a swapped tap, channel or
// filter, or a position of the wrong plane, does not give.
TEST(LanesFilterGrad, EachWeightTakesItsOwnChannelTapAndFilter) {
  for (const Case& c : kCases) {
    auto xv = [&](int64_t ch, int64_t h, int64_t w) { return float((ch + 1) + 64 * (w % 17) + 1100 * (h % 8)); };
    std::vector<float> x(static_cast<size_t>(c.N * c.C * c.H * c.W)), gy(static_cast<size_t>(c.N * c.K * c.OH() * c.OW()), 0.f);
    for (int64_t n = 0; n < c.N; ++n) {
      for (int64_t ch = 0; ch < c.C; ++ch)
        for (int64_t h = 0; h < c.H; ++h)
          for (int64_t w = 0; w < c.W; ++w) x[size_t(((n * c.C + ch) * c.H + h) * c.W + w)] = xv(ch, h, w);
      for (int64_t f = 0; f < c.K; ++f)
        gy[size_t(((n * c.K + f) * c.OH() + f % c.OH()) * c.OW() + f % c.OW())] = float(f + 1);
    }
    const std::vector<float> got = filter_grad(x, gy, c, k::ConvPath::Direct);
    for (int64_t f = 0; f < c.K; ++f)
      for (int64_t ch = 0; ch < c.C; ++ch)
        for (int64_t kh = 0; kh < c.KH; ++kh)
          for (int64_t kw = 0; kw < c.KW; ++kw)
            ASSERT_EQ(got[size_t(((f * c.C + ch) * c.KH + kh) * c.KW + kw)],
                      float(f + 1) * xv(ch, f % c.OH() + kh, f % c.OW() + kw) * float(c.N))
                << c.str() << " filter " << f << " channel " << ch << " tap " << kh << "," << kw;
  }
}

// The column-lanes kernel it replaced sums the same products in another order: the two agree within
// rounding, and Best is the channel lanes (the same bits as Direct), where its tiles of 1 filter (V2)
// give the same bits as those of 4.
TEST(LanesFilterGrad, AgreesWithTheColumnLanesKernelAndBestTakesIt) {
  uint64_t seed = 950;
  for (const Case& c : kCases) {
    const std::vector<float> x = uniform(c.N * c.C * c.H * c.W, seed++), gy = uniform(c.N * c.K * c.OH() * c.OW(), seed++);
    const std::vector<float> direct = filter_grad(x, gy, c, k::ConvPath::Direct);
    const std::vector<float> columns = filter_grad(x, gy, c, k::ConvPath::DirectColumnLanes);
    const std::vector<float> best = filter_grad(x, gy, c, k::ConvPath::Best);
    const std::vector<float> narrow = filter_grad(x, gy, c, k::ConvPath::DirectV2);
    for (size_t i = 0; i < direct.size(); ++i) {
      ASSERT_NEAR(direct[i], columns[i], 2e-6 * double(c.N * c.OH() * c.OW())) << c.str() << " weight " << i;
      ASSERT_EQ(best[i], direct[i]) << c.str() << " weight " << i;
      ASSERT_EQ(narrow[i], direct[i]) << c.str() << " weight " << i;
    }
  }
}

// The fused layer's backward from the pooling's winners against the same from the unpooled gradient:
// the same bits, float and double, with and without the sigmoid epilogue and the input gradient. Odd
// output heights and widths (a dropped row, a dropped column), one row of windows, filter counts off
// the tile of 4, 48 channels, ragged image groups; and conv 1's shape, which takes neither gradient from
// the winners (its filter gradient's lanes run over output columns): the unpooled path both times.
TEST(LanesFromWinners, GivesTheUnpooledGradientsBitForBit) {
  const Case cases[] = {{3, 16, 18, 55, 32}, {21, 32, 8, 27, 32}, {2, 48, 5, 20, 7},
                        {3, 16, 3, 34, 5},   {17, 32, 4, 18, 1},   {3, 1, 40, 120, 16, 5, 10}};
  uint64_t seed = 980;
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F64})
      for (bool sigmoid : {false, true})
        for (bool need_x : {false, true}) {
          const int64_t PH = c.OH() / 2, PW = c.OW() / 2;
          const Tensor x = test::random_tensor({c.N, c.C, c.H, c.W}, seed++, -1, 1, dt);
          const Tensor w = test::random_tensor({c.K, c.C, c.KH, c.KW}, seed++, -0.5, 0.5, dt);
          const Tensor b = test::random_tensor({c.K}, seed++, -0.5, 0.5, dt);
          const Tensor gp = test::random_tensor({c.N, c.K, PH, PW}, seed++, -1, 1, dt);
          std::vector<int32_t> argmax(static_cast<size_t>(c.N * c.K * PH * PW));
          Tensor y = Tensor::empty({c.N, c.K, PH, PW}, dt);
          std::vector<std::vector<double>> got;
          for (auto from : {k::PooledGradFrom::Unpooled, k::PooledGradFrom::Best}) {
            Tensor gx = Tensor::full(x.shape(), 7.0, dt), gw = Tensor::full(w.shape(), 7.0, dt);
            Tensor gb = Tensor::full(b.shape(), 7.0, dt);
            ops::detail::dispatch_float(dt, [&](auto z) {
              using T = decltype(z);
              k::conv2d_maxpool_forward<T>(x.data<T>(), w.data<T>(), sigmoid ? b.data<T>() : nullptr, y.data<T>(),
                                           argmax.data(), c.N, c.C, c.H, c.W, c.K, c.KH, c.KW, 0, 0);
              k::conv2d_maxpool_backward<T>(x.data<T>(), w.data<T>(), gp.data<T>(), argmax.data(),
                                            sigmoid ? y.data<T>() : nullptr, need_x ? gx.data<T>() : nullptr,
                                            gw.data<T>(), sigmoid ? gb.data<T>() : nullptr, c.N, c.C, c.H, c.W, c.K,
                                            c.KH, c.KW, 0, 0, from);
            });
            for (const Tensor& t : {gx, gw, gb}) got.push_back(t.to_dtype(DType::F64).to_vector<double>());
          }
          const char* what[] = {"x.grad", "w.grad", "b.grad"};
          for (size_t i = 0; i < 3; ++i) {
            ASSERT_EQ(got[i].size(), got[3 + i].size());
            for (size_t e = 0; e < got[i].size(); ++e)
              ASSERT_EQ(std::memcmp(&got[i][e], &got[3 + i][e], sizeof(double)), 0)
                  << what[i] << " element " << e << ", " << c.str() << ", " << dtype_name(dt)
                  << (sigmoid ? ", sigmoid" : "") << (need_x ? ", input gradient" : "");
          }
        }
}

// The channels-last copy (blocks of 16 positions x 16 channels through registers, the last P % 16
// positions one by one) puts x[c][p] at [p][c], on a cache line: planes of 1 to 40 positions (no full
// block, exactly one, ragged tails) and 16, 32 and 48 channels, float and double.
TEST(LanesLayout, ChannelsLastPutsEveryValueAtItsPositionAndChannel) {
  for (int64_t C : {16, 32, 48})
    for (int64_t H : {1, 2, 3})
      for (int64_t W : {1, 5, 16, 17, 40}) {
        const direct::Dims d{C, H, W, 1, 1, 1};
        const int64_t P = H * W;
        std::vector<float> xf(static_cast<size_t>(C * P));
        std::vector<double> xd(xf.size());
        for (size_t i = 0; i < xf.size(); ++i) xf[i] = float(i) + 0.5f, xd[i] = double(i) + 0.25;
        std::vector<float> sf;
        std::vector<double> sd;
        const float* tf = direct::channels_last(xf.data(), d, sf);
        const double* td = direct::channels_last(xd.data(), d, sd);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(tf) % 64, 0u);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(td) % 64, 0u);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < P; ++p) {
            ASSERT_EQ(tf[p * C + c], xf[size_t(c * P + p)]) << "C=" << C << " " << H << "x" << W << " c=" << c << " p=" << p;
            ASSERT_EQ(td[p * C + c], xd[size_t(c * P + p)]) << "C=" << C << " " << H << "x" << W << " c=" << c << " p=" << p;
          }
      }
}

// The winners' lists themselves: each plane's entries are every window's winner once (its input offset
// oh * W + ow and its gradient), strictly increasing in offset (row-major order); the vector compress
// and the one-by-one split give the same lists. Rows of 1 to 40 windows: under, at and past a vector of
// 16, with ragged tails.
TEST(LanesFromWinners, ListsHoldEveryWinnerOnceInRowMajorOrder) {
  uint64_t seed = 990;
  for (int64_t W : {3, 17, 33, 34, 48, 81})
    for (int64_t H : {3, 6, 9}) {
      const direct::Dims d{16, H, W, 5, 2, 2};
      const int64_t OH = d.OH(), OW = d.OW(), PH = OH / 2, PW = OW / 2, Q = PH * PW;
      const std::vector<float> conv = uniform(d.K * OH * OW, seed++), gp = uniform(d.K * Q, seed++);
      std::vector<float> pooled(static_cast<size_t>(d.K * Q));
      std::vector<int32_t> argmax(pooled.size());
      k::maxpool2x2_forward<float>(conv.data(), pooled.data(), argmax.data(), d.K, OH, OW);
      direct::Winners<float> vec, one;
      direct::pooled_winners(gp.data(), argmax.data(), d, vec, true);
      direct::pooled_winners(gp.data(), argmax.data(), d, one, false);
      for (int64_t f = 0; f < d.K; ++f) {
        std::vector<std::pair<int32_t, float>> want;
        for (int64_t q = 0; q < Q; ++q) {
          const int32_t a = argmax[size_t(f * Q + q)];
          want.emplace_back(int32_t(a / OW * W + a % OW), gp[size_t(f * Q + q)]);
        }
        std::sort(want.begin(), want.end());
        for (int64_t e = 0; e < Q; ++e) {
          const size_t i = size_t(f * Q + e);
          ASSERT_EQ(vec.at[i], want[size_t(e)].first) << W << "x" << H << " filter " << f << " entry " << e;
          ASSERT_EQ(vec.g[i], want[size_t(e)].second) << W << "x" << H << " filter " << f << " entry " << e;
          ASSERT_EQ(one.at[i], vec.at[i]) << W << "x" << H << " filter " << f << " entry " << e;
          ASSERT_EQ(one.g[i], vec.g[i]) << W << "x" << H << " filter " << f << " entry " << e;
        }
      }
    }
}

}  // namespace
}  // namespace musicrec
