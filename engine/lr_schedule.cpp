// Learning-rate schedules (see lr_schedule.h).
#include "engine/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace musicrec {

double LrSchedule::at(int64_t step) const {
  if (kind == Kind::Constant) return base;
  // The last step of the run is total_steps - 1: it gets exactly base * final_fraction. Steps past the
  // end (a resumed run whose epochs grew is given the new total, so this is only a guard) keep it.
  const double last = double(std::max<int64_t>(1, total_steps - 1));
  const double progress = std::clamp(double(step) / last, 0.0, 1.0);
  return base * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

LrSchedule LrSchedule::for_run(const std::string& kind, double base, int epochs, int64_t epoch_samples, int64_t batch) {
  const int64_t steps_per_epoch = (epoch_samples + batch - 1) / batch;
  return LrSchedule{parse(kind), base, epochs * steps_per_epoch, 0.0, batch, steps_per_epoch};
}

double LrSchedule::at_batch(int epoch, int64_t done) const {
  return at((epoch - 1) * steps_per_epoch + done / batch);
}

LrSchedule::Kind LrSchedule::parse(const std::string& name) {
  if (name == "constant") return Kind::Constant;
  if (name == "cosine") return Kind::Cosine;
  throw Error("unknown learning-rate schedule '" + name + "' (expected constant or cosine)");
}

const char* LrSchedule::name(Kind kind) { return kind == Kind::Cosine ? "cosine" : "constant"; }

}  // namespace musicrec
