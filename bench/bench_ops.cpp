// CPU benchmarks (Google Benchmark) of the ops at the shapes the two models use, each with the
// rate it achieves (GFLOP/s or GB/s as benchmark counters) next to the machine's own measured
// ceilings in the same run: a large memcpy (bytes read + written) and a large sgemm.
// Run: build/bin/musicrec_bench [--benchmark_filter=...]. Issue 6 extends this to the GPU and PyTorch.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bench/model_shapes.h"
#include "bench/pair_head_batch.h"
#include "engine/autograd.h"
#include "engine/kde.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/philox.h"

namespace musicrec {
namespace {

// Every row is timed by the wall clock (UseRealTime): the ops run on the kernel threads (parallel.h) and
// OpenBLAS's, and Google Benchmark otherwise divides the rate counters by the main thread's CPU time,
// which leaves out whatever it spends waiting for the others (on a loaded machine, half the wall time
// here: rates twice the truth). Until session 20 the rates were by CPU time; the median times were not.
#define CPU_BENCHMARK(fn) BENCHMARK(fn)->UseRealTime()

Tensor randn(const Shape& s, uint64_t seed) {
  Generator g(seed);
  Tensor t = Tensor::empty(s);
  init::normal_(t, 0.f, 1.f, g);
  return t;
}

// ---- ceilings ----
// A 256 MB copy on as many threads as the kernels use (2 MB blocks over parallel_for), as the sgemm
// ceiling runs on OpenBLAS's threads: since session 12 the memory-bound kernels run on all cores, and a
// one-thread copy (BM_Memcpy_OneThread, the ceiling until then) would understate what they can reach.
void memcpy_benchmark(benchmark::State& st, bool all_threads) {
  const size_t bytes = size_t(256) << 20, block = size_t(2) << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  for (auto _ : st) {
    if (all_threads)
      kernels::cpu::parallel_for(int64_t(bytes / block), 1, [&](int64_t b0, int64_t b1) {
        std::memcpy(b.data() + size_t(b0) * block, a.data() + size_t(b0) * block, size_t(b1 - b0) * block);
      });
    else
      std::memcpy(b.data(), a.data(), bytes);
    benchmark::ClobberMemory();
  }
  st.SetLabel(std::to_string(all_threads ? kernels::cpu::cpu_threads() : 1) + " thread(s)");
  st.counters["GB/s"] = benchmark::Counter(double(2 * bytes), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
void BM_Ceiling_Memcpy(benchmark::State& st) { memcpy_benchmark(st, true); }
void BM_Memcpy_OneThread(benchmark::State& st) { memcpy_benchmark(st, false); }
CPU_BENCHMARK(BM_Ceiling_Memcpy)->Unit(benchmark::kMillisecond);
CPU_BENCHMARK(BM_Memcpy_OneThread)->Unit(benchmark::kMillisecond);

void BM_Ceiling_Sgemm(benchmark::State& st) {
  const int64_t n = 1024;
  std::vector<float> a(size_t(n * n), 1.f), b(size_t(n * n), 1.f), c(size_t(n * n));
  // OpenBLAS's own threads, not our blocks (blas.cpp), which reach 273-288 GFLOP/s at this square shape
  // against its 316-333: the ceiling is the best the library does.
  for (auto _ : st) kernels::cpu::sgemm_library_threads(n, n, n, a.data(), b.data(), c.data());
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Ceiling_Sgemm)->Unit(benchmark::kMillisecond);

// gemm as the models call it (blocks over the kernel threads, blas.cpp), by the library (v1) or the
// hand-written AVX-512 kernel (v2, sgemm_avx512.cpp; the default where the CPU has AVX-512), at the
// models' shapes: range(0) picks the shape, range(1) the variant. On a CPU without AVX-512 v2 is v1.
struct GemmShape {
  bool ta, tb;
  int64_t M, N, K;
  const char* what;
};
const GemmShape kGemmShapes[] = {
    {false, false, 1024, 1024, 1024, "square 1024"},
    {false, true, 8192, 200, 1248, "pair head dense 1 over songs (8,192 of 141k)"},
    {false, true, 4096, 128, 205, "CF dense forward"},
    {true, false, 128, 205, 4096, "CF dense weight gradient"},
    {false, false, 4096, 205, 128, "CF dense input gradient"},
    {true, false, 200, 1248, 256, "pair head dense 1 weight gradient"}};
void BM_Gemm_Kernels(benchmark::State& st) {
  const GemmShape& s = kGemmShapes[st.range(0)];
  const auto variant = st.range(1) == 1 ? kernels::cpu::SgemmKernel::Library : kernels::cpu::SgemmKernel::Own;
  const std::vector<float> a = randn({s.M * s.K}, 5).to_vector<float>(), b = randn({s.K * s.N}, 6).to_vector<float>();
  std::vector<float> c(size_t(s.M * s.N));
  const kernels::cpu::SgemmKernel before = kernels::cpu::sgemm_kernel_in_use();
  kernels::cpu::set_sgemm_kernel(variant);
  for (auto _ : st) kernels::cpu::gemm<float>(s.ta, s.tb, s.M, s.N, s.K, 1.f, a.data(), b.data(), 0.f, c.data());
  st.SetLabel(std::string(st.range(1) == 1 ? "v1 library, " : "v2 own AVX-512, ") + s.what);
  kernels::cpu::set_sgemm_kernel(before);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(s.M * s.N * s.K), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Gemm_Kernels)->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 2}})->Unit(benchmark::kMicrosecond);

// The cores' multiply-add peak, the bound no kernel passes: on every kernel thread, chains of vector
// FMAs in registers (AVX-512 where the CPU has it, else AVX2), enough independent ones to cover the
// units' latency, no memory traffic. The sgemm ceiling above is the best product the library does,
// which is what the table's shares are of; where the library is not tuned for the CPU (session 20's
// Zen 5: our direct convolution outran it by 1.8x) this row shows how far below the hardware it is.
constexpr int kAvx512Chains = 24, kAvx2Chains = 12;  // of the 32 / 16 vector registers
__attribute__((target("avx512f"))) float fma_peak_avx512(int64_t iters) {
  __m512 acc[kAvx512Chains];
  for (int k = 0; k < kAvx512Chains; ++k) acc[k] = _mm512_set1_ps(1e-3f * float(k));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 32
    for (int k = 0; k < kAvx512Chains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  for (int k = 1; k < kAvx512Chains; ++k) acc[0] = _mm512_add_ps(acc[0], acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc[0]);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}
__attribute__((target("avx2,fma"))) float fma_peak_avx2(int64_t iters) {
  __m256 acc[kAvx2Chains];
  for (int k = 0; k < kAvx2Chains; ++k) acc[k] = _mm256_set1_ps(1e-3f * float(k));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 32
    for (int k = 0; k < kAvx2Chains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  for (int k = 1; k < kAvx2Chains; ++k) acc[0] = _mm256_add_ps(acc[0], acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc[0]);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}
void BM_Peak_Fma(benchmark::State& st) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    st.SkipWithError("no AVX2 + FMA");
    return;
  }
  const int64_t iters = 1 << 20, threads = kernels::cpu::cpu_threads();
  std::vector<float> sink(static_cast<size_t>(threads));
  for (auto _ : st) {
    kernels::cpu::parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) sink[size_t(t)] = avx512 ? fma_peak_avx512(iters) : fma_peak_avx2(iters);
    });
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops = 2.0 * double(threads * iters) * (avx512 ? kAvx512Chains * 16 : kAvx2Chains * 8);
  st.SetLabel(std::string(avx512 ? "AVX-512" : "AVX2") + ", " + std::to_string(threads) + " thread(s)");
  st.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Peak_Fma)->Unit(benchmark::kMillisecond);

