// CUDA element-wise and row-wise kernels and the Philox initialisers; each calls the same per-element
// function as its CPU twin in kernels/cpu/elementwise.cpp and kernels/cpu/init.cpp.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/math.h"
#include "kernels/philox.h"

namespace musicrec::kernels::cuda {
namespace {

template <typename T> __global__ void k_fill(T* x, int64_t n, T v) {
  MR_GRID_STRIDE(i, n) x[i] = v;
}
__global__ void k_add_into(float* dst, const float* src, int64_t n) {
  MR_GRID_STRIDE(i, n) dst[i] += src[i];
}
__global__ void k_scale_into(float* x, int64_t n, float v) {
  MR_GRID_STRIDE(i, n) x[i] *= v;
}
__global__ void k_sigmoid_forward(const float* x, float* y, int64_t n) {
  MR_GRID_STRIDE(i, n) y[i] = math::sigmoid(x[i]);
}
__global__ void k_sigmoid_backward(const float* y, const float* gy, float* gx, int64_t n) {
  MR_GRID_STRIDE(i, n) gx[i] = math::sigmoid_grad_from_output(y[i], gy[i]);
}
__global__ void k_relu_forward(const float* x, float* y, int64_t n) {
  MR_GRID_STRIDE(i, n) y[i] = math::relu(x[i]);
}
__global__ void k_relu_backward(const float* x, const float* gy, float* gx, int64_t n) {
  MR_GRID_STRIDE(i, n) gx[i] = math::relu_grad(x[i], gy[i]);
}
__global__ void k_bias_add_rows(const float* x, const float* b, float* y, int64_t rows, int64_t cols) {
  MR_GRID_STRIDE(i, rows * cols) y[i] = x[i] + b[i % cols];
}
__global__ void k_bias_add_nchw(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW) {
  MR_GRID_STRIDE(i, N * C * HW) y[i] = x[i] + b[(i / HW) % C];
}
__global__ void k_bias_sigmoid_nchw(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW) {
  MR_GRID_STRIDE(i, N * C * HW) y[i] = math::sigmoid(x[i] + b[(i / HW) % C]);
}
// Variant 2 of the two kernels above (not yet used by the ops: see bias_sigmoid_nchw_forward_v2 in
// cuda_kernels.h). One block per (n, c) plane, so the bias is read once per plane and no element pays
// v1's 64-bit division and modulo; 16-byte loads and stores where the plane allows them.
template <bool kSigmoid> __device__ __forceinline__ float bias_act(float v, float bias) {
  return kSigmoid ? math::sigmoid(v + bias) : v + bias;
}
template <bool kSigmoid>
__global__ void k_bias_act_planes(const float* x, const float* b, float* y, int64_t C, int64_t HW, bool vec4) {
  const int64_t plane = blockIdx.x;
  const float bias = b[plane % C];
  const float* xp = x + plane * HW;
  float* yp = y + plane * HW;
  if (vec4) {  // HW % 4 == 0 and both bases 16-byte aligned, so every plane is too
    const float4* x4 = reinterpret_cast<const float4*>(xp);
    float4* y4 = reinterpret_cast<float4*>(yp);
    for (int64_t i = threadIdx.x; i < HW / 4; i += blockDim.x) {
      float4 v = x4[i];
      v.x = bias_act<kSigmoid>(v.x, bias);
      v.y = bias_act<kSigmoid>(v.y, bias);
      v.z = bias_act<kSigmoid>(v.z, bias);
      v.w = bias_act<kSigmoid>(v.w, bias);
      y4[i] = v;
    }
  } else {
    for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) yp[i] = bias_act<kSigmoid>(xp[i], bias);
  }
}
template <bool kSigmoid>
void launch_bias_act_planes(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW, cudaStream_t s,
                            const char* name) {
  if (N * C * HW == 0) return;
  MR_CHECK(N * C <= int64_t(0x7fffffff), std::string(name) + ": more than 2^31 - 1 planes");
  const bool vec4 = HW % 4 == 0 && (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(y)) % 16 == 0;
  const int64_t per_plane = vec4 ? HW / 4 : HW;
  // Enough warps for one pass over a plane, up to kBlock: small planes do not idle most of a block.
  const int threads = int(std::min<int64_t>(kBlock, (per_plane + 31) / 32 * 32));
  k_bias_act_planes<kSigmoid><<<static_cast<unsigned>(N * C), threads, 0, s>>>(x, b, y, C, HW, vec4);
  MR_LAUNCH_CHECK(name, s);
}
__global__ void k_dropout(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float scale = 1.0f / (1.0f - p);
  MR_GRID_STRIDE(i, n) y[i] = rng::dropout_keep(seed, offset, i, p) ? x[i] * scale : 0.0f;
}
// One warp per row: lanes stride over the columns, then a fixed shuffle tree. Row r reads a[ia[r]] and
// b[ib[r]], or a[r] and b[r] where the index list is null (rowdot_pairs_forward / rowdot_forward), each
// element less `shift` (0 for rowdot_forward).
__global__ void k_rowdot_forward(const float* a, const int32_t* ia, const float* b, const int32_t* ib, float* y,
                                 int64_t rows, int64_t cols, float shift) {
  int64_t warp = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (warp >= rows) return;
  const float* ra = a + (ia ? int64_t(ia[warp]) : warp) * cols;
  const float* rb = b + (ib ? int64_t(ib[warp]) : warp) * cols;
  float acc = 0.f;
  for (int64_t c = lane; c < cols; c += 32) acc += (ra[c] - shift) * (rb[c] - shift);
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
  if (lane == 0) y[warp] = acc;
}
__global__ void k_rowdot_backward(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t rows,
                                  int64_t cols) {
  MR_GRID_STRIDE(i, rows * cols) {
    float g = gy[i / cols];
    if (ga) ga[i] = g * b[i];
    if (gb) gb[i] = g * a[i];
  }
}
__global__ void k_copy_cols_into(const float* src, int64_t src_cols, float* dst, int64_t dst_cols, int64_t off,
                                 int64_t rows) {
  MR_GRID_STRIDE(i, rows * src_cols) dst[(i / src_cols) * dst_cols + off + i % src_cols] = src[i];
}
__global__ void k_extract_cols(const float* src, int64_t src_cols, int64_t off, float* dst, int64_t dst_cols,
                               int64_t rows) {
  MR_GRID_STRIDE(i, rows * dst_cols) dst[i] = src[(i / dst_cols) * src_cols + off + i % dst_cols];
}
__global__ void k_fill_uniform(float* x, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset) {
  MR_GRID_STRIDE(i, n) x[i] = lo + (hi - lo) * rng::uniform(seed, offset, i);
}
__global__ void k_fill_normal(float* x, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset) {
  MR_GRID_STRIDE(i, n) x[i] = mean + stddev * rng::normal(seed, offset, i);
}

}  // namespace

