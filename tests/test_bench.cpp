// `musicrec bench`: the table built from Google Benchmark's JSON (medians, rates in display units,
// shares of the ceilings measured in the same run) and, where the benchmark programs were built, the
// command itself on the two ceiling benchmarks.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <unistd.h>

#include "apps/bench_job.h"
#include "engine/device.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace {

nlohmann::json agg(const std::string& name, const char* which, double ms, const char* unit, double rate) {
  nlohmann::json b = {{"name", name + "_" + which}, {"run_name", name}, {"run_type", "aggregate"},
                      {"aggregate_name", which}, {"real_time", ms}, {"time_unit", "ms"}};
  if (unit) b[unit] = rate;
  return b;
}

TEST(Bench, RowsAreMediansWithRatesAgainstTheSameRunsCeilings) {
  nlohmann::json report = {{"benchmarks", nlohmann::json::array()}};
  auto& b = report["benchmarks"];
  b.push_back(agg("BM_Ceiling_Memcpy", "mean", 30, "GB/s", 30e9));
  b.push_back(agg("BM_Ceiling_Memcpy", "median", 25, "GB/s", 40e9));
  b.push_back(agg("BM_Ceiling_Sgemm", "median", 10, "GFLOP/s", 200e9));
  b.push_back(agg("BM_MaxPool_Forward", "median", 1, "GB/s", 10e9));
  b.push_back(agg("BM_Conv1/8/real_time", "median", 2, "GFLOP/s", 50e9));     // timed by the wall clock
  b.push_back(agg("BM_Kde/5000/0/manual_time", "median", 3, "samples/s", 1234));  // by CUDA events
  b.push_back(agg("BM_Peak_Fma/real_time", "median", 1, "GFLOP/s", 500e9));  // after the rows it bounds
  nlohmann::json ceilings = nlohmann::json::object();
  auto rows = bench_rows("musicrec_bench", report, ceilings);
  ASSERT_EQ(rows.size(), 6u);  // the mean is dropped
  EXPECT_EQ(rows[0].name, "BM_Ceiling_Memcpy");
  EXPECT_DOUBLE_EQ(rows[0].rate, 40.0);  // GB/s, from bytes/s
  EXPECT_DOUBLE_EQ(rows[2].share_of_ceiling, 0.25);  // 10 of 40 GB/s
  EXPECT_DOUBLE_EQ(rows[3].share_of_ceiling, 0.25);  // 50 of 200 GFLOP/s
  EXPECT_LT(rows[4].share_of_ceiling, 0);            // samples/s has no ceiling
  EXPECT_DOUBLE_EQ(rows[3].share_of_peak, 0.1);       // 50 of the 500 GFLOP/s multiply-add peak
  EXPECT_DOUBLE_EQ(rows[1].share_of_peak, 0.4);       // the sgemm ceiling itself: 200 of 500
  EXPECT_DOUBLE_EQ(rows[5].share_of_ceiling, 2.5);    // the peak passes the library's sgemm
  EXPECT_LT(rows[2].share_of_peak, 0);                // GB/s rows have no multiply-add peak
  EXPECT_LT(rows[4].share_of_peak, 0);
  // Named as registered: how a row was timed is the program's, not the row's.
  EXPECT_EQ(rows[3].name, "BM_Conv1/8");
  EXPECT_EQ(rows[4].name, "BM_Kde/5000/0");
  EXPECT_DOUBLE_EQ(ceilings["GB/s"].get<double>(), 40.0);
  // A later program's rows use the ceilings of the earlier one.
  nlohmann::json later = {{"benchmarks", {agg("BM_Other", "median", 1, "GB/s", 20e9)}}};
  EXPECT_DOUBLE_EQ(bench_rows("other", later, ceilings)[0].share_of_ceiling, 0.5);
  nlohmann::json later_flops = {{"benchmarks", {agg("BM_Cf", "median", 1, "GFLOP/s", 125e9)}}};
  EXPECT_DOUBLE_EQ(bench_rows("other", later_flops, ceilings)[0].share_of_peak, 0.25);
  const std::string table = bench_table(rows, {{"host_name", "h"}, {"num_cpus", 2}, {"load_avg", {0.5}}});
  EXPECT_NE(table.find("| musicrec_bench | BM_MaxPool_Forward | 1.000 | 10 GB/s | 25.0 % |  |"), std::string::npos) << table;
  EXPECT_NE(table.find("| musicrec_bench | BM_Conv1/8 | 2.000 | 50 GFLOP/s | 25.0 % | 10.0 % |"), std::string::npos) << table;
  EXPECT_NE(table.find("load average 0.50"), std::string::npos) << table;
  EXPECT_THROW(bench_rows("x", nlohmann::json::object(), ceilings), Error);
}

