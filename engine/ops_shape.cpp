// Embedding lookup (with row-sparse, deterministic backward), concatenation and column slices, row-wise
// dot products (of two tensors, or of row pairs picked from one) and reshapes.
#include <cstring>

#include "engine/autograd.h"
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec::ops {
using namespace detail;

void check_indices(const Tensor& idx, int64_t vocab, const char* what) {
  Tensor h = idx.cpu();
  const int32_t* p = h.data<int32_t>();
  for (int64_t i = 0; i < h.numel(); ++i)
    MR_CHECK(p[i] >= 0 && p[i] < vocab, std::string(what) + ": index " + std::to_string(p[i]) + " at position " +
                                            std::to_string(i) + " outside [0, " + std::to_string(vocab) + ")");
}

SparseRows coalesce_rows(const Tensor& rows, const Tensor& values) {
  MR_CHECK(rows.dtype() == DType::I32 && rows.dim() == 1, "coalesce_rows: rows must be int32 [M]");
  check_float(values, "coalesce_rows", "values");
  check_dim(values, 2, "coalesce_rows", "values");
  MR_CHECK(values.size(0) == rows.size(0), "coalesce_rows: " + std::to_string(rows.size(0)) + " rows for " +
                                               shape_str(values.shape()) + " values");
  check_same_device({rows, values}, "coalesce_rows");
  profiler::OpScope scope("coalesce_rows", rows.device());
  const int64_t n = rows.size(0), dim = values.size(1);
  SparseRows out{Tensor::empty({n}, DType::I32, rows.device()), Tensor::empty({n, dim}, values.dtype(), rows.device())};
  scope.moves(2 * bytes_of(rows, values));  // read, and written back as (up to) as many summed rows
  if (rows.is_cuda()) {
#if MUSICREC_WITH_CUDA
    size_t bytes = kernels::cuda::embedding_backward_scratch_bytes(n);
    Tensor scratch = Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::I32, rows.device());
    kernels::cuda::embedding_backward(rows.data<int32_t>(), values.data<float>(), n, dim, out.rows.data<int32_t>(),
                                      out.values.data<float>(), scratch.raw_data(), bytes, stream());
#else
    no_cuda("coalesce_rows");
#endif
  } else {
    dispatch_float(values.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::embedding_backward<T>(rows.data<int32_t>(), values.data<T>(), n, dim, out.rows.data<int32_t>(),
                                          out.values.data<T>());
    });
  }
  return out;
}

void scatter_rows_add_(Tensor& dst, const Tensor& rows, const Tensor& values) {
  check_same_device({dst, rows, values}, "scatter_rows_add_");
  const int64_t U = rows.size(0), dim = values.size(1);
  MR_CHECK(dst.dim() == 2 && dst.size(1) == dim, "scatter_rows_add_: table " + shape_str(dst.shape()) +
                                                     " and values " + shape_str(values.shape()) + " disagree");
  if (dst.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::scatter_rows_add(rows.data<int32_t>(), values.data<float>(), U, dim, dst.data<float>(), stream());
#endif
    return;
  }
  const int32_t* r = rows.data<int32_t>();
  dispatch_float(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    for (int64_t u = 0; u < U; ++u)
      if (r[u] >= 0) kernels::cpu::add_into<T>(dst.data<T>() + int64_t(r[u]) * dim, values.data<T>() + u * dim, dim);
  });
}

