// CPU element-wise and row-wise kernels: activations, bias, row dot product, column blocks.
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/math.h"

namespace musicrec::kernels::cpu {
namespace {

// The streaming kernels below run on the kernel threads in chunks of at least kMinStreamElements
// (parallel.h); element-wise or row-wise, so the split never changes a result.

// The float sigmoid loops, vectorised (vec_math.h). Double keeps math::sigmoid: it is the reference
// the gradient checks run in.
MR_CPU_CLONES void sigmoid_span_f32(const float* __restrict x, float bias, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = vec::sigmoid_f32(x[i] + bias);
}

// gx = gy * y * (1 - y) over a span, returning the span's sum of gx. The sum runs in 16 fixed lanes
// (each a sequential float sum, added up in double at the end) so that it vectorises without
// reassociation and gives the same bits whichever instruction-set clone runs.
MR_CPU_CLONES double sigmoid_grad_span_f32(const float* __restrict y, const float* __restrict gy, float* __restrict gx,
                                           int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float g = math::sigmoid_grad_from_output(y[i + l], gy[i + l]);
      gx[i + l] = g;
      lanes[l] += g;
    }
  double acc = 0;
  for (; i < n; ++i) {
    gx[i] = math::sigmoid_grad_from_output(y[i], gy[i]);
    acc += gx[i];
  }
  for (int l = 0; l < kLanes; ++l) acc += lanes[l];
  return acc;
}

// One row's dot product in 16 interleaved partial sums (element c goes to sum c % 16), added pairwise
// at the end. The order is fixed, so the loop vectorises without reassociating any sum and a row's
// result does not depend on which thread computes it. A single running sum (the first version) ran
// at one multiply-add per four cycles, the adder's latency.
// Each element is shifted first: (a - s)(b - s), exactly a * b where s = 0.
template <typename T> inline T dot_row(const T* __restrict a, const T* __restrict b, int64_t n, T s) {
  constexpr int kLanes = 16;
  T lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += (a[i + l] - s) * (b[i + l] - s);
  for (int l = 0; i + l < n; ++l) lanes[l] += (a[i + l] - s) * (b[i + l] - s);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}
template <typename T>
inline void dot_rows(const T* a, const int32_t* ia, const T* b, const int32_t* ib, T* y, int64_t begin, int64_t end,
                     int64_t cols, T shift) {
  for (int64_t r = begin; r < end; ++r)
    y[r] = dot_row<T>(a + (ia ? int64_t(ia[r]) : r) * cols, b + (ib ? int64_t(ib[r]) : r) * cols, cols, shift);
}
// The float rows compiled per instruction set (vec_math.h); double stays the plain reference.
MR_CPU_CLONES void dot_rows_f32(const float* a, const int32_t* ia, const float* b, const int32_t* ib, float* y,
                                int64_t begin, int64_t end, int64_t cols, float shift) {
  dot_rows<float>(a, ia, b, ib, y, begin, end, cols, shift);
}

// y[r] = (a[ia[r], :] - shift) . (b[ib[r], :] - shift) (a null index list reads row r), rows split over
// the kernel threads.
template <typename T>
void rowdot_rows(const T* a, const int32_t* ia, const T* b, const int32_t* ib, T* y, int64_t rows, int64_t cols,
                 T shift) {
  parallel_for(rows, min_items_for(cols, kMinStreamElements), [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) dot_rows_f32(a, ia, b, ib, y, begin, end, cols, shift);
    else dot_rows<T>(a, ia, b, ib, y, begin, end, cols, shift);
  });
}

