// CUDA kernels (float32), one launcher per op, each the device twin of a kernel in
// kernels/cpu/cpu_kernels.h with the same argument order plus the stream. Launchers check the launch
// (check.h). Scratch memory, where a kernel needs it, is passed in by the caller (the engine's caching
// allocator), together with a *_scratch_bytes() function saying how much.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace musicrec::kernels::cuda {

// ---- element-wise (elementwise.cu) ----
void fill(float* x, int64_t n, float value, cudaStream_t s);
void fill_i32(int32_t* x, int64_t n, int32_t value, cudaStream_t s);
void add_into(float* dst, const float* src, int64_t n, cudaStream_t s);
void scale_into(float* x, int64_t n, float v, cudaStream_t s);
void sigmoid_forward(const float* x, float* y, int64_t n, cudaStream_t s);
void sigmoid_backward(const float* y, const float* gy, float* gx, int64_t n, cudaStream_t s);
void relu_forward(const float* x, float* y, int64_t n, cudaStream_t s);
void relu_backward(const float* x, const float* gy, float* gx, int64_t n, cudaStream_t s);
void bias_add_rows(const float* x, const float* b, float* y, int64_t rows, int64_t cols, cudaStream_t s);
void bias_add_nchw(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW, cudaStream_t s);
void bias_sigmoid_nchw_forward(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW,
                               cudaStream_t s);
// Variant 2 of the two above: one block per (n, c) plane, no per-element 64-bit division, 16-byte
// accesses where HW % 4 == 0. The ops' since the H200 run of 2026-11-28 (session 24: correct,
// CudaParity.BiasPlanesV2*; 2.86-2.98x v1 at conv 1's shape, 85-93 % of the copy rate against 28-33 %);
// v1 stays as BM_BiasSigmoid_Forward's and BM_BiasAdd_Forward's baseline.
void bias_add_nchw_v2(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW, cudaStream_t s);
void bias_sigmoid_nchw_forward_v2(const float* x, const float* b, float* y, int64_t N, int64_t C, int64_t HW,
                                  cudaStream_t s);
void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset, cudaStream_t s);
void dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed, uint64_t offset, cudaStream_t s);
void rowdot_forward(const float* a, const float* b, float* y, int64_t rows, int64_t cols, cudaStream_t s);
void rowdot_backward(const float* a, const float* b, const float* gy, float* ga, float* gb, int64_t rows,
                     int64_t cols, cudaStream_t s);
void rowdot_pairs_forward(const float* table, const int32_t* ia, const int32_t* ib, float* y, int64_t rows,
                          int64_t cols, float shift, cudaStream_t s);
void copy_cols_into(const float* src, int64_t src_cols, float* dst, int64_t dst_cols, int64_t col_offset,
                    int64_t rows, cudaStream_t s);
void extract_cols(const float* src, int64_t src_cols, int64_t col_offset, float* dst, int64_t dst_cols, int64_t rows,
                  cudaStream_t s);
void fill_uniform(float* x, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset, cudaStream_t s);
void fill_normal(float* x, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset, cudaStream_t s);

// ---- reductions and losses (reduce_loss.cu); all deterministic: fixed grid, fixed tree order ----
size_t sum_scratch_bytes(int64_t n);
void sum(const float* x, int64_t n, float* out, void* scratch, cudaStream_t s);  // *out = sum(x)
void broadcast_scalar(const float* s, float* x, int64_t n, float mult, cudaStream_t st);  // x[i] = *s * mult
void bias_grad_rows(const float* gy, float* gb, int64_t rows, int64_t cols, cudaStream_t s);
// Per-channel gradients of NCHW tensors; scratch holds channel_grad_scratch_bytes(N, C, HW) bytes.
size_t channel_grad_scratch_bytes(int64_t N, int64_t C, int64_t HW);
void bias_grad_nchw(const float* gy, float* gb, int64_t N, int64_t C, int64_t HW, void* scratch, cudaStream_t s);
void bias_sigmoid_nchw_backward(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C,
                                int64_t HW, void* scratch, cudaStream_t s);
