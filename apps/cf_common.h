// Pieces shared by `musicrec train cf` and `musicrec predict cf`: building the model from a dataset,
// and predicting P(target = 1) for a list of rows in batches (evaluation mode, no gradients).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/cf_dataset.h"
#include "models/cf_model.h"

namespace musicrec::apps {

models::CfModelConfig cf_config_from(const data::CfDataset& ds, const nlohmann::json& sizes);
// Probabilities of the positive class for rows[order[i]], computed on `device`.
std::vector<float> cf_predict(models::CfModel& model, const data::CfRows& rows, const std::vector<int64_t>& order,
                              int64_t batch, Device device, Generator& gen);
// Labels of rows[order[i]].
std::vector<float> cf_labels(const data::CfRows& rows, const std::vector<int64_t>& order);

}  // namespace musicrec::apps
