// Shared test helpers: random tensors, the finite-difference gradient checker (Caffe's habits:
// central differences in double, tolerance scaled by max(|a|, |b|, 1), kinks skipped, gradients
// prefilled so an op that overwrites instead of accumulating fails), the CUDA-vs-CPU parity harness
// (poisoned allocations, forward and backward compared), and the skip for machines without a GPU.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace musicrec::test {

// Uniform values in [lo, hi) from Philox keyed by `seed`, as a CPU tensor of `dtype`.
Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0, DType dtype = DType::F64);
// Distinct values (a shuffled grid with spacing `gap`) so max pooling has no near-ties.
Tensor distinct_tensor(const Shape& shape, uint64_t seed, double gap = 0.01, DType dtype = DType::F64);
Tensor random_indices(int64_t n, int64_t vocab, uint64_t seed, Device device = Device::cpu());

// A 2x2 max pool's backward over `planes` planes of OH x OW, for the kernels that read it in its pooled
// form: the winners of a pooled output without ties (distinct values, `seed`), a gradient of the pooled
// values (uniform in [-1, 1), seed + 1), and that gradient unpooled as maxpool2x2_backward writes it.
struct PooledGradient {
  std::vector<int32_t> argmax;
  std::vector<float> pooled;  // [planes, OH / 2, OW / 2]
  std::vector<float> dense;   // [planes, OH, OW]
};
PooledGradient pooled_gradient(int64_t planes, int64_t OH, int64_t OW, uint64_t seed);

// sum(out * R) for a fixed random R: every output element gets a different upstream gradient.
Tensor weighted_sum(const Tensor& out, const Tensor& weights);

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOptions {
  double eps = 1e-6;
  double tol = 1e-6;
  // Return true to skip element `index` of input `input` (a kink within eps).
  std::function<bool(size_t input, int64_t index)> skip;
};

// Checks d(weighted_sum(f(inputs)))/d(inputs) against central differences. Inputs must be float64
// CPU tensors; each is made to require grad. Reports every mismatch (up to a limit) with its position.
void gradcheck(const Fn& f, std::vector<Tensor> inputs, const GradCheckOptions& opt = {});

// Runs f on the CPU and on CUDA from the same float32 inputs (only those marked differentiable get
// gradients), with poisoned allocations, and compares outputs and input gradients.
void cuda_parity(const Fn& f, const std::vector<Tensor>& cpu_inputs, const std::vector<bool>& differentiable,
                 double rtol = 1e-4, double atol = 1e-5);

// Element-wise |a - b| <= atol + rtol * |b| on CPU copies; reports the worst element.
::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rtol, double atol);

}  // namespace musicrec::test

// Skips a test (with the reason printed) where no CUDA device can run it.
#define MR_REQUIRE_CUDA()                                                                       \
  do {                                                                                          \
    if (::musicrec::cuda_device_count() == 0)                                                   \
      GTEST_SKIP() << "needs a CUDA device: " << ::musicrec::cuda_unavailable_reason();         \
  } while (0)
