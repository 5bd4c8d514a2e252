// The song-pair CNN's jobs: training on MSD + Last.fm folders into a run folder, and scoring a list of
// song pairs with a trained run. `musicrec train pairs` / `musicrec predict pairs` call these.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "models/pair_cnn.h"

namespace musicrec::apps {

struct TrainPairsOptions {
  std::string msd, lastfm, run, device = "auto";
  std::string weights = "class";  // class | kde | none
  double positive_weight = 10.0, negative_weight = 1.0;  // --weights class
  double kde_bandwidth = 0.2;
  bool balanced = false;
  int epochs = 6;
  int64_t batch = 256;
  // The defaults are the best measured on `synth msd` defaults (README, issue 4): Adam at 3e-3 on a cosine
  // schedule and the time-mean tower. The paper's setup is --tower-output flatten --lr 1e-3
  // --lr-schedule constant.
  double lr = 3e-3;
  std::string lr_schedule = "cosine";  // constant | cosine (engine/lr_schedule.h)
  uint64_t seed = 1;
  int64_t filters1 = 16, filters2 = 32, filters3 = 32;
  double conv_init_gain = 8.0;
  std::string tower_output = "time-mean";  // time-mean | flatten (the paper's) (models/pair_cnn.h)
  int64_t max_train_positives = -1;
  std::string image_cache;  // "" = MSD/.musicrec-cache/images-HxW-S.h5
  bool resume = false;      // continue RUN from its last.h5 (engine/training_run.h)
  bool quiet = false;       // no progress display (tests)
};

struct PairsTrainResult {
  double test_accuracy, test_auc, sensitivity, specificity;
  double ceiling_accuracy;  // 0 without truth.json
  double train_pairs_per_s;
  double accuracy_at_validation_threshold = 0;  // test accuracy at the threshold chosen on validation
};

PairsTrainResult train_pairs(const TrainPairsOptions& o);

struct PredictPairsOptions {
  std::string run, msd, pairs, out, device = "auto";
};
void predict_pairs(const PredictPairsOptions& o);

// Shared with `musicrec recommend`: the model configuration a run's config.json records, and the
// fingerprint (file count and total size) of an MSD tree that keys the image cache.
models::PairCnnConfig pair_model_config(const nlohmann::json& run_config);
std::string msd_fingerprint(const std::string& msd_root);

}  // namespace musicrec::apps
