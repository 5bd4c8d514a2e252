// Tape-based reverse-mode autograd (see autograd.h).
#include "engine/autograd.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"
#include "kernels/error.h"

namespace musicrec::autograd {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_next_seq{1};
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->seq = g_next_seq.fetch_add(1);
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->requires_grad = true;
  out.impl()->grad_fn = std::move(node);
}

namespace {
// Whether nothing but this one Tensor holds g's data: no other Tensor shares its impl, no other impl
// its storage (a view, a tensor a closure kept, one of an op's inputs passed on as its gradient).
bool held_alone(const Tensor& g) {
  const std::shared_ptr<TensorImpl>& impl = g.impl_ptr();
  return impl.use_count() == 1 && impl->storage && impl->storage.use_count() == 1 && !impl->grad_fn;
}
}  // namespace

void accumulate_dense(TensorImpl& leaf, const Tensor& g) {
  MR_CHECK(g.shape() == leaf.shape, "gradient of shape " + shape_str(g.shape()) + " for a tensor of shape " +
                                        shape_str(leaf.shape));
  if (!leaf.grad) {
    // The first gradient is taken as it is when nothing else holds its data (a backward closure's fresh
    // output: every parameter's, every step, a copy saved), and copied otherwise, since ops may return
    // one of their inputs' buffers (add's backward passes its gradient to both inputs) and a later
    // gradient is added into this one in place.
    leaf.grad = held_alone(g) ? g.impl_ptr() : g.clone().impl_ptr();
    return;
  }
  Tensor acc(leaf.grad);
  ops::add_(acc, g);
}

void accumulate_sparse(TensorImpl& leaf, const Tensor& rows, const Tensor& values) {
  if (!leaf.sparse_grad) {
    leaf.sparse_grad = std::make_shared<SparseRows>(SparseRows{rows, values});
    return;
  }
  // Merge: the same deterministic coalescing as the embedding backward, over both row lists.
  Tensor all_rows = ops::concat_rows({leaf.sparse_grad->rows, rows});
  Tensor all_vals = ops::concat_rows({leaf.sparse_grad->values, values});
  SparseRows merged = ops::coalesce_rows(all_rows, all_vals);
  leaf.sparse_grad = std::make_shared<SparseRows>(merged);
}

Tensor densify(const SparseRows& sparse, const Shape& table_shape) {
  Tensor dense = Tensor::zeros(table_shape, sparse.values.dtype(), sparse.values.device());
  ops::scatter_rows_add_(dense, sparse.rows, sparse.values);
  return dense;
}

void backward(const Tensor& root, const Tensor& grad_output) {
  MR_CHECK(root.defined(), "backward() of an undefined tensor");
  MR_CHECK(root.requires_grad(), "backward() of a tensor that does not require grad");
  Tensor seed = grad_output;
  if (!seed.defined()) {
    MR_CHECK(root.numel() == 1, "backward() without a gradient needs a single-element tensor, got shape " +
                                    shape_str(root.shape()));
    seed = Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  }
  MR_CHECK(seed.shape() == root.shape(), "backward(): gradient shape differs from the tensor's");
  NoGradGuard no_grad;  // backward closures call ops; they must not record

  TensorImpl* root_impl = root.impl();
  if (!root_impl->grad_fn) {  // a leaf: its gradient is the seed
    accumulate_dense(*root_impl, seed);
    return;
  }

  // Collect the nodes reachable from the root.
  std::vector<Node*> nodes;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack{root_impl->grad_fn.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    MR_CHECK(n->backward, std::string("backward through op '") + n->name +
                              "' whose graph was already freed by an earlier backward()");
    nodes.push_back(n);
    for (const Tensor& in : n->inputs)
      if (in.defined() && in.impl()->grad_fn) stack.push_back(in.impl()->grad_fn.get());
  }
  // Tape order reversed: a node runs only after every node that consumed its output.
  std::sort(nodes.begin(), nodes.end(), [](Node* a, Node* b) { return a->seq > b->seq; });

  std::unordered_map<Node*, Tensor> pending;
  pending[root_impl->grad_fn.get()] = seed;
  for (Node* n : nodes) {
    auto it = pending.find(n);
    if (it == pending.end()) continue;  // reachable only through inputs that did not need grad
    Tensor g = it->second;
    pending.erase(it);
    std::vector<Tensor> grads = n->backward(g);
    MR_CHECK(grads.size() == n->inputs.size(), std::string("op '") + n->name + "' returned " +
                                                   std::to_string(grads.size()) + " gradients for " +
                                                   std::to_string(n->inputs.size()) + " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = n->inputs[i];
      if (!grads[i].defined() || !in.requires_grad()) continue;
      if (Node* producer = in.impl()->grad_fn.get()) {
        auto p = pending.find(producer);
        if (p == pending.end()) pending.emplace(producer, grads[i]);
        else p->second = ops::add(p->second, grads[i]);
      } else {
        accumulate_dense(*in.impl(), grads[i]);
      }
    }
    // Free what this node saved; the graph cannot be walked again.
    n->backward = nullptr;
  }
}

}  // namespace musicrec::autograd
