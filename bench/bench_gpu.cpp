// GPU benchmarks (Google Benchmark, manual time): every custom kernel and every cuBLAS and cuDNN call
// the two models make, at the models' shapes, each called through the engine's ops exactly as training
// calls it (so the host-side dispatch is in the time too, as it is in a training step).
//
// How each repeat is timed: the L2 cache is flushed first (a cudaMemsetAsync over twice its size on the
// engine's stream), then CUDA events on that stream bracket the op; the benchmark's time is the events'
// elapsed time. Rates are computed from those times and compared by `musicrec bench` with the ceilings
// measured in the same run: BM_Ceiling_DeviceCopy (a 1 GiB device-to-device copy, bytes read +
// written) and BM_Ceiling_CublasSgemm (a 4096^3 float32 product through cuBLAS, TF32 off as in
// training). Bytes are the fewest each op must move (each input read once, each output written once).
//
// Exits 0 with no benchmarks when there is no CUDA device, so `musicrec bench` can always run it.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/model_shapes.h"
#include "bench/pair_head_batch.h"
#include "engine/autograd.h"
#include "engine/cuda_context.h"
#include "engine/device.h"
#include "engine/kde.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"

namespace musicrec {
namespace {

const Device kGpu = Device::cuda();

// Drawn on the GPU (the same numbers as on the CPU: CudaParity.InitialisersDrawTheSameNumbers): Google
// Benchmark calls each benchmark several times per repetition while it sizes the iteration count, and
// drawing tens of millions of numbers on the host and copying them over each time was setup that the
// GPU check's time limit paid for, not the kernels.
Tensor randn(const Shape& s, uint64_t seed) {
  Generator g(seed);
  Tensor t = Tensor::empty(s, DType::F32, kGpu);
  init::normal_(t, 0.f, 1.f, g);
  return t;
}

Tensor random_rows(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& r : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    r = int32_t(x % uint64_t(vocab));
  }
  return Tensor::from_vector(v, {n}, kGpu);
}

// A different byte each time so the memset is never skipped as a no-op.
int i_flush_value() {
  static int v = 0;
  return (v = (v + 1) & 0x7f);
}

// Times `op` once per benchmark iteration with the L2 flushed before it; sets the rate counter from the
// total of the timed intervals.
template <typename Op>
void time_on_gpu(benchmark::State& st, const char* unit, double work_per_iteration, Op&& op) {
  CudaContext& ctx = CudaContext::get();
  cudaStream_t s = ctx.stream();
  static void* flush = nullptr;
  static size_t flush_bytes = 0;
  if (!flush) {
    int l2 = 0;
    MR_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    flush_bytes = size_t(2) * size_t(l2 > 0 ? l2 : 64 << 20);
    MR_CUDA_CHECK(cudaMalloc(&flush, flush_bytes));
  }
  cudaEvent_t a, b;
  MR_CUDA_CHECK(cudaEventCreate(&a));
  MR_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) op();  // warm-up: plans, workspaces, allocator cache
  MR_CUDA_CHECK(cudaStreamSynchronize(s));
  double total_s = 0;
  for (auto _ : st) {
    MR_CUDA_CHECK(cudaMemsetAsync(flush, i_flush_value(), flush_bytes, s));
    MR_CUDA_CHECK(cudaEventRecord(a, s));
    op();
    MR_CUDA_CHECK(cudaEventRecord(b, s));
    MR_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    MR_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    st.SetIterationTime(double(ms) * 1e-3);
    total_s += double(ms) * 1e-3;
  }
  MR_CUDA_CHECK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  // GB and GFLOP per iteration as the callers count them, but the counter in base units (bytes/s,
  // FLOP/s) as every CPU program reports it and `musicrec bench` reads it: until 2026-11-28 these rows
  // were shown 1e9 too small (their shares, ratios of rates, were right).
  const bool giga = std::string(unit) == "GB/s" || std::string(unit) == "GFLOP/s";
  st.counters[unit] = (giga ? 1e9 : 1.0) * work_per_iteration * double(st.iterations()) / std::max(total_s, 1e-12);
}

#define GPU_BENCHMARK(fn) BENCHMARK(fn)->UseManualTime()->Unit(benchmark::kMicrosecond)