// Runs f(i) for i in [0, n) over the kernel threads; f is inlined into the loop, which vectorises.
template <typename F> inline void for_each_element(int64_t n, F f) {
  parallel_for(n, kMinStreamElements, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

}  // namespace

template <typename T> void fill(T* x, int64_t n, T value) {
  for_each_element(n, [=](int64_t i) { x[i] = value; });
}
template <typename T> void add_into(T* dst, const T* src, int64_t n) {
  for_each_element(n, [=](int64_t i) { dst[i] += src[i]; });
}
template <typename T> void scale_into(T* x, int64_t n, T s) {
  for_each_element(n, [=](int64_t i) { x[i] *= s; });
}
template <typename T> void sigmoid_forward(const T* x, T* y, int64_t n) {
  parallel_for(n, kMinStreamElements, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<T, float>) {
      sigmoid_span_f32(x + begin, 0.0f, y + begin, end - begin);
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = math::sigmoid(x[i]);
    }
  });
}
template <typename T> void sigmoid_backward(const T* y, const T* gy, T* gx, int64_t n) {
  for_each_element(n, [=](int64_t i) { gx[i] = math::sigmoid_grad_from_output(y[i], gy[i]); });
}
template <typename T> void relu_forward(const T* x, T* y, int64_t n) {
  for_each_element(n, [=](int64_t i) { y[i] = math::relu(x[i]); });
}
template <typename T> void relu_backward(const T* x, const T* gy, T* gx, int64_t n) {
  for_each_element(n, [=](int64_t i) { gx[i] = math::relu_grad(x[i], gy[i]); });
}

template <typename T> void bias_add_rows(const T* x, const T* b, T* y, int64_t rows, int64_t cols) {
  parallel_for(rows, min_items_for(cols, kMinStreamElements), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = x[r * cols + c] + b[c];
  });
}
template <typename T> void bias_grad_rows(const T* gy, T* gb, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) gb[c] = T(0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) gb[c] += gy[r * cols + c];
}

template <typename T> void bias_add_nchw(const T* x, const T* b, T* y, int64_t N, int64_t C, int64_t HW) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const T* xs = x + (n * C + c) * HW;
      T* ys = y + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) ys[i] = xs[i] + b[c];
    }
}
template <typename T> void bias_grad_nchw(const T* gy, T* gb, int64_t N, int64_t C, int64_t HW) {
  for (int64_t c = 0; c < C; ++c) {
    double acc = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* g = gy + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; ++i) acc += g[i];
    }
    gb[c] = static_cast<T>(acc);
  }
}

// At least 16k elements (~20 us of sigmoids) per parallel_for chunk.
constexpr int64_t kMinSigmoidElements = int64_t(1) << 14;

template <typename T>
void bias_sigmoid_nchw_forward(const T* x, const T* b, T* y, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C, min_items_for(HW, kMinSigmoidElements), [&](int64_t p0, int64_t p1) {  // planes (n, c)
    for (int64_t p = p0; p < p1; ++p) {
      const T* xs = x + p * HW;
      T* ys = y + p * HW;
      const T bc = b[p % C];
      if constexpr (std::is_same_v<T, float>) {
        sigmoid_span_f32(xs, bc, ys, HW);
      } else {
        for (int64_t i = 0; i < HW; ++i) ys[i] = math::sigmoid(xs[i] + bc);
      }
    }
  });
}
namespace {
template <typename T> double sigmoid_grad_plane(const T* y, const T* gy, T* gx, int64_t HW) {
  if constexpr (std::is_same_v<T, float>) {
    return sigmoid_grad_span_f32(y, gy, gx, HW);
  } else {
    double acc = 0;
    for (int64_t i = 0; i < HW; ++i) {
      gx[i] = math::sigmoid_grad_from_output(y[i], gy[i]);
      acc += gx[i];
    }
    return acc;
  }
}

}  // namespace

template <typename T>
void sigmoid_grad_planes(const T* y, const T* gy, T* gx, int64_t planes, int64_t HW, double* plane_sums) {
  parallel_for(planes, min_items_for(HW, kMinSigmoidElements), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) plane_sums[p] = sigmoid_grad_plane(y + p * HW, gy + p * HW, gx + p * HW, HW);
  });
}