// The GPU program's rows take its own ceilings and peak, and leave the CPU's for the CPU programs.
TEST(Bench, TheGpuProgramsRowsUseItsOwnCeilingsAndPeak) {
  nlohmann::json ceilings = {{"GB/s", 40.0}, {"GFLOP/s", 200.0}, {"peak GFLOP/s", 500.0}};
  nlohmann::json report = {{"benchmarks", nlohmann::json::array()}};
  auto& b = report["benchmarks"];
  b.push_back(agg("BM_Ceiling_DeviceCopy/manual_time", "median", 1, "GB/s", 4000e9));
  b.push_back(agg("BM_Ceiling_CublasSgemm/manual_time", "median", 1, "GFLOP/s", 50000e9));
  b.push_back(agg("BM_ConvPoolForward/1/1024/2/manual_time", "median", 1, "GFLOP/s", 16000e9));
  b.push_back(agg("BM_MaxPool_Forward/1024/manual_time", "median", 1, "GB/s", 2000e9));
  b.push_back(agg("BM_Peak_Fma/manual_time", "median", 1, "GFLOP/s", 64000e9));
  const auto rows = bench_rows("musicrec_bench_gpu", report, ceilings);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_DOUBLE_EQ(rows[2].share_of_ceiling, 0.32);  // 16,000 of cuBLAS's 50,000
  EXPECT_DOUBLE_EQ(rows[2].share_of_peak, 0.25);     // of the GPU's 64,000
  EXPECT_DOUBLE_EQ(rows[3].share_of_ceiling, 0.5);   // 2,000 of the device copy's 4,000 GB/s
  EXPECT_DOUBLE_EQ(ceilings["peak GFLOP/s"].get<double>(), 500.0);  // the CPU's, untouched
  EXPECT_DOUBLE_EQ(ceilings["GFLOP/s"].get<double>(), 200.0);
}

TEST(Bench, QuickRunOfTheCeilingsWritesTheTable) {
  const std::string dir = std::filesystem::path(MUSICREC_BIN).parent_path().string();
  if (!std::filesystem::exists(dir + "/musicrec_bench")) GTEST_SKIP() << "benchmarks not built (MUSICREC_BENCH=OFF)";
  BenchOptions o;
  o.quick = true;
  o.filter = "Ceiling";
  o.program_dir = dir;
  o.out = (std::filesystem::temp_directory_path() / "musicrec-bench-test.md").string();
  testing::internal::CaptureStderr();
  const std::string table = run_benchmarks(o);
  const std::string progress = testing::internal::GetCapturedStderr();
  // Each finished row's median is echoed as it comes, with the seconds since the start.
  EXPECT_NE(progress.find("bench: running musicrec_bench\n"), std::string::npos) << progress;
  EXPECT_TRUE(std::regex_search(progress, std::regex(R"(bench: \[ *[0-9]+\.[0-9] s\] BM_Ceiling_Sgemm/real_time_median )")))
      << progress;
  EXPECT_EQ(progress.find("_mean"), std::string::npos) << progress;
  EXPECT_NE(table.find("| musicrec_bench | BM_Ceiling_Memcpy |"), std::string::npos) << table;
  EXPECT_NE(table.find("| musicrec_bench | BM_Ceiling_Sgemm |"), std::string::npos) << table;
  EXPECT_NE(table.find("100.0 %"), std::string::npos) << table;
  EXPECT_TRUE(std::filesystem::exists(o.out));
  std::filesystem::remove(o.out);
}

