// The full sum of a CPU tensor (ops::sum, and through it ops::mean and every benchmark's loss), in
// double, in an order that depends on the element count alone.
//
// Why not one running double (the version until session 23, kept as sum_v1, the benchmark's
// baseline): each addition waits for the one before (3-4 cycles), about 0.8 G elements/s, slower than
// memory; a 4096 x 205 loss took longer than the concatenation the benchmark was timing. Here the
// elements go in blocks of kSumBlock, the blocks to the kernel threads, and within a block element i to
// one of kSumLanes running sums (i % kSumLanes), which the vector units add 32 at a time. The lanes
// meet in a fixed tree, the block's last n % kSumLanes elements follow one by one, and the blocks'
// sums are added in block order: the same bits at any thread count, and on any instruction set (a
// vector lane's additions are the scalar additions in the same order).
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

// The 64-byte vectors stay inside each clone of the functions below (see lane_vector.h).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec::kernels::cpu {
namespace {
using vec::Double8;
typedef float Float8 __attribute__((vector_size(32)));

constexpr int64_t kSumLanes = 32;                 // four vectors of eight doubles
constexpr int64_t kSumBlock = int64_t(1) << 14;   // 64 KB of floats: a thread's share is whole blocks

[[gnu::always_inline]] inline Double8 eight(const float* p) {
  Float8 f;
  std::memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, Double8);
}
[[gnu::always_inline]] inline Double8 eight(const double* p) {
  Double8 d;
  std::memcpy(&d, p, sizeof d);
  return d;
}

// The four running vectors in a fixed tree, then the n % kSumLanes elements left, in order.
template <typename T>
[[gnu::always_inline]] inline double finish(Double8 s0, Double8 s1, Double8 s2, Double8 s3, const T* rest, int64_t left) {
  const Double8 s = (s0 + s1) + (s2 + s3);
  double total = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  for (int64_t i = 0; i < left; ++i) total += static_cast<double>(rest[i]);
  return total;
}

template <typename T> [[gnu::always_inline]] inline double block_sum(const T* x, int64_t n) {
  Double8 s0{}, s1{}, s2{}, s3{};
  int64_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes) {
    s0 += eight(x + i);
    s1 += eight(x + i + 8);
    s2 += eight(x + i + 16);
    s3 += eight(x + i + 24);
  }
  return finish(s0, s1, s2, s3, x + i, n - i);
}
// One clone set per element type (target_clones takes no templates).
MR_CPU_CLONES double block_sum_of(const float* x, int64_t n) { return block_sum(x, n); }
MR_CPU_CLONES double block_sum_of(const double* x, int64_t n) { return block_sum(x, n); }
}  // namespace

template <typename T> T sum(const T* x, int64_t n) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  if (blocks <= 1) return static_cast<T>(block_sum_of(x, n));
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(blocks, min_items_for(kSumBlock, kMinStreamElements), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t first = b * kSumBlock;
      partial[size_t(b)] = block_sum_of(x + first, n - first < kSumBlock ? n - first : kSumBlock);
    }
  });
  double total = 0;
  for (const double p : partial) total += p;
  return static_cast<T>(total);
}

template <typename T> T sum_v1(const T* x, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return static_cast<T>(acc);
}

#define MR_INST(T)                              \
  template T sum<T>(const T*, int64_t); \
  template T sum_v1<T>(const T*, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
