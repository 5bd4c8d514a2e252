// The CPU kernels' threads: parallel_for splits a range of independent work items (images, planes,
// channels, rows) into contiguous chunks, a few per thread, which the threads (the calling one too)
// claim in turn.
//
// Same bits at any thread count: a kernel gives each thread items whose outputs no other item writes,
// and a sum that spans items stays inside one item (a channel's bias gradient is one item), so no
// result depends on how the range was split. tests/test_cpu_threads.cpp holds the kernels to that.
//
// Why a pool of our own rather than OpenMP: the workers sleep on a condition variable between calls
// instead of spinning, so they leave the cores to OpenBLAS's own threads, which run the matrix products
// between our kernels (session 1 measured OpenMP's spinning workers and OpenBLAS's slowing each other).
// A process forked while the pool exists (the isolated readers' fork server) runs every call serially
// in the child, which has none of the parent's threads.
#pragma once
#include <cstdint>
#include <functional>

namespace musicrec::kernels::cpu {

// Threads the kernels use, the caller included: MUSICREC_CPU_THREADS if set (1 = serial), otherwise
// the machine's hardware threads, at most 8.
int cpu_threads();
// For tests and benchmarks: the count from now on (>= 1); 0 goes back to the default above.
void set_cpu_threads(int threads);

// Runs fn(begin, end) over [0, n) in chunks of at least min_items items (so that a small call is not
// split into pieces smaller than the cost of waking a thread), at most four per thread, and returns
// when all have run. Serial when one chunk covers the range, inside another parallel_for,
// and in a forked child. An exception thrown by fn is rethrown here (the first one, after all chunks
// have finished).
void parallel_for(int64_t n, int64_t min_items, const std::function<void(int64_t, int64_t)>& fn);

// The smallest chunk worth a thread for a kernel that streams memory (element-wise ops, gathers, row
// dots, column copies): 1M elements, 4 MB of floats. On the 2-core development VM a second thread adds
// little to a stream (memcpy 20 GB/s on one thread, 25.6 on two: BM_Memcpy_OneThread,
// BM_Ceiling_Memcpy) and waking it costs tens of microseconds: with 64k-element chunks
// BM_Relu_ForwardBackward/4096 went from 890 to 1,135 us and the CF step at batch 1024 lost 7 %.
constexpr int64_t kMinStreamElements = int64_t(1) << 20;

// min_items for items of `elements_per_item` elements each, so that a chunk holds at least
// `min_elements` (what a kernel needs to be worth waking a thread for).
inline int64_t min_items_for(int64_t elements_per_item, int64_t min_elements) {
  const int64_t per = elements_per_item > 0 ? elements_per_item : 1;
  return min_elements / per > 1 ? min_elements / per : 1;
}

}  // namespace musicrec::kernels::cpu
