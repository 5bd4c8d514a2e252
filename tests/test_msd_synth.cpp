// `synth msd`: every file it writes reads back through the real-format readers, in the real layouts
// (MSD tables, Last.fm JSON, Spotify export), deterministically, with a ceiling in range.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/lastfm.h"
#include "data/msd.h"
#include "data/msd_synth.h"
#include "data/song_images.h"
#include "engine/json_files.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(MsdSynth, EverythingReadsBackInTheRealFormats) {
  test::TempDir d;
  MsdSynthOptions o;
  o.songs = 60;
  o.listeners = 2;
  MsdSynthSummary s = synthesize_msd(d.path.string(), o);
  MsdScanReport mr;
  std::vector<MsdTrack> tracks = scan_msd_tree(d.file("data"), mr);
  EXPECT_EQ(mr.files, 60);
  EXPECT_EQ(mr.bad, 0);
  for (auto& t : tracks) {
    EXPECT_EQ(t.track_id.size(), 18u);
    EXPECT_EQ(msd_track_path(d.file("data"), t.track_id), d.file("data/" + t.track_id.substr(2, 1) + "/" +
                                                                  t.track_id.substr(3, 1) + "/" + t.track_id.substr(4, 1) +
                                                                  "/" + t.track_id + ".h5"));
    EXPECT_DOUBLE_EQ(*std::max_element(t.pitches.begin(), t.pitches.end()), 1.0);
    EXPECT_GT(t.segments(), 50);
  }
  LastfmScanReport tr, te;
  auto lf_train = scan_lastfm_tree(d.file("lastfm_train"), tr);
  auto lf_test = scan_lastfm_tree(d.file("lastfm_test"), te);
  EXPECT_EQ(tr.bad + te.bad, 0);
  EXPECT_EQ(tr.tracks + te.tracks, 60);
  EXPECT_GT(te.tracks, 0);
  for (auto& t : lf_train)
    for (size_t k = 1; k < t.similars.size(); ++k) ASSERT_GE(t.similars[k - 1].second, t.similars[k].second);
  // The real files' text layout.
  std::string one = slurp(d.file("lastfm_train") + "/" + lf_train[0].track_id.substr(2, 1) + "/" +
                          lf_train[0].track_id.substr(3, 1) + "/" + lf_train[0].track_id.substr(4, 1) + "/" +
                          lf_train[0].track_id + ".json");
  EXPECT_EQ(one.rfind("{\"artist\": ", 0), 0u) << one.substr(0, 80);
  EXPECT_NE(one.back(), '\n');
  nlohmann::json truth = read_json_file(d.file("truth.json"));
  EXPECT_GT(truth["ceiling"]["test_auc"].get<double>(), 0.5);
  EXPECT_LE(truth["ceiling"]["test_accuracy"].get<double>(), 1.0);
  EXPECT_EQ(truth["listeners"].size(), 2u);
  EXPECT_EQ(s.test_pairs, truth["ceiling"]["test_pairs"].get<int64_t>());
  // The feature ceiling (z estimated from the mean timbre a model sees) is close to the true one and
  // not above it by more than the rounding of a small test set: the features carry the style.
  const double feature_acc = truth["feature_ceiling"]["test_accuracy"].get<double>();
  EXPECT_GT(feature_acc, truth["ceiling"]["test_accuracy"].get<double>() - 0.03);
  EXPECT_LE(feature_acc, truth["ceiling"]["test_accuracy"].get<double>() + 0.01);
  EXPECT_GT(truth["feature_ceiling"]["test_auc"].get<double>(), 0.95);
  // Spotify export: a JSON array of {endTime, artistName, trackName, msPlayed}, "key" : value.
  std::string sp = slurp(d.file("spotify/listener_0/StreamingHistory_music_0.json"));
  EXPECT_NE(sp.find("\"endTime\" : \""), std::string::npos);
  nlohmann::ordered_json plays = nlohmann::ordered_json::parse(sp);
  ASSERT_TRUE(plays.is_array());
  ASSERT_FALSE(plays.empty());
  std::vector<std::string> keys;
  for (auto& [k, v] : plays[0].items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"endTime", "artistName", "trackName", "msPlayed"}));
  // Images of the generated songs are finite.
  SongImages img = build_song_images(tracks, ImageOptions{});
  for (float v : img.images.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
}

TEST(MsdSynth, SameSeedSameFiles) {
  test::TempDir a, b;
  MsdSynthOptions o;
  o.songs = 25;
  o.listeners = 1;
  synthesize_msd(a.path.string(), o);
  synthesize_msd(b.path.string(), o);
  EXPECT_EQ(slurp(a.file("truth.json")), slurp(b.file("truth.json")));
  for (auto& e : std::filesystem::recursive_directory_iterator(a.file("lastfm_train"))) {
    if (!e.is_regular_file()) continue;
    std::string rel = std::filesystem::relative(e.path(), a.path).string();
    EXPECT_EQ(slurp(e.path().string()), slurp(b.file(rel))) << rel;
  }
  MsdScanReport ra, rb;
  auto ta = scan_msd_tree(a.file("data"), ra), tb = scan_msd_tree(b.file("data"), rb);
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) EXPECT_EQ(ta[i].timbre, tb[i].timbre);
}

}  // namespace
}  // namespace musicrec::data