Tensor embedding(const Tensor& table, const Tensor& idx) {
  check_float(table, "embedding", "table");
  check_dim(table, 2, "embedding", "table");
  check_index_list(idx, "embedding");
  check_same_device({table, idx}, "embedding");
  profiler::OpScope scope("embedding", table.device());
  const int64_t n = idx.size(0), V = table.size(0), D = table.size(1);
  Tensor out = Tensor::empty({n, D}, table.dtype(), table.device());
  scope.moves(bytes_of(idx) + 2 * bytes_of(out));  // the indices, the rows they pick, the output
  if (table.is_cuda()) {
#if MUSICREC_WITH_CUDA
    if (kernels::cuda::sync_check_enabled()) check_indices(idx, V, "embedding");
    kernels::cuda::embedding_forward(table.data<float>(), idx.data<int32_t>(), out.data<float>(), n, D, V, stream());
#else
    no_cuda("embedding");
#endif
  } else {
    check_indices(idx, V, "embedding");
    dispatch_float(table.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::embedding_forward<T>(table.data<T>(), idx.data<int32_t>(), out.data<T>(), n, D);
    });
  }
  if (autograd::needs_grad({table})) {
    // The table is captured by its impl so a sparse gradient can go straight into it.
    autograd::record(out, "embedding", {table, idx}, [table_impl = table.impl_ptr(), I = idx](const Tensor& g) {
      profiler::OpScope s("embedding", g.device(), true);
      s.moves(2 * bytes_of(I, g));  // as coalesce_rows, which it runs
      SparseRows rows = coalesce_rows(I, g);
      if (table_impl->sparse_grad_enabled && !table_impl->grad_fn) {
        autograd::accumulate_sparse(*table_impl, rows.rows, rows.values);
        return std::vector<Tensor>{Tensor(), Tensor()};
      }
      return std::vector<Tensor>{autograd::densify(rows, table_impl->shape), Tensor()};
    });
  }
  return out;
}

Tensor concat_cols(const std::vector<Tensor>& xs) {
  MR_CHECK(!xs.empty(), "concat_cols: no inputs");
  int64_t rows = -1, cols = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_float(xs[i], "concat_cols", "xs[i]");
    MR_CHECK(xs[i].dim() == 2, "concat_cols: input " + std::to_string(i) + " has shape " + shape_str(xs[i].shape()) +
                                   ", expected 2-D");
    if (rows < 0) rows = xs[i].size(0);
    MR_CHECK(xs[i].size(0) == rows, "concat_cols: input " + std::to_string(i) + " has " +
                                        std::to_string(xs[i].size(0)) + " rows, expected " + std::to_string(rows));
    check_same_dtype(xs[i], xs[0], "concat_cols");
    cols += xs[i].size(1);
  }
  check_same_device(xs, "concat_cols");
  profiler::OpScope scope("concat_cols", xs[0].device());
  Tensor y = Tensor::empty({rows, cols}, xs[0].dtype(), xs[0].device());
  scope.moves(2 * bytes_of(y));
  std::vector<int64_t> offsets, widths;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    offsets.push_back(off);
    widths.push_back(x.size(1));
    off += x.size(1);
  }
  if (y.is_cuda()) {
#if MUSICREC_WITH_CUDA
    for (size_t i = 0; i < xs.size(); ++i)
      kernels::cuda::copy_cols_into(xs[i].data<float>(), widths[i], y.data<float>(), cols, offsets[i], rows, stream());
#else
    no_cuda("concat_cols");
#endif
  } else {
    dispatch_float(y.dtype(), [&](auto z) {
      using T = decltype(z);
      std::vector<const T*> srcs;
      for (const Tensor& x : xs) srcs.push_back(x.data<T>());
      kernels::cpu::concat_cols<T>(srcs.data(), widths.data(), int64_t(xs.size()), y.data<T>(), rows);
    });
  }
  if (autograd::needs_grad(xs)) {
    autograd::record(y, "concat_cols", xs, [offsets, widths, rows, cols](const Tensor& g) {
      profiler::OpScope s("concat_cols", g.device(), true);
      s.moves(2 * bytes_of(g));
      std::vector<Tensor> grads;
      for (int64_t w : widths) grads.push_back(Tensor::empty({rows, w}, g.dtype(), g.device()));
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        for (size_t i = 0; i < widths.size(); ++i)
          kernels::cuda::extract_cols(g.data<float>(), cols, offsets[i], grads[i].data<float>(), widths[i], rows, stream());
#else
        (void)cols;
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          std::vector<T*> dsts;
          for (Tensor& gi : grads) dsts.push_back(gi.data<T>());
          kernels::cpu::split_cols<T>(g.data<T>(), widths.data(), int64_t(widths.size()), dsts.data(), rows);
        });
      }
      return grads;
    });
  }
  return y;
}

