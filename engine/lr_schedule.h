// Learning-rate schedules over a whole training run.
//
// The rate is a function of the step number alone (counted from 0 across epochs), never of state
// carried between steps, so a resumed run (engine/training_run.h) follows the schedule exactly.
//   constant  base at every step (the default of `train cf`)
//   cosine    base * (f + (1 - f) * (1 + cos(pi * step / total)) / 2): half a cosine from base at step 0
//             down to base * f at the last step (f = final_fraction). Large steps early move the
//             slowly learning conv tower; small steps late let Adam settle instead of jittering around
//             the minimum, which is where a constant rate loses accuracy (issue 4's runs).
// The total is the run's configured epochs x batches. A run resumed with a larger --epochs follows,
// from the step it stopped at, the curve of a run of that many epochs: its rate steps up there (a warm
// restart). Only a resume with the same --epochs reproduces an uninterrupted run bit for bit.
#pragma once
#include <cstdint>
#include <string>

namespace musicrec {

struct LrSchedule {
  enum class Kind { Constant, Cosine };
  Kind kind = Kind::Constant;
  double base = 1e-3;
  int64_t total_steps = 1;      // steps of the whole run (epochs x batches per epoch)
  double final_fraction = 0.0;  // cosine: the last step's rate as a fraction of base
  int64_t batch = 1;            // samples per step (for at_batch)
  int64_t steps_per_epoch = 1;  // (for at_batch)

  // The schedule of a run of `epochs` epochs of `epoch_samples` samples each, in steps of `batch`
  // (the last step of an epoch may be short). `kind` as parse() takes it.
  static LrSchedule for_run(const std::string& kind, double base, int epochs, int64_t epoch_samples, int64_t batch);
  double at(int64_t step) const;
  // The rate of the step that starts `done` samples into epoch `epoch` (counted from 1).
  double at_batch(int epoch, int64_t done) const;
  // "constant" or "cosine"; anything else is an Error naming the value.
  static Kind parse(const std::string& name);
  static const char* name(Kind kind);
};

}  // namespace musicrec
