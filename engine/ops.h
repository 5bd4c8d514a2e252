// The op API: every op checks its inputs (shape, dtype, device, with a message naming the op),
// dispatches to the CPU kernel (float or double) or the CUDA kernel (float), and, when a gradient
// is needed, records its backward on the autograd tape. All inputs of an op must be on one device.
//
// Shapes: x [N, F] for dense layers, NCHW for images; "rows" means the first dimension.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace musicrec {
class Generator;
}

namespace musicrec::ops {

// ---- matrix products ----
// op(a) @ op(b) for 2-D a, b; op transposes when asked.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x [N, in] @ w[out, in]^T + b[out] (b may be undefined). Same layout as torch.nn.Linear.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// x [N, C] + b[C], or x [N, C, H, W] + b[C] per channel.
Tensor bias_add(const Tensor& x, const Tensor& b);

// ---- convolution ----
// x [N, C, H, W] * w [K, C, KH, KW], stride 1, zero padding (ph, pw); no bias.
Tensor conv2d(const Tensor& x, const Tensor& w, int64_t pad_h, int64_t pad_w);
// maxpool2x2(conv2d(x, w, ph, pw)) with the same values and gradients, bit for bit. On the CPU one pass
// image by image that never writes the full conv output (nor, backward, its dense gradient); on the GPU
// the two ops.
Tensor conv2d_maxpool2x2(const Tensor& x, const Tensor& w, int64_t pad_h, int64_t pad_w);
// bias_sigmoid(conv2d_maxpool2x2(x, w, ph, pw), b), bit for bit: the pair CNN's sigmoid conv layers. On
// the CPU the epilogue runs in the same pass, on each image while it is in cache, and so does its
// backward; on the GPU the three kernels.
Tensor conv2d_maxpool2x2_bias_sigmoid(const Tensor& x, const Tensor& w, const Tensor& b, int64_t pad_h, int64_t pad_w);
// The sigmoid conv epilogue, fused: sigmoid(x + b[c]) on a convolution's NCHW output.
Tensor bias_sigmoid(const Tensor& x, const Tensor& b);

// ---- activations and regularisation ----
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
// 2x2 max pooling, stride 2, floor on odd sizes: [N, C, H, W] -> [N, C, H/2, W/2].
Tensor maxpool2x2(const Tensor& x);
// Inverted dropout with probability p; identity when !training or p == 0. Draws one offset from gen.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);

// ---- embeddings and feature plumbing ----
// table [V, D], idx int32 [N] -> [N, D]. An index outside [0, V) is an error (checked on the CPU
// path; on CUDA checked when MUSICREC_SYNC_CHECK=1 or via ops::check_indices).
Tensor embedding(const Tensor& table, const Tensor& idx);
void check_indices(const Tensor& idx, int64_t vocab, const char* what);
// Concatenation along dimension 1 of 2-D tensors with equal rows.
Tensor concat_cols(const std::vector<Tensor>& xs);
// Concatenation along dimension 0 (the gradient, where one is needed, splits back into the inputs).
Tensor concat_rows(const std::vector<Tensor>& xs);
// Row-wise dot product: a, b [N, D] -> [N, 1].
Tensor rowdot(const Tensor& a, const Tensor& b);
// rowdot(embedding(table, ia) - shift, embedding(table, ib) - shift) without gathering the rows:
// table [V, D], ia, ib int32 [N] -> [N, 1]. The gradient goes to the table (rows named by both lists get
// both shares). The shift lets the pair head take centred dots of uncentred song vectors.
Tensor rowdot_pairs(const Tensor& table, const Tensor& ia, const Tensor& ib, double shift = 0.0);
// Columns [begin, begin + width) of a 2-D tensor, as a new tensor (the gradient lands in those columns).
Tensor slice_cols(const Tensor& x, int64_t begin, int64_t width);
Tensor reshape(const Tensor& x, const Shape& shape);  // shares storage; one dimension may be -1
Tensor flatten(const Tensor& x);                      // [N, ...] -> [N, rest]

// ---- element-wise arithmetic ----
Tensor add(const Tensor& a, const Tensor& b);  // same shape
Tensor scale(const Tensor& x, double s);
void add_(Tensor& dst, const Tensor& src);     // in place, not tracked (gradient accumulation)

// ---- reductions and losses ----
Tensor sum(const Tensor& x);   // 0-d
Tensor mean(const Tensor& x);  // 0-d
// Per-row softmax cross-entropy: logits [N, C], targets int32 [N] -> [N].
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& targets);
// Per-element binary cross-entropy on logits, stable for any |x|: x, y (targets in [0, 1]) and
// optional per-sample weights w of equal numel -> same shape as x.
Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& w = Tensor());

// ---- sparse rows (embedding gradients) ----
// Deterministically merges duplicate rows: sorted distinct rows, values summed in position order,
// padded with rows = -1 to the input length. Rows < 0 on input are treated as padding.
SparseRows coalesce_rows(const Tensor& rows, const Tensor& values);
void scatter_rows_add_(Tensor& dst, const Tensor& rows, const Tensor& values);

}  // namespace musicrec::ops