namespace {
// A contiguous copy on the tensors' device (stream-ordered on the GPU).
void copy_bytes(void* dst, const void* src, size_t bytes, bool cuda) {
  if (bytes == 0) return;
  if (cuda) {
#if MUSICREC_WITH_CUDA
    MR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
#endif
  } else {
    std::memcpy(dst, src, bytes);
  }
}
}  // namespace

Tensor concat_rows(const std::vector<Tensor>& xs) {
  MR_CHECK(!xs.empty(), "concat_rows: no inputs");
  Shape shape = xs[0].shape();
  MR_CHECK(!shape.empty(), "concat_rows: inputs must have at least one dimension");
  int64_t total = 0;
  for (const Tensor& x : xs) {
    Shape tail(x.shape().begin() + 1, x.shape().end());
    MR_CHECK(x.dim() == int64_t(shape.size()) && tail == Shape(shape.begin() + 1, shape.end()) &&
                 x.dtype() == xs[0].dtype(),
             "concat_rows: input " + shape_str(x.shape()) + " does not match " + shape_str(shape));
    total += x.size(0);
  }
  check_same_device(xs, "concat_rows");
  shape[0] = total;
  Tensor y = Tensor::empty(shape, xs[0].dtype(), xs[0].device());
  size_t off = 0;
  for (const Tensor& x : xs) {
    copy_bytes(static_cast<char*>(y.raw_data()) + off, x.raw_data(), x.nbytes(), y.is_cuda());
    off += x.nbytes();
  }
  if (autograd::needs_grad(xs)) {
    std::vector<Shape> shapes;
    for (const Tensor& x : xs) shapes.push_back(x.shape());
    autograd::record(y, "concat_rows", xs, [shapes](const Tensor& g) {
      std::vector<Tensor> grads;
      size_t at = 0;
      for (const Shape& s : shapes) {
        grads.push_back(Tensor::empty(s, g.dtype(), g.device()));
        copy_bytes(grads.back().raw_data(), static_cast<const char*>(g.raw_data()) + at, grads.back().nbytes(),
                   g.is_cuda());
        at += grads.back().nbytes();
      }
      return grads;
    });
  }
  return y;
}

Tensor rowdot(const Tensor& a, const Tensor& b) {
  check_float(a, "rowdot", "a");
  check_float(b, "rowdot", "b");
  check_dim(a, 2, "rowdot", "a");
  MR_CHECK(a.shape() == b.shape(), "rowdot: shapes differ: " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  check_same_device({a, b}, "rowdot");
  check_same_dtype(a, b, "rowdot");
  profiler::OpScope scope("rowdot", a.device());
  const int64_t rows = a.size(0), cols = a.size(1);
  Tensor y = Tensor::empty({rows, 1}, a.dtype(), a.device());
  scope.moves(bytes_of(a, b, y));
  if (a.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::rowdot_forward(a.data<float>(), b.data<float>(), y.data<float>(), rows, cols, stream());
#else
    no_cuda("rowdot");
#endif
  } else {
    dispatch_float(a.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::rowdot_forward<T>(a.data<T>(), b.data<T>(), y.data<T>(), rows, cols);
    });
  }
  if (autograd::needs_grad({a, b})) {
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    autograd::record(y, "rowdot", {a, b}, [A = a.detach(), B = b.detach(), need_a, need_b](const Tensor& g) {
      profiler::OpScope s("rowdot", g.device(), true);
      Tensor ga = need_a ? empty_like(A) : Tensor();
      Tensor gb = need_b ? empty_like(B) : Tensor();
      s.moves(bytes_of(g) + (double(need_a) + double(need_b)) * bytes_of(A, B));
      const int64_t r = A.size(0), c = A.size(1);
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        kernels::cuda::rowdot_backward(A.data<float>(), B.data<float>(), g.data<float>(),
                                       need_a ? ga.data<float>() : nullptr, need_b ? gb.data<float>() : nullptr, r, c,
                                       stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::rowdot_backward<T>(A.data<T>(), B.data<T>(), g.data<T>(), need_a ? ga.data<T>() : nullptr,
                                           need_b ? gb.data<T>() : nullptr, r, c);
        });
      }
      return std::vector<Tensor>{ga, gb};
    });
  }
  return y;
}

