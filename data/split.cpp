// Row splits (see split.h).
#include "data/split.h"

#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::data {

SplitKind parse_split(const std::string& s) {
  if (s == "random") return SplitKind::Random;
  if (s == "time") return SplitKind::Time;
  MR_CHECK(false, "unknown split '" + s + "': expected random or time");
  return SplitKind::Random;
}

const char* split_name(SplitKind k) { return k == SplitKind::Random ? "random" : "time"; }

Part split_part(SplitKind kind, int64_t row, int64_t rows, uint64_t seed) {
  double u = kind == SplitKind::Random ? double(rng::uniform(seed, 0x5917, uint64_t(row))) - 1e-9
                                       : (double(row) + 0.5) / double(rows);
  return u < 0.8 ? Part::Train : (u < 0.9 ? Part::Validation : Part::Test);
}

SplitRows make_split(SplitKind kind, int64_t rows, uint64_t seed) {
  SplitRows s;
  for (int64_t i = 0; i < rows; ++i) {
    switch (split_part(kind, i, rows, seed)) {
      case Part::Train: s.train.push_back(i); break;
      case Part::Validation: s.validation.push_back(i); break;
      default: s.test.push_back(i); break;
    }
  }
  return s;
}

}  // namespace musicrec::data
