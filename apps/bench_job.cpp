// The benchmark runner behind `musicrec bench` (see bench_job.h).
#include "apps/bench_job.h"

#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <string_view>

#include "engine/device.h"
#include "engine/json_files.h"
#include "kernels/cpu/parallel.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace fs = std::filesystem;

namespace {

double to_ms(double t, const std::string& unit) {
  if (unit == "ns") return t * 1e-6;
  if (unit == "us") return t * 1e-3;
  if (unit == "s") return t * 1e3;
  return t;
}

// The rate counter of a benchmark: the first of these it reports. Google Benchmark writes counters in
// base units (FLOP/s, bytes/s) whatever their names say, so each name carries its display scale.
struct RateUnit {
  const char* name;
  double scale;
};
const RateUnit kRateUnits[] = {{"GFLOP/s", 1e9}, {"GB/s", 1e9}, {"MB/s", 1e6}, {"samples/s", 1}, {"rows/s", 1}, {"songs/s", 1},
                               {"pairs/s", 1}};

// Runs one benchmark program with its output going to `log`; each finished row's median is echoed to
// stderr with the seconds since `start`, so a run of minutes shows its progress (and a run cut short
// by a time limit still shows how far it got and how long each row took, setup included). Returns a
// description of how the program ended: empty when it exited 0.
std::string run_benchmark_program(const std::string& cmd, const std::string& log,
                                  std::chrono::steady_clock::time_point start) {
  FILE* out = std::fopen(log.c_str(), "w");
  MR_CHECK(out != nullptr, "bench: cannot write " + log);
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) std::fclose(out);
  MR_CHECK(pipe != nullptr, "bench: cannot start " + cmd);
  char* line = nullptr;
  size_t cap = 0;
  for (ssize_t n; (n = ::getline(&line, &cap, pipe)) > 0;) {
    std::fwrite(line, 1, size_t(n), out);
    const std::string_view text(line, size_t(n));
    // The median of each (the figure the table uses) and any row that reported an error.
    if (text.substr(0, 3) == "BM_" &&
        (text.find("_median") != std::string_view::npos || text.find("ERROR") != std::string_view::npos)) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      fmt::print(stderr, "bench: [{:6.1f} s] {}", s, text);
    }
  }
  std::free(line);
  std::fclose(out);
  const int status = ::pclose(pipe);
  if (status == 0) return "";
  if (status == -1) return "its exit status could not be read";
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

std::string this_program_dir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : self.parent_path().string();
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The key the multiply-add peak is kept under beside the ceilings' units.
constexpr const char* kPeak = "peak GFLOP/s";

// The machine line's words: host, CPUs, the CPU kernels' thread count (MUSICREC_CPU_THREADS or the
// default, which the benchmark programs, started with this process's environment, ran with), the load
// at the start and the date, from Google Benchmark's context.
std::string machine_words(const nlohmann::json& context) {
  std::string load = "?";
  if (context.contains("load_avg") && context["load_avg"].is_array() && !context["load_avg"].empty())
    load = fmt::format("{:.2f}", context["load_avg"][0].get<double>());
  return fmt::format("{}, {} CPUs at {} MHz, CPU kernels on {} thread(s), load average {} at the start, {}",
                     context.value("host_name", std::string("?")), context.value("num_cpus", 0),
                     context.value("mhz_per_cpu", 0), kernels::cpu::cpu_threads(), load,
                     context.value("date", std::string("?")));
}

}  // namespace

