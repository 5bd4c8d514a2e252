// CPU optimizer steps, dense and row-sparse, on the shared per-element update math. Row-sparse steps
// skip padding rows (index -1) left by the embedding backward.
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/math.h"

namespace musicrec::kernels::cpu {

// Every element (or row) is updated on its own, so chunks of them run on parallel_for's threads; a
// thread is woken for at least 32k elements (~8k for rows, which wait on memory).
constexpr int64_t kMinElements = int64_t(1) << 15;

namespace {
// One span's update (a chunk of a dense parameter, or one row of a table). The four spans never
// overlap, which the restrict pointers tell GCC: without them it kept the loop scalar (a square root
// and a division per element; ~1,000 instructions a row of 64) behind alias checks it did not emit.
// Packed SSE arithmetic rounds as the scalar one: the same bits.
template <typename T>
void adam_span(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n, T b1, T b2,
               T lr_t, T eps_t, T weight_decay) {
  for (int64_t d = 0; d < n; ++d) math::adam_update(p[d], m[d], v[d], g[d], b1, b2, lr_t, eps_t, weight_decay);
}
template <typename T>
void sgd_span(T* __restrict p, T* __restrict buf, const T* __restrict g, int64_t n, T lr, T momentum, T weight_decay) {
  for (int64_t d = 0; d < n; ++d) math::sgd_momentum_update(p[d], buf[d], g[d], lr, momentum, weight_decay);
}
}  // namespace

template <typename T>
void adam_dense(T* p, T* m, T* v, const T* g, int64_t n, T b1, T b2, T lr_t, T eps_t, T weight_decay) {
  parallel_for(n, kMinElements, [&](int64_t i0, int64_t i1) {
    adam_span(p + i0, m + i0, v + i0, g + i0, i1 - i0, b1, b2, lr_t, eps_t, weight_decay);
  });
}

namespace {
// Rows of an embedding table are scattered over hundreds of megabytes (the songs' table, its m and
// v: 3 x 92 MB at KKBox's size), so a row update waits on memory, not on arithmetic. Asking for the
// row a few updates ahead overlaps those waits.
constexpr int64_t kRowsAhead = 4;
template <typename T> void prefetch_row(T* p, T* m, T* v, int64_t base, int64_t dim) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t d = 0; d < dim; d += kLine) {
    __builtin_prefetch(p + base + d, 1);
    __builtin_prefetch(m + base + d, 1);
    __builtin_prefetch(v + base + d, 1);
  }
}
}  // namespace

template <typename T>
void adam_rows(T* p, T* m, T* v, const int32_t* rows, const T* g, int64_t U, int64_t dim, T b1, T b2, T lr_t, T eps_t,
               T weight_decay) {
  // The rows of a coalesced gradient are distinct: no two threads touch the same row.
  parallel_for(U, min_items_for(dim, kMinElements / 4), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      if (u + kRowsAhead < u1 && rows[u + kRowsAhead] >= 0)
        prefetch_row(p, m, v, static_cast<int64_t>(rows[u + kRowsAhead]) * dim, dim);
      if (rows[u] < 0) continue;  // padding row of a coalesced sparse gradient
      const int64_t base = static_cast<int64_t>(rows[u]) * dim;
      adam_span(p + base, m + base, v + base, g + u * dim, dim, b1, b2, lr_t, eps_t, weight_decay);
    }
  });
}

template <typename T> void sgd_dense(T* p, T* buf, const T* g, int64_t n, T lr, T momentum, T weight_decay) {
  sgd_span(p, buf, g, n, lr, momentum, weight_decay);
}

template <typename T>
void sgd_rows(T* p, T* buf, const int32_t* rows, const T* g, int64_t U, int64_t dim, T lr, T momentum, T weight_decay) {
  for (int64_t u = 0; u < U; ++u) {
    if (rows[u] < 0) continue;  // padding row of a coalesced sparse gradient
    const int64_t base = static_cast<int64_t>(rows[u]) * dim;
    sgd_span(p + base, buf + base, g + u * dim, dim, lr, momentum, weight_decay);
  }
}

#define MR_INST(T)                                                                                              \
  template void adam_dense<T>(T*, T*, T*, const T*, int64_t, T, T, T, T, T);                                    \
  template void adam_rows<T>(T*, T*, T*, const int32_t*, const T*, int64_t, int64_t, T, T, T, T, T);            \
  template void sgd_dense<T>(T*, T*, const T*, int64_t, T, T, T);                                               \
  template void sgd_rows<T>(T*, T*, const int32_t*, const T*, int64_t, int64_t, T, T, T);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
