// CPU embedding lookup and its deterministic backward (positions radix-sorted by index, each row's
// gradient summed in position order).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/error.h"

namespace musicrec::kernels::cpu {

template <typename T> void embedding_forward(const T* table, const int32_t* idx, T* out, int64_t n, int64_t dim) {
  // Rows on the kernel threads (kMinStreamElements: only a catalogue-sized gather gains from a second).
  parallel_for(n, min_items_for(dim, kMinStreamElements), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(out + i * dim, table + static_cast<int64_t>(idx[i]) * dim, sizeof(T) * dim);
  });
}

namespace {
// The positions of the non-negative indices, ordered by (index, position): a stable least-significant-
// digit radix sort by index of the positions taken in order, in as few passes of at most 11 bits as
// the largest index needs (KKBox's 360k songs: 2; the small categorical features: 1). std::sort of
// packed (index, position) keys, which this replaced, took ~140 us for 4,096 lookups whatever the
// table (n log n compares, half of them mispredicted): 12 features made it ~18 % of the CF step.
std::vector<uint32_t> positions_by_index(const int32_t* idx, int64_t n) {
  std::vector<uint32_t> order, other;
  order.reserve(static_cast<size_t>(n));
  int32_t max_index = 0;
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] >= 0) {  // negative: padding from an earlier coalesce, dropped
      order.push_back(static_cast<uint32_t>(i));
      max_index = std::max(max_index, idx[i]);
    }
  int bits = 0;
  while (bits < 31 && (int64_t(1) << bits) <= max_index) ++bits;
  const int passes = std::max(1, (bits + 10) / 11), digit = std::max(1, (bits + passes - 1) / passes);
  const uint32_t mask = (uint32_t(1) << digit) - 1;
  std::vector<uint32_t> start(size_t(mask) + 2);
  other.resize(order.size());
  for (int pass = 0, shift = 0; pass < passes; ++pass, shift += digit) {
    std::fill(start.begin(), start.end(), 0u);
    for (uint32_t pos : order) ++start[((uint32_t(idx[pos]) >> shift) & mask) + 1];
    for (size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
    for (uint32_t pos : order) other[start[(uint32_t(idx[pos]) >> shift) & mask]++] = pos;
    order.swap(other);
  }
  return order;
}
}  // namespace

template <typename T>
int64_t embedding_backward(const int32_t* idx, const T* gy, int64_t n, int64_t dim, int32_t* rows_out, T* vals_out) {
  // Ordering the positions by (index, position) fixes the summation order: each row's contributions
  // are summed in increasing position order, as the CUDA path's stable radix sort does.
  MR_CHECK(n <= int64_t(0xFFFFFFFF), "embedding backward: " + std::to_string(n) + " lookups in one batch, above 2^32 - 1");
  const std::vector<uint32_t> order = positions_by_index(idx, n);
  int64_t u = -1;
  for (const uint32_t p : order) {
    const int64_t pos = static_cast<int64_t>(p);
    if (u < 0 || rows_out[u] != idx[pos]) {
      ++u;
      rows_out[u] = idx[pos];
      std::memcpy(vals_out + u * dim, gy + pos * dim, sizeof(T) * dim);
    } else {
      for (int64_t d = 0; d < dim; ++d) vals_out[u * dim + d] += gy[pos * dim + d];
    }
  }
  for (int64_t k = u + 1; k < n; ++k) {
    rows_out[k] = -1;
    for (int64_t d = 0; d < dim; ++d) vals_out[k * dim + d] = T(0);
  }
  return u + 1;
}

template <typename T> void broadcast_scalar(const T* s, T* x, int64_t n, T mult) {
  const T v = *s * mult;
  for (int64_t i = 0; i < n; ++i) x[i] = v;
}

#define MR_INST(T)                                                                        \
  template void embedding_forward<T>(const T*, const int32_t*, T*, int64_t, int64_t);     \
  template int64_t embedding_backward<T>(const int32_t*, const T*, int64_t, int64_t, int32_t*, T*); \
  template void broadcast_scalar<T>(const T*, T*, int64_t, T);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