Tensor rowdot_pairs(const Tensor& table, const Tensor& ia, const Tensor& ib, double shift) {
  check_float(table, "rowdot_pairs", "table");
  check_dim(table, 2, "rowdot_pairs", "table");
  check_index_list(ia, "rowdot_pairs");
  check_index_list(ib, "rowdot_pairs");
  MR_CHECK(ia.size(0) == ib.size(0), "rowdot_pairs: " + std::to_string(ia.size(0)) + " rows on side a, " +
                                         std::to_string(ib.size(0)) + " on side b");
  check_same_device({table, ia, ib}, "rowdot_pairs");
  profiler::OpScope scope("rowdot_pairs", table.device());
  const int64_t n = ia.size(0), V = table.size(0), D = table.size(1);
  Tensor y = Tensor::empty({n, 1}, table.dtype(), table.device());
  // Each pair reads two rows: the compulsory traffic at most (a row picked again may come from cache).
  scope.moves(bytes_of(ia, ib, y) + 2.0 * double(n) * double(D) * double(dtype_size(table.dtype())));
  if (table.is_cuda()) {
#if MUSICREC_WITH_CUDA
    if (kernels::cuda::sync_check_enabled()) {
      check_indices(ia, V, "rowdot_pairs");
      check_indices(ib, V, "rowdot_pairs");
    }
    kernels::cuda::rowdot_pairs_forward(table.data<float>(), ia.data<int32_t>(), ib.data<int32_t>(), y.data<float>(),
                                        n, D, float(shift), stream());
#else
    no_cuda("rowdot_pairs");
#endif
  } else {
    check_indices(ia, V, "rowdot_pairs");
    check_indices(ib, V, "rowdot_pairs");
    dispatch_float(table.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::rowdot_pairs_forward<T>(table.data<T>(), ia.data<int32_t>(), ib.data<int32_t>(), y.data<T>(), n, D,
                                            T(shift));
    });
  }
  if (autograd::needs_grad({table})) {
    // The backward: d/d table[ia[r]] = g[r] (table[ib[r]] - shift) and the reverse, summed per table row
    // in a fixed order. The GPU gathers the rows and coalesces them as the embedding does; the CPU forms
    // the same sums in one pass (it took 2.1 of the pair CNN's 57 ms step at batch 256 the GPU's way).
    autograd::record(y, "rowdot_pairs", {table, ia, ib}, [Tb = table.detach(), ia, ib, shift](const Tensor& g) {
      profiler::OpScope s("rowdot_pairs", g.device(), true);
      if (!g.is_cuda()) {  // the same sums in one pass (kernels/cpu/cpu_kernels.h)
        Tensor gt = Tensor::empty(Tb.shape(), Tb.dtype(), Tb.device());
        s.moves(bytes_of(g, gt) + 2.0 * double(ia.size(0)) * double(Tb.size(1)) * double(dtype_size(Tb.dtype())));
        dispatch_float(Tb.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::rowdot_pairs_backward<T>(Tb.data<T>(), ia.data<int32_t>(), ib.data<int32_t>(), g.data<T>(),
                                                 T(shift), ia.size(0), Tb.size(0), Tb.size(1), gt.data<T>());
        });
        return std::vector<Tensor>{gt, Tensor(), Tensor()};
      }
      Tensor rows_a = embedding(Tb, ia), rows_b = embedding(Tb, ib);
      if (shift != 0.0) {
        const Tensor minus = Tensor::full({Tb.size(1)}, -shift, Tb.dtype(), Tb.device());
        rows_a = bias_add(rows_a, minus);
        rows_b = bias_add(rows_b, minus);
      }
      Tensor ga = empty_like(rows_a), gb = empty_like(rows_b);
      s.moves(bytes_of(g) + 2 * bytes_of(rows_a, rows_b));
      const int64_t r = rows_a.size(0), c = rows_a.size(1);
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        kernels::cuda::rowdot_backward(rows_a.data<float>(), rows_b.data<float>(), g.data<float>(), ga.data<float>(),
                                       gb.data<float>(), r, c, stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::rowdot_backward<T>(rows_a.data<T>(), rows_b.data<T>(), g.data<T>(), ga.data<T>(), gb.data<T>(),
                                           r, c);
        });
      }
      const SparseRows sum = coalesce_rows(concat_rows({ia, ib}), concat_rows({ga, gb}));
      return std::vector<Tensor>{autograd::densify(sum, Tb.shape()), Tensor(), Tensor()};
    });
  }
  return y;
}

