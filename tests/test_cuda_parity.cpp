// CUDA against the CPU reference, op by op, on random float32 inputs with sizes that do not divide a
// block (257, 1000, 37, ...) and with every CUDA allocation poisoned (NaN), so a kernel that skips
// part of its output fails. Forward outputs and input gradients are compared. Every test skips with
// the reason on a machine without a CUDA device, and runs where there is one (bench/gpu_check.sh).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/kde.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "models/pair_cnn.h"
#include "tests/test_util.h"
#if MUSICREC_WITH_CUDA
#include "engine/cuda_context.h"
#include "kernels/cuda/conv_data_grad.h"
#include "kernels/cuda/conv_filter_grad.h"
#include "kernels/cuda/conv_pool_forward.h"
#include "kernels/cuda/cuda_kernels.h"
#endif
#include "kernels/cpu/cpu_kernels.h"

namespace musicrec {
namespace {
using test::cuda_parity;
using test::random_tensor;
using V = std::vector<Tensor>;
constexpr DType F = DType::F32;

TEST(CudaParity, Matmul) {
  MR_REQUIRE_CUDA();
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = random_tensor(ta ? Shape{129, 67} : Shape{67, 129}, 1, -1, 1, F);
      Tensor b = random_tensor(tb ? Shape{37, 129} : Shape{129, 37}, 2, -1, 1, F);
      cuda_parity([=](const V& in) { return ops::matmul(in[0], in[1], ta, tb); }, {a, b}, {true, true});
    }
}

TEST(CudaParity, LinearAndBiasAdd) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::linear(in[0], in[1], in[2]); },
              {random_tensor({257, 100}, 3, -1, 1, F), random_tensor({30, 100}, 4, -1, 1, F), random_tensor({30}, 5, -1, 1, F)},
              {true, true, true});
  cuda_parity([](const V& in) { return ops::bias_add(in[0], in[1]); },
              {random_tensor({3, 7, 9, 11}, 6, -1, 1, F), random_tensor({7}, 7, -1, 1, F)}, {true, true});
}

TEST(CudaParity, Conv2dWithAndWithoutPadding) {
  MR_REQUIRE_CUDA();
  // The pair CNN's first layer shape (1x40x120, 5x10 kernel) at a small batch, and an odd 3x3 case.
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
              {random_tensor({3, 1, 40, 120}, 8, -1, 1, F), random_tensor({16, 1, 5, 10}, 9, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 1, 1); },
              {random_tensor({5, 3, 13, 17}, 10, -1, 1, F), random_tensor({7, 3, 3, 3}, 11, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
}

// With MUSICREC_CUDNN_FIND's choice (every algorithm run and timed, the fastest deterministic one
// kept), the convolutions still match the CPU, at conv 1's shape and a padded 3 x 3 one, and the plans
// say they were measured.
TEST(CudaParity, Conv2dWithMeasuredAlgorithms) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  CudaContext& ctx = CudaContext::get();
  struct Restore {
    bool before = CudaContext::get().settings().measure_conv_algorithms;
    ~Restore() { CudaContext::get().set_measure_conv_algorithms(before); }
  } restore;
  ctx.set_measure_conv_algorithms(true);
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
              {random_tensor({3, 1, 40, 120}, 50, -1, 1, F), random_tensor({16, 1, 5, 10}, 51, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 1, 1); },
              {random_tensor({5, 3, 13, 17}, 52, -1, 1, F), random_tensor({7, 3, 3, 3}, 53, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  const kernels::cuda::ConvAlgos& a = ctx.conv_plan({3, 1, 40, 120, 16, 5, 10, 0, 0}).algos();
  EXPECT_TRUE(a.measured) << a.describe();
  ctx.set_measure_conv_algorithms(false);
  EXPECT_FALSE(ctx.conv_plan({3, 1, 40, 120, 16, 5, 10, 0, 0}).algos().measured) << "the heuristic plan is kept apart";
#endif
}

// conv2d_maxpool2x2 (two ops on the GPU, the fused kernels on the CPU) at conv 1's shape, and with the
// sigmoid epilogue (three ops on the GPU, one pass on the CPU) at conv 1's and conv 2's, as the pair
// CNN runs them: conv 1's input without a gradient, conv 2's with one.
TEST(CudaParity, Conv2dMaxPool2x2) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2(in[0], in[1], 0, 0); },
              {test::distinct_tensor({3, 1, 40, 120}, 24, 0.0001, F), random_tensor({16, 1, 5, 10}, 25, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 0, 0); },
              {test::distinct_tensor({3, 1, 40, 120}, 26, 0.0001, F), random_tensor({16, 1, 5, 10}, 27, -0.3, 0.3, F),
               random_tensor({16}, 28, -1, 1, F)},
              {false, true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 0, 0); },
              {test::distinct_tensor({3, 16, 18, 55}, 29, 0.0001, F), random_tensor({32, 16, 2, 2}, 30, -0.3, 0.3, F),
               random_tensor({32}, 31, -1, 1, F)},
              {true, true, true}, 1e-3, 1e-4);
}