namespace {
// A channel's bias gradient is the sum of its planes' sums, in image order (the order the fused
// convolution kernels reproduce: conv.cpp).
template <typename T>
void bias_sigmoid_channel_backward(const T* y, const T* gy, T* gx, T* gb, int64_t N, int64_t C, int64_t HW, int64_t c) {
  double acc = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t base = (n * C + c) * HW;
    acc += sigmoid_grad_plane(y + base, gy + base, gx + base, HW);
  }
  gb[c] = static_cast<T>(acc);
}
}  // namespace

template <typename T>
void bias_sigmoid_nchw_backward(const T* y, const T* gy, T* gx, T* gb, int64_t N, int64_t C, int64_t HW) {
  // By channel: a channel's sum over images stays on one thread, in the serial order.
  parallel_for(C, min_items_for(N * HW, kMinSigmoidElements), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) bias_sigmoid_channel_backward(y, gy, gx, gb, N, C, HW, c);
  });
}

template <typename T> void rowdot_forward(const T* a, const T* b, T* y, int64_t rows, int64_t cols) {
  rowdot_rows<T>(a, nullptr, b, nullptr, y, rows, cols, T(0));
}
template <typename T>
void rowdot_pairs_forward(const T* table, const int32_t* ia, const int32_t* ib, T* y, int64_t rows, int64_t cols,
                          T shift) {
  rowdot_rows<T>(table, ia, table, ib, y, rows, cols, shift);
}
template <typename T>
void rowdot_pairs_backward(const T* table, const int32_t* ia, const int32_t* ib, const T* gy, T shift, int64_t pairs,
                           int64_t table_rows, int64_t cols, T* gtable) {
  // The 2 x pairs contributions by table row, in the order of their position in [ia; ib] (a stable
  // counting sort): the order in which the embedding's coalescing sums them.
  std::vector<int64_t> start(static_cast<size_t>(table_rows + 1), 0), at(static_cast<size_t>(2 * pairs));
  auto row_of = [&](int64_t p) { return p < pairs ? ia[p] : ib[p - pairs]; };
  for (int64_t p = 0; p < 2 * pairs; ++p) ++start[size_t(row_of(p)) + 1];
  for (int64_t u = 0; u < table_rows; ++u) start[size_t(u + 1)] += start[size_t(u)];
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t p = 0; p < 2 * pairs; ++p) at[size_t(next[size_t(row_of(p))]++)] = p;
  }
  const T minus = -shift;
  parallel_for(table_rows, min_items_for(cols, kMinStreamElements), [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      T* out = gtable + u * cols;
      const int64_t first = start[size_t(u)], last = start[size_t(u + 1)];
      if (first == last) {
        std::memset(out, 0, sizeof(T) * size_t(cols));
        continue;
      }
      for (int64_t k = first; k < last; ++k) {
        const int64_t p = at[size_t(k)], r = p < pairs ? p : p - pairs;
        const T* other = table + int64_t(p < pairs ? ib[r] : ia[r]) * cols;
        const T g = gy[r];
        // g * (other - shift), as the gathered, shifted rows' rowdot_backward forms it (x + (-shift)).
        if (k == first) {
          if (shift != T(0)) for (int64_t c = 0; c < cols; ++c) out[c] = g * (other[c] + minus);
          else for (int64_t c = 0; c < cols; ++c) out[c] = g * other[c];
        } else {
          if (shift != T(0)) for (int64_t c = 0; c < cols; ++c) out[c] += g * (other[c] + minus);
          else for (int64_t c = 0; c < cols; ++c) out[c] += g * other[c];
        }
      }
      for (int64_t c = 0; c < cols; ++c) out[c] = T(0) + out[c];  // added into zeros, as densify does (-0 -> +0)
    }
  });
}

template <typename T>
void rowdot_backward(const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      if (ga) ga[r * cols + c] = gy[r] * b[r * cols + c];
      if (gb) gb[r * cols + c] = gy[r] * a[r * cols + c];
    }
}

