// Song images on hand-made segments with answers worked out by hand, and on the real MSD tracks.
#include <gtest/gtest.h>

#include <cmath>

#include "data/song_image.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

// A track whose segment k has every chroma bin = chroma[k] and every timbre coefficient = timbre[k].
MsdTrack make_track(std::vector<double> starts, double duration, std::vector<double> chroma, std::vector<double> timbre) {
  MsdTrack t;
  t.track_id = "TRHAND";
  t.duration = duration;
  t.segments_start = starts;
  for (size_t k = 0; k < starts.size(); ++k)
    for (int f = 0; f < 12; ++f) {
      t.pitches.push_back(chroma[k] + 0.01 * f);  // bins differ so the row mapping is visible
      t.timbre.push_back(timbre[k]);
    }
  t.has_analysis = true;
  return t;
}

TimbreStats unit_stats() {
  TimbreStats s;
  s.mean.fill(0);
  s.stddev.fill(1);
  return s;
}

TEST(SongImage, RowMappingFillsEachHalfInOrder) {
  // h = 20: floor(12 r / 20) gives 8 features two rows and 4 features one row.
  std::vector<int> counts(12, 0);
  for (int r = 0; r < 20; ++r) ++counts[size_t(row_feature(r, 20))];
  EXPECT_EQ(std::count(counts.begin(), counts.end(), 2), 8);
  EXPECT_EQ(std::count(counts.begin(), counts.end(), 1), 4);
  for (int r = 1; r < 20; ++r) EXPECT_GE(row_feature(r, 20), row_feature(r - 1, 20));
  EXPECT_EQ(row_feature(19, 20), 11);
  EXPECT_EQ(row_feature(5, 12), 5);  // h = 12: the identity
}

TEST(SongImage, ColumnsAverageOverlappingSegmentsByDuration) {
  // Segments [0, 0.1), [0.1, 0.5), [0.5, 1.0); 2 columns of 0.5 s.
  MsdTrack t = make_track({0.0, 0.1, 0.5}, 1.0, {0.1, 0.6, 0.3}, {1, 2, 3});
  ImageOptions o{24, 2, 1.0};
  std::vector<float> img(24 * 2);
  build_song_image(t, o, unit_stats(), img.data());
  // Row 0 = chroma bin 0: column 0 = (0.1*0.1 + 0.4*0.6)/0.5 = 0.5; column 1 = 0.3.
  EXPECT_NEAR(img[0], 0.5, 1e-6);
  EXPECT_NEAR(img[1], 0.3, 1e-6);
  // Row 5 = chroma bin 5 (+0.05); row 12 = timbre 0: (0.1*1 + 0.4*2)/0.5 = 1.8, then 3.
  EXPECT_NEAR(img[5 * 2], 0.55, 1e-6);
  EXPECT_NEAR(img[12 * 2], 1.8, 1e-6);
  EXPECT_NEAR(img[12 * 2 + 1], 3.0, 1e-6);
}

TEST(SongImage, ShortSongsArePaddedWithSilenceAndLateSegmentsIgnored) {
  MsdTrack t = make_track({0.0, 0.25}, 0.6, {0.5, 0.7}, {4, 5});
  ImageOptions o{4, 4, 1.0};  // 4 columns of 0.25 s over 1 s; the song ends at 0.6 s
  std::vector<float> img(16, -1.f);
  build_song_image(t, o, unit_stats(), img.data());
  EXPECT_NEAR(img[0], 0.5, 1e-6);
  EXPECT_NEAR(img[1], 0.7, 1e-6);
  EXPECT_NEAR(img[2], 0.7, 1e-6);  // [0.5, 0.6) of segment 1
  EXPECT_EQ(img[3], 0.f);          // after the end: silence
  EXPECT_EQ(img[2 * 4 + 3], 0.f);
  // A 0.5 s window of 2 columns: [0, 0.25) is segment 0, [0.25, 0.5) segment 1; nothing later counts.
  ImageOptions half{4, 2, 0.5};
  std::vector<float> img2(8);
  build_song_image(t, half, unit_stats(), img2.data());
  EXPECT_NEAR(img2[0], 0.5, 1e-6);
  EXPECT_NEAR(img2[1], 0.7, 1e-6);
}

TEST(SongImage, TimbreIsStandardisedWithDurationWeightedStatistics) {
  // Segment lengths 0.25 (timbre 1) and 0.75 (timbre 3): mean 2.5, variance 0.25 + 6.75 - 6.25 = 0.75.
  MsdTrack t = make_track({0.0, 0.25}, 1.0, {0.5, 0.5}, {1, 3});
  TimbreStats s = fit_timbre_stats({&t}, 1.0);
  EXPECT_NEAR(s.mean[0], 2.5, 1e-12);
  EXPECT_NEAR(s.stddev[7], std::sqrt(0.75), 1e-12);
  ImageOptions o{2, 4, 1.0};  // one chroma row, one timbre row
  std::vector<float> img(8);
  build_song_image(t, o, s, img.data());
  EXPECT_NEAR(img[4], (1 - 2.5) / std::sqrt(0.75), 1e-5);
  EXPECT_NEAR(img[5], (3 - 2.5) / std::sqrt(0.75), 1e-5);
}

TEST(SongImage, RealTracksGiveFiniteImagesWithChromaInRange) {
  MR_REQUIRE_REAL_SAMPLES(root);
  MsdScanReport rep;
  std::vector<MsdTrack> tracks = scan_msd_tree(root, rep);
  std::vector<const MsdTrack*> ptrs;
  for (auto& t : tracks) ptrs.push_back(&t);
  TimbreStats s = fit_timbre_stats(ptrs, 60.0);
  ImageOptions o;
  std::vector<double> row_mean(40, 0.0);
  for (auto& t : tracks) {
    std::vector<float> img(40 * 120);
    build_song_image(t, o, s, img.data());
    for (int r = 0; r < 40; ++r)
      for (int c = 0; c < 120; ++c) {
        float v = img[size_t(r * 120 + c)];
        ASSERT_TRUE(std::isfinite(v));
        if (r < 20) {
          ASSERT_TRUE(v >= 0.f && v <= 1.f) << v;
        }
        row_mean[size_t(r)] += v / (120.0 * double(tracks.size()));
      }
  }
  // Every real track is longer than 60 s, so no column is silence, and each timbre row averages to
  // about 0 over the songs its statistics came from (columns are equal-length, segments are not).
  for (int r = 20; r < 40; ++r) EXPECT_NEAR(row_mean[size_t(r)], 0.0, 0.1) << r;
}

}  // namespace
}  // namespace musicrec::data