// The hand-written filter gradient (conv_filter_grad.cu) gives its host emulation's bits at conv 1's
// shape (70 images: 138 groups), a padded multi-channel 3 x 3 case and padding on both axes, and
// through the ops (MUSICREC_CONV_KERNELS=direct's paths: conv2d, and conv2d_maxpool2x2 with its
// filter gradient from the pooled gradient) the CPU's values within rounding.
TEST(CudaParity, ConvFilterGradDirectEqualsItsHostEmulation) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  namespace fg = kernels::cuda::filter_grad;
  const fg::Dims shapes[] = {{70, 1, 40, 120, 16, 5, 10, 0, 0}, {7, 3, 13, 17, 4, 3, 3, 1, 1},
                             {3, 2, 9, 20, 2, 5, 10, 2, 4},     {9, 16, 18, 55, 32, 2, 2, 0, 0},
                             {5, 32, 8, 27, 32, 2, 2, 0, 0},    {4, 3, 6, 9, 17, 2, 2, 1, 1}};
  uint64_t seed = 700;
  for (const fg::Dims& d : shapes) {
    ASSERT_TRUE(kernels::cuda::conv2d_filter_grad_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw));
    const Tensor x = random_tensor({d.N, d.C, d.H, d.W}, seed++, -1, 1, F);
    const Tensor gy = random_tensor({d.N, d.K, d.OH(), d.OW()}, seed++, -1, 1, F);
    const auto emulate = [&](const float* g, const int32_t* winners) {
      std::vector<float> gw;
      fg::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
        gw = fg::emulate<decltype(kh)::value, decltype(kw)::value>(x.data<float>(), g, d, winners);
      });
      return gw;
    };
    const std::vector<float> want = emulate(gy.data<float>(), nullptr);
    const Tensor xg = x.to(Device::cuda()), gyg = gy.to(Device::cuda());
    Tensor gw = Tensor::empty({d.K, d.C, d.KH, d.KW}, F, Device::cuda());  // poisoned
    const size_t scratch_bytes =
        kernels::cuda::conv2d_filter_grad_direct_scratch_bytes(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw);
    Tensor scratch = Tensor::empty({int64_t(scratch_bytes / 4 + 1)}, F, Device::cuda());
    kernels::cuda::conv2d_filter_grad_direct(xg.data<float>(), gyg.data<float>(), nullptr, gw.data<float>(), d.N, d.C,
                                             d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw, scratch.raw_data(),
                                             CudaContext::get().stream());
    const std::vector<float> got = gw.to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << d.KH << "x" << d.KW << " weight " << i;
    // From a pooled gradient and its winners (odd output widths: a dropped column).
    const test::PooledGradient pg = test::pooled_gradient(d.N * d.K, d.OH(), d.OW(), seed);
    seed += 2;
    const std::vector<float> want_pooled = emulate(pg.pooled.data(), pg.argmax.data());
    const Tensor gpg = Tensor::from_vector(pg.pooled, {int64_t(pg.pooled.size())}).to(Device::cuda());
    const Tensor ag = Tensor::from_vector(pg.argmax, {int64_t(pg.argmax.size())}).to(Device::cuda());
    kernels::cuda::conv2d_filter_grad_direct(xg.data<float>(), gpg.data<float>(), ag.data<int32_t>(), gw.data<float>(),
                                             d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw, scratch.raw_data(),
                                             CudaContext::get().stream());
    const std::vector<float> got_pooled = gw.to_vector<float>();
    for (size_t i = 0; i < got_pooled.size(); ++i)
      ASSERT_EQ(got_pooled[i], want_pooled[i]) << d.KH << "x" << d.KW << " pooled, weight " << i;
  }
  struct DirectConv {  // restored even when an assertion below ends the test
    CudaSettings before = CudaContext::get().settings();
    DirectConv() { CudaContext::get().set_direct_conv(true, true); }  // 2 x 2 filters too
    ~DirectConv() { CudaContext::get().set_direct_conv(before.direct_conv, before.direct_conv_2x2_forward); }
  } direct;
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
              {random_tensor({3, 1, 40, 120}, 8, -1, 1, F), random_tensor({16, 1, 5, 10}, 9, -0.3, 0.3, F)},
              {false, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 1, 1); },
              {random_tensor({5, 3, 13, 17}, 10, -1, 1, F), random_tensor({7, 3, 3, 3}, 11, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  // The pooled layers: the filter gradient from the pooled gradient and the winners.
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 0, 0); },
              {test::distinct_tensor({3, 1, 40, 120}, 32, 0.0001, F), random_tensor({16, 1, 5, 10}, 33, -0.3, 0.3, F),
               random_tensor({16}, 34, -1, 1, F)},
              {false, true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2(in[0], in[1], 1, 1); },
              {test::distinct_tensor({5, 3, 13, 17}, 35, 0.0001, F), random_tensor({20, 3, 3, 3}, 36, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
  // Conv 2's layer (2 x 2 filters, 16 channels, its input needing a gradient: under direct-all the
  // hand-written data gradient from the pooled gradient) and a plain 2 x 2 convolution (from the dense one).
  cuda_parity([](const V& in) { return ops::conv2d_maxpool2x2_bias_sigmoid(in[0], in[1], in[2], 0, 0); },
              {test::distinct_tensor({3, 16, 18, 55}, 37, 0.0001, F), random_tensor({32, 16, 2, 2}, 38, -0.3, 0.3, F),
               random_tensor({32}, 39, -1, 1, F)},
              {true, true, true}, 1e-3, 1e-4);
  cuda_parity([](const V& in) { return ops::conv2d(in[0], in[1], 0, 0); },
              {random_tensor({3, 32, 8, 27}, 40, -1, 1, F), random_tensor({32, 32, 2, 2}, 41, -0.3, 0.3, F)},
              {true, true}, 1e-3, 1e-4);
#endif
}

// The hand-written data gradient (conv_data_grad.cu) gives its host emulation's bits, from a dense and
// from a pooled gradient: conv 2's and 3's shapes (one and two blocks of channels, more item blocks
// than one with a ragged last), ragged channel tiles with padding, and conv 1's 5 x 10 and 3 x 3
// filters. Through the ops it runs under direct-all in ConvFilterGradDirectEqualsItsHostEmulation's
// conv 2 layer and plain 2 x 2 convolution, and in PairCnnTrainingRepeatsBitForBitOnTheDevice.
TEST(CudaParity, ConvDataGradDirectEqualsItsHostEmulation) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  namespace dg = kernels::cuda::data_grad;
  const dg::Dims shapes[] = {{9, 16, 18, 55, 32, 2, 2, 0, 0}, {5, 32, 8, 27, 32, 2, 2, 0, 0},
                             {4, 17, 7, 17, 5, 2, 2, 1, 1},   {3, 2, 9, 21, 3, 5, 10, 2, 4},
                             {7, 5, 13, 17, 4, 3, 3, 1, 1}};
  uint64_t seed = 1300;
  for (const dg::Dims& d : shapes) {
    ASSERT_TRUE(kernels::cuda::conv2d_data_grad_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw));
    const Tensor w = random_tensor({d.K, d.C, d.KH, d.KW}, seed++, -1, 1, F);
    const Tensor gy = random_tensor({d.N * d.K, d.OH(), d.OW()}, seed++, -1, 1, F);
    const test::PooledGradient pg = test::pooled_gradient(d.N * d.K, d.OH(), d.OW(), seed);
    seed += 2;
    const Tensor wg = w.to(Device::cuda()), gyg = gy.to(Device::cuda());
    const Tensor gpg = Tensor::from_vector(pg.pooled, {int64_t(pg.pooled.size())}).to(Device::cuda());
    const Tensor ag = Tensor::from_vector(pg.argmax, {int64_t(pg.argmax.size())}).to(Device::cuda());
    for (const bool from_pooled : {false, true}) {
      const float* g_host = from_pooled ? pg.pooled.data() : gy.data<float>();
      const int32_t* winners_host = from_pooled ? pg.argmax.data() : nullptr;
      std::vector<float> want;
      kernels::cuda::filter_grad::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
        want = dg::emulate<decltype(kh)::value, decltype(kw)::value>(g_host, w.data<float>(), d, winners_host);
      });
      Tensor gx = Tensor::empty({d.N, d.C, d.H, d.W}, F, Device::cuda());  // poisoned
      kernels::cuda::conv2d_data_grad_direct(from_pooled ? gpg.data<float>() : gyg.data<float>(),
                                             from_pooled ? ag.data<int32_t>() : nullptr, wg.data<float>(),
                                             gx.data<float>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw,
                                             CudaContext::get().stream());
      const std::vector<float> got = gx.to_vector<float>();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << d.KH << "x" << d.KW << " C=" << d.C << (from_pooled ? " pooled" : " dense")
                                   << ", input " << i;
    }
  }