// ---- dense layers (CF head: batch x 200 features -> 128) ----
void BM_Linear_ForwardBackward(benchmark::State& st) {
  const int64_t batch = st.range(0), in = 200, out = 128;
  Tensor x = randn({batch, in}, 1), w = randn({out, in}, 2).set_requires_grad(true), b = randn({out}, 3).set_requires_grad(true);
  for (auto _ : st) {
    w.zero_grad();
    b.zero_grad();
    ops::sum(ops::linear(x, w, b)).backward();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(3 * 2.0 * double(batch * in * out),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Linear_ForwardBackward)->Arg(256)->Arg(1024)->Unit(benchmark::kMicrosecond);

// ---- the pair CNN's convolutions with the fused bias + sigmoid, then 2x2 max pooling; the same
// layers and names as the GPU benchmark (bench_gpu.cpp). range(0): layer 1..3, range(1): images ----

// As in training, layer 1's input (the data) needs no gradient and the others' do (model_shapes.h).
// A layer forward and backward as the model runs it (Conv2d::forward_maxpool2x2: on the CPU the
// convolution, pooling, bias and sigmoid in one op whose kernels keep the full-size output out of
// memory, the epilogue on the pooled quarter; until session 23 this row timed the pooled convolution
// and a separate bias + sigmoid op, the model's path before 66d7c1d) and, as the v1 baseline, in the
// order used until session 12 (conv, epilogue, then pooling).
void conv_layer_benchmark(benchmark::State& st, bool pool_first) {
  const int64_t layer = st.range(0), n = st.range(1);
  const bench::ConvShape& s = bench::kConv[layer - 1];
  Tensor x = randn({n, s.c, s.h, s.w}, 4).set_requires_grad(bench::conv_needs_input_grad(layer));
  Tensor w = randn({s.k, s.c, s.kh, s.kw}, 5).set_requires_grad(true), b = randn({s.k}, 6).set_requires_grad(true);
  for (auto _ : st) {
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    const Tensor y = pool_first ? ops::conv2d_maxpool2x2_bias_sigmoid(x, w, b, 0, 0)  // as Conv2d::forward_maxpool2x2
                                : ops::maxpool2x2(ops::bias_sigmoid(ops::conv2d(x, w, 0, 0), b));
    ops::sum(y).backward();
  }
  st.SetLabel(pool_first ? "v2 pool, then bias + sigmoid" : "v1 bias + sigmoid, then pool");
  st.counters["GFLOP/s"] = benchmark::Counter(bench::conv_training_flops(layer, n),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
void BM_ConvSigmoidPool_ForwardBackward(benchmark::State& st) { conv_layer_benchmark(st, true); }
void BM_ConvSigmoidPoolLast_ForwardBackward(benchmark::State& st) { conv_layer_benchmark(st, false); }
CPU_BENCHMARK(BM_ConvSigmoidPool_ForwardBackward)->Args({1, 8})->Args({1, 32})->Args({2, 32})->Args({3, 32})
    ->Unit(benchmark::kMillisecond);
CPU_BENCHMARK(BM_ConvSigmoidPoolLast_ForwardBackward)->Args({1, 32})->Args({2, 32})->Args({3, 32})
    ->Unit(benchmark::kMillisecond);

// The convolution alone by path (kernels::cpu, 32 images): v1 im2col + sgemm per image, v2 the direct
// kernels (conv_direct.cpp; the path the models took from session 14), v3 the direct kernel over the
// flattened image, as the fused layers run it since session 16 (output rows at the input's stride).
void BM_ConvForward(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1), variant = st.range(2);
  const int64_t oh = s.h - s.kh + 1, ow = s.w - s.kw + 1;
  Tensor x = randn({n, s.c, s.h, s.w}, 7), w = randn({s.k, s.c, s.kh, s.kw}, 8);
  Tensor y = Tensor::empty({n, s.k, oh, variant == 3 ? s.w : ow});
  const auto path = variant == 1 ? kernels::cpu::ConvPath::Im2col : kernels::cpu::ConvPath::Direct;
  for (auto _ : st) {
    if (variant == 3)
      kernels::cpu::conv2d_forward_direct_flat<float>(x.data<float>(), w.data<float>(), y.data<float>(), n, s.c, s.h, s.w,
                                                      s.k, s.kh, s.kw);
    else
      kernels::cpu::conv2d_forward<float>(x.data<float>(), w.data<float>(), y.data<float>(), n, s.c, s.h, s.w, s.k, s.kh,
                                          s.kw, 0, 0, path);
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1 ? "v1 im2col + sgemm" : variant == 2 ? "v2 direct" : "v3 direct, flattened");
  st.counters["GFLOP/s"] = benchmark::Counter(bench::conv_flops(s, n), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_ConvForward)->ArgsProduct({{1, 2, 3}, {32}, {1, 2, 3}})->Unit(benchmark::kMillisecond);

// The fused layer's backward alone (kernels::cpu::conv2d_maxpool_backward with the sigmoid epilogue: the
// input gradient where training takes it, the filter and bias gradients; 32 images) by variant: v1
// unpools the gradient, then the dense direct kernels; v2, where the channel lanes apply (conv 2 and
// 3), takes both gradients from the pooling's winners (session 21). The same bits. Rate: the dense
// products' count, as the layers' rows (v2 does a quarter of them).
void BM_ConvPoolBackward_Kernels(benchmark::State& st) {
  const int64_t layer = st.range(0), n = st.range(1), variant = st.range(2);
  const bench::ConvShape& s = bench::kConv[layer - 1];
  const int64_t ph = (s.h - s.kh + 1) / 2, pw = (s.w - s.kw + 1) / 2;
  const Tensor x = randn({n, s.c, s.h, s.w}, 12), w = randn({s.k, s.c, s.kh, s.kw}, 13), b = randn({s.k}, 14);
  const Tensor gp = randn({n, s.k, ph, pw}, 15);
  Tensor y = Tensor::empty({n, s.k, ph, pw}), gx = Tensor::empty(x.shape()), gw = Tensor::empty(w.shape());
  Tensor gb = Tensor::empty(b.shape());
  std::vector<int32_t> argmax(static_cast<size_t>(y.numel()));
  kernels::cpu::conv2d_maxpool_forward<float>(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(),
                                              argmax.data(), n, s.c, s.h, s.w, s.k, s.kh, s.kw, 0, 0);
  const auto from = variant == 1 ? kernels::cpu::PooledGradFrom::Unpooled : kernels::cpu::PooledGradFrom::Best;
  for (auto _ : st) {
    kernels::cpu::conv2d_maxpool_backward<float>(
        x.data<float>(), w.data<float>(), gp.data<float>(), argmax.data(), y.data<float>(),
        bench::conv_needs_input_grad(layer) ? gx.data<float>() : nullptr, gw.data<float>(), gb.data<float>(), n, s.c,
        s.h, s.w, s.k, s.kh, s.kw, 0, 0, from);
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1 ? "v1 unpooled, then the dense kernels" : "v2 from the winners where they apply");
  const double products = bench::conv_training_flops(layer, n) - bench::conv_flops(s, n);  // less the forward
  st.counters["GFLOP/s"] = benchmark::Counter(products, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_ConvPoolBackward_Kernels)->ArgsProduct({{1, 2, 3}, {32}, {1, 2}})->Unit(benchmark::kMillisecond);

// Conv 2's and 3's two backward products apart (kernels::cpu, 32 images): argument 3 is 0 for the
// input gradient and 1 for the filter gradient; argument 4 the variant: 1 im2col + sgemm, 2 direct
// (for the filter gradient with its lanes over output columns, session 14's kernel, which conv 3's 26
// columns were too narrow to repay), 3 the filter gradient's direct kernel with its lanes over input
// channels (conv_channel_lanes.cpp, session 21; Best since).
void BM_ConvBackward_Parts(benchmark::State& st) {
  const bench::ConvShape& s = bench::kConv[st.range(0) - 1];
  const int64_t n = st.range(1), variant = st.range(3);
  const bool filter = st.range(2) == 1;
  const int64_t oh = s.h - s.kh + 1, ow = s.w - s.kw + 1;
  const Tensor x = randn({n, s.c, s.h, s.w}, 9), w = randn({s.k, s.c, s.kh, s.kw}, 10), gy = randn({n, s.k, oh, ow}, 11);
  std::vector<float> out(static_cast<size_t>(filter ? w.numel() : x.numel()));
  const auto path = variant == 1   ? kernels::cpu::ConvPath::Im2col
                    : variant == 2 ? kernels::cpu::ConvPath::DirectColumnLanes
                                   : kernels::cpu::ConvPath::Direct;
  for (auto _ : st) {
    if (filter)
      kernels::cpu::conv2d_backward_filter<float>(x.data<float>(), gy.data<float>(), out.data(), n, s.c, s.h, s.w, s.k,
                                                  s.kh, s.kw, 0, 0, path);
    else
      kernels::cpu::conv2d_backward_data<float>(gy.data<float>(), w.data<float>(), out.data(), n, s.c, s.h, s.w, s.k,
                                                s.kh, s.kw, 0, 0, path);
    benchmark::DoNotOptimize(out.data());
  }
  st.SetLabel(std::string(filter ? "filter gradient, " : "input gradient, ") +
              (variant == 1 ? "v1 im2col" : variant == 2 ? (filter ? "v2 direct, column lanes" : "v2 direct")
                                                         : "v3 direct, channel lanes"));
  st.counters["GFLOP/s"] = benchmark::Counter(bench::conv_flops(s, n), benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_ConvBackward_Parts)
    ->ArgsProduct({{2, 3}, {32}, {0}, {1, 2}})
    ->ArgsProduct({{2, 3}, {32}, {1}, {1, 2, 3}})
    ->Unit(benchmark::kMillisecond);

// Conv 1's two products (forward and filter gradient, the ones training makes for it) by kernel: v1
// im2col + sgemm, v2 the direct one-channel kernels (kernels/cpu/conv_direct.cpp) that replaced it,
// v3 the same with larger register tiles (AVX-512 only; elsewhere v3 runs v2's).
void BM_Conv1_Kernels(benchmark::State& st) {
  const int64_t variant = st.range(0), n = st.range(1);
  const bench::ConvShape& s = bench::kConv[0];
  const int64_t OH = s.h - s.kh + 1, OW = s.w - s.kw + 1;
  Tensor x = randn({n, 1, s.h, s.w}, 40), w = randn({s.k, 1, s.kh, s.kw}, 41), gy = randn({n, s.k, OH, OW}, 42);
  Tensor y = Tensor::empty({n, s.k, OH, OW}), gw = Tensor::empty({s.k, 1, s.kh, s.kw});
  const auto path = variant == 1   ? kernels::cpu::ConvPath::Im2col
                    : variant == 2 ? kernels::cpu::ConvPath::DirectV2
                                   : kernels::cpu::ConvPath::Direct;
  for (auto _ : st) {
    kernels::cpu::conv2d_forward<float>(x.data<float>(), w.data<float>(), y.data<float>(), n, 1, s.h, s.w, s.k, s.kh,
                                        s.kw, 0, 0, path);
    kernels::cpu::conv2d_backward_filter<float>(x.data<float>(), gy.data<float>(), gw.data<float>(), n, 1, s.h, s.w,
                                                s.k, s.kh, s.kw, 0, 0, path);
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1 ? "v1 im2col + sgemm" : variant == 2 ? "v2 direct, one channel" : "v3 direct, larger tiles");
  st.counters["GFLOP/s"] = benchmark::Counter(bench::conv_training_flops(1, n),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Conv1_Kernels)->ArgsProduct({{1, 2, 3}, {32}})->Unit(benchmark::kMillisecond);

// ---- element-wise kernels at conv 1's output (32 images x 16 x 36 x 111: the largest activation) ----
void BM_BiasSigmoid_Forward(benchmark::State& st) {
  Tensor x = randn({32, 16, 36, 111}, 9), b = randn({16}, 10), y = Tensor::empty({32, 16, 36, 111});
  for (auto _ : st) {
    kernels::cpu::bias_sigmoid_nchw_forward<float>(x.data<float>(), b.data<float>(), y.data<float>(), 32, 16, 36 * 111);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * double(x.nbytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_BiasSigmoid_Forward)->Unit(benchmark::kMicrosecond);

void BM_BiasSigmoid_Backward(benchmark::State& st) {
  Tensor y = randn({32, 16, 36, 111}, 27), gy = randn({32, 16, 36, 111}, 28), gx = Tensor::empty({32, 16, 36, 111});
  Tensor gb = Tensor::empty({16});
  for (auto _ : st) {
    kernels::cpu::bias_sigmoid_nchw_backward<float>(y.data<float>(), gy.data<float>(), gx.data<float>(),
                                                    gb.data<float>(), 32, 16, 36 * 111);
    benchmark::ClobberMemory();
  }
  // read y and dy, write dx
  st.counters["GB/s"] = benchmark::Counter(3.0 * double(y.nbytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_BiasSigmoid_Backward)->Unit(benchmark::kMicrosecond);

void BM_MaxPool_Forward(benchmark::State& st) {
  Tensor x = randn({32, 16, 36, 111}, 7);
  autograd::NoGradGuard ng;
  for (auto _ : st) benchmark::DoNotOptimize(ops::maxpool2x2(x).raw_data());
  const double bytes = double(x.nbytes()) * 1.5;  // read x, write y and argmax (a quarter each)
  st.counters["GB/s"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_MaxPool_Forward)->Unit(benchmark::kMicrosecond);

// The pooling forward alone by variant: v1 the even/odd split left to GCC's vectoriser, v2 explicit
// two-vector shuffles (the op's since session 14). GB/s: read x, write y and the argmax.
void BM_MaxPool_Forward_Kernels(benchmark::State& st) {
  const int64_t variant = st.range(0), planes = 32 * 16, H = 36, W = 111;
  Tensor x = randn({planes, H, W}, 48), y = Tensor::empty({planes, H / 2, W / 2});
  std::vector<int32_t> argmax(size_t(planes * (H / 2) * (W / 2)));
  for (auto _ : st) {
    if (variant == 1)
      kernels::cpu::maxpool2x2_forward_v1<float>(x.data<float>(), y.data<float>(), argmax.data(), planes, H, W);
    else
      kernels::cpu::maxpool2x2_forward<float>(x.data<float>(), y.data<float>(), argmax.data(), planes, H, W);
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1 ? "v1 vectoriser's even/odd split" : "v2 two-vector shuffles");
  st.counters["GB/s"] = benchmark::Counter(1.5 * double(x.nbytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_MaxPool_Forward_Kernels)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_MaxPool_ForwardBackward(benchmark::State& st) {
  Tensor x = randn({32, 16, 36, 111}, 14).set_requires_grad(true);
  for (auto _ : st) {
    x.zero_grad();
    ops::sum(ops::maxpool2x2(x)).backward();
  }
  // forward as above; backward reads dy and the argmax (a quarter of x each), writes dx
  st.counters["GB/s"] = benchmark::Counter(3.0 * double(x.nbytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_MaxPool_ForwardBackward)->Unit(benchmark::kMicrosecond);

// The pooling backward alone by variant: v1 per-window selects, v2 zero each plane, then store at the
// winners (the op's from session 12), v3 v1's selects 16 windows at a time, interleaved into full-width
// stores (session 21). GB/s: write dx, read dy and the argmax (a quarter of x each).
void BM_MaxPool_Backward_Kernels(benchmark::State& st) {
  const int64_t variant = st.range(0), planes = 32 * 16, H = 36, W = 111;
  Tensor x = randn({planes, H, W}, 46), y = Tensor::empty({planes, H / 2, W / 2}), gy = randn({planes, H / 2, W / 2}, 47);
  Tensor gx = Tensor::empty({planes, H, W});
  std::vector<int32_t> argmax(size_t(planes * (H / 2) * (W / 2)));
  kernels::cpu::maxpool2x2_forward<float>(x.data<float>(), y.data<float>(), argmax.data(), planes, H, W);
  for (auto _ : st) {
    if (variant == 1)
      kernels::cpu::maxpool2x2_backward_v1<float>(gy.data<float>(), argmax.data(), gx.data<float>(), planes, H, W);
    else if (variant == 2)
      kernels::cpu::maxpool2x2_backward_v2<float>(gy.data<float>(), argmax.data(), gx.data<float>(), planes, H, W);
    else
      kernels::cpu::maxpool2x2_backward<float>(gy.data<float>(), argmax.data(), gx.data<float>(), planes, H, W);
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1   ? "v1 selects"
              : variant == 2 ? "v2 zero, then store at the winners"
                             : "v3 selects in vectors, interleaved");
  st.counters["GB/s"] = benchmark::Counter(1.5 * double(x.nbytes()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_MaxPool_Backward_Kernels)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond);

// ---- the pair head at the pair CNN's shapes: every op after the tower, as training calls them ----
// Forward, the weighted loss and backward of PairCnn::head over one batch (bench/pair_head_batch.h):
// dense 1 in its gather form, the pairs' dot products, dense 2, the output. Rate: pairs/s.
void BM_PairHead_ForwardBackward(benchmark::State& st) {
  const int64_t b = st.range(0);
  Generator gen(31);
  models::PairCnn model{models::PairCnnConfig{}, gen};
  bench::PairHeadBatch batch = bench::pair_head_batch(b, model.song_vector_width(), Device::cpu());
  for (auto _ : st) bench::pair_head_step(model, batch);
  st.counters["pairs/s"] = benchmark::Counter(double(b), benchmark::Counter::kIsIterationInvariantRate);
}
CPU_BENCHMARK(BM_PairHead_ForwardBackward)->Arg(256)->Unit(benchmark::kMicrosecond);

// ---- the CF head's element-wise ops (batch x member . song, the 205-wide concatenation, ReLU) ----
void BM_RowDot_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0), D = 64;
  Tensor a = randn({n, D}, 30).set_requires_grad(true), b = randn({n, D}, 31).set_requires_grad(true);
  for (auto _ : st) {
    a.zero_grad();
    b.zero_grad();
    ops::sum(ops::rowdot(a, b)).backward();
  }
  st.counters["GB/s"] = benchmark::Counter(6 * 4.0 * double(n * D), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_RowDot_ForwardBackward)->Arg(4096)->Unit(benchmark::kMicrosecond);

void BM_ConcatCols_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0);
  std::vector<Tensor> parts;
  for (int64_t w : bench::kCfConcatWidths)
    parts.push_back(randn({n, w}, uint64_t(32 + parts.size())).set_requires_grad(true));
  for (auto _ : st) {
    for (Tensor& t : parts) t.zero_grad();
    ops::sum(ops::concat_cols(parts)).backward();
  }
  st.counters["GB/s"] = benchmark::Counter(4 * 4.0 * double(n * bench::kCfConcatWidth), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_ConcatCols_ForwardBackward)->Arg(4096)->Unit(benchmark::kMicrosecond);

// The full sum, which every forward + backward row here uses as its loss: v1 one running double in
// element order (until session 23), v2 32 running sums per block, blocks over the threads (sum.cpp).
// range(0): elements (conv 1's pooled output at 32 images; 16 M), range(1): the variant.
void BM_Sum_Kernels(benchmark::State& st) {
  const int64_t n = st.range(0), variant = st.range(1);
  Tensor x = randn({n}, 51);
  float total = 0;
  for (auto _ : st) {
    total += variant == 1 ? kernels::cpu::sum_v1<float>(x.data<float>(), n) : kernels::cpu::sum<float>(x.data<float>(), n);
    benchmark::DoNotOptimize(total);
  }
  st.SetLabel(variant == 1 ? "v1 one running double" : "v2 32 lanes, blocks over threads");
  st.counters["GB/s"] = benchmark::Counter(4.0 * double(n), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Sum_Kernels)->ArgsProduct({{32 * 16 * 18 * 55, 1 << 24}, {1, 2}})->Unit(benchmark::kMicrosecond);

void BM_Relu_ForwardBackward(benchmark::State& st) {
  const int64_t n = st.range(0), H = 128;
  Tensor x = randn({n, H}, 50).set_requires_grad(true);
  for (auto _ : st) {
    x.zero_grad();
    ops::sum(ops::relu(x)).backward();
  }
  st.counters["GB/s"] = benchmark::Counter(5 * 4.0 * double(n * H), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Relu_ForwardBackward)->Arg(4096)->Unit(benchmark::kMicrosecond);

// ---- embeddings (CF: batch lookups into a 30k x 64 member table) ----
void BM_Embedding_ForwardBackwardSparse(benchmark::State& st) {
  const int64_t batch = st.range(0), V = 30000, D = 64;
  Tensor table = randn({V, D}, 8).set_requires_grad(true);
  table.impl()->sparse_grad_enabled = true;
  std::vector<int32_t> idx(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) idx[size_t(i)] = int32_t((i * 7919) % V);
  Tensor ix = Tensor::from_vector(idx, {batch});
  for (auto _ : st) {
    table.zero_grad();
    ops::sum(ops::embedding(table, ix)).backward();
  }
  st.counters["rows/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}
CPU_BENCHMARK(BM_Embedding_ForwardBackwardSparse)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);

// ---- dropout (CF: the hidden layer's batch x 128 activations, p = 0.5) ----
// Variant 1 is the scalar loop (one Philox block per element), the reference and the path of CPUs
// without AVX2; 2 draws eight counters per AVX2 instruction, 3 sixteen per AVX-512 one (skipped where
// the CPU lacks it). Until session 11 the op also drew the mask again in the backward, at variant 1's
// cost; it now reads the forward's bits (BM_Dropout_Backward).
void BM_Dropout_Forward(benchmark::State& st) {
  using kernels::cpu::DropoutPath;
  const DropoutPath paths[] = {DropoutPath::Scalar, DropoutPath::Avx2, DropoutPath::Avx512};
  const char* labels[] = {"v1 scalar", "v2 AVX2 lanes", "v3 AVX-512 lanes"};
  const int64_t variant = st.range(0), n = st.range(1) * 128;
  const DropoutPath path = paths[variant - 1];
  if (!kernels::cpu::dropout_path_available(path)) {
    st.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  Tensor x = randn({n}, 11), y = Tensor::empty({n});
  std::vector<uint32_t> bits(size_t((n + 31) / 32));
  uint64_t offset = 0;
  for (auto _ : st) {
    kernels::cpu::dropout_forward<float>(x.data<float>(), y.data<float>(), n, 0.5f, 1, offset++, bits.data(), path);
    benchmark::ClobberMemory();
  }
  st.SetLabel(labels[variant - 1]);
  st.counters["GB/s"] = benchmark::Counter(double(n) * 8.0 + double(bits.size()) * 4.0,
                                           benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Dropout_Forward)->ArgsProduct({{1, 2, 3}, {1024, 4096}})->Unit(benchmark::kMicrosecond);

void BM_Dropout_Backward(benchmark::State& st) {
  const int64_t n = st.range(0) * 128;
  Tensor x = randn({n}, 12), g = randn({n}, 13), y = Tensor::empty({n}), gx = Tensor::empty({n});
  std::vector<uint32_t> bits(size_t((n + 31) / 32));
  kernels::cpu::dropout_forward<float>(x.data<float>(), y.data<float>(), n, 0.5f, 1, 0, bits.data());
  for (auto _ : st) {
    kernels::cpu::dropout_backward<float>(g.data<float>(), gx.data<float>(), n, 0.5f, bits.data());
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(double(n) * 8.0 + double(bits.size()) * 4.0,
                                           benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Dropout_Backward)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);

// ---- Adam, dense: the pair head's dense 1 (100 x 2,497); reads p, m, v, g and writes p, m, v ----
void BM_Adam_Dense(benchmark::State& st) {
  Tensor p = randn({100, 2497}, 22).set_requires_grad(true);
  Adam opt({{"w", p}});
  ops::sum(ops::matmul(randn({1, 2497}, 23), p, false, true)).backward();  // a gradient to step with, kept
  for (auto _ : st) opt.step();
  st.counters["GB/s"] = benchmark::Counter(7 * 4.0 * double(p.numel()), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Adam_Dense)->Unit(benchmark::kMicrosecond);

// ---- Adam on embedding rows (CF: a batch of rows of KKBox's 359,967 x 64 song table) ----
// The rows are scattered over the table, its m and v (3 x 92 MB), so this is a memory-latency
// benchmark; GB/s counts the bytes the update reads and writes (p, m, v both ways, g once). The
// tables are tensors, as the model's are: 64-byte aligned, a row of 64 floats four cache lines (in a
// std::vector, 16-byte aligned, it spanned five, and the update ran ~30 % slower).
void BM_Adam_EmbeddingRows(benchmark::State& st) {
  const int64_t rows = st.range(0), V = 359967, D = 64;
  Tensor p = Tensor::full({V, D}, 0.1f), m = Tensor::zeros({V, D}), v = Tensor::zeros({V, D});
  Tensor g = Tensor::full({rows, D}, 0.01f);
  std::vector<int32_t> r(static_cast<size_t>(rows));
  uint64_t draw = 0;
  for (auto _ : st) {
    st.PauseTiming();
    for (auto& x : r) x = int32_t(rng::philox_block(5, draw++, 0)[0] % uint32_t(V));
    std::sort(r.begin(), r.end());  // the sparse gradient's rows come sorted (embedding backward)
    st.ResumeTiming();
    kernels::cpu::adam_rows<float>(p.data<float>(), m.data<float>(), v.data<float>(), r.data(), g.data<float>(), rows, D, 0.9f, 0.999f, 1e-3f,
                                   1e-8f, 0.f);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(double(rows * D) * 28.0, benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
}
CPU_BENCHMARK(BM_Adam_EmbeddingRows)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);

// ---- KDE sample weights ----
void BM_Kde(benchmark::State& st) {
  const int64_t n = st.range(0);
  const bool binned = st.range(1) != 0;
  Generator g(9);
  Tensor y = Tensor::empty({n});
  init::uniform_(y, 0.f, 1.f, g);
  KdeOptions o;
  o.method = binned ? KdeMethod::Binned : KdeMethod::Exact;
  for (auto _ : st) benchmark::DoNotOptimize(kde_sample_weights(y, o).raw_data());
  st.SetLabel(binned ? "binned, 2048 bins" : "exact");
  st.counters["samples/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}
CPU_BENCHMARK(BM_Kde)->Args({5000, 0})->Args({5000, 1})->Args({127000, 1})->Unit(benchmark::kMillisecond);

// The exact density's kernel by variant (kernels/cpu/kde.cpp), at the CPU peer table's 20,000 scores:
// v1 glibc's exp per pair, summed in order (until session 17); v2 the exponentials in vectors of 8
// doubles (vec::exp_f64). Both in double. pairs/s: kernel evaluations, n^2 a call.
void BM_KdeExact_Kernels(benchmark::State& st) {
  const int64_t variant = st.range(0), n = st.range(1);
  Generator g(9);
  Tensor y = Tensor::empty({n}), d = Tensor::empty({n});
  init::uniform_(y, 0.f, 1.f, g);
  for (auto _ : st) {
    if (variant == 1) kernels::cpu::kde_density_exact_v1<float>(y.data<float>(), n, 0.2, d.data<float>());
    else kernels::cpu::kde_density_exact<float>(y.data<float>(), n, 0.2, d.data<float>());
    benchmark::ClobberMemory();
  }
  st.SetLabel(variant == 1 ? "v1 glibc exp, in order" : "v2 vector exp_f64");
  st.counters["pairs/s"] = benchmark::Counter(double(n) * double(n), benchmark::Counter::kIsIterationInvariantRate);
}
CPU_BENCHMARK(BM_KdeExact_Kernels)->Args({1, 20000})->Args({2, 20000})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace musicrec

BENCHMARK_MAIN();
