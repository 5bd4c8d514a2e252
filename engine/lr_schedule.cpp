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

LrSchedule::Kind LrSchedule::parse(const std::string& name) {
  if (name == "constant") return Kind::Constant;
  if (name == "cosine") return Kind::Cosine;
  throw Error("unknown learning-rate schedule '" + name + "' (expected constant or cosine)");
}

const char* LrSchedule::name(Kind kind) { return kind == Kind::Cosine ? "cosine" : "constant"; }

}  // namespace musicrec
