// The Spotify reader on the real exports of all three kinds (skipped where ../shared/real-samples is
// absent), with record counts and top-five lists that the test computes itself from the JSON, and on
// hand-made files: podcasts ignored, ties ordered, broken files named.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/spotify.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

nlohmann::json load(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// The test's own count: plays >= 30 s per (artist, track), most first.
std::vector<std::pair<int64_t, std::string>> expected_top(const std::vector<std::string>& files, const char* artist_key,
                                                          const char* track_key, const char* ms_key) {
  std::map<std::string, std::pair<int64_t, int64_t>> count;
  for (auto& f : files)
    for (auto& r : load(f)) {
      if (!r[track_key].is_string() || !r[artist_key].is_string()) continue;
      auto& c = count[r[artist_key].get<std::string>() + " - " + r[track_key].get<std::string>()];
      c.second += r[ms_key].get<int64_t>();
      if (r[ms_key].get<int64_t>() >= 30000) ++c.first;
    }
  std::vector<std::pair<int64_t, std::string>> v;
  for (auto& [k, c] : count) v.push_back({c.first, k});
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return v;
}

void check_top(const SpotifyHistory& h, const std::vector<std::pair<int64_t, std::string>>& want) {
  auto top = top_songs(h, 5);
  ASSERT_EQ(top.size(), 5u);
  // Play counts must match rank by rank; names must too wherever the count is not tied.
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(top[i].plays, want[i].first) << i;
    bool tied = (i > 0 && want[i - 1].first == want[i].first) || want[i + 1].first == want[i].first;
    if (!tied) {
      EXPECT_EQ(top[i].artist + " - " + top[i].track, want[i].second) << i;
    }
  }
  EXPECT_GT(want[0].first, 1) << "the sample should have a song played more than once";
}

TEST(SpotifyReal, AccountExportLegacyNames) {
  MR_REQUIRE_REAL_SAMPLES(root);
  const std::string dir = root + "/spotify-account-streaminghistory-2020-2021";
  SpotifyHistory h = read_spotify_history({dir});
  EXPECT_EQ(h.files, 2);
  size_t n = load(dir + "/StreamingHistory0.json").size() + load(dir + "/StreamingHistory1.json").size();
  EXPECT_EQ(h.plays.size() + size_t(h.skipped_records), n);
  EXPECT_EQ(load(dir + "/StreamingHistory0.json").size(), 10000u);  // files split at exactly 10,000 records
  check_top(h, expected_top({dir + "/StreamingHistory0.json", dir + "/StreamingHistory1.json"}, "artistName", "trackName", "msPlayed"));
}

TEST(SpotifyReal, MusicAndPodcastFilesOf2024) {
  MR_REQUIRE_REAL_SAMPLES(root);
  const std::string dir = root + "/spotify-account-streaminghistory-music-podcast-2023-2024";
  SpotifyHistory h = read_spotify_history({dir});
  EXPECT_EQ(h.files, 2);
  EXPECT_EQ(h.ignored_files, 1);  // the podcast file
  check_top(h, expected_top({dir + "/StreamingHistory_music_0.json", dir + "/StreamingHistory_music_1.json"}, "artistName",
                            "trackName", "msPlayed"));
}

TEST(SpotifyReal, ExtendedHistorySkipsPodcastRowsAndVideoFiles) {
  MR_REQUIRE_REAL_SAMPLES(root);
  const std::string dir = root + "/spotify-extended-streaming-history-2022-2023";
  SpotifyHistory h = read_spotify_history({dir});
  EXPECT_EQ(h.files, 2);
  EXPECT_EQ(h.ignored_files, 1);       // Streaming_History_Video_2023.json
  EXPECT_EQ(h.skipped_records, 13);    // SOURCE.txt: 13 podcast episodes with null track fields
  EXPECT_EQ(h.plays.size(), 35u + 1470u - 13u);
  check_top(h, expected_top({dir + "/Streaming_History_Audio_2022.json", dir + "/Streaming_History_Audio_2023.json"},
                            "master_metadata_album_artist_name", "master_metadata_track_name", "ms_played"));
}

TEST(Spotify, TiesPodcastsAndByMs) {
  test::TempDir d;
  test::write_text(d.file("StreamingHistory_music_0.json"), R"([
  {"endTime" : "2024-01-01 10:00", "artistName" : "B", "trackName" : "x", "msPlayed" : 40000},
  {"endTime" : "2024-01-01 10:05", "artistName" : "A", "trackName" : "y", "msPlayed" : 40000},
  {"endTime" : "2024-01-01 10:09", "artistName" : "A", "trackName" : "z", "msPlayed" : 31000},
  {"endTime" : "2024-01-01 10:10", "artistName" : "A", "trackName" : "z", "msPlayed" : 29999},
  {"endTime" : "2024-01-01 10:12", "artistName" : "C", "trackName" : "long", "msPlayed" : 900000}
])");
  test::write_text(d.file("StreamingHistory_podcast_0.json"), "[]");
  SpotifyHistory h = read_spotify_history({d.path.string()});
  EXPECT_EQ(h.ignored_files, 1);
  auto top = top_songs(h, 3);
  ASSERT_EQ(top.size(), 3u);
  // One counted play each for all four songs (29,999 ms does not count); ties by total time, then name.
  EXPECT_EQ(top[0].track, "long");
  EXPECT_EQ(top[1].track, "z");  // 60,999 ms in total
  EXPECT_EQ(top[2].artist, "A");  // A - y before B - x: same plays and time, name order
  auto by_ms = top_songs(h, 1, 30000, true);
  EXPECT_EQ(by_ms[0].track, "long");
}

TEST(Spotify, BrokenFilesAreErrorsNamingFileAndRecord) {
  test::TempDir d;
  test::write_text(d.file("StreamingHistory0.json"), "[{\"endTime\": \"x\", \"artistName\": \"A\"}]");
  try {
    read_spotify_history({d.file("StreamingHistory0.json")});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("record 0: msPlayed missing"), std::string::npos) << e.what();
  }
  test::write_text(d.file("endsong_0.json"), "{not json");
  EXPECT_THROW(read_spotify_history({d.file("endsong_0.json")}), Error);
  test::write_text(d.file("other.json"), "[{\"foo\": 1}]");
  EXPECT_THROW(read_spotify_history({d.file("other.json")}), Error);
  test::TempDir empty;
  EXPECT_THROW(read_spotify_history({empty.path.string()}), Error);
  EXPECT_TRUE(is_spotify_music_file("Streaming_History_Audio_2022-2023_1.json"));
  EXPECT_TRUE(is_spotify_music_file("endsong_3.json"));
  EXPECT_FALSE(is_spotify_music_file("Streaming_History_Video_2023.json"));
}

}  // namespace
}  // namespace musicrec::data
