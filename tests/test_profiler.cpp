// The profiler: ops are counted and timed when enabled, nested ops are attributed to the outermost,
// backward passes appear under their own names, and nothing is recorded when disabled.
#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace musicrec