// ---- ceilings ----
void BM_Ceiling_DeviceCopy(benchmark::State& st) {
  const size_t bytes = size_t(1) << 30;
  Tensor src = Tensor::full({int64_t(bytes / 4)}, 1.0, DType::F32, kGpu);
  Tensor dst = Tensor::empty({int64_t(bytes / 4)}, DType::F32, kGpu);
  cudaStream_t s = CudaContext::get().stream();
  time_on_gpu(st, "GB/s", 2e-9 * double(bytes), [&] {
    MR_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToDevice, s));
  });
}
GPU_BENCHMARK(BM_Ceiling_DeviceCopy);

void BM_Ceiling_CublasSgemm(benchmark::State& st) {
  const int64_t n = 4096;
  Tensor a = randn({n, n}, 1), b = randn({n, n}, 2);
  autograd::NoGradGuard ng;
  time_on_gpu(st, "GFLOP/s", 2e-9 * double(n * n * n), [&] { benchmark::DoNotOptimize(ops::matmul(a, b).raw_data()); });
}
GPU_BENCHMARK(BM_Ceiling_CublasSgemm);

// The float32 multiply-add peak (kernels/cuda/peak.cu): the bound no kernel passes. The shares stay
// shares of the sgemm above (the best product the library does); this row says how far that is from
// the hardware, as BM_Peak_Fma does on the CPU.
void BM_Peak_Fma(benchmark::State& st) {
  const int64_t iters = int64_t(1) << 15;
  Tensor out = Tensor::empty({kernels::cuda::fma_peak_threads()}, DType::F32, kGpu);
  cudaStream_t s = CudaContext::get().stream();
  const double flops = kernels::cuda::fma_peak(iters, out.data<float>(), s);  // and a warm-up
  time_on_gpu(st, "GFLOP/s", 1e-9 * flops, [&] { kernels::cuda::fma_peak(iters, out.data<float>(), s); });
}
GPU_BENCHMARK(BM_Peak_Fma);

// ---- cuBLAS: the dense layers, forward + backward (three products each) ----
// CF head: B x 205 -> 128; pair head dense 1: B x 2,497 -> 100.
void BM_Linear_ForwardBackward(benchmark::State& st) {
  const int64_t batch = st.range(0), in = st.range(1), out = st.range(2);
  Tensor x = randn({batch, in}, 3), w = randn({out, in}, 4).set_requires_grad(true), bias = randn({out}, 5).set_requires_grad(true);
  time_on_gpu(st, "GFLOP/s", 3 * 2e-9 * double(batch * in * out), [&] {
    w.zero_grad();
    bias.zero_grad();
    ops::sum(ops::linear(x, w, bias)).backward();
  });
}
GPU_BENCHMARK(BM_Linear_ForwardBackward)->Args({256, 205, 128})->Args({4096, 205, 128})->Args({1024, 2497, 100})->Args({4096, 2497, 100});

// ---- cuDNN convolutions with the fused bias + sigmoid, then the custom 2x2 max pool ----

// range(0): layer 1..3, range(1): images.
void BM_ConvForward(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1);
  Tensor x = randn({n, s.c, s.h, s.w}, 6), w = randn({s.k, s.c, s.kh, s.kw}, 7);
  autograd::NoGradGuard ng;
  time_on_gpu(st, "GFLOP/s", 1e-9 * bench::conv_flops(s, n), [&] { benchmark::DoNotOptimize(ops::conv2d(x, w, 0, 0).raw_data()); });
}
GPU_BENCHMARK(BM_ConvForward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024})->Args({1, 4096});

// The cuDNN plan for layer shape s at n images, its algorithms chosen by cuDNN's heuristics or (measured)
// by timing them (MUSICREC_CUDNN_FIND=1), the context's own setting left as it was.
kernels::cuda::ConvPlan& cudnn_plan(const bench::ConvShape& s, int64_t n, bool measured) {
  CudaContext& ctx = CudaContext::get();
  const bool before = ctx.settings().measure_conv_algorithms;
  ctx.set_measure_conv_algorithms(measured);
  kernels::cuda::ConvPlan& plan = ctx.conv_plan({n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0});
  ctx.set_measure_conv_algorithms(before);
  return plan;
}

