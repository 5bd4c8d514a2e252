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
  std::string load = "?";
  if (context.contains("load_avg") && context["load_avg"].is_array() && !context["load_avg"].empty())
    load = fmt::format("{:.2f}", context["load_avg"][0].get<double>());
  // The CPU kernels' thread count (MUSICREC_CPU_THREADS or the default) is what the benchmark programs,
  // started with this process's environment, ran with.
  std::string t = fmt::format(
      "Machine: {}, {} CPUs at {} MHz, CPU kernels on {} thread(s), load average {} at the start, {} (medians over "
      "repetitions)\n\n",
      context.value("host_name", std::string("?")), context.value("num_cpus", 0), context.value("mhz_per_cpu", 0),
      kernels::cpu::cpu_threads(), load, context.value("date", std::string("?")));
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
}  // namespace

std::string run_benchmarks(const BenchOptions& o) {
  const std::string dir = o.program_dir.empty() ? this_program_dir() : o.program_dir;
  std::vector<std::string> programs;
  if (!o.gpu_only) programs.push_back("musicrec_bench");
  if (!o.quick && !o.gpu_only) programs.insert(programs.end(), {"musicrec_bench_cf", "musicrec_bench_recommend"});
  // The GPU kernels where there is a GPU to run them on (the program is built with the CUDA backend).
  const bool gpu = cuda_device_count() > 0 && fs::exists(dir + "/musicrec_bench_gpu");
  MR_CHECK(gpu || !o.gpu_only, "bench --gpu-only: " +
                                   (cuda_device_count() > 0 ? dir + "/musicrec_bench_gpu not found (a build without CUDA)"
                                                            : "no CUDA device (" + cuda_unavailable_reason() + ")"));
  if (gpu) programs.push_back("musicrec_bench_gpu");
  const int repetitions = o.quick ? 3 : 5;
  nlohmann::json ceilings = nlohmann::json::object(), context;
  std::vector<BenchRow> rows;
  // Under $TMPDIR where set (a caller that keeps its logs there keeps these too).
  std::string tmpl = (fs::temp_directory_path() / "musicrec-bench-XXXXXX").string();
  MR_CHECK(::mkdtemp(tmpl.data()) != nullptr, "bench: cannot create a temporary folder under " +
                                                  fs::temp_directory_path().string());
  const std::string tmp = tmpl;
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& name : programs) {
    const std::string exe = dir + "/" + name;
    MR_CHECK(fs::exists(exe), exe + " not found: benchmarks are built with -DMUSICREC_BENCH=ON (the default) "
                                    "beside the musicrec program");
    const std::string json_path = tmp + "/" + name + ".json";
    std::string cmd = shell_quote(exe) + " --benchmark_repetitions=" + std::to_string(repetitions) +
                      " --benchmark_report_aggregates_only=true --benchmark_out_format=json --benchmark_out=" +
                      shell_quote(json_path);
    if (o.quick) cmd += " --benchmark_min_time=0.05";
    // The ceilings and the peak run whatever the filter, so that a filtered table still gives its
    // shares of them.
    if (!o.filter.empty()) cmd += " --benchmark_filter=" + shell_quote("(" + o.filter + ")|^BM_Ceiling_|^BM_Peak_Fma");
    fmt::print(stderr, "bench: running {}\n", name);
    const std::string log = tmp + "/" + name + ".log";
    const std::string how = run_benchmark_program(cmd, log, start);
    MR_CHECK(how.empty(), exe + " failed (" + how + "; its output: " + log + ")");
    // A program with no benchmark the filter matches writes an empty report: it contributes no rows.
    std::error_code ec;
    if (!o.filter.empty() && (!fs::exists(json_path) || fs::file_size(json_path, ec) == 0)) continue;
    nlohmann::json report = read_json_file(json_path);
    if (context.is_null() && report.contains("context")) context = report["context"];
    auto r = bench_rows(name, report, ceilings);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  fs::remove_all(tmp);
  MR_CHECK(o.filter.empty() || std::any_of(rows.begin(), rows.end(), [&](const BenchRow& r) {
             return (r.name.rfind("BM_Ceiling_", 0) != 0 && r.name.rfind("BM_Peak_Fma", 0) != 0) ||
                    matches_filter(r.name, o.filter);
           }),
           "bench --filter: no benchmark matches '" + o.filter + "'");
  const std::string table = bench_table(rows, context.is_null() ? nlohmann::json::object() : context);
  if (!o.out.empty()) write_text_file(o.out, table);
  return table;
}

}  // namespace musicrec::apps