#endif
}

// The hand-written convolution + pooling forward (conv_pool_forward.cu) gives its host emulation's
// pooled values and winners bit for bit: conv 1's shape at 70 images (several blocks of items, the last
// partial), padding on both axes with channels, and more filters than a block (K = 20).
TEST(CudaParity, ConvPoolDirectForwardEqualsItsHostEmulation) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  namespace cp = kernels::cuda::conv_pool;
  const cp::Dims shapes[] = {{70, 1, 40, 120, 16, 5, 10, 0, 0}, {7, 3, 13, 17, 20, 3, 3, 1, 1},
                             {3, 2, 9, 21, 3, 5, 10, 2, 4},     {9, 16, 18, 55, 32, 2, 2, 0, 0},
                             {5, 32, 8, 27, 32, 2, 2, 0, 0},    {4, 3, 6, 9, 17, 2, 2, 1, 1}};
  uint64_t seed = 900;
  for (const cp::Dims& d : shapes) {
    ASSERT_TRUE(kernels::cuda::conv2d_maxpool_direct_supports(d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph, d.pw));
    const Tensor x = random_tensor({d.N, d.C, d.H, d.W}, seed++, -1, 1, F);
    const Tensor w = random_tensor({d.K, d.C, d.KH, d.KW}, seed++, -1, 1, F);
    std::vector<float> want_y;
    std::vector<int32_t> want_argmax;
    kernels::cuda::filter_grad::with_filter_size(d.KH, d.KW, [&](auto kh, auto kw) {
      cp::emulate<decltype(kh)::value, decltype(kw)::value>(x.data<float>(), w.data<float>(), d, want_y, want_argmax);
    });
    const Tensor xg = x.to(Device::cuda()), wg = w.to(Device::cuda());
    Tensor y = Tensor::empty({d.N, d.K, d.PH(), d.PW()}, F, Device::cuda());  // poisoned
    Tensor argmax = Tensor::full({d.N, d.K, d.PH(), d.PW()}, -7, DType::I32, Device::cuda());
    kernels::cuda::conv2d_maxpool_direct_forward(xg.data<float>(), wg.data<float>(), y.data<float>(),
                                                 argmax.data<int32_t>(), d.N, d.C, d.H, d.W, d.K, d.KH, d.KW, d.ph,
                                                 d.pw, CudaContext::get().stream());
    const std::vector<float> got_y = y.to_vector<float>();
    const std::vector<int32_t> got_argmax = argmax.to_vector<int32_t>();
    ASSERT_EQ(got_y.size(), want_y.size());
    for (size_t i = 0; i < got_y.size(); ++i) {
      ASSERT_EQ(got_y[i], want_y[i]) << d.KH << "x" << d.KW << " pooled value " << i;
      ASSERT_EQ(got_argmax[i], want_argmax[i]) << d.KH << "x" << d.KW << " winner " << i;
    }
  }