// The first version (one block per channel), kept as the benchmark's baseline.
void bias_sigmoid_nchw_backward_v1(const float* y, const float* gy, float* gx, float* gb, int64_t N, int64_t C,
                                   int64_t HW, cudaStream_t s);
// A target outside [0, classes) gives a NaN loss for its row.
void softmax_xent_forward(const float* logits, const int32_t* targets, float* probs, float* loss, int64_t rows,
                          int64_t classes, cudaStream_t s);
void softmax_xent_backward(const float* probs, const int32_t* targets, const float* gloss, float* gx, int64_t rows,
                           int64_t classes, cudaStream_t s);
void bce_logits_forward(const float* x, const float* y, const float* w, float* loss, int64_t n, cudaStream_t s);
void bce_logits_backward(const float* x, const float* y, const float* w, const float* gloss, float* gx, int64_t n,
                         cudaStream_t s);

// ---- pooling and embedding (pool_embedding.cu) ----
void maxpool2x2_forward(const float* x, float* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W,
                        cudaStream_t s);
void maxpool2x2_backward(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H, int64_t W,
                         cudaStream_t s);
// Variant 2 of the backward: a block per pair of input rows, no per-element 64-bit division. The ops'
// since the H200 run of 2026-11-28 (session 24: correct, CudaParity.MaxPoolBackwardV2MatchesTheCpu;
// 2.38x v1, 47 % of the copy rate); v1 stays as BM_MaxPool_Backward's baseline.
void maxpool2x2_backward_v2(const float* gy, const int32_t* argmax, float* gx, int64_t planes, int64_t H, int64_t W,
                            cudaStream_t s);
// An index outside [0, vocab) yields a NaN row instead of a wild read (the CPU path raises an error).
void embedding_forward(const float* table, const int32_t* idx, float* out, int64_t n, int64_t dim, int64_t vocab,
                       cudaStream_t s);
// Deterministic backward (stable radix sort of positions by index, then one block per distinct index
// summing its rows in position order). Writes n rows: distinct indices ascending with their summed
// gradients, then padding rows marked -1 with zero values. Negative input indices are treated as
// padding too, which lets the same call merge two sparse gradients.
size_t embedding_backward_scratch_bytes(int64_t n);
void embedding_backward(const int32_t* idx, const float* gy, int64_t n, int64_t dim, int32_t* rows_out,
                        float* vals_out, void* scratch, size_t scratch_bytes, cudaStream_t s);
// Dense scatter of a row-sparse gradient: dst[rows[u], :] += vals[u, :] for rows[u] >= 0.
// Rows must be distinct (as embedding_backward produces), so no two threads write one element.
void scatter_rows_add(const int32_t* rows, const float* vals, int64_t U, int64_t dim, float* dst, cudaStream_t s);

// ---- convolution (conv_filter_grad.cu, conv_pool_forward.cu, conv_data_grad.cu; the rest is cuDNN, cudnn_conv.h) ----
// The filter gradient gw[K, C, KH, KW] of a stride-1 convolution, written by hand: a block per (group
// of output runs, 16 filters, channel) sums in registers, a second kernel sums the groups, in fixed
// orders (conv_filter_grad.h). For the shapes supports() accepts (filters 5 x 10 as conv 1's, 3 x 3, or
// 2 x 2 as conv 2's and 3's); scratch holds scratch_bytes() bytes. The ops' default for conv 1 since the
// H200 run of 2026-11-28 (436 us against cuDNN's deterministic 5,631 us at 1,024 images), for 2 x 2
// filters since session 24's (1.42-1.51x cuDNN's).
bool conv2d_filter_grad_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                        int64_t ph, int64_t pw);
size_t conv2d_filter_grad_direct_scratch_bytes(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                                               int64_t KW, int64_t ph, int64_t pw);
// argmax == nullptr: gy is the dense gradient [N, K, OH, OW]. Else gy is the gradient of a 2 x 2 max
// pool of the convolution's output, [N, K, OH / 2, OW / 2], and argmax its winners (as
// maxpool2x2_forward writes them): the same result, bit for bit, without the unpooled gradient.
void conv2d_filter_grad_direct(const float* x, const float* gy, const int32_t* argmax, float* gw, int64_t N, int64_t C,
                               int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                               void* scratch, cudaStream_t s);