void fill(float* x, int64_t n, float v, cudaStream_t s) {
  if (n == 0) return;
  k_fill<float><<<grid_for(n), kBlock, 0, s>>>(x, n, v);
  MR_LAUNCH_CHECK("fill", s);
}
void fill_i32(int32_t* x, int64_t n, int32_t v, cudaStream_t s) {
  if (n == 0) return;
  k_fill<int32_t><<<grid_for(n), kBlock, 0, s>>>(x, n, v);
  MR_LAUNCH_CHECK("fill_i32", s);
}
void add_into(float* dst, const float* src, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_add_into<<<grid_for(n), kBlock, 0, s>>>(dst, src, n);
  MR_LAUNCH_CHECK("add_into", s);
}
void scale_into(float* x, int64_t n, float v, cudaStream_t s) {
  if (n == 0) return;
  k_scale_into<<<grid_for(n), kBlock, 0, s>>>(x, n, v);
  MR_LAUNCH_CHECK("scale_into", s);
}
void sigmoid_forward(const float* x, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_sigmoid_forward<<<grid_for(n), kBlock, 0, s>>>(x, y, n);
  MR_LAUNCH_CHECK("sigmoid_forward", s);
}
void sigmoid_backward(const float* y, const float* gy, float* gx, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_sigmoid_backward<<<grid_for(n), kBlock, 0, s>>>(y, gy, gx, n);
  MR_LAUNCH_CHECK("sigmoid_backward", s);
}
void relu_forward(const float* x, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_relu_forward<<<grid_for(n), kBlock, 0, s>>>(x, y, n);
  MR_LAUNCH_CHECK("relu_forward", s);
}
void relu_backward(const float* x, const float* gy, float* gx, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_relu_backward<<<grid_for(n), kBlock, 0, s>>>(x, gy, gx, n);
  MR_LAUNCH_CHECK("relu_backward", s);
}
void bias_add_rows(const float* x, const float* b, float* y, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_bias_add_rows<<<grid_for(rows * cols), kBlock, 0, s>>>(x, b, y, rows, cols);
  MR_LAUNCH_CHECK("bias_add_rows", s);
}
void bias_add_nchw(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW, cudaStream_t s) {
  if (N * C * HW == 0) return;
  k_bias_add_nchw<<<grid_for(N * C * HW), kBlock, 0, s>>>(x, b, y, N, C, HW);
  MR_LAUNCH_CHECK("bias_add_nchw", s);
}
void bias_sigmoid_nchw_forward(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW,
                               cudaStream_t s) {
  if (N * C * HW == 0) return;
  k_bias_sigmoid_nchw<<<grid_for(N * C * HW), kBlock, 0, s>>>(x, b, y, N, C, HW);
  MR_LAUNCH_CHECK("bias_sigmoid_nchw_forward", s);
}
void bias_add_nchw_v2(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW, cudaStream_t s) {
  launch_bias_act_planes<false>(x, b, y, N, C, HW, s, "bias_add_nchw_v2");
}
void bias_sigmoid_nchw_forward_v2(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW,
                                  cudaStream_t s) {
  launch_bias_act_planes<true>(x, b, y, N, C, HW, s, "bias_sigmoid_nchw_forward_v2");
}
void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset, cudaStream_t s) {
  if (n == 0) return;
  k_dropout<<<grid_for(n), kBlock, 0, s>>>(x, y, n, p, seed, offset);
  MR_LAUNCH_CHECK("dropout_forward", s);
}
void dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed, uint64_t offset, cudaStream_t s) {
  // The mask is a pure function of (seed, offset, i): backward is the same kernel applied to gy.
  if (n == 0) return;
  k_dropout<<<grid_for(n), kBlock, 0, s>>>(gy, gx, n, p, seed, offset);
  MR_LAUNCH_CHECK("dropout_backward", s);
}
void rowdot_forward(const float* a, const float* b, float* y, int64_t rows, int64_t cols, cudaStream_t s) {
  if (rows == 0) return;
  int64_t threads = rows * 32;
  k_rowdot_forward<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, s>>>(a, nullptr, b, nullptr, y,
                                                                                             rows, cols, 0.f);
  MR_LAUNCH_CHECK("rowdot_forward", s);
}
void rowdot_pairs_forward(const float* table, const int32_t* ia, const int32_t* ib, float* y, int64_t rows,
                          int64_t cols, float shift, cudaStream_t s) {
  if (rows == 0) return;
  int64_t threads = rows * 32;
  k_rowdot_forward<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, s>>>(table, ia, table, ib, y,
                                                                                             rows, cols, shift);
  MR_LAUNCH_CHECK("rowdot_pairs_forward", s);
}
void rowdot_backward(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t rows,
                     int64_t cols, cudaStream_t s) {
  if (rows * cols == 0) return;
  k_rowdot_backward<<<grid_for(rows * cols), kBlock, 0, s>>>(a, b, gy, ga, gb, rows, cols);
  MR_LAUNCH_CHECK("rowdot_backward", s);
}
void copy_cols_into(const float* src, int64_t src_cols, float* dst, int64_t dst_cols, int64_t col_offset,
                    int64_t rows, cudaStream_t s) {
  if (rows * src_cols == 0) return;
  k_copy_cols_into<<<grid_for(rows * src_cols), kBlock, 0, s>>>(src, src_cols, dst, dst_cols, col_offset, rows);
  MR_LAUNCH_CHECK("copy_cols_into", s);
}
void extract_cols(const float* src, int64_t src_cols, int64_t col_offset, float* dst, int64_t dst_cols, int64_t rows,
                  cudaStream_t s) {
  if (rows * dst_cols == 0) return;
  k_extract_cols<<<grid_for(rows * dst_cols), kBlock, 0, s>>>(src, src_cols, col_offset, dst, dst_cols, rows);
  MR_LAUNCH_CHECK("extract_cols", s);
}
void fill_uniform(float* x, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset, cudaStream_t s) {
  if (n == 0) return;
  k_fill_uniform<<<grid_for(n), kBlock, 0, s>>>(x, n, lo, hi, seed, offset);
  MR_LAUNCH_CHECK("fill_uniform", s);
}
void fill_normal(float* x, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset, cudaStream_t s) {
  if (n == 0) return;
  k_fill_normal<<<grid_for(n), kBlock, 0, s>>>(x, n, mean, stddev, seed, offset);
  MR_LAUNCH_CHECK("fill_normal", s);
}

}  // namespace musicrec::kernels::cuda
