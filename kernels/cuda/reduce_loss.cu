// CUDA reductions (full sum, bias gradients) and losses. Every reduction has a fixed grid and a fixed
// tree order, so the same input gives bitwise the same result on every run: no float atomics.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/math.h"

namespace musicrec::kernels::cuda {
namespace {

constexpr int kMaxSumBlocks = 1024;

// Depends on n only, never on the device, so the partial sums (and their order) are reproducible.
int sum_blocks(int64_t n) {
  int64_t b = (n + 4 * kBlock - 1) / (4 * kBlock);
  return static_cast<int>(b < 1 ? 1 : (b > kMaxSumBlocks ? kMaxSumBlocks : b));
}

__global__ void k_sum_partial(const float* x, int64_t n, float* partial) {
  __shared__ float sh[kBlock];
  float acc = 0.f;
  MR_GRID_STRIDE(i, n) acc += x[i];
  float t = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = t;
}
__global__ void k_sum_final(const float* partial, int count, float* out) {
  __shared__ float sh[kBlock];
  float acc = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  float t = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = t;
}

// Column sums of a [rows, cols] matrix: a 32 x 8 block owns 32 columns; each of the 8 thread rows
// strides over the matrix rows, then the 8 partials are added in a fixed order.
__global__ void k_broadcast_scalar(const float* s, float* x, int64_t n, float mult) {
  const float v = *s * mult;
  MR_GRID_STRIDE(i, n) x[i] = v;
}

__global__ void k_bias_grad_rows(const float* gy, float* gb, int64_t rows, int64_t cols) {
  __shared__ float sh[8][33];
  int64_t c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.f;
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += 8) acc += gy[r * cols + c];
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (int k = 0; k < 8; ++k) t += sh[k][threadIdx.x];
    gb[c] = t;
  }
}

// Version 1, kept as the benchmark's baseline (bench/bench_gpu.cpp): one block per channel sums over
// (n, hw), and optionally first turns gy into the sigmoid's pre-activation gradient, writing it to gx
// (the fused sigmoid-conv backward). With 16 or 32 channels it fills 16 or 32 of the GPU's ~132 SMs and
// divides per element: measured on an H200 it was 47 % of the pair CNN's training step (2026-11-26).
template <bool kSigmoid>
__global__ void k_channel_grad_v1(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C,
                                  int64_t HW) {
  __shared__ float sh[kBlock];
  const int64_t c = blockIdx.x;
  float acc = 0.f;
  for (int64_t i = threadIdx.x; i < N * HW; i += blockDim.x) {
    int64_t idx = ((i / HW) * C + c) * HW + i % HW;
    float g = gy[idx];
    if (kSigmoid) {
      g = math::sigmoid_grad_from_output(y[idx], g);
      gx[idx] = g;
    }
    acc += g;
  }
  float t = block_sum(acc, sh);
  if (threadIdx.x == 0) gb[c] = t;
}

// Version 2: a C x P grid. Block (c, p) owns the p-th contiguous slice of channel c's N*HW positions
// and writes one partial sum; a second kernel adds each channel's P partials in order. P depends on
// N*HW only (never on the device), so results are bitwise reproducible, as with every reduction here.
// Threads walk their positions with (n, hw) carried forward, not divided per element.
constexpr int64_t kChannelSlice = 16 * kBlock;  // positions per block, at least
constexpr int64_t kMaxChannelParts = 256;

int64_t channel_parts(int64_t N, int64_t HW) {
  int64_t p = (N * HW + kChannelSlice - 1) / kChannelSlice;
  return p < 1 ? 1 : (p > kMaxChannelParts ? kMaxChannelParts : p);
}

template <bool kSigmoid>
__global__ void k_channel_grad_partial(const float* y, const float* gy, float* gx, float* partial, int64_t N, int64_t C,
                                       int64_t HW, int64_t P) {
  __shared__ float sh[kBlock];
  const int64_t c = blockIdx.x, p = blockIdx.y, total = N * HW;
  const int64_t per = (total + P - 1) / P, begin = p * per, end = begin + per < total ? begin + per : total;
  float acc = 0.f;
  int64_t j = begin + threadIdx.x;
  int64_t n = j / HW, hw = j - n * HW;
  for (; j < end; j += blockDim.x) {
    const int64_t idx = (n * C + c) * HW + hw;
    float g = gy[idx];
    if (kSigmoid) {
      g = math::sigmoid_grad_from_output(y[idx], g);
      gx[idx] = g;
    }
    acc += g;
    hw += blockDim.x;
    while (hw >= HW) {
      hw -= HW;
      ++n;
    }
  }
  float t = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[c * P + p] = t;
}

__global__ void k_channel_grad_final(const float* partial, float* gb, int64_t C, int64_t P) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t = 0.f;
  for (int64_t p = 0; p < P; ++p) t += partial[c * P + p];
  gb[c] = t;
}

template <bool kSigmoid>
void channel_grad(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C, int64_t HW,
                  void* scratch, cudaStream_t s, const char* what) {
  if (C == 0) return;
  if (N * HW == 0) {  // no positions: every channel's sum is 0
    MR_CUDA_CHECK(cudaMemsetAsync(gb, 0, sizeof(float) * static_cast<size_t>(C), s));
    return;
  }
  const int64_t P = channel_parts(N, HW);
  float* partial = static_cast<float*>(scratch);
  k_channel_grad_partial<kSigmoid><<<dim3(static_cast<unsigned>(C), static_cast<unsigned>(P)), kBlock, 0, s>>>(
      y, gy, gx, partial, N, C, HW, P);
  MR_LAUNCH_CHECK(what, s);
  k_channel_grad_final<<<grid_for(C), kBlock, 0, s>>>(partial, gb, C, P);
  MR_LAUNCH_CHECK(what, s);
}

