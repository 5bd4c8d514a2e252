// CPU reference kernels: plain loops over raw pointers, templated on float and double (double is
// what the gradient checks use). These are the definition of every op's result: the CUDA kernels are
// tested against them, and they are what runs where there is no GPU.
// Conventions: row-major, NCHW; `n` counts elements; outputs are written, never accumulated,
// unless the name says `_into` or `accumulate`.
#pragma once
#include <cstdint>

namespace musicrec::kernels::cpu {

// ---- matrix products (blas.cpp) ----
// C[M,N] = alpha * op(A) * op(B) + beta * C, op(A) is M x K, op(B) is K x N, all row-major. Large
// products split into blocks of C's rows or columns over the kernel threads (blas.cpp), each block one
// single-threaded BLAS call: the same bits at any thread count. Called from inside a parallel_for chunk
// (the convolutions' per-image products), it runs on the calling thread.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta, T* C);
// Which float product gemm's blocks run: the hand-written AVX-512 kernel (Own, sgemm_avx512.cpp) or the
// BLAS library (Library); Best is Own where the CPU has AVX-512 (x86-64-v4), else the library, and Own
// without AVX-512 is the library too. Own leaves products under 16 columns or 8 rows to the library. Process-wide; the default comes from MUSICREC_CPU_SGEMM=best|
// library|own (best when unset). double always takes the library.
enum class SgemmKernel { Best, Library, Own };
void set_sgemm_kernel(SgemmKernel k);
SgemmKernel sgemm_kernel_in_use();  // Library or Own
// C = A B (no transposes) on the BLAS library's own threads (OpenBLAS: cpu_threads() of them, then back
// to one): the benchmarks' matrix-product ceiling, what the library reaches on a large product.
void sgemm_library_threads(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C);

// ---- element-wise and row-wise (elementwise.cpp) ----
template <typename T> void fill(T* x, int64_t n, T value);
template <typename T> void add_into(T* dst, const T* src, int64_t n);  // dst += src
template <typename T> void scale_into(T* x, int64_t n, T s);            // x *= s
template <typename T> void sigmoid_forward(const T* x, T* y, int64_t n);
template <typename T> void sigmoid_backward(const T* y, const T* gy, T* gx, int64_t n);
template <typename T> void relu_forward(const T* x, T* y, int64_t n);
template <typename T> void relu_backward(const T* x, const T* gy, T* gx, int64_t n);
// y[r,c] = x[r,c] + b[c]; gb[c] = sum_r gy[r,c]
template <typename T> void bias_add_rows(const T* x, const T* b, T* y, int64_t rows, int64_t cols);
template <typename T> void bias_grad_rows(const T* gy, T* gb, int64_t rows, int64_t cols);
// NCHW: y[n,c,:] = x[n,c,:] + b[c]; gb[c] = sum_{n,hw} gy[n,c,hw]
template <typename T> void bias_add_nchw(const T* x, const T* b, T* y, int64_t N, int64_t C, int64_t HW);
template <typename T> void bias_grad_nchw(const T* gy, T* gb, int64_t N, int64_t C, int64_t HW);
// The sigmoid conv epilogue: y = sigmoid(x + b[c]); backward gives gx (pre-activation) and gb.
template <typename T> void bias_sigmoid_nchw_forward(const T* x, const T* b, T* y, int64_t N, int64_t C, int64_t HW);
template <typename T>
void bias_sigmoid_nchw_backward(const T* y, const T* gy, T* gx, T* gb, int64_t N, int64_t C, int64_t HW);
// That backward's element-wise part over `planes` planes of HW elements, with each plane's sum of gx
// (in double) in plane_sums: the bias gradient of channel c is the sum of its planes' sums in image
// order, which is how bias_sigmoid_nchw_backward sums it.
template <typename T>
void sigmoid_grad_planes(const T* y, const T* gy, T* gx, int64_t planes, int64_t HW, double* plane_sums);
// Inverted dropout (kernels/cpu/dropout.cpp): element i is kept where rng::dropout_keep(seed, offset,
// i, p), the GPU's mask, and scaled by 1/(1-p). The forward may write the mask as bits (keep_bits:
// ceil(n/32) words, bit i%32 of word i/32; null to skip) for the backward, which reads them instead
// of drawing the mask again. The float mask is drawn 8 (AVX2) or 16 (AVX-512) Philox blocks, 32 or 64
// elements, at a time where the CPU can; `Scalar` is the one-element-at-a-time reference (and the
// path of double).
enum class DropoutPath { Best, Scalar, Avx2, Avx512 };
bool dropout_path_available(DropoutPath path);
template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, float p, uint64_t seed, uint64_t offset, uint32_t* keep_bits,
                     DropoutPath path = DropoutPath::Best);
