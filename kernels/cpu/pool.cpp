// CPU 2x2 max pooling with stride 2; an odd last row or column is dropped (floor), as in PyTorch's
// default. The winner's index is kept so backward routes the gradient without recomputing.
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"

// The 64-byte vectors below cross no function boundary that is not inlined into the same clone, so
// GCC's note that returning one "changes the ABI" without AVX-512 concerns nothing here.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace musicrec::kernels::cpu {

namespace {

// One output row from the input rows r0 and r1 = r0 + row (W where the input is contiguous; the
// winners' indices count W per row whatever the stride). Written with selects rather than branches
// so that GCC vectorises it (the clones of the float version run 8 or 16 windows at once); the
// candidate order (row-major) and strict '>' keep the first maximum on ties, as before.
template <typename T>
[[gnu::always_inline]] inline void pool_row(const T* __restrict r0, int32_t base, int64_t W, int64_t row, int64_t OW,
                                            T* __restrict y, int32_t* __restrict argmax) {
  const T* r1 = r0 + row;
  for (int64_t ow = 0; ow < OW; ++ow) {
    T best = r0[2 * ow];
    int32_t at = base + int32_t(2 * ow);
    const T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    bool t = b > best;
    best = t ? b : best;
    at = t ? base + int32_t(2 * ow + 1) : at;
    t = c > best;
    best = t ? c : best;
    at = t ? base + int32_t(W + 2 * ow) : at;
    t = d > best;
    best = t ? d : best;
    at = t ? base + int32_t(W + 2 * ow + 1) : at;
    y[ow] = best;
    argmax[ow] = at;
  }
}

// Variant 2 of the forward's row for float: 16 windows at a time as GCC vectors. The two input rows'
// 32 columns are split into even and odd columns by two-vector shuffles (one vpermt2ps each on
// AVX-512), so each window's four candidates are whole vectors, and the selects run on them in
// pool_row's order with its strict '>': the same maxima and winners. Variant 1 (pool_row) left the
// even/odd split to GCC's vectoriser: 5.3 G windows' inputs a second on two cores at conv 1's shape.
// The last block starts early and overlaps the one before (windows are independent: the overlapped
// ones are written twice with the same values); rows narrower than a block take pool_row.
typedef float F16 __attribute__((vector_size(64)));
typedef int32_t I16 __attribute__((vector_size(64)));
[[gnu::always_inline]] inline F16 load16(const float* p) {
  F16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// Lane j of the result is lane pick(j) of the 32 values (p, q): __builtin_shufflevector, which GCC
// (since 12) and clang (the fuzz build) both take, with the indices as a constant pack.
template <int (*pick)(int), size_t... J>
[[gnu::always_inline]] inline F16 shuffle16(F16 p, F16 q, std::index_sequence<J...>) {
  return __builtin_shufflevector(p, q, pick(int(J))...);
}
// Lanes O, O + 2, ..., O + 30: O = 0 the even columns, 1 the odd ones.
template <int O> constexpr int every_other_lane(int j) { return O + 2 * j; }
template <int O> [[gnu::always_inline]] inline F16 every_other(F16 p, F16 q) {
  return shuffle16<every_other_lane<O>>(p, q, std::make_index_sequence<16>());
}

[[gnu::always_inline]] inline void pool_row_f32_v2(const float* __restrict r0, int32_t base, int64_t W, int64_t row,
                                                   int64_t OW, float* __restrict y, int32_t* __restrict argmax) {
  if (OW < 16) return pool_row(r0, base, W, row, OW, y, argmax);
  const float* r1 = r0 + row;
  const I16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const I16 even = lane * 2;
  const int32_t down = int32_t(W);
  for (int64_t ob = 0; ob < OW; ob += 16) {
    const int64_t o = ob + 16 <= OW ? ob : OW - 16;
    const F16 t0 = load16(r0 + 2 * o), t1 = load16(r0 + 2 * o + 16);
    const F16 u0 = load16(r1 + 2 * o), u1 = load16(r1 + 2 * o + 16);
    const F16 a = every_other<0>(t0, t1), b = every_other<1>(t0, t1);
    const F16 c = every_other<0>(u0, u1), d = every_other<1>(u0, u1);
    const I16 first = base + int32_t(2 * o) + even;
    F16 best = a;
    I16 at = first;
    I16 t = b > best;
    best = t ? b : best;
    at = t ? first + 1 : at;
    t = c > best;
    best = t ? c : best;
    at = t ? first + down : at;
    t = d > best;
    best = t ? d : best;
    at = t ? first + (down + 1) : at;
    std::memcpy(y + o, &best, sizeof best);
    std::memcpy(argmax + o, &at, sizeof at);
  }
}

// Backward of one output row: writes all four inputs of every window (the winner gets the gradient,
// the others 0), so no separate zero fill and no scatter.
template <typename T>
inline void unpool_row(const T* __restrict gy, const int32_t* __restrict argmax, int32_t base, int64_t W, int64_t OW,
                       T* __restrict g0) {
  T* g1 = g0 + W;
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int32_t a = argmax[ow] - base;
    const T g = gy[ow];
    g0[2 * ow] = a == int32_t(2 * ow) ? g : T(0);
    g0[2 * ow + 1] = a == int32_t(2 * ow + 1) ? g : T(0);
    g1[2 * ow] = a == int32_t(W + 2 * ow) ? g : T(0);
    g1[2 * ow + 1] = a == int32_t(W + 2 * ow + 1) ? g : T(0);
  }
}

// (Always inlined, as the row kernels: a function left out of line would be compiled outside the
// caller's instruction-set clone.)
// Plane p's row r at x + p * plane + r * row (row = W, plane = H * W where x is contiguous).
template <typename T, bool kV2 = false>
[[gnu::always_inline]] inline void pool_planes(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W,
                                               int64_t row, int64_t plane) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t o = (p * OH + oh) * OW;
      const T* r0 = x + p * plane + 2 * oh * row;
      if constexpr (kV2) pool_row_f32_v2(r0, int32_t(2 * oh * W), W, row, OW, y + o, argmax + o);
      else pool_row(r0, int32_t(2 * oh * W), W, row, OW, y + o, argmax + o);
    }
}


