// `musicrec demo`: the whole pipeline on generated data, the project's main job. It synthesises the
// KKBox-format and MSD-format data (with their planted truths), trains the CF baseline and the pair
// CNN, prints their test metrics beside the paper's, writes an m3u playlist for every generated
// listener from their Spotify history, and measures the playlists against each listener's planted
// favourite style: precision@20 = the share of recommended songs in that style, against the share a
// random pick from the listener's candidates would get.
#pragma once
#include <cstdint>
#include <string>

namespace musicrec::apps {

struct DemoOptions {
  std::string out = "musicrec-demo", device = "auto";
  // Sizes chosen so the whole demo runs in a few minutes on a 2-core CPU (see demo_job.cpp).
  int64_t kkbox_members = 1500, kkbox_songs = 3000, kkbox_rows = 1000000;
  int64_t songs = 500, listeners = 10;
  int cf_epochs = 3, pair_epochs = 8;
  uint64_t seed = 1;
};

struct DemoResult {
  double cf_test_accuracy = 0, cf_test_auc = 0;
  double pairs_test_accuracy = 0, pairs_test_auc = 0, pairs_ceiling_accuracy = 0;
  double precision_at_20 = 0, random_precision = 0;
  int64_t listeners = 0;
  double seconds = 0;
};

// Writes OUT/{kkbox,msd,runs/cf,runs/pairs,playlists}/ and OUT/demo.json (the figures below).
DemoResult run_demo(const DemoOptions& o);

}  // namespace musicrec::apps