#endif
}

// End to end on the device: the pair CNN trained for a few Adam steps twice from the same weights and
// batch gives the same bits (deterministic cuDNN algorithms, no float atomics anywhere), with cuDNN's
// convolutions (chosen by heuristics, and by timing: the plan is fixed once chosen) and with the direct
// kernels; the settings agree within rounding.
TEST(CudaParity, PairCnnTrainingRepeatsBitForBitOnTheDevice) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  struct Restore {
    CudaSettings before = CudaContext::get().settings();
    ~Restore() {
      CudaContext::get().set_direct_conv(before.direct_conv, before.direct_conv_2x2_forward);
      CudaContext::get().set_measure_conv_algorithms(before.measure_conv_algorithms);
    }
  } restore;
  const int64_t U = 24, B = 40;
  const Tensor images = random_tensor({U, 1, 40, 120}, 41, -1, 1, F).to(Device::cuda());
  const Tensor a = test::random_indices(B, U, 42, Device::cuda()), b = test::random_indices(B, U, 43, Device::cuda());
  Tensor labels = random_tensor({B, 1}, 44, 0, 1, F);
  for (int64_t i = 0; i < B; ++i) labels.data<float>()[i] = labels.data<float>()[i] < 0.3f ? 1.f : 0.f;
  labels = labels.to(Device::cuda());
  struct Run {
    std::vector<std::vector<float>> params;
    std::vector<float> losses;
  };
  const auto train = [&](bool direct, bool measured = false, bool direct_all_sizes = false) {
    CudaContext::get().set_direct_conv(direct, direct_all_sizes);
    CudaContext::get().set_measure_conv_algorithms(measured);
    Generator g(5);
    models::PairCnn m(models::PairCnnConfig{}, g);
    m.to(Device::cuda());
    Adam opt(m.named_parameters());
    Run r;
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      const Tensor loss = ops::mean(ops::bce_with_logits(m.forward(images, a, b), labels));
      loss.backward();
      opt.step();
      r.losses.push_back(loss.to_vector<float>()[0]);
    }
    for (auto& [name, p] : m.named_parameters()) r.params.push_back(p.to_vector<float>());
    return r;
  };
  const Run cudnn1 = train(false), cudnn2 = train(false), direct1 = train(true), direct2 = train(true);
  const Run timed1 = train(false, true), timed2 = train(false, true);
  const Run all1 = train(true, false, true), all2 = train(true, false, true);  // conv 2 and 3 direct too
  EXPECT_EQ(cudnn1.params, cudnn2.params) << "cuDNN convolutions: two runs differ";
  EXPECT_EQ(cudnn1.losses, cudnn2.losses);
  EXPECT_EQ(timed1.params, timed2.params) << "cuDNN convolutions chosen by timing: two runs differ";
  EXPECT_EQ(timed1.losses, timed2.losses);
  EXPECT_EQ(direct1.params, direct2.params) << "direct convolution kernels: two runs differ";
  EXPECT_EQ(direct1.losses, direct2.losses);
  EXPECT_EQ(all1.params, all2.params) << "direct kernels for every layer: two runs differ";
  EXPECT_EQ(all1.losses, all2.losses);
  // Across the settings, the losses (Adam's first steps move each weight by about lr whatever the
  // gradient's size, so a near-zero gradient's sign can differ and weights are no fair comparison).
  for (size_t i = 0; i < cudnn1.losses.size(); ++i) {
    EXPECT_NEAR(direct1.losses[i], cudnn1.losses[i], 1e-4 * std::fabs(cudnn1.losses[i])) << "step " << i;
    EXPECT_NEAR(timed1.losses[i], cudnn1.losses[i], 1e-4 * std::fabs(cudnn1.losses[i])) << "step " << i;
    EXPECT_NEAR(all1.losses[i], cudnn1.losses[i], 1e-4 * std::fabs(cudnn1.losses[i])) << "step " << i;
  }
