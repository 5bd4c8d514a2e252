// The profiler: ops are counted and timed when enabled, nested ops are attributed to the outermost,
// backward passes appear under their own names, and nothing is recorded when disabled.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/chrome_trace.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "kernels/error.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {

TEST(Profiler, CountsOutermostOpsAndBackward) {
  profiler::reset();
  profiler::set_enabled(true);
  Tensor x = test::random_tensor({8, 4}, 1).set_requires_grad(true);
  Tensor w = test::random_tensor({3, 4}, 2).set_requires_grad(true);
  for (int i = 0; i < 3; ++i) ops::sum(ops::linear(x, w, Tensor())).backward();
  profiler::set_enabled(false);
  auto stats = profiler::snapshot();
  auto find = [&](const std::string& n) -> const profiler::OpStat* {
    for (auto& s : stats)
      if (s.name == n) return &s;
    return nullptr;
  };
  ASSERT_NE(find("linear"), nullptr);
  EXPECT_EQ(find("linear")->calls, 3u);
  EXPECT_EQ(find("matmul"), nullptr) << "matmul inside linear must not be counted on its own";
  ASSERT_NE(find("matmul (backward)"), nullptr);
  EXPECT_EQ(find("matmul (backward)")->calls, 3u);
  EXPECT_NE(profiler::report().find("linear"), std::string::npos);
  profiler::reset();
  ops::sigmoid(x);
  EXPECT_TRUE(profiler::snapshot().empty());
}

// Phases (profiler::Range) are timed on the host clock and charged with the op time inside them, the
// innermost phase taking an op; host work between ops shows as time outside ops.
TEST(Profiler, PhasesChargeTheirOpsAndShowTimeOutsideThem) {
  profiler::reset();
  profiler::set_enabled(true);
  Tensor x = test::random_tensor({256, 256}, 3);
  {
    profiler::Range step("step");
    for (int i = 0; i < 3; ++i) ops::matmul(x, x);
    {
      profiler::Range inner("inner");
      ops::sigmoid(x);
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }  // host work: no op
  }
  profiler::set_enabled(false);
  const auto phases = profiler::phases();
  ASSERT_EQ(phases.size(), 2u);
  EXPECT_EQ(phases[0].name, "step");
  EXPECT_EQ(phases[0].calls, 1u);
  EXPECT_GE(phases[0].wall_ms, 20.0);
  EXPECT_GT(phases[0].op_ms, 0.0);
  EXPECT_GE(phases[0].wall_ms - phases[0].op_ms, 19.0) << "the busy wait is outside every op";
  EXPECT_EQ(phases[1].name, "inner");
  EXPECT_GT(phases[1].op_ms, 0.0);
  double matmul_ms = 0;
  for (auto& s : profiler::snapshot())
    if (s.name == "matmul") matmul_ms = s.total_ms;
  EXPECT_NEAR(phases[0].op_ms, matmul_ms, 1e-9) << "the sigmoid belongs to the inner phase, the matmuls to step";
  EXPECT_NE(profiler::report().find("outside ms"), std::string::npos);
  profiler::reset();
  EXPECT_TRUE(profiler::phases().empty());
}

// Bytes: an op's compulsory traffic (inputs read once, outputs written once) summed over its calls,
// with the outermost op's figure kept for nested ones, and "-" for an op that does not report.
TEST(Profiler, SumsTheBytesEachOpReports) {
  profiler::reset();
  profiler::set_enabled(true);
  Tensor x = test::random_tensor({2, 3, 6, 8}, 4).set_requires_grad(true);  // 288 doubles
  Tensor b = test::random_tensor({3}, 5);
  for (int i = 0; i < 2; ++i) ops::sum(ops::maxpool2x2(ops::bias_sigmoid(x, b))).backward();
  Tensor w = test::random_tensor({5, 8}, 6), h = test::random_tensor({7, 8}, 7);
  ops::linear(h, w, Tensor());
  profiler::set_enabled(false);
  std::map<std::string, profiler::OpStat> by_name;
  for (auto& s : profiler::snapshot()) by_name[s.name] = s;
  const double X = 288 * 8, pooled = 72;  // bytes of x; elements after pooling
  EXPECT_EQ(by_name["bias_sigmoid"].calls_with_bytes, 2u);
  EXPECT_DOUBLE_EQ(by_name["bias_sigmoid"].bytes, 2 * (2 * X + 3 * 8));  // x, b, y
  EXPECT_DOUBLE_EQ(by_name["bias_sigmoid (backward)"].bytes, 2 * (3 * X + 3 * 8));  // y, dy, dx, db
  EXPECT_DOUBLE_EQ(by_name["maxpool2x2"].bytes, 2 * (X + pooled * 8 + pooled * 4));  // x, y, int32 argmax
  EXPECT_DOUBLE_EQ(by_name["maxpool2x2 (backward)"].bytes, 2 * (pooled * 8 + pooled * 4 + X));
  // linear nests matmul: its own count (x, w and the [7, 5] output) is the one kept.
  EXPECT_DOUBLE_EQ(by_name["linear"].bytes, 7 * 8 * 8 + 5 * 8 * 8 + 7 * 5 * 8);
  EXPECT_EQ(by_name.count("matmul"), 0u);
  const std::string report = profiler::report();
  EXPECT_NE(report.find("GB/s"), std::string::npos);
  profiler::reset();
}

