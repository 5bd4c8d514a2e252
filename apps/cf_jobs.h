// The CF baseline's jobs: training on a KKBox folder into a run folder, and predicting test.csv from a
// run. `musicrec train cf` / `musicrec predict cf` parse the command line and call these.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/split.h"

namespace musicrec::apps {

struct TrainCfOptions {
  std::string data, run, device = "auto", split = "random";
  int epochs = 3;
  int64_t batch = 512;
  double lr = 2e-3;
  std::string lr_schedule = "constant";  // constant | cosine (engine/lr_schedule.h)
  double weight_decay = 1e-4;
  uint64_t seed = 1, split_seed = data::kDefaultSplitSeed;
  bool strict = false, no_cache = false;
  int64_t id_dim = 64, feature_dim = 8, hidden = 128;
  float dropout = 0.5f;
  int64_t train_eval_rows = 200000;
  bool resume = false;  // continue RUN from its last.h5 (engine/training_run.h)
  bool quiet = false;   // no progress display (tests)
};

struct CfTrainResult {
  double test_auc, test_accuracy;
  double auc_margin_fraction_of_ceiling;  // 0 when the data folder has no truth.json
  double train_samples_per_s;
};

// Writes RUNDIR/config.json, metrics.jsonl (one object per epoch), last.h5, best.h5 (best validation
// AUC) and final.json; prints one line per epoch.
CfTrainResult train_cf(const TrainCfOptions& o);

struct PredictCfOptions {
  std::string run, data, out, device = "auto";
  bool strict = false;
};

// Writes the Kaggle submission (id,target) for DATA/test.csv with the run's best checkpoint.
void predict_cf(const PredictCfOptions& o);

struct RecommendCfOptions {
  std::string run, data, member, device = "auto";
  int64_t top = 20;
};
struct CfRecommendation {
  std::string song_id;
  double score;
};
// The songs a KKBox member is most likely to replay, among those the member has no record of: each
// candidate is scored with the member's own features, the song's, and the member's most frequent
// listening context.
std::vector<CfRecommendation> recommend_cf(const RecommendCfOptions& o);

}  // namespace musicrec::apps
