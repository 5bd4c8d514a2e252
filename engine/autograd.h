// Reverse-mode automatic differentiation over a tape.
//
// Each differentiable op that runs while gradients are enabled and has an input that requires a
// gradient appends a Node to the tape: its inputs and a closure that maps the gradient of its output to
// gradients of its inputs. Nodes carry their tape position (a sequence number); since an op's inputs
// always exist before it, walking the nodes reachable from the loss in decreasing sequence order is a
// valid reverse topological order, so backward needs no separate sort of the graph.
//
// Gradients of leaves accumulate (+=) into Tensor::grad() across backward calls until zero_grad();
// embedding tables with sparse gradients accumulate row-sparse gradients instead. The graph is freed
// by backward (saved tensors released); a second backward through it is an error.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace musicrec {

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  uint64_t seq = 0;
  const char* name = "";
  std::vector<Tensor> inputs;  // one per op input; gradients are returned in the same order
  BackwardFn backward;         // reset once run
};

namespace autograd {

bool grad_enabled();

// Disables graph recording in its scope (evaluation, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when gradients are enabled and some input requires one.
bool needs_grad(const std::vector<Tensor>& inputs);
// Makes `out` the result of a recorded op (call only when needs_grad(inputs)).
void record(Tensor& out, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

void backward(const Tensor& root, const Tensor& grad_output);

// Adds g into a leaf's dense gradient; the first one becomes the gradient (g's own buffer when nothing
// else holds it, else a copy).
void accumulate_dense(TensorImpl& leaf, const Tensor& g);
// Adds a row-sparse gradient into a leaf whose sparse_grad_enabled is set; a second contribution is
// merged deterministically (rows sorted, duplicates summed in order).
void accumulate_sparse(TensorImpl& leaf, const Tensor& rows, const Tensor& values);
// The dense form of a sparse gradient (zeros except the touched rows).
Tensor densify(const SparseRows& sparse, const Shape& table_shape);

}  // namespace autograd
}  // namespace musicrec
