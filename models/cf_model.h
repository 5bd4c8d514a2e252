// The collaborative-filtering baseline of the paper: member and song ids embedded in 64 dimensions,
// their dot product as one more feature, small embeddings of the other categorical features and the
// numeric features, all concatenated into a 128-unit ReLU layer, dropout 0.5, then a linear layer
// to two logits (softmax over "listened again within a month").
#pragma once
#include <memory>
#include <vector>

#include "engine/modules.h"

namespace musicrec::models {

struct CfModelConfig {
  std::vector<int64_t> cardinality;  // per categorical feature; [0] members, [1] songs
  int64_t numeric = 2;
  int64_t id_dim = 64;
  int64_t feature_dim = 8;  // other categorical features get min(feature_dim, cardinality) dimensions
  int64_t hidden = 128;
  float dropout = 0.5f;
};

class CfModel : public Module {
 public:
  CfModel(const CfModelConfig& cfg, Generator& gen);
  // cat: int32 [features, B] (one row per feature), numeric: float [B, numeric] -> logits [B, 2].
  Tensor forward(const Tensor& cat, const Tensor& numeric, Generator& gen) const;
  const CfModelConfig& config() const { return cfg_; }
  int64_t input_width() const { return input_width_; }

 private:
  CfModelConfig cfg_;
  std::vector<std::shared_ptr<Embedding>> embeddings_;
  std::shared_ptr<Linear> hidden_, out_;
  int64_t input_width_ = 0;
};

}  // namespace musicrec::models