// Convolution then 2 x 2 max pooling in one kernel (conv_pool_forward.cu): writes only the pooled
// values y[N, K, OH / 2, OW / 2] and their winners (as maxpool2x2_forward picks and numbers them), not the
// convolution's output. For the shapes supports() accepts (5 x 10, 3 x 3 or 2 x 2 filters, the block's
// weights within 16 KB). The ops take it for 5 x 10 filters; for 2 x 2, where it ran 0.24-0.68x cuDNN +
// the pooling kernel on the H200 (session 24), only with MUSICREC_CONV_KERNELS=direct-all.
// CudaParity.ConvPoolDirect* and BM_ConvPoolForward compare it with cuDNN + the pooling kernel.
bool conv2d_maxpool_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                    int64_t ph, int64_t pw);
void conv2d_maxpool_direct_forward(const float* x, const float* w, float* y, int32_t* argmax, int64_t N, int64_t C,
                                   int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                                   cudaStream_t s);

// The data gradient gx[N, C, H, W] of a stride-1 convolution, written by hand (conv_data_grad.cu): each
// input value gathers its products in registers, a block of channels' weights in shared memory, in a
// fixed order (conv_data_grad.h). argmax as for the filter gradient above: nullptr for a dense gy, else
// gy is the pooled gradient and argmax its winners (the same bits, without the unpooled gradient). For
// 5 x 10, 3 x 3 and 2 x 2 filters within the shared memory's room. The ops' default since the H200 run
// of 2026-11-28 (session 24): 1.84x the pooling's backward + cuDNN at conv 2, 0.96-1.09x at conv 3.
bool conv2d_data_grad_direct_supports(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                                      int64_t ph, int64_t pw);
void conv2d_data_grad_direct(const float* gy, const int32_t* argmax, const float* w, float* gx, int64_t N, int64_t C,
                             int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                             cudaStream_t s);

// ---- the float32 multiply-add peak (peak.cu), for the benchmarks' ceilings ----
// Runs `iters` multiply-adds in each of a few register chains on fma_peak_threads() threads (every SM
// kept busy), each thread storing one float into out; returns the floating-point operations done.
int64_t fma_peak_threads();
double fma_peak(int64_t iters, float* out, cudaStream_t s);

// ---- kernel-density estimates (kde.cu) ----
void kde_density_naive(const float* y, int64_t n, float bandwidth, float* density, cudaStream_t s);
void kde_density_tiled(const float* y, int64_t n, float bandwidth, float* density, cudaStream_t s);
size_t kde_weights_scratch_bytes(int64_t n);
void kde_weights_from_density(const float* density, float* weights, int64_t n, void* scratch, cudaStream_t s);

// ---- optimizers (optim.cu) ----
void adam_dense(float* p, float* m, float* v, const float* g, int64_t n, float b1, float b2, float lr_t, float eps_t,
                float weight_decay, cudaStream_t s);
void adam_rows(float* p, float* m, float* v, const int32_t* rows, const float* g, int64_t U, int64_t dim, float b1,
               float b2, float lr_t, float eps_t, float weight_decay, cudaStream_t s);
void sgd_dense(float* p, float* buf, const float* g, int64_t n, float lr, float momentum, float weight_decay,
               cudaStream_t s);
void sgd_rows(float* p, float* buf, const int32_t* rows, const float* g, int64_t U, int64_t dim, float lr,
              float momentum, float weight_decay, cudaStream_t s);

}  // namespace musicrec::kernels::cuda