#endif
}

TEST(CudaParity, BiasSigmoidSigmoidRelu) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::bias_sigmoid(in[0], in[1]); },
              {random_tensor({4, 13, 9, 29}, 12, -6, 6, F), random_tensor({13}, 13, -1, 1, F)}, {true, true});
  cuda_parity([](const V& in) { return ops::sigmoid(in[0]); }, {random_tensor({1000, 3}, 14, -50, 50, F)}, {true});
  cuda_parity([](const V& in) { return ops::relu(in[0]); }, {random_tensor({1000, 37}, 15, -2, 2, F)}, {true});
}

// The pair CNN's layers as it runs them since session 12 (Conv2d::forward_maxpool2x2: conv, pool, then
// bias + sigmoid on the pooled planes: 18 x 55, 8 x 27 and 3 x 13, the last smaller than a warp).
TEST(CudaParity, PoolThenBiasSigmoidAtThePairCnnsShapes) {
  MR_REQUIRE_CUDA();
  const Shape shapes[] = {{6, 16, 36, 111}, {6, 32, 17, 54}, {6, 32, 7, 26}};
  uint64_t seed = 90;
  for (const Shape& s : shapes)
    cuda_parity([](const V& in) { return ops::bias_sigmoid(ops::maxpool2x2(in[0]), in[1]); },
                {test::distinct_tensor(s, seed++, 1e-5, F), random_tensor({s[1]}, seed++, -1, 1, F)}, {true, true});
}

// Channel gradients split each channel into slices summed by separate blocks (kernels/cuda/reduce_loss.cu):
// shapes where a channel spans many slices, a slice boundary falls inside an image, and HW is both
// smaller and larger than a block of threads.
TEST(CudaParity, ChannelGradientsOverManySlicesPerChannel) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::bias_sigmoid(in[0], in[1]); },
              {random_tensor({40, 5, 36, 111}, 30, -4, 4, F), random_tensor({5}, 31, -1, 1, F)}, {true, true});
  cuda_parity([](const V& in) { return ops::bias_sigmoid(in[0], in[1]); },
              {random_tensor({3001, 3, 7, 26}, 32, -4, 4, F), random_tensor({3}, 33, -1, 1, F)}, {true, true});
  cuda_parity([](const V& in) { return ops::bias_add(in[0], in[1]); },
              {random_tensor({777, 4, 9, 13}, 34, -1, 1, F), random_tensor({4}, 35, -1, 1, F)}, {true, true});
  cuda_parity([](const V& in) { return ops::bias_add(in[0], in[1]); },
              {random_tensor({0, 4, 9, 13}, 36, -1, 1, F), random_tensor({4}, 37, -1, 1, F)}, {true, true});
}