template <typename T>
void dropout_backward(const T* gy, T* gx, int64_t n, float p, const uint32_t* keep_bits,
                      DropoutPath path = DropoutPath::Best);
// y[r] = sum_c a[r,c] * b[r,c], each row's sum in a fixed order (16 interleaved partial sums).
template <typename T> void rowdot_forward(const T* a, const T* b, T* y, int64_t rows, int64_t cols);
// The same over rows picked from one table, each element shifted first:
// y[r] = (table[ia[r], :] - shift) . (table[ib[r], :] - shift), without gathering the rows (the pair
// head's centred dot product over a whole catalogue). shift = 0 gives rowdot_forward's bits.
template <typename T>
void rowdot_pairs_forward(const T* table, const int32_t* ia, const int32_t* ib, T* y, int64_t rows, int64_t cols,
                          T shift);
// Its gradient as a dense table [table_rows, cols]: row u = the sum over the pairs that read u of
// gy[r] * (the other row - shift), summed in the order of their position in [ia; ib], as gathering the
// rows, rowdot_backward and the embedding's coalescing would: the same bits in one pass.
template <typename T>
void rowdot_pairs_backward(const T* table, const int32_t* ia, const int32_t* ib, const T* gy, T shift, int64_t pairs,
                           int64_t table_rows, int64_t cols, T* gtable);
template <typename T>
void rowdot_backward(const T* a, const T* b, const T* gy, T* ga, T* gb, int64_t rows, int64_t cols);
// Column blocks: dst[r, :] = [srcs[0][r, :], srcs[1][r, :], ...] with widths[i] columns each, and the
// reverse. One pass over the rows (each wide row written or read once, not once per block).
template <typename T>
void concat_cols(const T* const* srcs, const int64_t* widths, int64_t parts, T* dst, int64_t rows);
template <typename T>
void split_cols(const T* src, const int64_t* widths, int64_t parts, T* const* dsts, int64_t rows);
// One block of `width` columns: dst[r, dst_off + c] = src[r, src_off + c] (a column slice and its gradient).
template <typename T>
void copy_col_block(const T* src, int64_t src_cols, int64_t src_off, T* dst, int64_t dst_cols, int64_t dst_off,
                    int64_t width, int64_t rows);

// ---- convolution (conv.cpp, conv_direct.cpp), stride 1, zero padding (ph, pw), NCHW, weights [K, C, KH, KW] ----
// By im2col + GEMM, or directly (conv_direct.cpp), which takes no padding and outputs at least 16
// columns wide (conv_direct_applies). `Best` picks the direct kernels wherever they apply. Their filter
// gradient has its vector lanes over input channels for 2 x 2 filters over a multiple of 16 channels
// (conv 2 and 3: conv_channel_lanes.cpp), else over output columns; with column lanes `Best`
// takes im2col for outputs under 32 columns, where its product was faster (measured at 256 images:
// 168 against 104 GFLOP/s at conv 3's 26 columns).
// DirectV2 is the direct path with session 9's smaller register tiles (DirectTiles::V2), the baseline
// that BM_Conv1_Kernels keeps beside v3; DirectColumnLanes the direct path with the filter gradient's
// lanes over output columns for every filter (DirectTiles::ColumnLanes: session 14's kernel for conv 2
// and 3), the baseline that BM_ConvBackward_Parts keeps.
enum class ConvPath { Best, Im2col, Direct, DirectV2, DirectColumnLanes };
enum class DirectTiles { Best, V2, ColumnLanes };
bool conv_direct_applies(int64_t W, int64_t KW, int64_t ph, int64_t pw);
template <typename T>
void conv2d_forward(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH,
                    int64_t KW, int64_t ph, int64_t pw, ConvPath path = ConvPath::Best);
