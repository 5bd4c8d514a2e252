// Pair building from Last.fm similarity (labels, negatives, ratios, parts, no test track in training,
// determinism) and the song-image cache round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "data/pairs.h"
#include "data/song_images.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

std::string tid(int i) { return "TR" + std::to_string(1000 + i); }

struct World {
  std::unordered_map<std::string, int64_t> catalogue;
  std::vector<LastfmTrack> train, test;
  World() {
    for (int i = 0; i < 100; ++i) catalogue[tid(i)] = i;
    for (int i = 0; i < 100; ++i) {
      LastfmTrack t;
      t.track_id = tid(i);
      const bool is_test = i >= 80;
      int base = is_test ? 80 : 0, span = is_test ? 20 : 80;
      t.similars = {{tid(base + (i + 1) % span), 0.9}, {tid(base + (i + 2) % span), 0.6}, {tid(base + (i + 3) % span), 0.2}};
      if (!is_test) t.similars.push_back({tid(80 + i % 20), 0.95});  // a test track: never in training
      t.similars.push_back({"TRNOTINCATALOGUE", 0.7});
      (is_test ? test : train).push_back(t);
    }
  }
};

TEST(Pairs, LabelsPartsRatiosAndNoTestTrackInTraining) {
  World w;
  PairOptions o;
  PairSets p = build_pairs(w.train, w.test, w.catalogue, o);
  auto count = [](const std::vector<SongPair>& v, int label) {
    return std::count_if(v.begin(), v.end(), [&](const SongPair& s) { return s.label == label; });
  };
  for (const auto* part : {&p.train, &p.validation})
    for (const SongPair& s : *part) {
      ASSERT_LT(s.a, 80);
      ASSERT_LT(s.b, 80) << "a test track in training";
      ASSERT_EQ(s.label, s.score >= 0.5 ? 1 : 0);
    }
  // 80 train sources x 2 positives, split ~90/10 by source; 9 negatives per positive.
  EXPECT_EQ(count(p.train, 1) + count(p.validation, 1), 160);
  EXPECT_EQ(count(p.train, 0), 9 * count(p.train, 1));
  EXPECT_EQ(count(p.validation, 0), 9 * count(p.validation, 1));
  EXPECT_GT(p.validation.size(), 0u);
  std::set<int32_t> train_sources, val_sources;
  for (auto& s : p.train) train_sources.insert(s.a);
  for (auto& s : p.validation) val_sources.insert(s.a);
  for (int32_t v : val_sources) EXPECT_EQ(train_sources.count(v), 0u) << "a source in both parts";
  // Test: lastfm_test sources, balanced.
  EXPECT_EQ(count(p.test, 1), 40);
  EXPECT_EQ(count(p.test, 0), 40);
  for (auto& s : p.test) EXPECT_GE(s.a, 80);
  // Listed negatives (score 0.2) come before random ones.
  EXPECT_EQ(p.listed_negatives, 80 + 20);
  EXPECT_GT(p.random_negatives, 0);
  EXPECT_EQ(p.dropped_partner_missing, 100);
}

TEST(Pairs, BalancedDeterministicAndNoDuplicates) {
  World w;
  PairOptions o;
  o.balanced = true;
  PairSets a = build_pairs(w.train, w.test, w.catalogue, o), b = build_pairs(w.train, w.test, w.catalogue, o);
  auto pos = std::count_if(a.train.begin(), a.train.end(), [](auto& s) { return s.label == 1; });
  EXPECT_EQ(int64_t(a.train.size()), 2 * pos);
  ASSERT_EQ(a.train.size(), b.train.size());
  for (size_t i = 0; i < a.train.size(); ++i) EXPECT_TRUE(a.train[i].a == b.train[i].a && a.train[i].b == b.train[i].b);
  std::set<std::pair<int32_t, int32_t>> seen;
  for (auto& s : a.train) EXPECT_TRUE(seen.insert({s.a, s.b}).second);
  o.seed = 8;
  PairSets c = build_pairs(w.train, w.test, w.catalogue, o);
  bool differs = false;
  for (size_t i = 0; i < std::min(a.train.size(), c.train.size()); ++i) differs |= a.train[i].b != c.train[i].b;
  EXPECT_TRUE(differs) << "another seed should draw other negatives";
  o.threshold = 0;
  EXPECT_THROW(build_pairs(w.train, w.test, w.catalogue, o), Error);
}

TEST(SongImages, CacheRoundTripIsExact) {
  std::vector<MsdTrack> tracks(3);
  for (int i = 0; i < 3; ++i) {
    MsdTrack& t = tracks[size_t(i)];
    t.track_id = tid(i);
    t.duration = 2.0;
    t.segments_start = {0.0, 0.5 + 0.1 * i, 1.2};
    for (int k = 0; k < 3; ++k)
      for (int f = 0; f < 12; ++f) {
        t.pitches.push_back(0.1 * ((f + k + i) % 10));
        t.timbre.push_back(double(f * k - i));
      }
    t.has_analysis = true;
  }
  tracks.push_back(MsdTrack{});  // a summary row without analysis: skipped
  tracks.back().track_id = "TRSUMMARY";
  ImageOptions o{8, 6, 2.0};
  SongImages s = build_song_images(tracks, o, {0, 1});
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.skipped, 1);
  EXPECT_EQ(s.images.shape(), (Shape{3, 1, 8, 6}));
  test::TempDir d;
  save_song_images(d.file("img.h5"), s);
  SongImages back = load_song_images(d.file("img.h5"));
  EXPECT_EQ(back.track_ids, s.track_ids);
  EXPECT_EQ(back.images.to_vector<float>(), s.images.to_vector<float>());
  EXPECT_EQ(back.stats.mean, s.stats.mean);
  EXPECT_EQ(back.options.width, 6);
  EXPECT_EQ(back.index.at(tid(2)), 2);
  test::write_text(d.file("bad.h5"), "x");
  EXPECT_THROW(load_song_images(d.file("bad.h5")), Error);
}

}  // namespace
}  // namespace musicrec::data