namespace {
// A copy of a few elements: the CF head's blocks are 1 to 64 floats wide, and a memcpy call per block
// and row cost more than the copy (measured: concat_cols 626 us a step at batch 4096 with one call
// per block and row). Fixed-size memcpys compile to moves; a loop would be turned back into a call.
template <typename T> inline void copy_short(T* dst, const T* src, int64_t n) {
  if (n >= 64) {  // long enough for the call to pay (the pair head's 1,248-wide song vectors)
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  for (; n >= 8; n -= 8, dst += 8, src += 8) std::memcpy(dst, src, 8 * sizeof(T));
  if (n & 4) std::memcpy(dst, src, 4 * sizeof(T)), dst += 4, src += 4;
  if (n & 2) std::memcpy(dst, src, 2 * sizeof(T)), dst += 2, src += 2;
  if (n & 1) *dst = *src;
}
}  // namespace

template <typename T>
void concat_cols(const T* const* srcs, const int64_t* widths, int64_t parts, T* dst, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < parts; ++i) {
      copy_short(dst, srcs[i] + r * widths[i], widths[i]);
      dst += widths[i];
    }
}
template <typename T>
void split_cols(const T* src, const int64_t* widths, int64_t parts, T* const* dsts, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < parts; ++i) {
      copy_short(dsts[i] + r * widths[i], src, widths[i]);
      src += widths[i];
    }
}

template <typename T>
void copy_col_block(const T* src, int64_t src_cols, int64_t src_off, T* dst, int64_t dst_cols, int64_t dst_off,
                    int64_t width, int64_t rows) {
  parallel_for(rows, min_items_for(width, kMinStreamElements), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) copy_short(dst + r * dst_cols + dst_off, src + r * src_cols + src_off, width);
  });
}

#define MR_INST(T)                                                                                             \
  template void fill<T>(T*, int64_t, T);                                                                       \
  template void add_into<T>(T*, const T*, int64_t);                                                            \
  template void scale_into<T>(T*, int64_t, T);                                                                 \
  template void sigmoid_forward<T>(const T*, T*, int64_t);                                                     \
  template void sigmoid_backward<T>(const T*, const T*, T*, int64_t);                                          \
  template void relu_forward<T>(const T*, T*, int64_t);                                                        \
  template void relu_backward<T>(const T*, const T*, T*, int64_t);                                             \
  template void bias_add_rows<T>(const T*, const T*, T*, int64_t, int64_t);                                    \
  template void bias_grad_rows<T>(const T*, T*, int64_t, int64_t);                                             \
  template void bias_add_nchw<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);                           \
  template void bias_grad_nchw<T>(const T*, T*, int64_t, int64_t, int64_t);                                    \
  template void bias_sigmoid_nchw_forward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);               \
  template void bias_sigmoid_nchw_backward<T>(const T*, const T*, T*, T*, int64_t, int64_t, int64_t);          \
  template void sigmoid_grad_planes<T>(const T*, const T*, T*, int64_t, int64_t, double*);                  \
  template void rowdot_forward<T>(const T*, const T*, T*, int64_t, int64_t);                                   \
  template void rowdot_pairs_forward<T>(const T*, const int32_t*, const int32_t*, T*, int64_t, int64_t, T);     \
  template void rowdot_pairs_backward<T>(const T*, const int32_t*, const int32_t*, const T*, T, int64_t, int64_t, \
                                         int64_t, T*);                                                          \
  template void rowdot_backward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t);                    \
  template void concat_cols<T>(const T* const*, const int64_t*, int64_t, T*, int64_t);                         \
  template void split_cols<T>(const T*, const int64_t*, int64_t, T* const*, int64_t);                          \
  template void copy_col_block<T>(const T*, int64_t, int64_t, T*, int64_t, int64_t, int64_t, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