nlohmann::json read_trace(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return nlohmann::json::parse(f);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()) + ".json")).string();
}

// The timeline: every timed scope a slice with its start and duration, ops inside the phase that held
// them on the same host track, nested ops inside the outermost one's slice and not slices of their
// own, what the op moves as an argument; a scope that began before the trace is not in it.
TEST(Profiler, TraceIsATimelineOfTheTimedScopes) {
  profiler::reset();
  Tensor x = test::random_tensor({64, 32}, 8).set_requires_grad(true);
  Tensor w = test::random_tensor({16, 32}, 9).set_requires_grad(true);
  profiler::set_enabled(true);
  {
    profiler::Range before("before");  // begun before the trace and ended in it: not a slice of it
    ops::sigmoid(x);                   // ended before the trace
    profiler::start_trace();
  }
  EXPECT_TRUE(profiler::tracing());
  for (int i = 0; i < 2; ++i) {
    profiler::Range step("step");
    ops::sum(ops::linear(x, w, Tensor())).backward();
  }
  const std::string path = temp_path("musicrec-trace");
  profiler::write_trace(path);
  EXPECT_FALSE(profiler::tracing());
  EXPECT_TRUE(profiler::enabled()) << "profiling stays on: the table still wants the run";
  profiler::set_enabled(false);
  const nlohmann::json trace = read_trace(path);
  std::filesystem::remove(path);
  EXPECT_EQ(trace["otherData"]["dropped_slices"], 0);
  std::map<std::string, std::vector<nlohmann::json>> by_name;
  std::map<int, std::string> track_names;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "X") by_name[e["name"].get<std::string>()].push_back(e);
    if (e["ph"] == "M" && e["name"] == "thread_name") track_names[e["tid"].get<int>()] = e["args"]["name"];
  }
  ASSERT_EQ(by_name["step"].size(), 2u);
  ASSERT_EQ(by_name["linear"].size(), 2u);
  EXPECT_EQ(by_name["matmul (backward)"].size(), 2u);
  EXPECT_EQ(by_name.count("matmul"), 0u) << "matmul inside linear is part of linear's slice";
  EXPECT_EQ(by_name.count("sigmoid"), 0u) << "the sigmoid ended before the trace began";
  EXPECT_EQ(by_name.count("before"), 0u) << "the phase began before the trace did";
  for (int i = 0; i < 2; ++i) {
    const auto& step = by_name["step"][i];
    const auto& lin = by_name["linear"][i];
    EXPECT_EQ(step["cat"], "phase");
    EXPECT_EQ(lin["cat"], "op");
    EXPECT_EQ(lin["tid"], step["tid"]);
    EXPECT_EQ(track_names[lin["tid"].get<int>()], "host thread 1");
    const double s0 = step["ts"], s1 = s0 + step["dur"].get<double>();
    const double l0 = lin["ts"], l1 = l0 + lin["dur"].get<double>();
    EXPECT_GE(l0, s0);
    EXPECT_LE(l1, s1 + 1e-3);
    EXPECT_GT(lin["dur"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(lin["args"]["bytes"].get<double>(), (64 * 32 + 16 * 32 + 64 * 16) * 8.0);  // x, w, y (double)
  }
  EXPECT_LT(by_name["step"][0]["ts"].get<double>(), by_name["step"][1]["ts"].get<double>());
  EXPECT_THROW(profiler::write_trace(path), Error) << "the trace was written and ended";
  profiler::reset();
}

// A trace holds at most its limit of slices and counts the rest.
TEST(Profiler, TraceKeepsToItsLimitAndCountsWhatItDropped) {
  profiler::reset();
  Tensor x = test::random_tensor({8, 8}, 10);
  profiler::start_trace(3);
  for (int i = 0; i < 5; ++i) ops::sigmoid(x);
  const std::string path = temp_path("musicrec-trace-limit");
  profiler::write_trace(path);
  profiler::set_enabled(false);
  const nlohmann::json trace = read_trace(path);
  std::filesystem::remove(path);
  int slices = 0;
  for (const auto& e : trace["traceEvents"]) slices += e["ph"] == "X";
  EXPECT_EQ(slices, 3);
  EXPECT_EQ(trace["otherData"]["dropped_slices"], 2);
  EXPECT_THROW(profiler::start_trace(0), Error);
  profiler::reset();
}

// A trace that cannot be written names the file, and leaves nothing there.
TEST(Profiler, TraceThatCannotBeWrittenSaysWhere) {
  profiler::start_trace();
  const std::string path = (std::filesystem::temp_directory_path() / "musicrec-no-such-folder" / "t.json").string();
  try {
    profiler::write_trace(path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  profiler::set_enabled(false);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// On a GPU the ops are slices of the stream's own track, placed by their CUDA events on the host's
// clock: each inside the phase that queued it (the phase waits for the stream at its end while
// profiling), in order, and not overlapping one another on the one stream.
TEST(Profiler, TraceOfCudaOpsIsOnTheStreamsTrackInsideTheirPhase) {
  MR_REQUIRE_CUDA();
  profiler::reset();
  // Products of ~0.1 ms or more, so that a step lasts far longer than the clocks' alignment error.
  Tensor x = test::random_tensor({1536, 1536}, 11, -1, 1, DType::F32).to(Device::cuda());
  ops::matmul(x, x);  // the context, cuBLAS's handle and workspace, before the trace
  profiler::start_trace();
  for (int i = 0; i < 3; ++i) {
    profiler::Range step("step");
    for (int j = 0; j < 4; ++j) ops::sigmoid(ops::matmul(x, x));
  }
  const std::string path = temp_path("musicrec-trace-cuda");
  profiler::write_trace(path);
  profiler::set_enabled(false);
  const nlohmann::json trace = read_trace(path);
  std::filesystem::remove(path);
  int gpu_track = -1;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == "GPU stream") gpu_track = e["tid"];
  ASSERT_GE(gpu_track, 0) << trace.dump(1);
  std::vector<nlohmann::json> steps, ops_on_gpu;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    if (e["name"] == "step") steps.push_back(e);
    else if (e["tid"] == gpu_track) ops_on_gpu.push_back(e);
    else ADD_FAILURE() << "a GPU op on a host track: " << e.dump();
  }
  ASSERT_EQ(steps.size(), 3u);
  ASSERT_EQ(ops_on_gpu.size(), 24u);  // 3 x 4 x (matmul, sigmoid)
  double last_end = -1;
  for (size_t i = 0; i < ops_on_gpu.size(); ++i) {
    const auto& op = ops_on_gpu[i];
    EXPECT_EQ(op["name"], i % 2 ? "sigmoid" : "matmul");
    const double t0 = op["ts"], t1 = t0 + op["dur"].get<double>();
    EXPECT_GT(op["dur"].get<double>(), 0.0);
    // One stream runs one op at a time; 1 us for the events' and the clocks' rounding.
    EXPECT_GE(t0, last_end - 1.0) << op.dump();
    last_end = t1;
    const auto& step = steps[i / 8];
    // Launched inside the phase and finished before it ended; 100 us for aligning the two clocks (the
    // host reads its clock when a wait for the stream returns, a little after the event completed).
    EXPECT_GE(t0, step["ts"].get<double>() - 100) << op.dump() << step.dump();
    EXPECT_LE(t1, step["ts"].get<double>() + step["dur"].get<double>() + 100) << op.dump() << step.dump();
  }
  profiler::reset();
}

// The JSON itself: names escaped, times in microseconds to the nanosecond, bytes only where known.
TEST(Profiler, ChromeTraceJsonEscapesNamesAndKeepsNanoseconds) {
  const std::vector<profiler::TraceSlice> slices = {{"a \"quoted\" \\ name\n", "op", 0, 1500, 250, -1},
                                                    {"step", "phase", 1, 1000, 2000, 4096}};
  const nlohmann::json j = nlohmann::json::parse(profiler::chrome_trace_json(slices, {"host thread 1", "GPU stream"}, 7));
  EXPECT_EQ(j["otherData"]["dropped_slices"], 7);
  std::vector<nlohmann::json> x;
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "X") x.push_back(e);
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[0]["name"], "a \"quoted\" \\ name\n");
  EXPECT_DOUBLE_EQ(x[0]["ts"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(x[0]["dur"].get<double>(), 0.25);
  EXPECT_FALSE(x[0].contains("args"));
  EXPECT_DOUBLE_EQ(x[1]["args"]["bytes"].get<double>(), 4096);
  EXPECT_EQ(x[1]["tid"], 1);
  EXPECT_NE(j.dump().find("\"GPU stream\""), std::string::npos);
}

}  // namespace
}  // namespace musicrec
