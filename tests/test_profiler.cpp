// The profiler: ops are counted and timed when enabled, nested ops are attributed to the outermost,
// backward passes appear under their own names, and nothing is recorded when disabled.
#include <gtest/gtest.h>

#include <chrono>

#include <cmath>
#include <map>
#include <string>

#include "engine/ops.h"
#include "engine/profiler.h"
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

}  // namespace
}  // namespace musicrec
