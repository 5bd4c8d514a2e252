// Generates KKBox-format data (all five files, exactly the real schema) from a planted model, so the
// whole pipeline can run and be scored where the real data cannot be downloaded.
//
// Planted model: each member m has a latent vector u_m and a bias; each song s a latent vector v_s, a
// bias, a genre, artist and language; each listening context (source_system_tab, source_screen_name,
// source_type, drawn as realistic triples) an effect, and each genre an effect:
//   P(target = 1) = sigmoid(c + b_m + b_s + a * <u_m, v_s> + e_context + e_genre).
// Members are active and songs popular by Zipf laws; songs are released over time (rows are in time
// order, as in the real train.csv), so a time split sees new songs. DIR/truth.json holds the ceiling:
// the AUC and accuracy the true probabilities reach on each part of the trainer's splits.
#pragma once
#include <cstdint>
#include <string>

namespace musicrec::data {

struct KkboxSynthOptions {
  // Defaults: enough rows per member and song (about 500) that the CF baseline can get within 10 % of
  // the ceiling's AUC margin in a few epochs on a 2-core CPU; the real data has 7.4M rows over 30k
  // members and 420k songs (--members 30000 --songs 420000 --rows 7400000).
  int64_t members = 1500;
  int64_t songs = 3000;
  int64_t rows = 1000000;      // train.csv rows; test.csv gets a third as many, later in time
  uint64_t seed = 1;
  int latent_dim = 8;
  uint64_t split_seed = 20180101;  // must match the trainer's (data/split.h kDefaultSplitSeed)
};

struct KkboxSynthSummary {
  double test_auc = 0, test_accuracy = 0;  // ceiling on the random split's test part
  double positive_rate = 0;
  double seconds = 0;
};

KkboxSynthSummary synthesize_kkbox(const std::string& dir, const KkboxSynthOptions& opt);

}  // namespace musicrec::data
