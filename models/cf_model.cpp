// CF baseline network (see cf_model.h).
#include "models/cf_model.h"

#include <algorithm>
#include <string>

#include "engine/ops.h"
#include "kernels/error.h"

namespace musicrec::models {

CfModel::CfModel(const CfModelConfig& cfg, Generator& gen) : cfg_(cfg) {
  MR_CHECK(cfg.cardinality.size() >= 2, "CfModel: needs at least the member and song features");
  input_width_ = 1 + cfg.numeric;  // the dot product and the numeric features
  for (size_t f = 0; f < cfg.cardinality.size(); ++f) {
    int64_t dim = f < 2 ? cfg.id_dim : std::min(cfg.feature_dim, std::max<int64_t>(2, cfg.cardinality[f]));
    embeddings_.push_back(
        register_module("emb" + std::to_string(f), std::make_shared<Embedding>(cfg.cardinality[f], dim, gen, true)));
    input_width_ += dim;
  }
  hidden_ = register_module("hidden", std::make_shared<Linear>(input_width_, cfg.hidden, gen, Init::HeUniform));
  out_ = register_module("out", std::make_shared<Linear>(cfg.hidden, 2, gen));
}

Tensor CfModel::forward(const Tensor& cat, const Tensor& numeric, Generator& gen) const {
  MR_CHECK(cat.dim() == 2 && cat.size(0) == int64_t(embeddings_.size()),
           "CfModel: categorical input must be [" + std::to_string(embeddings_.size()) + ", B], got " +
               shape_str(cat.shape()));
  std::vector<Tensor> parts;
  Tensor member = embeddings_[0]->forward(cat.row(0));
  Tensor song = embeddings_[1]->forward(cat.row(1));
  parts.push_back(member);
  parts.push_back(song);
  parts.push_back(ops::rowdot(member, song));
  for (size_t f = 2; f < embeddings_.size(); ++f) parts.push_back(embeddings_[f]->forward(cat.row(int64_t(f))));
  parts.push_back(numeric);
  Tensor h = ops::relu(hidden_->forward(ops::concat_cols(parts)));
  h = ops::dropout(h, cfg_.dropout, training(), gen);
  return out_->forward(h);
}

}  // namespace musicrec::models