template <typename T>
void conv2d_backward_data(const T* gy, const T* w, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                          int64_t KH, int64_t KW, int64_t ph, int64_t pw, ConvPath path = ConvPath::Best);
template <typename T>
void conv2d_backward_filter(const T* x, const T* gy, T* gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                            int64_t KH, int64_t KW, int64_t ph, int64_t pw, ConvPath path = ConvPath::Best);
// The direct kernels (conv_direct.cpp; no padding, output >= 16 columns wide); every tile gives the
// same bits, at any thread count.
template <typename T>
void conv2d_forward_direct(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                           int64_t KH, int64_t KW, DirectTiles tiles = DirectTiles::Best);
// The forward flattened, as the fused layer runs it (conv_direct.h, FlatLayout): y[N, K, OH, W], each
// output row at the input's row stride W, its last KW - 1 columns meaningless; the meaningful ones
// are conv2d_forward_direct's bits.
template <typename T>
void conv2d_forward_direct_flat(const T* x, const T* w, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                int64_t KH, int64_t KW, DirectTiles tiles = DirectTiles::Best);
template <typename T>
void conv2d_backward_data_direct(const T* gy, const T* w, T* gx, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                 int64_t KH, int64_t KW, DirectTiles tiles = DirectTiles::Best);
template <typename T>
void conv2d_backward_filter_direct(const T* x, const T* gy, T* gw, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                                   int64_t KH, int64_t KW, DirectTiles tiles = DirectTiles::Best);
// Convolution then 2x2 max pooling (argmax as maxpool2x2_forward) for any channels and padding, without
// the full conv output in memory (conv.cpp: the direct kernels above or im2col, image by image), and
// optionally the sigmoid conv epilogue: y = sigmoid(pooled + sigmoid_bias[k]) when sigmoid_bias is not
// null. The backward takes gp, the gradient of y, and y itself when the forward had the epilogue
// (sigmoid_y; else null), and gives the input gradient gx, the filter gradient gw and the bias gradient
// gb (each may be null: not wanted; gb needs sigmoid_y). The same bits as the separate convolution,
// pooling and bias_sigmoid_nchw_* kernels. `from`: where the direct kernels' channel lanes apply (2 x 2
// filters over a multiple of 16 channels, conv 2 and 3), Best takes both gradients from the pooling's
// winners (conv_channel_lanes.cpp: a quarter of the products, no unpooled gradient); Unpooled unpools
// first, as every other shape does (the baseline BM_ConvPoolBackward keeps).
enum class PooledGradFrom { Best, Unpooled };
template <typename T>
void conv2d_maxpool_forward(const T* x, const T* w, const T* sigmoid_bias, T* y, int32_t* argmax, int64_t N, int64_t C,
                            int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW, int64_t ph, int64_t pw);
template <typename T>
void conv2d_maxpool_backward(const T* x, const T* w, const T* gp, const int32_t* argmax, const T* sigmoid_y, T* gx,
                             T* gw, T* gb, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t KH, int64_t KW,
                             int64_t ph, int64_t pw, PooledGradFrom from = PooledGradFrom::Best);

// ---- 2x2 max pooling, stride 2, floor on odd sizes (pool.cpp) ----
// argmax holds the winner's flat index within its H x W plane (first maximum in row-major order).
template <typename T> void maxpool2x2_forward(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W);
// The forward from a strided input: plane p's row r at x + p * plane + r * row (the fused conv layer's
// output, laid out at its input's row stride by the flattened direct kernel). The same maxima and
// winners, the winners' indices still r * W + column.
template <typename T>
void maxpool2x2_forward_strided(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W, int64_t row,
                                int64_t plane);
template <typename T>
void maxpool2x2_backward(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W);
// The backward into a strided gradient: plane p's row r starts at gx + p * plane + r * row (the fused
// conv layer writes it straight into the data gradient's zero-bordered buffer). The same values as
// maxpool2x2_backward; it zeroes each plane's whole span, from its first row's start to its last
// row's end, gaps between rows included (in the bordered buffer they are border, zero already): one
// memset per plane, where one per row cost conv 3's small rows what the copy had saved. One thread.
template <typename T>
void maxpool2x2_backward_strided(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W,
                                 int64_t row, int64_t plane);
