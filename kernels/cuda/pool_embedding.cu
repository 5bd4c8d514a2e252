// CUDA 2x2 max pooling and embedding lookup with a deterministic backward.
//
// Embedding backward avoids float atomics (the usual source of run-to-run differences): a stable
// radix sort groups the positions of each index in position order, run-length encoding finds the
// groups, and one block per group sums its rows in that order. Same order as the CPU reference.
#include <cub/cub.cuh>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch.cuh"

namespace musicrec::kernels::cuda {
namespace {

__global__ void k_maxpool_forward(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  MR_GRID_STRIDE(o, planes * OH * OW) {
    int64_t p = o / (OH * OW), rem = o % (OH * OW);
    int64_t oh = rem / OW, ow = rem % OW;
    const float* xp = x + p * H * W;
    int64_t best = (2 * oh) * W + 2 * ow;
    const int64_t cands[3] = {best + 1, best + W, best + W + 1};
    for (int k = 0; k < 3; ++k)
      if (xp[cands[k]] > xp[best]) best = cands[k];
    y[o] = xp[best];
    argmax[o] = static_cast<int32_t>(best);
  }
}

// One thread per input element: it takes its window's gradient if it was the winner, else 0.
// Every element is written (including the dropped odd edge), so no separate zero fill is needed.
__global__ void k_maxpool_backward(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H,
                                   int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  MR_GRID_STRIDE(i, planes * H * W) {
    int64_t p = i / (H * W), rem = i % (H * W);
    int64_t h = rem / W, w = rem % W;
    int64_t oh = h / 2, ow = w / 2;
    float g = 0.f;
    if (oh < OH && ow < OW) {
      int64_t o = (p * OH + oh) * OW + ow;
      if (argmax[o] == rem) g = gy[o];
    }
    gx[i] = g;
  }
}

// Variant 2 (not yet used by the op: see maxpool2x2_backward_v2 in cuda_kernels.h). v1 pays four 64-bit
// divisions per element to find its plane, row, column and window. Here a block owns one pair of input
// rows of one plane (blockIdx.x = plane * ceil(H/2) + pair, one division per block) and its threads walk
// the columns: each reads its window's winner and gradient once and writes both rows' elements, so the
// stores of a warp stay contiguous. A dropped odd last row or column gets 0, as in v1.
__global__ void k_maxpool_backward_rows(const float* gy, const int32_t* argmax, float* gx, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2, pairs = (H + 1) / 2;
  const int64_t plane = blockIdx.x / pairs, pair = blockIdx.x % pairs;
  const int64_t r0 = 2 * pair;
  float* g0 = gx + (plane * H + r0) * W;
  float* g1 = r0 + 1 < H ? g0 + W : nullptr;
  const int64_t orow = (plane * OH + pair) * OW;
  for (int64_t w = threadIdx.x; w < W; w += blockDim.x) {
    const int64_t ow = w >> 1;
    int64_t winner = -1;
    float g = 0.f;
    if (pair < OH && ow < OW) {
      winner = argmax[orow + ow];
      g = gy[orow + ow];
    }
    g0[w] = winner == r0 * W + w ? g : 0.f;
    if (g1) g1[w] = winner == (r0 + 1) * W + w ? g : 0.f;
  }
}

__global__ void k_embedding_forward(const float* table, const int32_t* idx, float* out, int64_t n, int64_t dim,
                                    int64_t vocab) {
  MR_GRID_STRIDE(i, n * dim) {
    int64_t r = idx[i / dim];
    out[i] = (r >= 0 && r < vocab) ? table[r * dim + i % dim] : __int_as_float(0x7fc00000);
  }
}

__global__ void k_iota(int32_t* x, int64_t n) {
  MR_GRID_STRIDE(i, n) x[i] = static_cast<int32_t>(i);
}

__global__ void k_segment_sum(const int32_t* unique, const int32_t* counts, const int32_t* offsets,
                              const int32_t* num_runs, const int32_t* pos_sorted, const float* gy, int64_t dim,
                              int32_t* rows_out, float* vals_out) {
  const int64_t u = blockIdx.x;
  const bool real = u < *num_runs && unique[u] >= 0;
  if (threadIdx.x == 0) rows_out[u] = real ? unique[u] : -1;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    float acc = 0.f;
    if (real)
      for (int32_t k = offsets[u]; k < offsets[u] + counts[u]; ++k) acc += gy[static_cast<int64_t>(pos_sorted[k]) * dim + d];
    vals_out[u * dim + d] = acc;
  }
}

__global__ void k_scatter_rows_add(const int32_t* rows, const float* vals, int64_t U, int64_t dim, float* dst) {
  MR_GRID_STRIDE(i, U * dim) {
    int32_t r = rows[i / dim];
    if (r >= 0) dst[static_cast<int64_t>(r) * dim + i % dim] += vals[i];
  }
}

size_t align256(size_t b) { return (b + 255) & ~size_t(255); }

// Carves the caller's scratch into the sort and run-length buffers.
struct EmbeddingScratch {
  int32_t *positions, *keys_sorted, *pos_sorted, *unique, *counts, *offsets, *num_runs;
  void* cub_temp;
  size_t cub_bytes;
  size_t total;
};

EmbeddingScratch layout(int64_t n, char* base) {
  size_t sort_b = 0, rle_b = 0, scan_b = 0;
  int ni = static_cast<int>(n);
  cub::DeviceRadixSort::SortPairs(nullptr, sort_b, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), ni);
  cub::DeviceRunLengthEncode::Encode(nullptr, rle_b, static_cast<const int32_t*>(nullptr),
                                     static_cast<int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                     static_cast<int32_t*>(nullptr), ni);
  cub::DeviceScan::ExclusiveSum(nullptr, scan_b, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), ni);
  EmbeddingScratch s{};
  size_t arr = align256(sizeof(int32_t) * static_cast<size_t>(n));
  size_t off = 0;
  auto take = [&](size_t bytes) { char* p = base ? base + off : nullptr; off += align256(bytes); return p; };
  s.positions = reinterpret_cast<int32_t*>(take(arr));
  s.keys_sorted = reinterpret_cast<int32_t*>(take(arr));
  s.pos_sorted = reinterpret_cast<int32_t*>(take(arr));
  s.unique = reinterpret_cast<int32_t*>(take(arr));
  s.counts = reinterpret_cast<int32_t*>(take(arr));
  s.offsets = reinterpret_cast<int32_t*>(take(arr));
  s.num_runs = reinterpret_cast<int32_t*>(take(sizeof(int32_t)));
  s.cub_bytes = std::max(sort_b, std::max(rle_b, scan_b));
  s.cub_temp = take(s.cub_bytes);
  s.total = off;
  return s;
}

