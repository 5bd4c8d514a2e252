// Recommendation speed for a generated catalogue of MUSICREC_BENCH_CATALOGUE songs (default 141,000,
// the size the paper's catalogue had): the one-time catalogue pass (the pair CNN's tower over every
// song, then dense 1's candidate share, see models/pair_cnn.h CatalogueHead) and the per-listener cost
// (five seeds against the whole catalogue, the top 20 picked). The per-listener time is also measured
// the old way, the full pair head over 5 N (seed, candidate) pairs, as the baseline the catalogue head
// replaced. Device: MUSICREC_BENCH_DEVICE (auto by default: the GPU when there is one).
//
// The weights are random and the images are random normal values: the work per song does not depend
// on either. Timings on the GPU include the copy of the logits back to the host, as a listener's
// playlist needs them there.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "kernels/error.h"
#include "kernels/philox.h"
#include "models/pair_cnn.h"

namespace musicrec {
namespace {

int64_t catalogue_size() {
  const char* n = std::getenv("MUSICREC_BENCH_CATALOGUE");
  return n ? std::max<int64_t>(64, std::atoll(n)) : 141000;
}
Device bench_device() {
  const char* d = std::getenv("MUSICREC_BENCH_DEVICE");
  return parse_device(d ? d : "auto");
}

struct Catalogue {
  Generator gen{7};
  models::PairCnn model{models::PairCnnConfig{}, gen};
  Device dev = bench_device();
  models::CatalogueHead head;
  bool ready = false;
  Catalogue() { model.to(dev); model.eval(); }
};
Catalogue& catalogue() {
  static Catalogue c;
  return c;
}

// A chunk of n random-normal 1 x 40 x 120 images (Box-Muller on Philox uniforms), on the host.
Tensor random_images(int64_t first, int64_t n) {
  const int64_t px = 40 * 120;
  std::vector<float> v(static_cast<size_t>(n * px));
  for (size_t i = 0; i < v.size(); ++i) {
    const uint64_t k = uint64_t(first * px) + i;
    const double u1 = std::max(1e-12, double(rng::uniform(11, 0, 2 * k))), u2 = rng::uniform(11, 0, 2 * k + 1);
    v[i] = float(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  return Tensor::from_vector(v, {n, 1, 40, 120});
}

void BM_CataloguePass(benchmark::State& state) {
  Catalogue& c = catalogue();
  const int64_t N = catalogue_size(), chunk = 512;
  autograd::NoGradGuard ng;
  for (auto _ : state) {
    std::vector<Tensor> parts;
    for (int64_t s = 0; s < N; s += chunk) {
      state.PauseTiming();
      Tensor images = random_images(s, std::min(chunk, N - s));
      state.ResumeTiming();
      parts.push_back(c.model.tower(images.to(c.dev)));
    }
    c.head = c.model.prepare_catalogue(ops::concat_rows(parts));
    c.head.right.to(Device::cpu());  // waits for the device
    c.ready = true;
  }
  state.counters["songs"] = double(N);
  state.counters["songs/s"] = benchmark::Counter(double(N) * double(state.iterations()), benchmark::Counter::kIsRate);
}

std::vector<int64_t> top20(const std::vector<float>& best) {
  std::vector<int64_t> order(best.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(20, order.size());
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(), [&](int64_t a, int64_t b) { return best[size_t(a)] > best[size_t(b)]; });
  order.resize(k);
  return order;
}

// Five seeds against the whole catalogue through the catalogue head.
void BM_PerListener(benchmark::State& state) {
  Catalogue& c = catalogue();
  if (!c.ready) {
    state.SkipWithError("BM_CataloguePass must run first");
    return;
  }
  const int64_t N = c.head.vectors.size(0);
  autograd::NoGradGuard ng;
  for (auto _ : state) {
    std::vector<float> best(size_t(N), -1e30f);
    for (int64_t s = 0; s < 5; ++s) {
      std::vector<float> l = c.model.logits_against(c.head, (s * 7919) % N).to_vector<float>();
      for (size_t i = 0; i < l.size(); ++i) best[i] = std::max(best[i], l[i]);
    }
    benchmark::DoNotOptimize(top20(best));
  }
  state.counters["candidates"] = double(N);
}

// The baseline: the pair head over 5 N pairs, in chunks of 8,192 pairs (the way recommend scored before).
void BM_PerListener_PairHeadBaseline(benchmark::State& state) {
  Catalogue& c = catalogue();
  if (!c.ready) {
    state.SkipWithError("BM_CataloguePass must run first");
    return;
  }
  const Tensor& H = c.head.vectors;
  const int64_t N = H.size(0);
  autograd::NoGradGuard ng;
  for (auto _ : state) {
    std::vector<float> best(size_t(N), -1e30f);
    for (int64_t s = 0; s < 5; ++s)
      for (int64_t c0 = 0; c0 < N; c0 += 8192) {
        const int64_t n = std::min<int64_t>(8192, N - c0);
        std::vector<int32_t> a(static_cast<size_t>(n), int32_t((s * 7919) % N)), b(static_cast<size_t>(n));
        std::iota(b.begin(), b.end(), int32_t(c0));
        Tensor ta = Tensor::from_vector(a, {n}, c.dev), tb = Tensor::from_vector(b, {n}, c.dev);
        std::vector<float> l = c.model.head(H, ta, tb).to_vector<float>();
        for (int64_t i = 0; i < n; ++i) best[size_t(c0 + i)] = std::max(best[size_t(c0 + i)], l[size_t(i)]);
      }
    benchmark::DoNotOptimize(top20(best));
  }
  state.counters["candidates"] = double(N);
}

BENCHMARK(BM_CataloguePass)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PerListener)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PerListener_PairHeadBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace musicrec

// As the project's commands end on an error: one line naming it and exit status 1. With
// BENCHMARK_MAIN, MUSICREC_BENCH_DEVICE=cuda on a machine without a usable GPU ended in
// std::terminate's abort (seen rehearsing the GPU check without a device).
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  try {
    (void)musicrec::bench_device();  // a bad or absent device is refused before any benchmark starts
    benchmark::RunSpecifiedBenchmarks();
  } catch (const musicrec::Error& e) {
    std::fprintf(stderr, "musicrec_bench_recommend: error: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