Tensor slice_cols(const Tensor& x, int64_t begin, int64_t width) {
  check_float(x, "slice_cols", "x");
  check_dim(x, 2, "slice_cols", "x");
  const int64_t rows = x.size(0), cols = x.size(1);
  MR_CHECK(begin >= 0 && width >= 0 && begin + width <= cols,
           "slice_cols: columns [" + std::to_string(begin) + ", " + std::to_string(begin + width) + ") of " +
               shape_str(x.shape()));
  profiler::OpScope scope("slice_cols", x.device());
  Tensor y = Tensor::empty({rows, width}, x.dtype(), x.device());
  scope.moves(2 * bytes_of(y));
  if (x.is_cuda()) {
#if MUSICREC_WITH_CUDA
    kernels::cuda::extract_cols(x.data<float>(), cols, begin, y.data<float>(), width, rows, stream());
#else
    no_cuda("slice_cols");
#endif
  } else {
    dispatch_float(x.dtype(), [&](auto z) {
      using T = decltype(z);
      kernels::cpu::copy_col_block<T>(x.data<T>(), cols, begin, y.data<T>(), width, 0, width, rows);
    });
  }
  if (autograd::needs_grad({x})) {
    autograd::record(y, "slice_cols", {x}, [rows, cols, begin, width](const Tensor& g) {
      profiler::OpScope s("slice_cols", g.device(), true);
      Tensor gx = Tensor::zeros({rows, cols}, g.dtype(), g.device());
      s.moves(bytes_of(g, gx));
      if (g.is_cuda()) {
#if MUSICREC_WITH_CUDA
        kernels::cuda::copy_cols_into(g.data<float>(), width, gx.data<float>(), cols, begin, rows, stream());
#endif
      } else {
        dispatch_float(g.dtype(), [&](auto z) {
          using T = decltype(z);
          kernels::cpu::copy_col_block<T>(g.data<T>(), width, 0, gx.data<T>(), cols, begin, width, rows);
        });
      }
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor reshape(const Tensor& x, const Shape& requested) {
  MR_CHECK(x.defined(), "reshape: undefined tensor");
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MR_CHECK(infer < 0, "reshape: more than one -1 in " + shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      MR_CHECK(shape[i] >= 0, "reshape: bad dimension in " + shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MR_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot infer -1 in " + shape_str(requested) +
                                                      " for " + std::to_string(x.numel()) + " elements");
    shape[static_cast<size_t>(infer)] = x.numel() / known;
  }
  MR_CHECK(shape_numel(shape) == x.numel() && shape.size() <= 4,
           "reshape: " + shape_str(x.shape()) + " cannot become " + shape_str(requested));
  Tensor y = x.detach();
  y.impl()->shape = shape;
  if (autograd::needs_grad({x})) {
    Shape in_shape = x.shape();
    autograd::record(y, "reshape", {x}, [in_shape](const Tensor& g) {
      return std::vector<Tensor>{reshape(g, in_shape)};
    });
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  MR_CHECK(x.dim() >= 1, "flatten: needs at least one dimension");
  return reshape(x, {x.size(0), -1});
}

}  // namespace musicrec::ops
