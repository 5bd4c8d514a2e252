// Batches of the CF dataset: the rows of one batch gathered into pinned host tensors laid out as the
// model takes them (categorical features as [features, B] so each feature is one contiguous row).
#pragma once
#include <cstdint>
#include <vector>

#include "data/cf_dataset.h"
#include "engine/tensor.h"

namespace musicrec::data {

struct CfBatch {
  Tensor cat;     // int32 [kCfCategorical, B]
  Tensor num;     // float [B, kCfNumeric]
  Tensor target;  // int32 [B] (train.csv rows), undefined for test.csv rows
  int64_t size = 0;
  CfBatch to(Device d) const;
};

// Rows order[start .. start+count) of `rows`.
CfBatch make_cf_batch(const CfRows& rows, const std::vector<int64_t>& order, int64_t start, int64_t count);
// A permutation of `rows` for one epoch, a pure function of (seed, epoch).
std::vector<int64_t> shuffled(const std::vector<int64_t>& rows, uint64_t seed, int64_t epoch);

}  // namespace musicrec::data
