// `musicrec synth msd`: MSD track files, the Last.fm lastfm_train/ and lastfm_test/ JSON trees and
// Spotify streaming histories, generated from planted latent styles so that similarity is learnable
// from the features and its ceiling is known.
//
// Each song has a unit style vector z (a style centroid plus noise). Its chroma profile is
// softmax(A z) over the 12 pitch classes (so the key follows the style), its timbre means are B z (with
// timbre 0 a loudness-like 30..55), and its tempo rises with z; every segment is the profile or the
// means plus noise. The Last.fm score of a listed pair is clip(sigmoid(8 (z_i . z_j - 0.55)) + N(0, 0.08)),
// so P(score >= 0.5) = Phi((sigmoid(8 (z_i . z_j - 0.55)) - 0.5) / 0.08) is the true probability of label 1.
// Each song lists 10 songs of its own style and 30 random ones, scores descending, as real files do.
// DIR/truth.json gives the ceiling (the balanced test pairs that data/pairs.h builds with its defaults,
// scored by the true probabilities), the feature ceiling (the same with each z estimated by least squares
// from the song's mean timbre over the image's 60 s: what the features allow; on the defaults 0.9764 /
// 0.9984 against 0.9787 / 0.9986, so nearly all of the ceiling is attainable from the images) and each
// listener's planted favourite style.
#pragma once
#include <cstdint>
#include <string>

namespace musicrec::data {

struct MsdSynthOptions {
  int64_t songs = 2000;
  int64_t listeners = 10;
  int64_t styles = 8;
  uint64_t seed = 1;
  double test_fraction = 0.2;  // songs whose Last.fm file goes to lastfm_test/
};

struct MsdSynthSummary {
  double test_auc = 0, test_accuracy = 0;
  double feature_test_auc = 0, feature_test_accuracy = 0;  // z estimated from the features (truth.json)
  int64_t test_pairs = 0;
  double seconds = 0;
};

MsdSynthSummary synthesize_msd(const std::string& dir, const MsdSynthOptions& opt);

}  // namespace musicrec::data