// Convolution then pooling, forward: variant 1 cuDNN's convolution and the pooling kernel
// (MUSICREC_CONV_KERNELS=cudnn), variant 2 the hand-written kernel that writes only the pooled values
// and winners (conv_pool_forward.cu; the ops' default since the H200 run of 2026-11-28). range(0): layer, range(1): images,
// range(2): variant.
void BM_ConvPoolForward(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1), variant = st.range(2);
  if (variant == 2 && !kernels::cuda::conv2d_maxpool_direct_supports(n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0)) {
    st.SkipWithError("no direct kernel for this filter size");
    return;
  }
  Tensor x = randn({n, s.c, s.h, s.w}, 6), w = randn({s.k, s.c, s.kh, s.kw}, 7);
  const int64_t OH = s.h - s.kh + 1, OW = s.w - s.kw + 1;
  Tensor y = Tensor::empty({n, s.k, OH / 2, OW / 2}, DType::F32, kGpu);
  Tensor argmax = Tensor::empty(y.shape(), DType::I32, kGpu);
  autograd::NoGradGuard ng;
  st.SetLabel(variant == 1 ? "v1: cuDNN, then the pooling kernel" : "v2: direct, pooled in registers");
  time_on_gpu(st, "GFLOP/s", 1e-9 * bench::conv_flops(s, n), [&] {
    if (variant == 1)
      benchmark::DoNotOptimize(ops::maxpool2x2(ops::conv2d(x, w, 0, 0)).raw_data());
    else
      kernels::cuda::conv2d_maxpool_direct_forward(x.data<float>(), w.data<float>(), y.data<float>(),
                                                   argmax.data<int32_t>(), n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0,
                                                   CudaContext::get().stream());
  });
}
GPU_BENCHMARK(BM_ConvPoolForward)->Args({1, 1024, 1})->Args({1, 1024, 2})->Args({1, 256, 1})->Args({1, 256, 2})
    ->Args({2, 1024, 1})->Args({2, 1024, 2})->Args({3, 1024, 1})->Args({3, 1024, 2});

// The filter gradient alone: variant 1 cuDNN's deterministic algorithm by heuristics
// (MUSICREC_CONV_KERNELS=cudnn), variant 2 the hand-written kernel (conv_filter_grad.cu), the ops'
// default for the filter sizes it has since the H200 run of 2026-11-28 (correct:
// CudaParity.ConvFilterGradDirectEqualsItsHostEmulation; 13x faster at conv 1's shape), variant 3 cuDNN's fastest deterministic algorithm by timing (MUSICREC_CUDNN_FIND=1).
// range(0): layer, range(1): images, range(2): variant.
void BM_ConvBackwardFilter(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1), variant = st.range(2);
  Tensor x = randn({n, s.c, s.h, s.w}, 6), gy = randn({n, s.k, s.h - s.kh + 1, s.w - s.kw + 1}, 7);
  Tensor gw = Tensor::empty({s.k, s.c, s.kh, s.kw}, DType::F32, kGpu);
  CudaContext& ctx = CudaContext::get();
  if (variant == 2 && !kernels::cuda::conv2d_filter_grad_direct_supports(n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0)) {
    st.SkipWithError("no direct kernel for this filter size");
    return;
  }
  const std::string what = variant == 1   ? "v1: cuDNN, deterministic algorithm by heuristics"
                           : variant == 2 ? "v2: direct, sums in registers"
                                          : "v3: cuDNN, fastest deterministic algorithm by timing";
  const size_t scratch_bytes =
      kernels::cuda::conv2d_filter_grad_direct_scratch_bytes(n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0);
  Tensor scratch = Tensor::empty({int64_t(scratch_bytes / 4 + 1)}, DType::F32, kGpu);
  auto& plan = cudnn_plan(s, n, variant == 3);
  // cuDNN's rows name the algorithms chosen (their numbers are cudnnConvolutionBwdFilterAlgo_t's).
  st.SetLabel(variant == 2 ? what : what + " (" + plan.algos().describe() + ")");
  time_on_gpu(st, "GFLOP/s", 1e-9 * bench::conv_flops(s, n), [&] {
    if (variant != 2)
      plan.backward_filter(ctx.cudnn(), x.data<float>(), gy.data<float>(), gw.data<float>(), ctx.workspace(0),
                           ctx.workspace_size());
    else
      kernels::cuda::conv2d_filter_grad_direct(x.data<float>(), gy.data<float>(), nullptr, gw.data<float>(), n, s.c,
                                               s.h, s.w, s.k, s.kh, s.kw, 0, 0, scratch.raw_data(), ctx.stream());
  });
}
GPU_BENCHMARK(BM_ConvBackwardFilter)->Args({1, 1024, 1})->Args({1, 1024, 2})->Args({1, 1024, 3})->Args({1, 256, 1})->Args({1, 256, 2})->Args({1, 256, 3})
    ->Args({2, 1024, 1})->Args({2, 1024, 2})->Args({3, 1024, 1})->Args({3, 1024, 2});

