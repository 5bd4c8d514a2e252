// Song pairs for the pair CNN, from Last.fm similarity (../shared/DATA.md §3), over a catalogue of songs
// that have images.
//
// Labels: a listed pair (track, similar, score) is 1 when score >= threshold (0.5), else 0.
// Negatives are the listed pairs under the threshold first, then random unlisted pairs (score 0): the
// source track with a catalogue track of the same part that it does not list (drawn with Philox, so a
// seed gives the same pairs).
// Parts: training and validation pairs come from lastfm_train source tracks whose partner is not a
// lastfm_test track, so no test track appears in training; validation takes the pairs of a seeded 10 %
// of the training source tracks. Training has `negatives_per_positive` negatives per positive (9: the
// paper's 9:1 imbalanced data; `balanced` makes it 1). Test pairs come from lastfm_test source tracks and
// are always balanced 1:1. Exact duplicates (same ordered pair) are kept once.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/lastfm.h"

namespace musicrec::data {

struct SongPair {
  int32_t a, b;   // catalogue rows
  float score;    // Last.fm similarity (0 for random unlisted pairs)
  int8_t label;
};

struct PairOptions {
  double threshold = 0.5;
  double negatives_per_positive = 9.0;
  bool balanced = false;
  double validation_fraction = 0.1;
  uint64_t seed = 7;
  int64_t max_train_positives = -1;  // -1: all
};

struct PairSets {
  std::vector<SongPair> train, validation, test;
  int64_t listed_negatives = 0, random_negatives = 0, dropped_partner_missing = 0;
};

PairSets build_pairs(const std::vector<LastfmTrack>& lastfm_train, const std::vector<LastfmTrack>& lastfm_test,
                     const std::unordered_map<std::string, int64_t>& catalogue, const PairOptions& opt);

}  // namespace musicrec::data