// Variant 2 of the bias (+ sigmoid) kernels (kernels/cuda/cuda_kernels.h), called directly since the ops
// still use v1: against the CPU ops on planes that take the float4 path (HW % 4 == 0), planes that do
// not, planes smaller than a warp, many planes, an input one float off 16-byte alignment, and no data.
TEST(CudaParity, BiasPlanesV2MatchTheCpu) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  const Shape shapes[] = {{3, 16, 36, 111}, {5, 7, 9, 29}, {2, 3, 1, 5}, {2000, 3, 2, 2}, {0, 4, 8, 8}, {4, 16, 2, 1}};
  int seed = 40;
  for (const Shape& shape : shapes)
    for (int offset : {0, 1}) {
      const int64_t n = shape[0] * shape[1] * shape[2] * shape[3], C = shape[1], HW = shape[2] * shape[3];
      Tensor x = random_tensor(shape, seed++, -6, 6, F), b = random_tensor({C}, seed++, -1, 1, F);
      const std::vector<float> want_sig = ops::bias_sigmoid(x, b).to_vector<float>(), want_add = ops::bias_add(x, b).to_vector<float>();
      // `offset` floats of padding in front of x and y move them off 16-byte alignment.
      Tensor xg = Tensor::zeros({n + offset}, F, Device::cuda()), yg = Tensor::zeros({n + offset}, F, Device::cuda());
      const Tensor xt = x.to(Device::cuda()), bg = b.to(Device::cuda());
      cudaStream_t s = CudaContext::get().stream();
      ASSERT_EQ(cudaMemcpyAsync(xg.data<float>() + offset, xt.data<float>(), size_t(n) * 4, cudaMemcpyDeviceToDevice, s), cudaSuccess);
      for (bool sigmoid : {true, false}) {
        float* y = yg.data<float>() + offset;
        const float* xp = xg.data<float>() + offset;
        if (sigmoid) kernels::cuda::bias_sigmoid_nchw_forward_v2(xp, bg.data<float>(), y, shape[0], C, HW, s);
        else kernels::cuda::bias_add_nchw_v2(xp, bg.data<float>(), y, shape[0], C, HW, s);
        const std::vector<float> got = yg.to_vector<float>();
        const std::vector<float>& want = sigmoid ? want_sig : want_add;
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(got[size_t(i + offset)], want[size_t(i)], 1e-6 + 1e-6 * std::abs(want[size_t(i)]))
              << shape_str(shape) << " offset " << offset << (sigmoid ? " sigmoid" : " add") << " at " << i;
      }
    }
#endif
}

TEST(CudaParity, MaxPoolOddSizes) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::maxpool2x2(in[0]); }, {test::distinct_tensor({3, 5, 17, 23}, 16, 0.001, F)},
              {true});
}

// Variant 2 of the pooling backward, called directly (the op still uses v1): the CPU reference's gradient,
// bit for bit (it only moves values), on odd heights and widths (the dropped edge gets 0), a width of 1
// (no windows), a single row, rows wider than a block, many planes and conv 1's output shape.
TEST(CudaParity, MaxPoolBackwardV2MatchesTheCpu) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  const int64_t shapes[][3] = {{15, 17, 23}, {4, 4, 1}, {3, 1, 9}, {2, 4, 600}, {5000, 3, 2}, {32, 36, 111}, {0, 4, 4}};
  int seed = 60;
  for (const auto& [planes, H, W] : shapes) {
    const int64_t OH = H / 2, OW = W / 2;
    Tensor x = test::distinct_tensor({planes, 1, H, W}, seed++, 0.001, F), gy = random_tensor({planes, OH * OW}, seed++, -1, 1, F);
    std::vector<float> y(size_t(planes * OH * OW)), want(size_t(planes * H * W));
    std::vector<int32_t> argmax(y.size());
    kernels::cpu::maxpool2x2_forward<float>(x.data<float>(), y.data(), argmax.data(), planes, H, W);
    kernels::cpu::maxpool2x2_backward<float>(gy.data<float>(), argmax.data(), want.data(), planes, H, W);
    const Tensor gyg = gy.to(Device::cuda());
    const Tensor ag = Tensor::from_vector(argmax, {int64_t(argmax.size())}).to(Device::cuda());
    Tensor gx = Tensor::empty({planes * H * W}, F, Device::cuda());  // poisoned: every element must be written
    kernels::cuda::maxpool2x2_backward_v2(gyg.data<float>(), ag.data<int32_t>(), gx.data<float>(), planes, H, W,
                                          CudaContext::get().stream());
    const std::vector<float> got = gx.to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << planes << "x" << H << "x" << W << " at " << i;
  }