// The data gradient alone, conv 2's and 3's (conv 1's input needs none). From the dense gradient:
// variant 1 cuDNN's deterministic algorithm by heuristics, 2 the hand-written kernel (conv_data_grad.cu),
// 3 cuDNN's fastest deterministic algorithm by timing. From the pooled gradient and its winners, as the
// pooled layers' backward starts: 4 the pooling's backward into the dense gradient, then variant 1 (the
// layers' path today), 5 the hand-written kernel reading the pooled gradient (MUSICREC_CONV_KERNELS=
// direct-all's path; not yet timed on a GPU). range(0): layer, range(1): images, range(2): variant.
void BM_ConvBackwardData(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1), variant = st.range(2), OH = s.h - s.kh + 1, OW = s.w - s.kw + 1;
  CudaContext& ctx = CudaContext::get();
  const bool direct = variant == 2 || variant == 5, pooled = variant >= 4;
  if (direct && !kernels::cuda::conv2d_data_grad_direct_supports(n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0)) {
    st.SkipWithError("no direct kernel for this shape");
    return;
  }
  Tensor w = randn({s.k, s.c, s.kh, s.kw}, 7), gx = Tensor::empty({n, s.c, s.h, s.w}, DType::F32, kGpu);
  Tensor gy = randn(pooled ? Shape{n, s.k, OH / 2, OW / 2} : Shape{n, s.k, OH, OW}, 8);
  Tensor unpooled = pooled ? Tensor::empty({n, s.k, OH, OW}, DType::F32, kGpu) : Tensor();
  Tensor argmax = pooled ? Tensor::empty(gy.shape(), DType::I32, kGpu) : Tensor();
  if (pooled) {  // winners of a random convolution output, as the forward leaves them
    const Tensor conv_out = randn({n, s.k, OH, OW}, 9);
    Tensor scratch_pool = Tensor::empty(gy.shape(), DType::F32, kGpu);
    kernels::cuda::maxpool2x2_forward(conv_out.data<float>(), scratch_pool.data<float>(), argmax.data<int32_t>(),
                                      n * s.k, OH, OW, ctx.stream());
  }
  kernels::cuda::ConvPlan* plan = direct ? nullptr : &cudnn_plan(s, n, variant == 3);  // none for the kernel
  static const char* const kWhat[] = {"",
                                      "v1: cuDNN, deterministic algorithm by heuristics",
                                      "v2: direct, dense gradient",
                                      "v3: cuDNN, fastest deterministic algorithm by timing",
                                      "v4: pooling backward, then cuDNN by heuristics",
                                      "v5: direct, from the pooled gradient and winners"};
  const std::string what = kWhat[variant];
  st.SetLabel(direct ? what : what + " (" + plan->algos().describe() + ")");
  time_on_gpu(st, "GFLOP/s", 1e-9 * bench::conv_flops(s, n), [&] {
    if (direct) {
      kernels::cuda::conv2d_data_grad_direct(gy.data<float>(), pooled ? argmax.data<int32_t>() : nullptr,
                                             w.data<float>(), gx.data<float>(), n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0,
                                             0, ctx.stream());
      return;
    }
    const float* g = gy.data<float>();
    if (pooled) {
      kernels::cuda::maxpool2x2_backward(gy.data<float>(), argmax.data<int32_t>(), unpooled.data<float>(), n * s.k,
                                         OH, OW, ctx.stream());
      g = unpooled.data<float>();
    }
    plan->backward_data(ctx.cudnn(), g, w.data<float>(), gx.data<float>(), ctx.workspace(0), ctx.workspace_size());
  });
}
GPU_BENCHMARK(BM_ConvBackwardData)->ArgsProduct({{2, 3}, {1024}, {1, 2, 3, 4, 5}});

// A layer forward and backward. As in training, layer 1's input (the data) needs no gradient and the
// others' do (model_shapes.h); until session 11 no layer's input had one, yet three products were
// counted: rows before then overstate the rate by 3/2. Pooling first, as the model runs it
// (Conv2d::forward_maxpool2x2's op, which on the GPU is the pooled convolution, then bias + sigmoid);
// the PoolLast rows are the v1 baseline, the order used until session 12.
// How the layer's convolutions run: cuDNN with its heuristics' deterministic choice (the default until
// 2026-11-28; the plain rows keep measuring it), the hand-written kernels (the default since, where they
// have a kernel for the filter size), cuDNN with the fastest deterministic algorithms by timing
// (MUSICREC_CUDNN_FIND=1), or cuDNN's heuristics with any algorithm (MUSICREC_NONDETERMINISTIC=1;
// PyTorch's default, cudnn.deterministic = False). Direct is MUSICREC_CONV_KERNELS=direct-all (every
// hand-written kernel); Default is the default since session 24 (the same as Direct for conv 1; for 2 x 2
// filters cuDNN's forward + the pooling kernel, then the hand-written backward).
enum class ConvChoice { Heuristic, Direct, Measured, AnyAlgorithm, Default };