// The forward as it was until session 14 (the even/odd split left to the vectoriser), the baseline of
// the benchmark and tests; the same values and winners.
template <typename T> void maxpool2x2_forward_v1(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W);
// The backward as it was until session 12 (per-window selects), and until session 21 (each plane
// zeroed, then each winner stored), the baselines of the benchmark and tests; the same values.
template <typename T>
void maxpool2x2_backward_v1(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W);
template <typename T>
void maxpool2x2_backward_v2(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W);

// ---- embedding (embedding.cpp) ----
template <typename T> void embedding_forward(const T* table, const int32_t* idx, T* out, int64_t n, int64_t dim);
// Deterministic backward: the gradient rows of equal indices are summed in position order, and the
// result is one row per distinct index, indices ascending, then padding rows (-1, zero values) up to n.
// Negative input indices count as padding. Returns the number of distinct rows U; rows_out and
// vals_out must hold n and n*dim entries.
template <typename T>
int64_t embedding_backward(const int32_t* idx, const T* gy, int64_t n, int64_t dim, int32_t* rows_out, T* vals_out);

// x[i] = *s * mult for all i (the backward of sum and mean).
template <typename T> void broadcast_scalar(const T* s, T* x, int64_t n, T mult);

// ---- losses and reductions (loss.cpp) ----
// Per-row softmax cross-entropy: loss[r] = logsumexp(x[r,:]) - x[r, t[r]]; probs saved for backward.
template <typename T>
void softmax_xent_forward(const T* logits, const int32_t* targets, T* probs, T* loss, int64_t rows, int64_t classes);
template <typename T>
void softmax_xent_backward(const T* probs, const int32_t* targets, const T* gloss, T* gx, int64_t rows, int64_t classes);
// Per-element weighted BCE on logits; weights may be null (all 1).
template <typename T> void bce_logits_forward(const T* x, const T* y, const T* w, T* loss, int64_t n);
template <typename T> void bce_logits_backward(const T* x, const T* y, const T* w, const T* gloss, T* gx, int64_t n);
// Sum of n elements, accumulated in double in an order fixed by n alone (sum.cpp: blocks over the
// threads, 32 running sums within a block); sum_v1, one running double in element order, was the sum
// until session 23 and is the benchmark's baseline.
template <typename T> T sum(const T* x, int64_t n);
template <typename T> T sum_v1(const T* x, int64_t n);

// ---- kernel-density sample weights (kde.cpp) ----
// density[i] = 1/n sum_j phi_h(y_i - y_j), exact O(n^2).
template <typename T> void kde_density_exact(const T* y, int64_t n, double bandwidth, T* density);
// The same, as it was until session 17 (glibc's exp per pair, summed in j order): the baseline.
template <typename T> void kde_density_exact_v1(const T* y, int64_t n, double bandwidth, T* density);
// Binned approximation in O(n + bins^2); see kde.cpp for the error bound it guarantees.
template <typename T> void kde_density_binned(const T* y, int64_t n, double bandwidth, int64_t bins, T* density);
double kde_binned_error_bound(double y_min, double y_max, double bandwidth, int64_t bins);
// w_i = (1/d_i) / mean_j(1/d_j): inverse density normalised to mean 1.
template <typename T> void kde_weights_from_density(const T* density, T* weights, int64_t n);

// ---- optimizers (optim.cpp) ----
template <typename T>
void adam_dense(T* p, T* m, T* v, const T* g, int64_t n, T b1, T b2, T lr_t, T eps_t, T weight_decay);
// Row-sparse Adam: only rows[0..U) are touched; g holds U rows of `dim` values.
template <typename T>
void adam_rows(T* p, T* m, T* v, const int32_t* rows, const T* g, int64_t U, int64_t dim, T b1, T b2, T lr_t, T eps_t,
               T weight_decay);
template <typename T> void sgd_dense(T* p, T* buf, const T* g, int64_t n, T lr, T momentum, T weight_decay);
template <typename T>
void sgd_rows(T* p, T* buf, const int32_t* rows, const T* g, int64_t U, int64_t dim, T lr, T momentum, T weight_decay);

// ---- initialisers (init.cpp): Philox keyed by (seed, offset), element i draws index i ----
template <typename T> void fill_uniform(T* x, int64_t n, float lo, float hi, uint64_t seed, uint64_t offset);
template <typename T> void fill_normal(T* x, int64_t n, float mean, float stddev, uint64_t seed, uint64_t offset);

}  // namespace musicrec::kernels::cpu
