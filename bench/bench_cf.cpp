// CF baseline benchmarks (Google Benchmark), CPU: parsing the KKBox files (MB/s and rows/s over all
// files read), encoding, and training steps (samples/s) at several batch sizes. The data is generated
// once per run into a temporary folder: MUSICREC_BENCH_KKBOX_ROWS rows (default 1,000,000, the synth
// default; the full 7.4M-row size is measured with `musicrec train cf`, which prints its parse time).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "data/cf_batches.h"
#include "data/cf_dataset.h"
#include "data/kkbox.h"
#include "data/kkbox_synth.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "models/cf_model.h"

namespace musicrec {
namespace {

struct BenchData {
  std::string dir;
  int64_t bytes = 0;
  BenchData() {
    dir = (std::filesystem::temp_directory_path() / ("musicrec-bench-kkbox-" + std::to_string(::getpid()))).string();
    data::KkboxSynthOptions o;
    if (const char* r = std::getenv("MUSICREC_BENCH_KKBOX_ROWS")) o.rows = std::atoll(r);
    data::synthesize_kkbox(dir, o);
    for (const char* f : {"train.csv", "test.csv", "members.csv", "songs.csv"})
      bytes += int64_t(std::filesystem::file_size(dir + "/" + f));
  }
  ~BenchData() { std::filesystem::remove_all(dir); }
};

BenchData& bench_data() {
  static BenchData d;
  return d;
}

void BM_KkboxParse(benchmark::State& st) {
  BenchData& d = bench_data();
  int64_t rows = 0;
  for (auto _ : st) {
    data::KkboxData k = data::read_kkbox(d.dir);
    rows = k.train.size() + k.test.size();
  }
  st.counters["MB/s"] = benchmark::Counter(double(d.bytes), benchmark::Counter::kIsIterationInvariantRate,
                                           benchmark::Counter::kIs1000);
  st.counters["rows/s"] = benchmark::Counter(double(rows), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_KkboxParse)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CfEncode(benchmark::State& st) {
  data::KkboxData k = data::read_kkbox(bench_data().dir);
  for (auto _ : st) benchmark::DoNotOptimize(data::encode_cf(k, data::SplitKind::Random, data::kDefaultSplitSeed).train_csv.rows);
  st.counters["rows/s"] = benchmark::Counter(double(k.train.size() + k.test.size()),
                                             benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CfEncode)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CfTrainStep(benchmark::State& st) {
  static data::CfDataset ds = [] {
    data::KkboxData k = data::read_kkbox(bench_data().dir);
    return data::encode_cf(k, data::SplitKind::Random, data::kDefaultSplitSeed);
  }();
  const int64_t batch = st.range(0);
  std::vector<int64_t> rows = ds.rows_of(data::Part::Train);
  Generator gen(1);
  models::CfModelConfig cfg;
  cfg.cardinality = ds.cardinality;
  models::CfModel model(cfg, gen);
  Adam opt(model.named_parameters());
  int64_t start = 0;
  for (auto _ : st) {
    if (start + batch > int64_t(rows.size())) start = 0;
    data::CfBatch b = data::make_cf_batch(ds.train_csv, rows, start, batch);
    start += batch;
    opt.zero_grad();
    ops::mean(ops::softmax_cross_entropy(model.forward(b.cat, b.num, gen), b.target)).backward();
    opt.step();
  }
  st.counters["samples/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_CfTrainStep)->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace musicrec

BENCHMARK_MAIN();