template <typename T> void unpool_planes(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t o = (p * OH + oh) * OW;
      unpool_row(gy + o, argmax + o, int32_t(2 * oh * W), W, OW, gp + 2 * oh * W);
      if (W % 2) gp[2 * oh * W + W - 1] = gp[(2 * oh + 1) * W + W - 1] = T(0);  // the dropped odd column
    }
    if (H % 2) fill<T>(gp + (H - 1) * W, W, T(0));  // the dropped odd row
  }
}

// Variant 2 of the backward: each plane zeroed with one fill, then each window's gradient stored at its
// winner. The plane (16 KB at conv 1's output) is still in L1 when the stores land, so the input
// gradient is written about once; variant 1 (unpool_row) computes four selects and two interleaved
// pairs of stores per window, which GCC does not turn into full-width stores. Plane p's row r starts
// at gx + p * plane + r * row; the fill covers the plane's span from its first row to its last, gaps
// between rows included (maxpool2x2_backward_strided, cpu_kernels.h).
template <typename T>
void scatter_planes(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W, int64_t row,
                    int64_t plane) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * plane;
    if (H > 0) std::memset(gp, 0, size_t((H - 1) * row + W) * sizeof(T));  // all-zero bits: +0.0, as v1 writes
    const T* g = gy + p * OH * OW;
    const int32_t* a = argmax + p * OH * OW;
    if (row == W) {
      for (int64_t o = 0; o < OH * OW; ++o) gp[a[o]] = g[o];
      continue;
    }
    // The winner's place in its window (0, 1, W or W + 1 past the top left) without a division.
    for (int64_t pr = 0; pr < OH; ++pr)
      for (int64_t pc = 0; pc < OW; ++pc) {
        const int64_t o = pr * OW + pc, off = a[o] - (2 * pr * W + 2 * pc), down = off >= W;
        gp[(2 * pr + down) * row + 2 * pc + off - down * W] = g[o];
      }
  }
}

// Variant 3 of the backward for float, contiguous planes: unpool_row's four selects, 16 windows at a
// time as GCC vectors, each window's four values interleaved into the two output rows by two-vector
// shuffles (vpermt2ps on AVX-512), so every input gradient value is written once, in full-width stores,
// with no fill first and no scatter; the last block overlaps the one before (written twice alike), rows
// narrower than a block take unpool_row. (Variant 2 filled each plane, then stored each winner alone:
// at conv 1's shape 4 % of the pair CNN's CPU training step.)
// Lanes H .. H + 7 of p and q, interleaved: (p[H], q[H], p[H + 1], q[H + 1], ...).
template <int H> constexpr int interleave_lane(int j) { return H + j / 2 + (j % 2) * 16; }
template <int H> [[gnu::always_inline]] inline F16 interleave(F16 p, F16 q) {
  return shuffle16<interleave_lane<H>>(p, q, std::make_index_sequence<16>());
}

[[gnu::always_inline]] inline void unpool_row_f32_v3(const float* __restrict gy, const int32_t* __restrict argmax,
                                                     int32_t base, int64_t W, int64_t OW, float* __restrict g0) {
  if (OW < 16) return unpool_row(gy, argmax, base, W, OW, g0);
  float* g1 = g0 + W;
  const I16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const I16 even = lane * 2;
  const F16 zero = {};
  for (int64_t ob = 0; ob < OW; ob += 16) {
    const int64_t o = ob + 16 <= OW ? ob : OW - 16;
    const F16 g = load16(gy + o);
    I16 a;
    std::memcpy(&a, argmax + o, sizeof a);
    const I16 off = a - (base + int32_t(2 * o) + even);  // 0, 1, W or W + 1: where in its window
    const F16 top_left = off == 0 ? g : zero, top_right = off == 1 ? g : zero;
    const F16 bottom_left = off == int32_t(W) ? g : zero, bottom_right = off == int32_t(W + 1) ? g : zero;
    const F16 rows[4] = {interleave<0>(top_left, top_right), interleave<8>(top_left, top_right),
                         interleave<0>(bottom_left, bottom_right), interleave<8>(bottom_left, bottom_right)};
    std::memcpy(g0 + 2 * o, &rows[0], sizeof(F16));
    std::memcpy(g0 + 2 * o + 16, &rows[1], sizeof(F16));
    std::memcpy(g1 + 2 * o, &rows[2], sizeof(F16));
    std::memcpy(g1 + 2 * o + 16, &rows[3], sizeof(F16));
  }
}

