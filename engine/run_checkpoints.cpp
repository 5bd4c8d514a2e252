// Run-folder checkpoints (see run_checkpoints.h).
#include "engine/run_checkpoints.h"

#include "engine/checkpoint.h"
#include "engine/modules.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/error.h"

namespace musicrec {

void RunCheckpoints::end_of_epoch(const Module& model, const Optimizer& opt, const Generator& gen, int epoch,
                                  double score) {
  Checkpoint c = capture(model, &opt, gen);
  c.epoch = epoch;
  c.step = opt.steps();
  c.metadata_json = metadata_;
  save_checkpoint(dir_ + "/last.h5", c);
  if (best_epoch_ == 0 || score > best_score_) {
    best_score_ = score;
    best_epoch_ = epoch;
    save_checkpoint(dir_ + "/best.h5", c);
  }
}

void RunCheckpoints::restore_best(Module& model) const {
  MR_CHECK(best_epoch_ > 0, dir_ + ": no epoch finished, so there is no best checkpoint");
  restore(load_checkpoint(dir_ + "/best.h5"), model, nullptr, nullptr);
}

}  // namespace musicrec
