// The checkpoints of a training run folder, shared by every training job: after each epoch the latest
// state goes to RUN/last.h5 and, when the validation score improved, to RUN/best.h5; at the end the
// best weights are restored for the test evaluation. (The start of the generic training loop that
// DESIGN.md puts in engine/; resuming and interruption handling build on it.)
#pragma once
#include <string>

namespace musicrec {

class Module;
class Optimizer;
class Generator;

class RunCheckpoints {
 public:
  RunCheckpoints(std::string run_dir, std::string metadata_json)
      : dir_(std::move(run_dir)), metadata_(std::move(metadata_json)) {}
  // Saves last.h5, and best.h5 when `score` (higher is better) beats every earlier epoch's.
  void end_of_epoch(const Module& model, const Optimizer& opt, const Generator& gen, int epoch, double score);
  // Loads best.h5's weights into `model`.
  void restore_best(Module& model) const;
  int best_epoch() const { return best_epoch_; }
  double best_score() const { return best_score_; }

 private:
  std::string dir_, metadata_;
  int best_epoch_ = 0;
  double best_score_ = 0;
};

}  // namespace musicrec