std::vector<BenchRow> bench_rows(const std::string& program, const nlohmann::json& report, nlohmann::json& ceilings) {
  MR_CHECK(report.contains("benchmarks") && report["benchmarks"].is_array(),
           program + ": the benchmark output has no \"benchmarks\" list");
  const auto& all = report["benchmarks"];
  const bool aggregated = std::any_of(all.begin(), all.end(), [](const nlohmann::json& b) {
    return b.value("run_type", "") == "aggregate";
  });
  std::vector<BenchRow> rows;
  nlohmann::json own = nlohmann::json::object();
  // The GPU program's report is the one with the GPU's ceilings: its peak is the GPU's too.
  const bool gpu_report = std::any_of(all.begin(), all.end(), [](const nlohmann::json& b) {
    return b.value("run_name", b.value("name", std::string())).rfind("BM_Ceiling_DeviceCopy", 0) == 0;
  });
  nlohmann::json& peak = gpu_report ? own : ceilings;
  for (const auto& b : all) {
    if (aggregated && b.value("aggregate_name", "") != "median") continue;
    BenchRow r;
    r.program = program;
    r.name = b.value("run_name", b.value("name", std::string("?")));
    // Google Benchmark names a row timed by the wall clock or by the benchmark's own (CUDA event) timer
    // "/real_time" or "/manual_time"; every row is one or the other (the GPU's by events, the CPU
    // programs' by the wall clock), so the table names them as they are registered.
    for (const std::string_view suffix : {"/real_time", "/manual_time"})
      if (r.name.size() > suffix.size() && std::string_view(r.name).substr(r.name.size() - suffix.size()) == suffix)
        r.name.resize(r.name.size() - suffix.size());
    r.median_ms = to_ms(b.value("real_time", 0.0), b.value("time_unit", std::string("ns")));
    for (const RateUnit& u : kRateUnits)
      if (b.contains(u.name) && b[u.name].is_number()) {
        r.rate_unit = u.name;
        r.rate = b[u.name].get<double>() / u.scale;
        break;
      }
    if (r.name.rfind("BM_Ceiling_Memcpy", 0) == 0 && r.rate_unit == "GB/s") ceilings["GB/s"] = r.rate;
    if (r.name.rfind("BM_Ceiling_Sgemm", 0) == 0 && r.rate_unit == "GFLOP/s") ceilings["GFLOP/s"] = r.rate;
    // The GPU's ceilings hold for the GPU program's rows only.
    if (r.name.rfind("BM_Ceiling_DeviceCopy", 0) == 0 && r.rate_unit == "GB/s") own["GB/s"] = r.rate;
    if (r.name.rfind("BM_Ceiling_CublasSgemm", 0) == 0 && r.rate_unit == "GFLOP/s") own["GFLOP/s"] = r.rate;
    // The multiply-add peak, the bound no product passes: where the library's sgemm is not tuned for
    // the CPU (OpenBLAS pinned to AVX2 on an AVX-512 machine) kernels pass that ceiling, not this one.
    if (r.name.rfind("BM_Peak_Fma", 0) == 0 && r.rate_unit == "GFLOP/s") peak[kPeak] = r.rate;
    rows.push_back(r);
  }
  for (BenchRow& r : rows) {
    const nlohmann::json& c = own.contains(r.rate_unit) ? own : ceilings;
    if (!r.rate_unit.empty() && c.contains(r.rate_unit) && c[r.rate_unit].get<double>() > 0)
      r.share_of_ceiling = r.rate / c[r.rate_unit].get<double>();
    if (r.rate_unit == "GFLOP/s" && peak.contains(kPeak) && peak[kPeak].get<double>() > 0)
      r.share_of_peak = r.rate / peak[kPeak].get<double>();
  }
  return rows;
}

std::string bench_table(const std::vector<BenchRow>& rows, const nlohmann::json& context) {
  std::string t = "Machine: " + machine_words(context) + " (medians over repetitions)\n\n";
  t += "| program | benchmark | median time (ms) | rate | share of the machine's ceiling | share of the FMA peak |\n";
  t += "| --- | --- | ---: | ---: | ---: | ---: |\n";
  const auto percent = [](double share) { return share < 0 ? std::string() : fmt::format("{:.1f} %", 100 * share); };
  for (const BenchRow& r : rows)
    t += fmt::format("| {} | {} | {:.3f} | {} | {} | {} |\n", r.program, r.name, r.median_ms,
                     r.rate_unit.empty() ? "" : fmt::format("{:.4g} {}", r.rate, r.rate_unit),
                     percent(r.share_of_ceiling), percent(r.share_of_peak));
  return t;
}

