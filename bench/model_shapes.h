// The two models' shapes as the CPU (bench_ops.cpp) and GPU (bench_gpu.cpp) benchmarks use them, and
// the work each benchmark counts, so that both programs' rows mean the same thing.
#pragma once
#include <cstdint>

namespace musicrec::bench {

// The pair CNN's convolutions at their defaults (40 x 120 images; 16, 32, 32 filters).
struct ConvShape {
  int64_t c, h, w, k, kh, kw;
};
inline constexpr ConvShape kConv[3] = {{1, 40, 120, 16, 5, 10}, {16, 18, 55, 32, 2, 2}, {32, 8, 27, 32, 2, 2}};

// Multiply-adds x 2 of one forward convolution over `batch` images.
inline double conv_flops(const ConvShape& s, int64_t batch) {
  return 2.0 * double(batch * s.k * (s.h - s.kh + 1) * (s.w - s.kw + 1) * s.c * s.kh * s.kw);
}

// Whether training computes layer `layer`'s input gradient: not for layer 1, whose input is the data.
inline bool conv_needs_input_grad(int64_t layer) { return layer != 1; }

// A training step's products for one layer: the forward, the filter gradient and, where training
// computes it, the input gradient, each the forward's size.
inline double conv_training_flops(int64_t layer, int64_t batch) {
  return (conv_needs_input_grad(layer) ? 3.0 : 2.0) * conv_flops(kConv[layer - 1], batch);
}

// The CF model's concatenated input, as CfModel lays it out at KKBox's cardinalities: member and song
// vectors, their dot product, the other categorical features' embeddings, the two numeric features.
inline constexpr int64_t kCfConcatWidths[] = {64, 64, 1, 8, 8, 8, 8, 8, 8, 8, 4, 6, 8, 2};
inline constexpr int64_t kCfConcatWidth = 205;

}  // namespace musicrec::bench