#endif
}

TEST(CudaParity, DropoutMaskIsIdenticalOnBothDevices) {
  MR_REQUIRE_CUDA();
  cuda_parity(
      [](const V& in) {
        Generator gen(11, 5);
        return ops::dropout(in[0], 0.37f, true, gen);
      },
      {random_tensor({1001, 7}, 17, -1, 1, F)}, {true}, 0, 0);
}

TEST(CudaParity, EmbeddingDenseAndSparse) {
  MR_REQUIRE_CUDA();
  Tensor idx = test::random_indices(1000, 97, 18);
  cuda_parity([](const V& in) { return ops::embedding(in[0], in[1]); }, {random_tensor({97, 33}, 19, -1, 1, F), idx},
              {true, false});
  // Sparse gradient: same distinct rows and sums on both devices, bitwise (same order of addition).
  Tensor g = random_tensor({1000, 33}, 20, -1, 1, F);
  SparseRows cpu = ops::coalesce_rows(idx, g);
  SparseRows gpu = ops::coalesce_rows(idx.to(Device::cuda()), g.to(Device::cuda()));
  EXPECT_EQ(gpu.rows.to_vector<int32_t>(), cpu.rows.to_vector<int32_t>());
  EXPECT_TRUE(test::all_close(gpu.values, cpu.values, 1e-6, 1e-6));
  // Deterministic: twice the same bits.
  SparseRows again = ops::coalesce_rows(idx.to(Device::cuda()), g.to(Device::cuda()));
  EXPECT_EQ(again.values.to_vector<float>(), gpu.values.to_vector<float>());
}

TEST(CudaParity, EmbeddingOutOfRangeGivesNaNNotACrash) {
  MR_REQUIRE_CUDA();
  Tensor table = random_tensor({10, 4}, 21, -1, 1, F).to(Device::cuda());
  Tensor idx = Tensor::from_vector(std::vector<int32_t>{3, 10, -1}, {3}, Device::cuda());
  std::vector<float> out = ops::embedding(table, idx).to_vector<float>();
  EXPECT_FALSE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[4]) && std::isnan(out[8]));
}

TEST(CudaParity, ConcatRowdotReshape) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::concat_cols({in[0], in[1], ops::rowdot(in[0], in[1])}); },
              {random_tensor({300, 65}, 22, -1, 1, F), random_tensor({300, 65}, 23, -1, 1, F)}, {true, true});
  cuda_parity([](const V& in) { return ops::flatten(ops::reshape(in[0], {7, 3, 11, -1})); },
              {random_tensor({21, 110}, 24, -1, 1, F)}, {true});
}

TEST(CudaParity, RowdotPairsSliceColsConcatRows) {
  MR_REQUIRE_CUDA();
  // The pair head's shapes: 1,248-wide song vectors, pairs naming rows again (the backward's coalescing).
  const Tensor ia = test::random_indices(700, 300, 60), ib = test::random_indices(700, 300, 61);
  cuda_parity([](const V& in) { return ops::rowdot_pairs(in[0], in[1], in[2]); },
              {random_tensor({300, 1248}, 62, 0, 1, F), ia, ib}, {true, false, false});
  // Shifted, as the pair head takes centred dots of uncentred song vectors.
  cuda_parity([](const V& in) { return ops::rowdot_pairs(in[0], in[1], in[2], 0.5); },
              {random_tensor({300, 1248}, 65, 0, 1, F), ia, ib}, {true, false, false});
  cuda_parity([](const V& in) { return ops::slice_cols(in[0], 1248, 1249); }, {random_tensor({100, 2497}, 63, -1, 1, F)},
              {true});
  cuda_parity([](const V& in) { return ops::concat_rows({ops::slice_cols(in[0], 0, 100), ops::slice_cols(in[0], 100, 100)}); },
              {random_tensor({257, 200}, 64, -1, 1, F)}, {true});
}

