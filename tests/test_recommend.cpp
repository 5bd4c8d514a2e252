// `recommend` end to end on a small generated catalogue: seeds matched from the Spotify export, played
// songs excluded, scores ranked, the closest seed named, tower vectors cached and reused.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sys/wait.h>
#include <cstdlib>
#include <filesystem>

#include "apps/pairs_jobs.h"
#include "apps/recommend_job.h"
#include "data/match.h"
#include "data/msd_synth.h"
#include "data/spotify.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

// A generated catalogue of `songs` songs in d and a one-epoch, three-filter pair CNN trained on it in run.
void make_catalogue_and_run(const test::TempDir& d, const test::TempDir& run, int64_t songs, int64_t listeners) {
  data::MsdSynthOptions so;
  so.songs = songs;
  so.listeners = listeners;
  data::synthesize_msd(d.path.string(), so);
  apps::TrainPairsOptions t;
  t.msd = d.file("data");
  t.lastfm = d.path.string();
  t.run = run.path.string();
  t.epochs = 1;
  t.device = "cpu";
  t.balanced = true;
  t.quiet = true;
  t.filters1 = t.filters2 = t.filters3 = 3;
  apps::train_pairs(t);
}

TEST(Recommend, PlaylistExcludesPlayedSongsAndNamesSeeds) {
  test::TempDir d, run;
  make_catalogue_and_run(d, run, 80, 1);
  apps::RecommendOptions o;
  o.model = run.path.string();
  o.msd = d.file("data");
  o.history = {d.file("spotify/listener_0")};
  o.top = 10;
  o.device = "cpu";
  std::vector<apps::Recommendation> recs = apps::recommend(o);
  ASSERT_EQ(recs.size(), 10u);
  // Seeds and played songs, computed here from the export itself.
  data::SpotifyHistory h = data::read_spotify_history(o.history);
  std::set<std::string> played;
  for (auto& p : h.plays) played.insert(data::normalise_artist(p.artist) + "\t" + data::normalise_title(p.track));
  std::set<std::string> seen;
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(played.count(data::normalise_artist(recs[i].artist) + "\t" + data::normalise_title(recs[i].title)), 0u)
        << "recommended a played song: " << recs[i].artist << " - " << recs[i].title;
    EXPECT_TRUE(seen.insert(recs[i].track_id).second);
    EXPECT_GE(recs[i].score, 0.0);
    EXPECT_LE(recs[i].score, 1.0);
    if (i) {
      EXPECT_LE(recs[i].score, recs[i - 1].score);
    }
    EXPECT_FALSE(recs[i].closest_seed.empty());
  }
  EXPECT_TRUE(std::filesystem::exists(run.file("tower_vectors.h5")));
  // Reusing the cached tower vectors gives the same playlist; mean aggregation ranks differently
  // but still excludes played songs.
  std::vector<apps::Recommendation> again = apps::recommend(o);
  for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(again[i].track_id, recs[i].track_id);
  o.aggregate = "mean";
  EXPECT_EQ(apps::recommend(o).size(), 10u);
  o.aggregate = "median";
  EXPECT_THROW(apps::recommend(o), Error);
}

// Issue 5's bad inputs, through the real program: each gives one clear line on stderr and exit
// status 1, never a crash.
TEST(Recommend, BadHistoriesGiveOneClearMessageAndExitOne) {
  test::TempDir d, run;
  make_catalogue_and_run(d, run, 60, 0);
  std::filesystem::create_directories(d.file("h/empty"));
  std::filesystem::create_directories(d.file("h/none"));
  test::write_text(d.file("h/empty/StreamingHistory_music_0.json"), "[]");
  test::write_text(d.file("h/none/notes.txt"), "no exports here");
  test::write_text(d.file("h/other.json"), "{\"tracks\": [1, 2, 3]}");
  test::write_text(d.file("h/unknown.json"),
                   R"([{"endTime": "2024-01-01 10:00", "artistName": "Nobody Known", "trackName": "Nothing", "msPlayed": 200000}])");
  struct Case {
    std::string history, expect;
  };
  for (const Case& c : {Case{d.file("h/empty"), "no song"}, Case{d.file("h/none"), "no Spotify"},
                        Case{d.file("h/other.json"), "h/other.json"}, Case{d.file("h/unknown.json"), "catalogue"}}) {
    const std::string err = d.file("h/stderr.txt");
    const std::string cmd = std::string(MUSICREC_BIN) + " recommend --device cpu --model " + run.path.string() + " --msd " +
                            d.file("data") + " --history " + c.history + " > /dev/null 2> " + err;
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << c.history << ": killed by a signal";
    EXPECT_EQ(WEXITSTATUS(status), 1) << c.history;
    const std::string msg = test::read_text(err);
    EXPECT_NE(msg.find("musicrec: error:"), std::string::npos) << c.history << ": " << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.history << ": " << msg;
  }
}

}  // namespace
}  // namespace musicrec