namespace {
// Whether the user's filter picks this benchmark itself (the ceilings run with any filter): Google
// Benchmark's test, a POSIX extended regex searched in the name.
bool matches_filter(const std::string& name, const std::string& filter) {
  try {
    return std::regex_search(name, std::regex(filter, std::regex::extended));
  } catch (const std::regex_error&) {
    return true;  // Google Benchmark accepted it (the program ran): count the rows as asked for
  }
}

// A filter that picked nothing but the ceilings and the peak (which always run) is a mistake to report.
void check_filter_matched(const BenchOptions& o, const std::vector<BenchRow>& rows) {
  MR_CHECK(o.filter.empty() || std::any_of(rows.begin(), rows.end(), [&](const BenchRow& r) {
             return (r.name.rfind("BM_Ceiling_", 0) != 0 && r.name.rfind("BM_Peak_Fma", 0) != 0) ||
                    matches_filter(r.name, o.filter);
           }),
           "bench --filter: no benchmark matches '" + o.filter + "'");
}

// The programs `o` asks for, found in `dir` (the GPU's only where there is a device to run it).
std::vector<std::string> bench_programs(const BenchOptions& o, const std::string& dir) {
  std::vector<std::string> programs;
  if (!o.gpu_only) programs.push_back("musicrec_bench");
  if (!o.quick && !o.gpu_only) programs.insert(programs.end(), {"musicrec_bench_cf", "musicrec_bench_recommend"});
  // The GPU kernels where there is a GPU to run them on (the program is built with the CUDA backend).
  const bool gpu = cuda_device_count() > 0 && fs::exists(dir + "/musicrec_bench_gpu");
  MR_CHECK(gpu || !o.gpu_only, "bench --gpu-only: " +
                                   (cuda_device_count() > 0 ? dir + "/musicrec_bench_gpu not found (a build without CUDA)"
                                                            : "no CUDA device (" + cuda_unavailable_reason() + ")"));
  if (gpu) programs.push_back("musicrec_bench_gpu");
  return programs;
}

// What one run of the programs shares: where its files go, when it began (the progress lines'
// seconds), the options.
struct RunPlace {
  const BenchOptions& o;
  std::string tmp;
  std::chrono::steady_clock::time_point start;
};

// Runs one benchmark program (`dir`/`name`) and returns its rows, their shares taken against
// `ceilings` (which it extends with the ones it measures); sets `context` from its report if unset.
// In an A/B run `label` names the build and round in the progress lines and `tag` in the file names
// (both "" otherwise). A program in which the filter matches nothing contributes no rows.
std::vector<BenchRow> run_program(const RunPlace& at, const std::string& dir, const std::string& name,
                                  const std::string& label, const std::string& tag, nlohmann::json& ceilings,
                                  nlohmann::json& context) {
  const BenchOptions& o = at.o;
  const std::string exe = dir + "/" + name;
  MR_CHECK(fs::exists(exe), exe + " not found: benchmarks are built with -DMUSICREC_BENCH=ON (the default) "
                                  "beside the musicrec program");
  const std::string file = at.tmp + "/" + name + tag;
  const std::string json_path = file + ".json";
  std::string cmd = shell_quote(exe) + " --benchmark_repetitions=" + std::to_string(o.quick ? 3 : 5) +
                    " --benchmark_report_aggregates_only=true --benchmark_out_format=json --benchmark_out=" +
                    shell_quote(json_path);
  // The GPU program's minimum is of timed (CUDA event) time, and each of its iterations also flushes
  // the L2 and waits for the host beyond the op (tens of microseconds by estimate: the flush is a
  // 120 MB memset on an H200, ~30 us at its copy rate): at 0.05 s a 3 us kernel would run ~17,000
  // iterations (Google Benchmark aims 40 % past the minimum), about a second of wall time per
  // repetition. A fifth of that still gives thousands of samples for the small kernels and two or
  // more for the 5 ms ones, whose repeats agreed within 0.5-1.5 % on the H200 of 2026-11-28 with
  // three iterations each.
  if (o.quick) cmd += name == "musicrec_bench_gpu" ? " --benchmark_min_time=0.01" : " --benchmark_min_time=0.05";
  // The ceilings and the peak run whatever the filter, so that a filtered table still gives its
  // shares of them.
  if (!o.filter.empty()) cmd += " --benchmark_filter=" + shell_quote("(" + o.filter + ")|^BM_Ceiling_|^BM_Peak_Fma");
  fmt::print(stderr, "bench: running {}{}\n", name, label.empty() ? "" : " (" + label + ")");
  const std::string log = file + ".log";
  const std::string how = run_benchmark_program(cmd, log, at.start);
  MR_CHECK(how.empty(), exe + " failed (" + how + "; its output: " + log + ")");
  // A program with no benchmark the filter matches writes an empty report: it contributes no rows.
  std::error_code ec;
  if (!o.filter.empty() && (!fs::exists(json_path) || fs::file_size(json_path, ec) == 0)) return {};
  nlohmann::json report = read_json_file(json_path);
  if (context.is_null() && report.contains("context")) context = report["context"];
  return bench_rows(name, report, ceilings);
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::string ab_table(const std::vector<std::vector<BenchRow>>& here, const std::vector<std::vector<BenchRow>>& there,
                     const std::string& there_name, const nlohmann::json& context) {
  MR_CHECK(here.size() == there.size() && !here.empty(), "bench --against: the two builds ran different numbers of rounds");
  // Rows in the order this build reports them, then any only the other build has.
  struct Pair {
    std::string program, name;
    std::vector<double> here_ms, there_ms, share, ratio;
  };
  std::vector<Pair> pairs;
  std::map<std::pair<std::string, std::string>, size_t> index;
  const auto pair_of = [&](const BenchRow& r) -> Pair& {
    auto [it, fresh] = index.try_emplace({r.program, r.name}, pairs.size());
    if (fresh) pairs.push_back({r.program, r.name, {}, {}, {}, {}});
    return pairs[it->second];
  };
  for (size_t round = 0; round < here.size(); ++round) {
    std::map<std::pair<std::string, std::string>, double> here_now;
    for (const BenchRow& r : here[round]) {
      Pair& p = pair_of(r);
      p.here_ms.push_back(r.median_ms);
      if (r.share_of_ceiling >= 0) p.share.push_back(r.share_of_ceiling);
      here_now[{r.program, r.name}] = r.median_ms;
    }
    for (const BenchRow& r : there[round]) {
      Pair& p = pair_of(r);
      p.there_ms.push_back(r.median_ms);
      // The round's own ratio: both builds' times from the same round, run one after the other.
      auto h = here_now.find({r.program, r.name});
      if (h != here_now.end() && h->second > 0) p.ratio.push_back(r.median_ms / h->second);
    }
  }
  std::string t = fmt::format(
      "Machine: {}. This build against {}, {} interleaved round(s), the order of the two alternating; each time is "
      "the median over the rounds of each round's median over its repetitions, the ratio the median of the "
      "rounds' own ratios. A ratio above 1: this build is faster. The ceilings' ratios show the run's noise.\n\n",
      machine_words(context), there_name, here.size());
  t += "| program | benchmark | this build (ms) | other build (ms) | other / this | rounds' range | "
       "share of the machine's ceiling (this build) |\n";
  t += "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
  const auto ms = [](const std::vector<double>& v) { return v.empty() ? std::string("-") : fmt::format("{:.3f}", median_of(v)); };
  for (const Pair& p : pairs) {
    std::string ratio = "-", range = "-";
    // The median of the rounds' own ratios: within a round the two builds ran minutes apart at most,
    // so a machine that drifts between rounds moves both times of a pair together.
    if (!p.ratio.empty()) {
      ratio = fmt::format("{:.3f}", median_of(p.ratio));
      range = fmt::format("{:.3f}-{:.3f}", *std::min_element(p.ratio.begin(), p.ratio.end()),
                          *std::max_element(p.ratio.begin(), p.ratio.end()));
    }
    const std::string share = p.share.empty() ? std::string() : fmt::format("{:.1f} %", 100 * median_of(p.share));
    t += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", p.program, p.name, ms(p.here_ms), ms(p.there_ms), ratio,
                     range, share);
  }
  return t;
}

std::string run_benchmarks(const BenchOptions& o) {
  const std::string dir = o.program_dir.empty() ? this_program_dir() : o.program_dir;
  const std::vector<std::string> programs = bench_programs(o, dir);
  if (!o.against.empty()) {
    MR_CHECK(o.rounds >= 1, "bench --rounds: must be at least 1, got " + std::to_string(o.rounds));
    MR_CHECK(fs::is_directory(o.against), "bench --against: " + o.against + " is not a folder (give the bin folder of "
                                              "another build, the one that holds its musicrec_bench)");
    for (const std::string& name : programs)
      MR_CHECK(fs::exists(o.against + "/" + name), "bench --against: " + o.against + "/" + name +
                                                       " not found (build the other checkout with its benchmarks, "
                                                       "the same kind of build as this one)");
  }
  // Under $TMPDIR where set (a caller that keeps its logs there keeps these too).
  std::string tmpl = (fs::temp_directory_path() / "musicrec-bench-XXXXXX").string();
  MR_CHECK(::mkdtemp(tmpl.data()) != nullptr, "bench: cannot create a temporary folder under " +
                                                  fs::temp_directory_path().string());
  const RunPlace at{o, tmpl, std::chrono::steady_clock::now()};
  nlohmann::json context;
  std::string table;
  if (o.against.empty()) {
    nlohmann::json ceilings = nlohmann::json::object();
    std::vector<BenchRow> rows;
    for (const std::string& name : programs) {
      auto r = run_program(at, dir, name, "", "", ceilings, context);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    check_filter_matched(o, rows);
    table = bench_table(rows, context.is_null() ? nlohmann::json::object() : context);
  } else {
    // Each round runs every program of both builds, one after the other, the first of the two
    // alternating between rounds, so that a machine that speeds up or slows down during the run
    // weighs on both alike. Each build's rows take their shares from the ceilings it measured.
    const size_t rounds = size_t(o.rounds);
    std::vector<std::vector<BenchRow>> here(rounds), there(rounds);
    for (size_t round = 0; round < rounds; ++round) {
      nlohmann::json here_ceilings = nlohmann::json::object(), there_ceilings = nlohmann::json::object();
      for (const std::string& name : programs)
        for (int turn = 0; turn < 2; ++turn) {
          const bool this_build = (turn == 0) == (round % 2 == 0);
          const std::string label = fmt::format("{} build, round {} of {}", this_build ? "this" : "the other", round + 1, rounds);
          const std::string tag = fmt::format("-{}{}", this_build ? "this" : "other", round + 1);
          auto r = this_build ? run_program(at, dir, name, label, tag, here_ceilings, context)
                              : run_program(at, o.against, name, label, tag, there_ceilings, context);
          auto& into = this_build ? here[round] : there[round];
          into.insert(into.end(), r.begin(), r.end());
        }
    }
    check_filter_matched(o, here[0]);
    table = ab_table(here, there, o.against, context.is_null() ? nlohmann::json::object() : context);
  }
  fs::remove_all(at.tmp);
  if (!o.out.empty()) write_text_file(o.out, table);
  return table;
}

}  // namespace musicrec::apps
