// One training batch for the pair head alone (models/pair_cnn.h PairCnn::head), at the pair CNN's
// shapes, and the step the CPU and GPU benchmarks both time on it: B pairs over B tower vectors (a batch of B distinct songs, as
// training draws them), labels one pair in ten similar and the class weights `--weights class` gives.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/ops.h"
#include "engine/tensor.h"
#include "models/pair_cnn.h"

namespace musicrec::bench {

struct PairHeadBatch {
  Tensor h;               // [B, width] tower vectors (sigmoid outputs in training: values in (0, 1))
  Tensor side_a, side_b;  // [B] rows of h
  Tensor label, weight;   // [B, 1]
};

inline PairHeadBatch pair_head_batch(int64_t b, int64_t width, Device device) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const auto next = [&x] { return x ^= x << 13, x ^= x >> 7, x ^= x << 17; };
  std::vector<float> h(static_cast<size_t>(b * width)), label(static_cast<size_t>(b)), weight(label.size());
  std::vector<int32_t> a(label.size()), c(label.size());
  for (float& v : h) v = float(next() >> 40) / float(1 << 24);
  for (size_t i = 0; i < label.size(); ++i) {
    a[i] = int32_t(next() % uint64_t(b));
    c[i] = int32_t(next() % uint64_t(b));
    label[i] = next() % 10 == 0 ? 1.f : 0.f;
    weight[i] = label[i] > 0 ? 10.f : 1.f;
  }
  return {Tensor::from_vector(h, {b, width}, device).set_requires_grad(true), Tensor::from_vector(a, {b}, device),
          Tensor::from_vector(c, {b}, device), Tensor::from_vector(label, {b, 1}, device),
          Tensor::from_vector(weight, {b, 1}, device)};
}

// The head's forward, the weighted loss and backward on `batch`, gradients cleared first.
inline void pair_head_step(models::PairCnn& model, PairHeadBatch& batch) {
  model.zero_grad();
  batch.h.zero_grad();
  ops::mean(ops::bce_with_logits(model.head(batch.h, batch.side_a, batch.side_b), batch.label, batch.weight))
      .backward();
}

}  // namespace musicrec::bench