void conv_layer_benchmark(benchmark::State& st, bool pool_first, ConvChoice choice = ConvChoice::Heuristic) {
  const int64_t layer = st.range(0), n = st.range(1);
  CudaContext& ctx = CudaContext::get();
  const CudaSettings before = ctx.settings();
  ctx.set_direct_conv(choice == ConvChoice::Direct || choice == ConvChoice::Default, choice == ConvChoice::Direct);
  ctx.set_measure_conv_algorithms(choice == ConvChoice::Measured);
  ctx.set_deterministic(choice != ConvChoice::AnyAlgorithm);
  const bench::ConvShape& s = bench::kConv[layer - 1];
  Tensor x = randn({n, s.c, s.h, s.w}, 8).set_requires_grad(bench::conv_needs_input_grad(layer));
  Tensor w = randn({s.k, s.c, s.kh, s.kw}, 9).set_requires_grad(true), b = randn({s.k}, 10).set_requires_grad(true);
  static const char* const kChoice[] = {"", ", direct kernels", ", cuDNN algorithms by timing",
                                        ", any cuDNN algorithm", ", the default (direct)"};
  st.SetLabel(std::string(pool_first ? "v2 pool, then bias + sigmoid" : "v1 bias + sigmoid, then pool") +
              kChoice[static_cast<int>(choice)]);
  time_on_gpu(st, "GFLOP/s", 1e-9 * bench::conv_training_flops(layer, n), [&] {
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    const Tensor y = pool_first ? ops::conv2d_maxpool2x2_bias_sigmoid(x, w, b, 0, 0)  // as Conv2d::forward_maxpool2x2
                                : ops::maxpool2x2(ops::bias_sigmoid(ops::conv2d(x, w, 0, 0), b));
    ops::sum(y).backward();
  });
  ctx.set_direct_conv(before.direct_conv, before.direct_conv_2x2_forward);
  ctx.set_measure_conv_algorithms(before.measure_conv_algorithms);
  ctx.set_deterministic(before.deterministic);
}
void BM_ConvSigmoidPool_ForwardBackward(benchmark::State& st) { conv_layer_benchmark(st, true); }
// The layers with every hand-written kernel (MUSICREC_CONV_KERNELS=direct-all: BM_ConvPoolForward and
// BM_ConvBackwardFilter variant 2, BM_ConvBackwardData variant 5), and as the default runs them.
void BM_ConvSigmoidPool_Direct_ForwardBackward(benchmark::State& st) {
  conv_layer_benchmark(st, true, ConvChoice::Direct);
}
void BM_ConvSigmoidPool_Default_ForwardBackward(benchmark::State& st) {
  conv_layer_benchmark(st, true, ConvChoice::Default);
}
// cuDNN's other two ways of choosing, to set the default by (the first call of each shape times the
// algorithms: time_on_gpu's warm-up calls take it).
void BM_ConvSigmoidPool_Measured_ForwardBackward(benchmark::State& st) {
  conv_layer_benchmark(st, true, ConvChoice::Measured);
}
void BM_ConvSigmoidPool_AnyAlgo_ForwardBackward(benchmark::State& st) {
  conv_layer_benchmark(st, true, ConvChoice::AnyAlgorithm);
}
void BM_ConvSigmoidPoolLast_ForwardBackward(benchmark::State& st) { conv_layer_benchmark(st, false); }
GPU_BENCHMARK(BM_ConvSigmoidPool_ForwardBackward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024});
GPU_BENCHMARK(BM_ConvSigmoidPool_Direct_ForwardBackward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024});
GPU_BENCHMARK(BM_ConvSigmoidPool_Default_ForwardBackward)->Args({2, 1024})->Args({3, 1024});
GPU_BENCHMARK(BM_ConvSigmoidPool_Measured_ForwardBackward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024});
GPU_BENCHMARK(BM_ConvSigmoidPool_AnyAlgo_ForwardBackward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024});
GPU_BENCHMARK(BM_ConvSigmoidPoolLast_ForwardBackward)->Args({1, 1024})->Args({2, 1024})->Args({3, 1024});

