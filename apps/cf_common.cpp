// Shared CF pieces (see cf_common.h).
#include "apps/cf_common.h"

#include <cmath>

#include "data/cf_batches.h"
#include "data/prefetcher.h"
#include "engine/autograd.h"

namespace musicrec::apps {

models::CfModelConfig cf_config_from(const data::CfDataset& ds, const nlohmann::json& sizes) {
  models::CfModelConfig c;
  c.cardinality = ds.cardinality;
  c.numeric = data::kCfNumeric;
  c.id_dim = sizes.value("id_dim", int64_t(64));
  c.feature_dim = sizes.value("feature_dim", int64_t(8));
  c.hidden = sizes.value("hidden", int64_t(128));
  c.dropout = sizes.value("dropout", 0.5f);
  return c;
}

std::vector<float> cf_predict(models::CfModel& model, const data::CfRows& rows, const std::vector<int64_t>& order,
                              int64_t batch, Device device, Generator& gen) {
  autograd::NoGradGuard ng;
  const bool was_training = model.training();
  model.eval();
  const int64_t n = int64_t(order.size()), batches = (n + batch - 1) / batch;
  std::vector<float> probs;
  probs.reserve(size_t(n));
  data::Prefetcher<data::CfBatch> pre(batches, [&](int64_t b) {
    return data::make_cf_batch(rows, order, b * batch, std::min(batch, n - b * batch));
  });
  data::CfBatch hb;
  while (pre.next(hb)) {
    data::CfBatch db = hb.to(device);
    std::vector<float> logits = model.forward(db.cat, db.num, gen).to_vector<float>();
    for (int64_t i = 0; i < hb.size; ++i) {
      // P(class 1) of a two-way softmax = sigmoid(l1 - l0), computed stably.
      double d = double(logits[size_t(2 * i + 1)]) - double(logits[size_t(2 * i)]);
      probs.push_back(float(d >= 0 ? 1.0 / (1.0 + std::exp(-d)) : std::exp(d) / (1.0 + std::exp(d))));
    }
  }
  model.train(was_training);
  return probs;
}

std::vector<float> cf_labels(const data::CfRows& rows, const std::vector<int64_t>& order) {
  std::vector<float> l;
  l.reserve(order.size());
  for (int64_t r : order) l.push_back(rows.label[size_t(r)]);
  return l;
}

}  // namespace musicrec::apps
