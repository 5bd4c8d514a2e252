// The train / validation / test split of train.csv rows. A pure function of (kind, row, rows, seed),
// so the generator can compute the ceiling on exactly the parts the trainer will use.
//   random: row i goes to train with probability 0.8, validation 0.1, test 0.1 (Philox of (seed, i));
//   time:   the first 80 % of rows (train.csv is in time order) train, the next 10 % validation, the last test.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace musicrec::data {

enum class SplitKind { Random, Time };
enum class Part : int8_t { Train = 0, Validation = 1, Test = 2 };

constexpr uint64_t kDefaultSplitSeed = 20180101;

SplitKind parse_split(const std::string& s);
const char* split_name(SplitKind k);
Part split_part(SplitKind kind, int64_t row, int64_t rows, uint64_t seed);

struct SplitRows {
  std::vector<int64_t> train, validation, test;
};
SplitRows make_split(SplitKind kind, int64_t rows, uint64_t seed);

}  // namespace musicrec::data
