// `musicrec bench`: runs the benchmark programs built beside `musicrec` (Google Benchmark, JSON output)
// and prints one table: each benchmark's median time over repetitions, its rate, and that rate as a
// share of the machine's own ceiling measured in the same run (GFLOP/s against the large sgemm,
// GB/s against the large memcpy). `--quick` is a run of a minute or two (the op benchmarks, three
// repetitions, short minimum times); the full run adds the CF pipeline and the 141k-song
// recommendation benchmarks, five repetitions each. Where a CUDA device is present the GPU kernel
// benchmarks (bench/bench_gpu.cpp) run too, their shares taken against the GPU ceilings of their own run;
// `--gpu-only` runs just those (an error without a device). `--against DIR` is an A/B run: the same
// programs of another build (DIR, its bin folder) run interleaved with this build's for `--rounds`
// rounds, and the table gives each row's time in both and their ratio: what a change is worth,
// measured in one run on one machine rather than from two runs of a noisy one.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace musicrec::apps {

struct BenchOptions {
  bool quick = false;
  bool gpu_only = false;  // only musicrec_bench_gpu (the GPU check: the CPU rows come from CPU sessions)
  std::string filter;  // passed to --benchmark_filter (regex), "" = all
  std::string out;     // markdown file for the table, "" = none
  std::string program_dir;  // where the benchmark programs are; "" = beside this executable
  std::string against;      // another build's bin folder to run interleaved with this one; "" = none
  int rounds = 4;           // with `against`: rounds, each running both builds' programs (even: each
                            // build goes first in half of them)
};

struct BenchRow {
  std::string program, name;
  double median_ms = 0;
  std::string rate_unit;  // "GFLOP/s", "GB/s", "rows/s", ... or "" when the benchmark has no rate
  double rate = 0;
  double share_of_ceiling = -1;  // rate / ceiling of the same unit; -1 when there is none
  double share_of_peak = -1;     // GFLOP/s rows: rate / the same run's BM_Peak_Fma; -1 when there is none
};

// Rows from one program's Google Benchmark JSON (median aggregates; plain runs when there are no
// aggregates). Ceilings are taken from BM_Ceiling_Memcpy (GB/s) and BM_Ceiling_Sgemm (GFLOP/s) in
// the same JSON, the multiply-add peak from BM_Peak_Fma; pass them on to later programs through
// `ceilings`. The GPU program's (BM_Ceiling_DeviceCopy, BM_Ceiling_CublasSgemm, and its BM_Peak_Fma)
// hold for its own rows only.
std::vector<BenchRow> bench_rows(const std::string& program, const nlohmann::json& report, nlohmann::json& ceilings);
// The table as markdown, with the machine line on top.
std::string bench_table(const std::vector<BenchRow>& rows, const nlohmann::json& context);
// The A/B table of `--against`: `here[r]` and `there[r]` are round r's rows of this build and of the
// other (`there_name`). Per row: each build's median over the rounds; the median and the range of the
// rounds' own ratios, the other's time over this one's (above 1: this build is faster); this build's
// share of its ceiling. A row only one build has gets "-" for the other.
std::string ab_table(const std::vector<std::vector<BenchRow>>& here, const std::vector<std::vector<BenchRow>>& there,
                     const std::string& there_name, const nlohmann::json& context);
// Runs the programs (with o.against, both builds' in turn) and returns the table (also written to
// o.out when set).
std::string run_benchmarks(const BenchOptions& o);

}  // namespace musicrec::apps