#define MR_CUB_CHECK(call) MR_CUDA_CHECK(call)

}  // namespace

void maxpool2x2_forward(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W,
                        cudaStream_t s) {
  int64_t n = planes * (H / 2) * (W / 2);
  if (n == 0) return;
  k_maxpool_forward<<<grid_for(n), kBlock, 0, s>>>(x, y, argmax, planes, H, W);
  MR_LAUNCH_CHECK("maxpool2x2_forward", s);
}
void maxpool2x2_backward(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H, int64_t W,
                         cudaStream_t s) {
  int64_t n = planes * H * W;
  if (n == 0) return;
  k_maxpool_backward<<<grid_for(n), kBlock, 0, s>>>(gy, argmax, gx, planes, H, W);
  MR_LAUNCH_CHECK("maxpool2x2_backward", s);
}
void maxpool2x2_backward_v2(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H, int64_t W,
                            cudaStream_t s) {
  if (planes * H * W == 0) return;
  const int64_t blocks = planes * ((H + 1) / 2);
  MR_CHECK(blocks <= int64_t(0x7fffffff), "maxpool2x2_backward_v2: more than 2^31 - 1 row pairs");
  const int threads = int(std::min<int64_t>(kBlock, (W + 31) / 32 * 32));
  k_maxpool_backward_rows<<<static_cast<unsigned>(blocks), threads, 0, s>>>(gy, argmax, gx, H, W);
  MR_LAUNCH_CHECK("maxpool2x2_backward_v2", s);
}
void embedding_forward(const float* table, const int32_t* idx, float* out, int64_t n, int64_t dim, int64_t vocab,
                       cudaStream_t s) {
  if (n * dim == 0) return;
  k_embedding_forward<<<grid_for(n * dim), kBlock, 0, s>>>(table, idx, out, n, dim, vocab);
  MR_LAUNCH_CHECK("embedding_forward", s);
}

size_t embedding_backward_scratch_bytes(int64_t n) { return layout(n, nullptr).total; }

void embedding_backward(const int32_t* idx, const float* gy, int64_t n, int64_t dim, int32_t* rows_out,
                        float* vals_out, void* scratch, size_t scratch_bytes, cudaStream_t s) {
  if (n == 0) return;
  EmbeddingScratch w = layout(n, static_cast<char*>(scratch));
  MR_CHECK(scratch_bytes >= w.total, "embedding_backward: scratch too small");
  const int ni = static_cast<int>(n);
  k_iota<<<grid_for(n), kBlock, 0, s>>>(w.positions, n);
  MR_LAUNCH_CHECK("iota", s);
  size_t bytes = w.cub_bytes;
  // Radix sort is stable, so equal indices keep their positions in increasing order.
  MR_CUB_CHECK(cub::DeviceRadixSort::SortPairs(w.cub_temp, bytes, idx, w.keys_sorted, w.positions, w.pos_sorted, ni,
                                               0, 32, s));
  // Runs beyond num_runs are not written by the encoder, but the scan reads all n counts: zero them
  // first so every value the scan sees is defined.
  fill_i32(w.counts, n, 0, s);
  bytes = w.cub_bytes;
  MR_CUB_CHECK(cub::DeviceRunLengthEncode::Encode(w.cub_temp, bytes, w.keys_sorted, w.unique, w.counts, w.num_runs,
                                                  ni, s));
  bytes = w.cub_bytes;
  MR_CUB_CHECK(cub::DeviceScan::ExclusiveSum(w.cub_temp, bytes, w.counts, w.offsets, ni, s));
  int threads = dim >= kBlock ? kBlock : static_cast<int>(((dim + 31) / 32) * 32);
  k_segment_sum<<<static_cast<unsigned>(n), threads, 0, s>>>(w.unique, w.counts, w.offsets, w.num_runs, w.pos_sorted,
                                                              gy, dim, rows_out, vals_out);
  MR_LAUNCH_CHECK("embedding_segment_sum", s);
}

void scatter_rows_add(const int32_t* rows, const float* vals, int64_t U, int64_t dim, float* dst, cudaStream_t s) {
  if (U * dim == 0) return;
  k_scatter_rows_add<<<grid_for(U * dim), kBlock, 0, s>>>(rows, vals, U, dim, dst);
  MR_LAUNCH_CHECK("scatter_rows_add", s);
}

}  // namespace musicrec::kernels::cuda
