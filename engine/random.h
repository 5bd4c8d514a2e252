// The random state of a run: a seed and a draw counter. Every random tensor (an initialisation, a
// dropout mask) takes the next offset, and element i of it comes from Philox(seed, offset, i) on either
// device (a dropout mask's from word i % 4 of Philox(seed, offset, i / 4): kernels/philox.h). Saving (seed, offset) in a checkpoint is therefore enough to resume the exact
// random sequence.
#pragma once
#include <cstdint>

namespace musicrec {

class Tensor;

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t offset = 0) : seed_(seed), offset_(offset) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  uint64_t next_offset() { return offset_++; }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

 private:
  uint64_t seed_;
  uint64_t offset_;
};

namespace init {
void uniform_(Tensor& t, float lo, float hi, Generator& gen);
void normal_(Tensor& t, float mean, float stddev, Generator& gen);
// Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
void glorot_uniform_(Tensor& t, int64_t fan_in, int64_t fan_out, Generator& gen);
// He/Kaiming normal for ReLU layers: N(0, 2 / fan_in).
void he_normal_(Tensor& t, int64_t fan_in, Generator& gen);
// He/Kaiming uniform: U(-a, a), a = sqrt(6 / fan_in).
void he_uniform_(Tensor& t, int64_t fan_in, Generator& gen);
}  // namespace init

}  // namespace musicrec