// ---- custom elementwise and pooling kernels (memory-bound: GB/s) ----
// Bias (+ sigmoid) over conv 1's output: read x, write y. Variant 1 is the first kernel (a grid-stride
// loop with a 64-bit division per element), the baseline; variant 2 the plane-per-block kernel the ops
// call since the H200 run of 2026-11-28 (session 24: 2.86-2.98x).
template <bool kSigmoid> void bias_planes_benchmark(benchmark::State& st) {
  const int64_t n = st.range(0), variant = st.range(1), C = 16, HW = 36 * 111;
  Tensor x = randn({n, C, 36, 111}, 11), b = randn({C}, 12), y = Tensor::empty({n, C, 36, 111}, DType::F32, kGpu);
  cudaStream_t s = CudaContext::get().stream();
  st.SetLabel(variant == 1 ? "v1: grid-stride, division per element" : "v2: a block per plane, float4");
  autograd::NoGradGuard ng;
  time_on_gpu(st, "GB/s", 2e-9 * double(x.nbytes()), [&] {
    if (variant == 1 && kSigmoid) kernels::cuda::bias_sigmoid_nchw_forward(x.data<float>(), b.data<float>(), y.data<float>(), n, C, HW, s);
    if (variant == 1 && !kSigmoid) kernels::cuda::bias_add_nchw(x.data<float>(), b.data<float>(), y.data<float>(), n, C, HW, s);
    if (variant == 2 && kSigmoid) kernels::cuda::bias_sigmoid_nchw_forward_v2(x.data<float>(), b.data<float>(), y.data<float>(), n, C, HW, s);
    if (variant == 2 && !kSigmoid) kernels::cuda::bias_add_nchw_v2(x.data<float>(), b.data<float>(), y.data<float>(), n, C, HW, s);
  });
}
void BM_BiasSigmoid_Forward(benchmark::State& st) { bias_planes_benchmark<true>(st); }
void BM_BiasAdd_Forward(benchmark::State& st) { bias_planes_benchmark<false>(st); }
GPU_BENCHMARK(BM_BiasSigmoid_Forward)->Args({1024, 1})->Args({1024, 2});
GPU_BENCHMARK(BM_BiasAdd_Forward)->Args({1024, 1})->Args({1024, 2});

// The fused sigmoid-conv backward at conv 1's output (the pair CNN's largest activation): reads y and
// dy, writes dx, and sums each channel for the bias gradient. Variant 1 is the old one-block-per-channel
// kernel, kept as the baseline; variant 2 is what training uses.
void BM_BiasSigmoid_Backward(benchmark::State& st) {
  const int64_t n = st.range(0), variant = st.range(1), C = 16, HW = 36 * 111;
  Tensor y = randn({n, C, 36, 111}, 27), gy = randn({n, C, 36, 111}, 28);
  Tensor gx = Tensor::empty({n, C, 36, 111}, DType::F32, kGpu), gb = Tensor::empty({C}, DType::F32, kGpu);
  const size_t bytes = kernels::cuda::channel_grad_scratch_bytes(n, C, HW);
  Tensor scratch = Tensor::empty({int64_t(bytes / 4 + 1)}, DType::F32, kGpu);
  cudaStream_t s = CudaContext::get().stream();
  st.SetLabel(variant == 1 ? "v1: a block per channel" : "v2: channel x slice grid");
  time_on_gpu(st, "GB/s", 3e-9 * double(y.nbytes()), [&] {
    if (variant == 1)
      kernels::cuda::bias_sigmoid_nchw_backward_v1(y.data<float>(), gy.data<float>(), gx.data<float>(), gb.data<float>(), n, C, HW, s);
    else
      kernels::cuda::bias_sigmoid_nchw_backward(y.data<float>(), gy.data<float>(), gx.data<float>(), gb.data<float>(), n, C, HW,
                                                scratch.raw_data(), s);
  });
}
GPU_BENCHMARK(BM_BiasSigmoid_Backward)->Args({1024, 1})->Args({1024, 2});

void BM_MaxPool_Forward(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor x = randn({n, 16, 36, 111}, 13);
  autograd::NoGradGuard ng;
  // read x, write y and its argmax (a quarter of x each)
  time_on_gpu(st, "GB/s", 1.5e-9 * double(x.nbytes()), [&] { benchmark::DoNotOptimize(ops::maxpool2x2(x).raw_data()); });
}
GPU_BENCHMARK(BM_MaxPool_Forward)->Arg(1024);