__global__ void k_softmax_xent_forward(const float* logits, const int32_t* targets, float* probs, float* loss,
                                       int64_t rows, int64_t classes) {
  MR_GRID_STRIDE(r, rows) {
    const float* x = logits + r * classes;
    float* p = probs + r * classes;
    float mx = x[0];
    for (int64_t c = 1; c < classes; ++c) mx = x[c] > mx ? x[c] : mx;
    float s = 0.f;
    for (int64_t c = 0; c < classes; ++c) {
      p[c] = math::fexp(x[c] - mx);
      s += p[c];
    }
    for (int64_t c = 0; c < classes; ++c) p[c] /= s;
    const int32_t t = targets[r];
    loss[r] = (t >= 0 && t < classes) ? logf(s) + mx - x[t] : __int_as_float(0x7fc00000);
  }
}
__global__ void k_softmax_xent_backward(const float* probs, const int32_t* targets, const float* gloss, float* gx,
                                        int64_t rows, int64_t classes) {
  MR_GRID_STRIDE(i, rows * classes) {
    int64_t r = i / classes, c = i % classes;
    gx[i] = gloss[r] * (probs[i] - (c == targets[r] ? 1.f : 0.f));
  }
}
__global__ void k_bce_forward(const float* x, const float* y, const float* w, float* loss, int64_t n) {
  MR_GRID_STRIDE(i, n) loss[i] = (w ? w[i] : 1.f) * math::bce_with_logits(x[i], y[i]);
}
__global__ void k_bce_backward(const float* x, const float* y, const float* w, const float* gloss, float* gx,
                               int64_t n) {
  MR_GRID_STRIDE(i, n) gx[i] = gloss[i] * (w ? w[i] : 1.f) * math::bce_with_logits_grad(x[i], y[i]);
}

}  // namespace

size_t sum_scratch_bytes(int64_t n) { return sizeof(float) * static_cast<size_t>(sum_blocks(n)); }

void sum(const float* x, int64_t n, float* out, void* scratch, cudaStream_t s) {
  int blocks = sum_blocks(n);
  float* partial = static_cast<float*>(scratch);
  k_sum_partial<<<blocks, kBlock, 0, s>>>(x, n, partial);
  MR_LAUNCH_CHECK("sum_partial", s);
  k_sum_final<<<1, kBlock, 0, s>>>(partial, blocks, out);
  MR_LAUNCH_CHECK("sum_final", s);
}

void broadcast_scalar(const float* s, float* x, int64_t n, float mult, cudaStream_t st) {
  if (n == 0) return;
  k_broadcast_scalar<<<grid_for(n), kBlock, 0, st>>>(s, x, n, mult);
  MR_LAUNCH_CHECK("broadcast_scalar", st);
}

void bias_grad_rows(const float* gy, float* gb, int64_t rows, int64_t cols, cudaStream_t s) {
  if (cols == 0) return;
  dim3 block(32, 8);
  k_bias_grad_rows<<<static_cast<unsigned>((cols + 31) / 32), block, 0, s>>>(gy, gb, rows, cols);
  MR_LAUNCH_CHECK("bias_grad_rows", s);
}
size_t channel_grad_scratch_bytes(int64_t N, int64_t C, int64_t HW) {
  return sizeof(float) * static_cast<size_t>(C * channel_parts(N, HW));
}
void bias_grad_nchw(const float* gy, float* gb, int64_t N, int64_t C, int64_t HW, void* scratch, cudaStream_t s) {
  channel_grad<false>(nullptr, gy, nullptr, gb, N, C, HW, scratch, s, "bias_grad_nchw");
}
void bias_sigmoid_nchw_backward(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C,
                                int64_t HW, void* scratch, cudaStream_t s) {
  channel_grad<true>(y, gy, gx, gb, N, C, HW, scratch, s, "bias_sigmoid_nchw_backward");
}
void bias_sigmoid_nchw_backward_v1(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C,
                                   int64_t HW, cudaStream_t s) {
  if (C == 0) return;
  k_channel_grad_v1<true><<<static_cast<unsigned>(C), kBlock, 0, s>>>(y, gy, gx, gb, N, C, HW);
  MR_LAUNCH_CHECK("bias_sigmoid_nchw_backward_v1", s);
}
void softmax_xent_forward(const float* logits, const int32_t* targets, float* probs, float* loss, int64_t rows,
                          int64_t classes, cudaStream_t s) {
  if (rows == 0) return;
  k_softmax_xent_forward<<<grid_for(rows), kBlock, 0, s>>>(logits, targets, probs, loss, rows, classes);
  MR_LAUNCH_CHECK("softmax_xent_forward", s);
}
void softmax_xent_backward(const float* probs, const int32_t* targets, const float* gloss, float* gx, int64_t rows,
                           int64_t classes, cudaStream_t s) {
  if (rows * classes == 0) return;
  k_softmax_xent_backward<<<grid_for(rows * classes), kBlock, 0, s>>>(probs, targets, gloss, gx, rows, classes);
  MR_LAUNCH_CHECK("softmax_xent_backward", s);
}
void bce_logits_forward(const float* x, const float* y, const float* w, float* loss, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  k_bce_forward<<<grid_for(n), kBlock, 0, s>>>(x, y, w, loss, n);
  MR_LAUNCH_CHECK("bce_logits_forward", s);
}
void bce_logits_backward(const float* x, const float* y, const float* w, const float* gloss, float* gx, int64_t n,
                         cudaStream_t s) {
  if (n == 0) return;
  k_bce_backward<<<grid_for(n), kBlock, 0, s>>>(x, y, w, gloss, gx, n);
  MR_LAUNCH_CHECK("bce_logits_backward", s);
}

}  // namespace musicrec::kernels::cuda