TEST(Bench, AFilterKeepsTheCeilingsAndSkipsProgramsItMatchesNothingIn) {
  const std::string dir = std::filesystem::path(MUSICREC_BIN).parent_path().string();
  if (!std::filesystem::exists(dir + "/musicrec_bench_cf")) GTEST_SKIP() << "benchmarks not built (MUSICREC_BENCH=OFF)";
  BenchOptions o;
  o.filter = "BM_Memcpy_OneThread";  // only in musicrec_bench; the full run also starts musicrec_bench_cf and _recommend
  o.program_dir = dir;
  const std::string table = run_benchmarks(o);
  EXPECT_NE(table.find("| musicrec_bench | BM_Ceiling_Memcpy |"), std::string::npos) << table;
  const size_t row = table.find("| musicrec_bench | BM_Memcpy_OneThread |");
  ASSERT_NE(row, std::string::npos) << table;
  EXPECT_NE(table.substr(row, table.find('\n', row) - row).find(" % |"), std::string::npos) << table;  // its share
  EXPECT_EQ(table.find("musicrec_bench_cf"), std::string::npos) << table;
  o.quick = true;
  o.filter = "BM_NoSuchBenchmark";
  try {
    run_benchmarks(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no benchmark matches 'BM_NoSuchBenchmark'"), std::string::npos) << e.what();
  }
}

TEST(Bench, GpuOnlyWithoutADeviceIsAnErrorThatSaysSo) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present: --gpu-only would run";
  BenchOptions o;
  o.gpu_only = true;
  o.program_dir = std::filesystem::path(MUSICREC_BIN).parent_path().string();
  try {
    run_benchmarks(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bench --gpu-only:"), std::string::npos) << e.what();
  }
}

// A logs folder as bench/gpu_check.sh writes it, made up by a test, and the summary gpu_summary.py
// writes of it; the folder goes with the object.
struct MadeUpGpuLogs {
  std::filesystem::path dir;
  explicit MadeUpGpuLogs(const std::string& name)
      : dir(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  ~MadeUpGpuLogs() { std::filesystem::remove_all(dir); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(dir / name) << text; }
  // The summary's text, or "" with a test failure when the script fails.
  std::string summary(const std::string& card) const {
    const std::filesystem::path out = dir / "summary.md";
    const std::string cmd = "python3 " + std::string(MUSICREC_SOURCE_DIR) + "/bench/gpu_summary.py " + dir.string() +
                            " '" + card + "' > " + out.string() + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << cmd;
      return "";
    }
    std::stringstream ss;
    ss << std::ifstream(out).rdbuf();
    return ss.str();
  }
};

BenchRow row(const std::string& name, double ms, double share = -1) {
  BenchRow r;
  r.program = "musicrec_bench";
  r.name = name;
  r.median_ms = ms;
  r.share_of_ceiling = share;
  return r;
}

// The A/B table pairs each round's rows of the two builds: the ratio is the median of the rounds' own
// ratios (not the ratio of the medians), the range theirs, and a row one build lacks has "-".
TEST(Bench, AgainstAnotherBuildTheRatioIsTheMedianOfEachRoundsOwn) {
  // Round 2 ran on a slower machine for both builds: its pair still says "this build 2x faster".
  const std::vector<std::vector<BenchRow>> here = {{row("BM_A", 1.0, 0.5), row("BM_New", 3.0)},
                                                   {row("BM_A", 4.0, 0.1), row("BM_New", 3.0)},
                                                   {row("BM_A", 1.2, 0.4), row("BM_New", 3.0)}};
  const std::vector<std::vector<BenchRow>> there = {{row("BM_A", 1.5), row("BM_Gone", 7.0)},
                                                    {row("BM_A", 8.0), row("BM_Gone", 7.0)},
                                                    {row("BM_A", 1.5), row("BM_Gone", 9.0)}};
  const std::string t = ab_table(here, there, "/old/build/bin", {{"host_name", "h"}, {"num_cpus", 2}});
  // Times: medians over the rounds (1.2 and 1.5); ratios 1.5, 2.0, 1.25: median 1.5, not 1.5 / 1.2.
  EXPECT_NE(t.find("| musicrec_bench | BM_A | 1.200 | 1.500 | 1.500 | 1.250-2.000 | 40.0 % |"), std::string::npos) << t;
  EXPECT_NE(t.find("| musicrec_bench | BM_New | 3.000 | - | - | - |  |"), std::string::npos) << t;
  EXPECT_NE(t.find("| musicrec_bench | BM_Gone | - | 7.000 | - | - |  |"), std::string::npos) << t;
  EXPECT_NE(t.find("This build against /old/build/bin, 3 interleaved round(s)"), std::string::npos) << t;
  EXPECT_LT(t.find("BM_A"), t.find("BM_New"));
  EXPECT_LT(t.find("BM_New"), t.find("BM_Gone"));  // this build's rows first, in its order
  EXPECT_THROW(ab_table(here, {there[0]}, "x", nlohmann::json::object()), Error);
}

// `musicrec bench --against DIR`: both builds' programs, interleaved, the first of the two alternating
// between rounds (here "both builds" are one, so every ratio is noise around 1); a folder without the
// programs is an error that names what is missing.
TEST(Bench, AgainstAnotherBuildRunsBothInTurn) {
  const std::string dir = std::filesystem::path(MUSICREC_BIN).parent_path().string();
  if (!std::filesystem::exists(dir + "/musicrec_bench")) GTEST_SKIP() << "benchmarks not built (MUSICREC_BENCH=OFF)";
  BenchOptions o;
  o.quick = true;
  o.filter = "Ceiling_Memcpy";
  o.program_dir = dir;
  o.against = dir;
  o.rounds = 2;
  testing::internal::CaptureStderr();
  const std::string table = run_benchmarks(o);
  const std::string progress = testing::internal::GetCapturedStderr();
  const size_t a = progress.find("bench: running musicrec_bench (this build, round 1 of 2)\n");
  const size_t b = progress.find("bench: running musicrec_bench (the other build, round 1 of 2)\n");
  const size_t c = progress.find("bench: running musicrec_bench (the other build, round 2 of 2)\n");
  const size_t d = progress.find("bench: running musicrec_bench (this build, round 2 of 2)\n");
  ASSERT_NE(d, std::string::npos) << progress;
  EXPECT_TRUE(a < b && b < c && c < d) << progress;
  EXPECT_TRUE(std::regex_search(table, std::regex(R"(\| musicrec_bench \| BM_Ceiling_Memcpy \| [0-9.]+ \| [0-9.]+ \| [0-9]\.[0-9]{3} \| [0-9.]+-[0-9.]+ \| 100\.0 % \|)")))
      << table;
  const MadeUpGpuLogs empty("musicrec-bench-against");
  o.against = empty.dir.string();
  try {
    run_benchmarks(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bench --against: " + o.against + "/musicrec_bench not found"), std::string::npos)
        << e.what();
  }
}

// The GPU check's summary (bench/gpu_summary.py) over made-up logs with a step of every kind it reads:
// the test shards' JSON (a failure and a skip among them), memcheck, parity, samples/s lines, a kernel
// benchmark cut short by its limit, training, and a step the budget skipped. A GPU run is rare: its report must not
// be the part that breaks.
TEST(Bench, GpuCheckSummaryReadsEveryKindOfStep) {
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const MadeUpGpuLogs logs("musicrec-gpu-summary");
  const auto write = [&](const std::string& name, const std::string& text) { logs.write(name, text); };
  write("steps.txt",
        "info|0|1\ntests0|0|50\ntests1|1|48\ntests2|0|47\ntests3|0|49\nmemcheck|0|120\npeer_parity|0|22\n"
        "peer_speed_ours|0|39\npeer_ops|0|9\ncudnn_speed_ours|0|45\ndirect_all_speed_ours|0|20\npairs_gpu_kde|0|33\nbench|124|150\n"
        "compile_warm|0|70\ndemo|skipped|0\n");
  write("run.txt", "452|450\n");
  write("compile_warm.log", "{\"side\": \"torch-compile\", \"model\": \"pairs\", \"batch\": 256, \"warmup_s\": 11.96}\n"
                            "{\"side\": \"torch-compile\", \"model\": \"cf\", \"batch\": 256, \"error\": \"Unsupported: sparse\"}\n"
                            "{\"side\": \"torch-eager\", \"model\": \"pair-head\", \"batch\": 141000}\n"
                            "{\"side\": \"torch-compile\", \"model\": \"pair-head\", \"batch\": 141000}\n");
  auto shard = [](const std::string& suite, const std::string& test, const std::string& extra) {
    return "{\"testsuites\": [{\"name\": \"" + suite + "\", \"testsuite\": [{\"name\": \"" + test +
           "\", \"result\": \"COMPLETED\"" + extra + "}]}]}";
  };
  write("tests0.json", shard("Kde", "Exact", ""));
  write("tests1.json", shard("CudaParity", "Conv2dWithMeasuredAlgorithms", ", \"failures\": [{\"failure\": \"x\"}]"));
  write("tests2.json", "{\"testsuites\": [{\"name\": \"CudaParity\", \"testsuite\": [{\"name\": \"Matmul\", "
                       "\"result\": \"SKIPPED\"}]}]}");
  write("tests3.json", shard("Tensor", "CudaRoundTrip", ""));
  write("memcheck.log", "========= ERROR SUMMARY: 0 errors\n");
  write("peer_parity.log", "{\"model\": \"cf\", \"max_rel_diff\": 1.7e-06}\n{\"model\": \"pairs\", \"max_rel_diff\": 1.8e-06}\n");
  write("peer_speed_ours.log", "{\"model\": \"pairs\", \"batch\": 256, \"samples_per_s\": 68914.2}\n");
  write("peer_ops.log", "{\"side\": \"musicrec\", \"model\": \"op-chain (ops/s)\", \"batch\": 256, \"samples_per_s\": 1844768.3}\n"
                       "{\"side\": \"torch-eager\", \"model\": \"op-chain (ops/s)\", \"batch\": 256, \"samples_per_s\": 319539.5}\n");
  write("cudnn_speed_ours.log", "{\"model\": \"pairs\", \"batch\": 1024, \"samples_per_s\": 101234.0}\n");
  write("direct_all_speed_ours.log", "{\"model\": \"pairs\", \"batch\": 256, \"samples_per_s\": 137828.4}\n");
  write("bench.log", "bench: running musicrec_bench_gpu\n"
                     "bench: [   2.5 s] BM_Ceiling_DeviceCopy/manual_time_median  505 us  548 us  3 GB/s=4.2k\n"
                     "bench: [  30.0 s] BM_ConvBackwardData/2/1024/4/manual_time_median  300 us  320 us  3\n"
                     "bench: [  30.5 s] BM_ConvBackwardData/2/1024/5/manual_time_median  150 us  170 us  3\n"
                     "bench: [  31.0 s] BM_ConvPoolForward/2/1024/1/manual_time_median  300 us  320 us  3\n"
                     "bench: [  31.5 s] BM_ConvPoolForward/2/1024/2/manual_time_median  0.45 ms  0.5 ms  3\n"
                     "bench: [  40.0 s] BM_ConvSigmoidPool_ForwardBackward/3/1024/manual_time_median  0.80 ms  1 ms  3\n"
                     "bench: [  41.0 s] BM_ConvSigmoidPool_Direct_ForwardBackward/3/1024/manual_time_median  820 us  1 ms  3\n"
                     "bench: [  41.5 s] BM_ConvSigmoidPool_Default_ForwardBackward/3/1024/manual_time_median  0.41 ms  1 ms  3\n"
                     "bench: [  61.0 s] BM_ConvBackwardFilter/1/1024/3/manual_time_median  5559 us  5598 us  3\n");
  // With --profile the phase table follows, with a phase named "test" that is not the test line.
  write("pairs_gpu_kde.log", "epoch 2/2: train loss 0.4 | 30300 pairs/s\nbalanced test (best epoch 2): accuracy 0.9162 auc 0.9752\n"
                             "phase               calls      wall ms\ntest                    1       17.303\n");
  // Its timeline (--trace): two 100 us steps; the stream runs 30 + 40 us in the first, 50 us in the
  // second of which 10 us past its end, and an op outside both: 110 of 200 us busy.
  write("pairs_gpu_kde.trace.json",
        R"({"traceEvents": [{"ph": "M", "pid": 1, "tid": 0, "name": "thread_name", "args": {"name": "host thread 1"}},
        {"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "GPU stream"}},
        {"ph": "X", "tid": 0, "cat": "phase", "name": "step", "ts": 0, "dur": 100},
        {"ph": "X", "tid": 0, "cat": "op", "name": "linear", "ts": 1, "dur": 5},
        {"ph": "X", "tid": 1, "cat": "op", "name": "linear", "ts": 10, "dur": 30},
        {"ph": "X", "tid": 1, "cat": "op", "name": "relu", "ts": 50, "dur": 40},
        {"ph": "X", "tid": 0, "cat": "phase", "name": "step", "ts": 200, "dur": 100},
        {"ph": "X", "tid": 1, "cat": "op", "name": "linear", "ts": 260, "dur": 50},
        {"ph": "X", "tid": 1, "cat": "op", "name": "linear", "ts": 500, "dur": 50}]})");
  const std::string md = logs.summary("NVIDIA H200");
  for (const char* want :
       {"NVIDIA H200", "| tests0 | 0 | 50 | all four shards: 2 passed, 1 failed, 1 skipped |",
        "ERROR SUMMARY: 0 errors", "cf max rel diff 1.7e-06; pairs max rel diff 1.8e-06", "pairs@256 68,914/s",
        "| cudnn_speed_ours | 0 | 45 | pairs@1024 101,234/s |",
        "| peer_ops | 0 | 9 | op-chain (ops/s)@256 1,844,768/s; op-chain (ops/s)@256 319,540/s |",
        "| bench | 124 | 150 | cut short: 9 rows finished; the last at 61.0 s: BM_ConvBackwardFilter/1/1024/3/manual_time_median |",
        // The pending choices: samples/s against the default's, row times in either unit, the verdicts,
        // the device tests each needs (one absent from this run's shards).
        "| pair CNN training at 256, samples/s | MUSICREC_CONV_KERNELS=direct-all | direct | 2.00x | faster |",
        "| pair CNN training at 1024, samples/s | MUSICREC_CONV_KERNELS=direct-all | direct | - | not measured |",
        "| conv 2 + pool forward | BM_ConvPoolForward/2/1024/2 | BM_ConvPoolForward/2/1024/1 | 0.67x | slower | "
        "ConvPoolDirectForwardEqualsItsHostEmulation not run |",
        "| conv 3 + pool forward | BM_ConvPoolForward/3/1024/2 | BM_ConvPoolForward/3/1024/1 | - | not measured |",
        "| conv 3 layer, forward + backward | BM_ConvSigmoidPool_Direct_ForwardBackward/3/1024 | "
        "BM_ConvSigmoidPool_Default_ForwardBackward/3/1024 | 0.50x | slower |",
        "30300 pairs/s; accuracy 0.9162 auc 0.9752; GPU busy 55 % of the steps' wall time |", "| demo | skipped | 0 |",
        "| compile_warm | 0 | 70 | pairs@256 warm-up 12.0 s; cf@256 Unsupported: sparse; pair-head@141000 compiled |",
        "Whole run: 452 s (budget 450 s; 8 minutes = 480 s): 1 step(s) skipped for time (demo), 1 cut at their "
        "limit (bench).",
        "Failed tests: CudaParity.Conv2dWithMeasuredAlgorithms"})
    EXPECT_NE(md.find(want), std::string::npos) << "missing '" << want << "' in:\n" << md;
}

// A run of some steps only (MUSICREC_GPU_STEPS): one test shard's results are that shard's, and the
// shards that did not run are not reported missing.
TEST(Bench, GpuCheckSummaryOfSomeStepsReportsOnlyThose) {
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  const MadeUpGpuLogs logs("musicrec-gpu-summary-some");
  logs.write("steps.txt", "info|0|1\ntests2|0|9\n");
  logs.write("run.txt", "12|450\n");
  logs.write("tests2.json", "{\"testsuites\": [{\"name\": \"Kde\", \"testsuite\": [{\"name\": \"Exact\", "
                            "\"result\": \"COMPLETED\"}]}]}");
  const std::string md = logs.summary("NVIDIA H100");
  EXPECT_NE(md.find("| tests2 | 0 | 9 | shard 2: 1 passed, 0 failed, 0 skipped |"), std::string::npos) << md;
  EXPECT_EQ(md.find("Failed tests"), std::string::npos) << md;
  EXPECT_NE(md.find("Whole run: 12 s (budget 450 s; 8 minutes = 480 s): all 2 steps ran."), std::string::npos) << md;
}

}  // namespace
}  // namespace musicrec::apps