void BM_MaxPool_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor x = randn({n, 16, 36, 111}, 14).set_requires_grad(true);
  // forward as above; backward reads dy and the argmax (a quarter each), writes dx
  time_on_gpu(st, "GB/s", 3e-9 * double(x.nbytes()), [&] {
    x.zero_grad();
    ops::sum(ops::maxpool2x2(x)).backward();
  });
}
GPU_BENCHMARK(BM_MaxPool_ForwardBackward)->Arg(1024);

// The pooling backward kernel alone at conv 1's output: reads dy and the argmax (a quarter of x each),
// writes dx. Variant 1 the first kernel, the baseline; variant 2 the row-pair kernel the ops call since
// the H200 run of 2026-11-28 (session 24: 2.38x).
void BM_MaxPool_Backward(benchmark::State& st) {
  const int64_t n = st.range(0), variant = st.range(1), planes = n * 16, H = 36, W = 111;
  Tensor gy = randn({planes, (H / 2) * (W / 2)}, 29), gx = Tensor::empty({planes, H, W}, DType::F32, kGpu);
  Tensor argmax = Tensor::zeros({planes, (H / 2) * (W / 2)}, DType::I32, kGpu);
  cudaStream_t s = CudaContext::get().stream();
  st.SetLabel(variant == 1 ? "v1: a thread per element, 64-bit divisions" : "v2: a block per row pair");
  time_on_gpu(st, "GB/s", 1.5e-9 * double(gx.nbytes()), [&] {
    if (variant == 1)
      kernels::cuda::maxpool2x2_backward(gy.data<float>(), argmax.data<int32_t>(), gx.data<float>(), planes, H, W, s);
    else
      kernels::cuda::maxpool2x2_backward_v2(gy.data<float>(), argmax.data<int32_t>(), gx.data<float>(), planes, H, W, s);
  });
}
GPU_BENCHMARK(BM_MaxPool_Backward)->Args({1024, 1})->Args({1024, 2});

// ---- embeddings: lookups into the CF song table (359,967 x 64) and their row-sparse gradient ----
void BM_Embedding_ForwardBackwardSparse(benchmark::State& st) {
  const int64_t batch = st.range(0), V = 359967, D = 64;
  Tensor table = randn({V, D}, 15).set_requires_grad(true);
  table.impl()->sparse_grad_enabled = true;
  Tensor ix = random_rows(batch, V, 16);
  // gather B rows and write them; backward: coalesce and write B gradient rows
  time_on_gpu(st, "GB/s", 4e-9 * double(batch * D * 4), [&] {
    table.zero_grad();
    ops::sum(ops::embedding(table, ix)).backward();
  });
}
GPU_BENCHMARK(BM_Embedding_ForwardBackwardSparse)->Arg(1024)->Arg(4096);

// ---- the pair head at the pair CNN's shapes: every op after the tower, as training calls them ----
// Forward, the weighted loss and backward of PairCnn::head over one batch (bench/pair_head_batch.h):
// dense 1 in its gather form (one product over the B tower vectors, then each pair's rows), the
// pairs' dot products, dense 2, the output. Many small kernels: the row shows what their launches and
// host dispatch cost beside the tower. Rate: pairs/s.
void BM_PairHead_ForwardBackward(benchmark::State& st) {
  const int64_t b = st.range(0);
  Generator gen(31);
  models::PairCnn model{models::PairCnnConfig{}, gen};
  model.to(kGpu);
  bench::PairHeadBatch batch = bench::pair_head_batch(b, model.song_vector_width(), kGpu);
  time_on_gpu(st, "pairs/s", double(b), [&] { bench::pair_head_step(model, batch); });
}
GPU_BENCHMARK(BM_PairHead_ForwardBackward)->Arg(256)->Arg(1024);

// ---- the CF head's element-wise ops at batch 4096: member . song, the 205-wide concatenation, ReLU
// and dropout over the 128 hidden units (dropout draws its mask again in the backward on the GPU) ----
void BM_RowDot_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0), D = 64;
  Tensor a = randn({n, D}, 30).set_requires_grad(true), b = randn({n, D}, 31).set_requires_grad(true);
  // forward reads a, b; backward reads a, b and writes both gradients
  time_on_gpu(st, "GB/s", 6 * 4e-9 * double(n * D), [&] {
    a.zero_grad();
    b.zero_grad();
    ops::sum(ops::rowdot(a, b)).backward();
  });
}
GPU_BENCHMARK(BM_RowDot_ForwardBackward)->Arg(4096);

