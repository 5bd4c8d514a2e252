// The background prefetcher: items arrive in order, all of them, and a failure is rethrown.
#include <gtest/gtest.h>

#include <stdexcept>

#include "data/prefetcher.h"

namespace musicrec::data {
namespace {

TEST(Prefetcher, DeliversEveryItemInOrder) {
  Prefetcher<int64_t> p(1000, [](int64_t i) { return i * i; });
  int64_t v, expect = 0;
  while (p.next(v)) {
    ASSERT_EQ(v, expect * expect);
    ++expect;
  }
  EXPECT_EQ(expect, 1000);
}

TEST(Prefetcher, RethrowsAFailureAndCanBeAbandonedEarly) {
  Prefetcher<int> p(10, [](int64_t i) -> int {
    if (i == 3) throw std::runtime_error("bad batch");
    return int(i);
  });
  int v;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.next(v));
  EXPECT_THROW(p.next(v), std::runtime_error);
  Prefetcher<int> q(1000000, [](int64_t i) { return int(i); });
  ASSERT_TRUE(q.next(v));  // destroyed with work pending: must not hang
}

}  // namespace
}  // namespace musicrec::data
