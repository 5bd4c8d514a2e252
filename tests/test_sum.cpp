// The CPU's full sum (kernels/cpu/sum.cpp): against a long-double sum within the rounding of a double
// sum, at sizes off and across its 32-lane steps and 16,384-element blocks, for float and double, with
// a huge value that cancels (no lane may drop or double an element); and sum_v1, the baseline, likewise.
// The same bits at any thread count: tests/test_cpu_threads.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace k = kernels::cpu;

template <typename T> void expect_sums_within_rounding(int64_t n) {
  const std::vector<double> drawn = test::random_tensor({n + 1}, uint64_t(n) + 3, -3, 3, DType::F64).to_vector<double>();
  std::vector<T> x(drawn.begin(), drawn.begin() + n);
  // One element far larger than the rest, and its negative further on: a lane or block that dropped or
  // repeated either would be off by 1e6.
  if (n > 40) {
    x[size_t(n / 3)] = T(1e6);
    x[size_t(n - 5)] = T(-1e6);
  }
  long double want = 0, magnitude = 0;
  for (const T v : x) want += v, magnitude += std::fabs(static_cast<long double>(v));
  // A double sum's error is at most (n - 1) units of 2^-53 times the sum of magnitudes; T = float rounds
  // once more at the end (half a float ulp of the result).
  const double bound = double(n) * std::ldexp(1.0, -53) * double(magnitude) +
                       (sizeof(T) == 4 ? std::ldexp(std::fabs(double(want)), -24) : 0.0);
  for (const auto& [name, fn] : {std::pair{"sum", &k::sum<T>}, std::pair{"sum_v1", &k::sum_v1<T>}}) {
    const T got = fn(x.data(), n);
    EXPECT_LE(std::fabs(double(got) - double(want)), bound) << name << " of " << n << " elements";
  }
}

TEST(Sum, AgreesWithALongDoubleSumAtEveryEdge) {
  const int64_t block = 16'384;
  for (const int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(31), int64_t(32), int64_t(33), int64_t(100),
                          block - 1, block, block + 1, 3 * block + 17, 70 * block + 5}) {
    expect_sums_within_rounding<float>(n);
    expect_sums_within_rounding<double>(n);
  }
}

TEST(Sum, OfNothingIsZeroAndOfOneIsItself) {
  const float one = -2.5f;
  EXPECT_EQ(k::sum<float>(&one, 0), 0.f);
  EXPECT_EQ(k::sum<float>(&one, 1), -2.5f);
}

}  // namespace
}  // namespace musicrec