void BM_ConcatCols_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0);
  std::vector<Tensor> parts;
  for (int64_t w : bench::kCfConcatWidths)
    parts.push_back(randn({n, w}, uint64_t(32 + parts.size())).set_requires_grad(true));
  // forward reads the parts and writes the 205-wide block; backward the reverse
  time_on_gpu(st, "GB/s", 4 * 4e-9 * double(n * bench::kCfConcatWidth), [&] {
    for (Tensor& t : parts) t.zero_grad();
    ops::sum(ops::concat_cols(parts)).backward();
  });
}
GPU_BENCHMARK(BM_ConcatCols_ForwardBackward)->Arg(4096);

void BM_ReluDropout_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0), H = 128;
  Tensor x = randn({n, H}, 50).set_requires_grad(true);
  Generator gen(51);
  // relu: read x, write y; dropout: read y, write z; backward: the same traffic again
  time_on_gpu(st, "GB/s", 8 * 4e-9 * double(n * H), [&] {
    x.zero_grad();
    ops::sum(ops::dropout(ops::relu(x), 0.5f, true, gen)).backward();
  });
}
GPU_BENCHMARK(BM_ReluDropout_ForwardBackward)->Arg(4096);

// ---- losses ----
void BM_WeightedBce_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor x = randn({n, 1}, 17).set_requires_grad(true), y = randn({n, 1}, 18), w = randn({n, 1}, 19);
  time_on_gpu(st, "GB/s", 4 * 4e-9 * double(n), [&] {
    x.zero_grad();
    ops::mean(ops::bce_with_logits(x, y, w)).backward();
  });
}
GPU_BENCHMARK(BM_WeightedBce_ForwardBackward)->Arg(4096)->Arg(1 << 20);

void BM_SoftmaxCrossEntropy_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0);
  Tensor x = randn({n, 2}, 20).set_requires_grad(true), t = random_rows(n, 2, 21);
  time_on_gpu(st, "GB/s", 5 * 4e-9 * double(n), [&] {
    x.zero_grad();
    ops::mean(ops::softmax_cross_entropy(x, t)).backward();
  });
}
GPU_BENCHMARK(BM_SoftmaxCrossEntropy_ForwardBackward)->Arg(4096)->Arg(1 << 20);

// ---- Adam: dense (pair head dense 1) and row-sparse (CF song table, 4,096 rows touched) ----
void BM_Adam_Dense(benchmark::State& st) {
  Tensor p = randn({100, 2497}, 22).set_requires_grad(true);
  Adam opt({{"w", p}});
  Tensor loss_input = randn({1, 2497}, 23);
  ops::sum(ops::matmul(loss_input, p, false, true)).backward();  // a gradient to step with, kept
  // reads p, m, v, g; writes p, m, v
  time_on_gpu(st, "GB/s", 7 * 4e-9 * double(p.numel()), [&] { opt.step(); });
}
GPU_BENCHMARK(BM_Adam_Dense);

void BM_Adam_SparseRows(benchmark::State& st) {
  const int64_t V = 359967, D = 64, B = st.range(0);
  Tensor table = randn({V, D}, 24).set_requires_grad(true);
  table.impl()->sparse_grad_enabled = true;
  Adam opt({{"songs", table}});
  ops::sum(ops::embedding(table, random_rows(B, V, 25))).backward();
  time_on_gpu(st, "GB/s", 7 * 4e-9 * double(B * D), [&] { opt.step(); });
}
GPU_BENCHMARK(BM_Adam_SparseRows)->Arg(4096);

// ---- KDE sample weights over the training pairs' scores (127k: the paper's training-set size), exact
// O(n^2) sums on the GPU: the naive kernel is the baseline of the tiled one ----
void BM_Kde(benchmark::State& st) {
  const int64_t n = st.range(0);
  const bool tiled = st.range(1) != 0;
  Generator g(26);
  Tensor y = Tensor::empty({n});
  init::uniform_(y, 0.f, 1.f, g);
  y = y.to(kGpu);
  KdeOptions o;
  o.method = tiled ? KdeMethod::Tiled : KdeMethod::Naive;
  st.SetLabel(tiled ? "tiled (shared memory)" : "naive (baseline)");
  time_on_gpu(st, "samples/s", double(n), [&] { benchmark::DoNotOptimize(kde_sample_weights(y, o).raw_data()); });
}
GPU_BENCHMARK(BM_Kde)->Args({127000, 0})->Args({127000, 1});

}  // namespace
}  // namespace musicrec

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (musicrec::cuda_device_count() == 0) {
    std::fprintf(stderr, "musicrec_bench_gpu: no CUDA device (%s): nothing to run\n", musicrec::cuda_unavailable_reason().c_str());
    return 0;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