TEST(CudaParity, ReductionsAndLosses) {
  MR_REQUIRE_CUDA();
  cuda_parity([](const V& in) { return ops::sum(in[0]); }, {random_tensor({1000, 1000}, 25, -1, 1, F)}, {true}, 1e-4, 1e-3);
  cuda_parity([](const V& in) { return ops::mean(in[0]); }, {random_tensor({4097}, 26, -1, 1, F)}, {true});
  Tensor t = test::random_indices(513, 2, 27);
  cuda_parity([](const V& in) { return ops::softmax_cross_entropy(in[0], in[1]); },
              {random_tensor({513, 2}, 28, -20, 20, F), t}, {true, false});
  cuda_parity([](const V& in) { return ops::bce_with_logits(in[0], in[1], in[2]); },
              {random_tensor({1025}, 29, -40, 40, F), random_tensor({1025}, 30, 0, 1, F), random_tensor({1025}, 31, 0, 10, F)},
              {true, false, false});
}

TEST(CudaParity, SumIsDeterministic) {
  MR_REQUIRE_CUDA();
  Tensor x = random_tensor({3000001}, 32, -1, 1, F).to(Device::cuda());
  float a = float(ops::sum(x).item()), b = float(ops::sum(x).item());
  EXPECT_EQ(a, b);
}

TEST(CudaParity, InitialisersDrawTheSameNumbers) {
  MR_REQUIRE_CUDA();
  Tensor c = Tensor::empty({1001}), g = Tensor::empty({1001}, F, Device::cuda());
  Generator gc(3), gg(3);
  init::normal_(c, 0.f, 1.f, gc);
  init::normal_(g, 0.f, 1.f, gg);
  EXPECT_TRUE(test::all_close(g, c, 1e-5, 1e-6));
  init::uniform_(c, -2.f, 2.f, gc);
  init::uniform_(g, -2.f, 2.f, gg);
  EXPECT_TRUE(test::all_close(g, c, 0, 0));
}

TEST(CudaParity, KdeNaiveTiledAndCpuExactAgree) {
  MR_REQUIRE_CUDA();
  Tensor y = random_tensor({3001}, 33, 0, 1, F);
  KdeOptions exact;
  exact.method = KdeMethod::Exact;
  Tensor ref = kde_density(y, exact);
  KdeOptions naive, tiled;
  naive.method = KdeMethod::Naive;
  tiled.method = KdeMethod::Tiled;
  Tensor yd = y.to(Device::cuda());
  Tensor dn = kde_density(yd, naive), dt = kde_density(yd, tiled);
  EXPECT_TRUE(test::all_close(dn, ref, 1e-5, 1e-6));
  EXPECT_TRUE(test::all_close(dt, ref, 1e-5, 1e-6));
  EXPECT_EQ(dn.to_vector<float>(), dt.to_vector<float>());  // same summation order, same bits
  EXPECT_TRUE(test::all_close(kde_sample_weights(yd), kde_sample_weights(y, exact), 1e-5, 1e-6));
}

TEST(CudaParity, OptimizerStepsDenseAndSparse) {
  MR_REQUIRE_CUDA();
  for (int which = 0; which < 2; ++which) {
    Tensor pc = random_tensor({50, 8}, 34, -1, 1, F).set_requires_grad(true);
    Tensor pg = pc.detach().to(Device::cuda()).set_requires_grad(true);
    pc.impl()->sparse_grad_enabled = pg.impl()->sparse_grad_enabled = true;
    Tensor dc = random_tensor({40, 8}, 35, -1, 1, F).set_requires_grad(true);
    Tensor dg = dc.detach().to(Device::cuda()).set_requires_grad(true);
    std::unique_ptr<Optimizer> oc, og;
    if (which == 0) {
      oc = std::make_unique<Adam>(Optimizer::NamedTensors{{"e", pc}, {"d", dc}});
      og = std::make_unique<Adam>(Optimizer::NamedTensors{{"e", pg}, {"d", dg}});
    } else {
      oc = std::make_unique<SGD>(Optimizer::NamedTensors{{"e", pc}, {"d", dc}});
      og = std::make_unique<SGD>(Optimizer::NamedTensors{{"e", pg}, {"d", dg}});
    }
    for (int step = 0; step < 3; ++step) {
      Tensor idx = test::random_indices(40, 50, 36 + step);
      Tensor x = random_tensor({40, 8}, 40 + step, -1, 1, F);
      oc->zero_grad();
      og->zero_grad();
      ops::sum(ops::rowdot(ops::embedding(pc, idx), ops::add(x, dc))).backward();
      ops::sum(ops::rowdot(ops::embedding(pg, idx.to(Device::cuda())),
                           ops::add(x.to(Device::cuda()), dg)))
          .backward();
      oc->step();
      og->step();
    }
    EXPECT_TRUE(test::all_close(pg, pc, 1e-5, 1e-6)) << (which ? "sgd" : "adam");
    EXPECT_TRUE(test::all_close(dg, dc, 1e-5, 1e-6)) << (which ? "sgd" : "adam");
  }
}

}  // namespace
}  // namespace musicrec