MR_CPU_CLONES void unpool_planes_f32_v3(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H,
                                        int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p) {
    float* gp = gx + p * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t o = (p * OH + oh) * OW;
      unpool_row_f32_v3(gy + o, argmax + o, int32_t(2 * oh * W), W, OW, gp + 2 * oh * W);
      if (W % 2) gp[2 * oh * W + W - 1] = gp[(2 * oh + 1) * W + W - 1] = 0.f;  // the dropped odd column
    }
    if (H % 2) std::memset(gp + (H - 1) * W, 0, size_t(W) * sizeof(float));  // the dropped odd row
  }
}

MR_CPU_CLONES void pool_planes_f32_v1(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W) {
  pool_planes<float>(x, y, argmax, planes, H, W, W, H * W);
}
MR_CPU_CLONES void pool_planes_f32_v2(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W,
                                      int64_t row, int64_t plane) {
  pool_planes<float, true>(x, y, argmax, planes, H, W, row, plane);
}
MR_CPU_CLONES void unpool_planes_f32(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H,
                                     int64_t W) {
  unpool_planes<float>(gy, argmax, gx, planes, H, W);
}

}  // namespace

// At least 64k input elements per parallel_for chunk, so a thread is woken for ~0.1 ms of work.
constexpr int64_t kMinElements = int64_t(1) << 16;

namespace {
template <typename T, bool kV2>
void pool_forward(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t row, int64_t plane) {
  const int64_t OHW = (H / 2) * (W / 2);
  parallel_for(planes, min_items_for(H * W, kMinElements), [&](int64_t p0, int64_t p1) {
    const T* xp = x + p0 * plane;
    if constexpr (!std::is_same_v<T, float>) {
      pool_planes<T>(xp, y + p0 * OHW, argmax + p0 * OHW, p1 - p0, H, W, row, plane);
    } else if constexpr (kV2) {
      pool_planes_f32_v2(xp, y + p0 * OHW, argmax + p0 * OHW, p1 - p0, H, W, row, plane);
    } else {
      pool_planes_f32_v1(xp, y + p0 * OHW, argmax + p0 * OHW, p1 - p0, H, W);  // contiguous only
    }
  });
}
}  // namespace

template <typename T> void maxpool2x2_forward(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W) {
  pool_forward<T, true>(x, y, argmax, planes, H, W, W, H * W);
}
template <typename T>
void maxpool2x2_forward_strided(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t row,
                                int64_t plane) {
  pool_forward<T, true>(x, y, argmax, planes, H, W, row, plane);
}
template <typename T> void maxpool2x2_forward_v1(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W) {
  pool_forward<T, false>(x, y, argmax, planes, H, W, W, H * W);
}

template <typename T>
void maxpool2x2_backward(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t HW = H * W, OHW = (H / 2) * (W / 2);
  parallel_for(planes, min_items_for(H * W, kMinElements), [&](int64_t p0, int64_t p1) {
    if constexpr (std::is_same_v<T, float>)
      unpool_planes_f32_v3(gy + p0 * OHW, argmax + p0 * OHW, gx + p0 * HW, p1 - p0, H, W);
    else
      scatter_planes<T>(gy + p0 * OHW, argmax + p0 * OHW, gx + p0 * HW, p1 - p0, H, W, W, HW);
  });
}

template <typename T>
void maxpool2x2_backward_v2(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t HW = H * W, OHW = (H / 2) * (W / 2);
  parallel_for(planes, min_items_for(H * W, kMinElements), [&](int64_t p0, int64_t p1) {
    scatter_planes<T>(gy + p0 * OHW, argmax + p0 * OHW, gx + p0 * HW, p1 - p0, H, W, W, HW);
  });
}

template <typename T>
void maxpool2x2_backward_strided(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W,
                                 int64_t row, int64_t plane) {
  scatter_planes<T>(gy, argmax, gx, planes, H, W, row, plane);
}

template <typename T>
void maxpool2x2_backward_v1(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W) {
  if constexpr (std::is_same_v<T, float>) {
    unpool_planes_f32(gy, argmax, gx, planes, H, W);
  } else {
    unpool_planes<T>(gy, argmax, gx, planes, H, W);
  }
}

#define MR_INST(T)                                                                             \
  template void maxpool2x2_forward<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t);      \
  template void maxpool2x2_forward_v1<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t);   \
  template void maxpool2x2_forward_strided<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t); \
  template void maxpool2x2_backward<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t);  \
  template void maxpool2x2_backward_v1<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t);  \
  template void maxpool2x2_backward_v2<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t);  \
  template void maxpool2x2_backward_strided<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t, int64_t,  \
                                               int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
