// The CF baseline's dataset: KKBox interactions encoded as model inputs.
//
// Twelve categorical features (member, song, source_system_tab, source_screen_name, source_type, first
// genre, artist, language, city, gender, registered_via, age bucket) become dense indices fitted on the
// training part of the split only: index 0 is "unknown" (a value never seen in training: cold start,
// or no row in members.csv / songs.csv), 1.. are training values in first-seen order. Two numeric
// features (song length in minutes, membership length in years) are standardised with training
// statistics; a missing value becomes 0 (the training mean).
//
// The parse is the slow part, so the encoded dataset (every train.csv and test.csv row, their split
// parts, the encoders' sizes and the member and song ids) is cached in HDF5 and reused when the input
// files, the split and the format are unchanged.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/split.h"

namespace musicrec::data {

struct KkboxData;

constexpr int kCfMember = 0, kCfSong = 1;
constexpr int kCfCategorical = 12, kCfNumeric = 2;
const std::vector<std::string>& cf_feature_names();

struct CfRows {
  int64_t rows = 0;
  std::vector<int32_t> cat;   // rows x kCfCategorical, row-major
  std::vector<float> num;     // rows x kCfNumeric
  std::vector<float> label;   // train.csv rows only
  std::vector<int64_t> id;    // test.csv rows only
};

struct CfDataset {
  SplitKind split = SplitKind::Random;
  uint64_t split_seed = kDefaultSplitSeed;
  std::vector<int64_t> cardinality;  // per categorical feature, including index 0
  CfRows train_csv;                  // every train.csv row
  std::vector<int8_t> part;          // per train.csv row: Part
  CfRows test_csv;                   // every test.csv row (for predictions)
  std::vector<std::string> member_ids, song_ids;  // index -> msno / song_id (index 0: "")
  double parse_seconds = 0, encode_seconds = 0;
  bool from_cache = false;
  std::string source_report;  // the readers' per-file report, one line per file
  // Row indices of one part of the split.
  std::vector<int64_t> rows_of(Part p) const;
};

// Encodes parsed KKBox data for a split (the encoders see only its training part).
CfDataset encode_cf(const KkboxData& d, SplitKind split, uint64_t split_seed);

struct CfLoadOptions {
  SplitKind split = SplitKind::Random;
  uint64_t split_seed = kDefaultSplitSeed;
  bool strict = false;
  std::string cache_dir;  // "" = DIR/.musicrec-cache; a cache that cannot be written is only a warning
  bool use_cache = true;
};

// The cache file: written after a parse; loaded only when its format, version and fingerprint match
// (false otherwise). Its contents are checked (codes within their cardinalities, finite numbers, 0/1
// labels, consistent lengths); a damaged cache is an Error naming the file, which load_cf_dataset
// reports as a warning before parsing the CSVs again.
void save_cf_cache(const std::string& path, const std::string& fingerprint, const CfDataset& ds);
bool load_cf_cache(const std::string& path, const std::string& fingerprint, CfDataset& ds);

// Reads DIR (or its cache) and returns the encoded dataset.
CfDataset load_cf_dataset(const std::string& dir, const CfLoadOptions& opt);

}  // namespace musicrec::data
