// `musicrec demo` end to end at a small size: every stage runs, the playlists are playable m3u files
// of 20 songs, demo.json holds the figures, and the playlists beat a random pick from the catalogue
// at finding each listener's planted favourite style by at least the factor of two issue 5 asks for;
// the pair CNN trained on the way must beat a stated bound.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "apps/demo_job.h"
#include "engine/json_files.h"
#include "tests/test_files.h"

namespace musicrec::apps {
namespace {

TEST(Demo, SmallPipelineWritesPlaylistsThatBeatARandomPickTwice) {
  test::TempDir dir;
  DemoOptions o;
  o.out = (dir.path / "demo").string();
  o.device = "cpu";
  o.kkbox_members = 200;
  o.kkbox_songs = 300;
  o.kkbox_rows = 20000;
  o.songs = 200;
  o.listeners = 4;
  o.cf_epochs = 1;
  o.pair_epochs = 3;
  const DemoResult r = run_demo(o);
  EXPECT_EQ(r.listeners, 4);
  EXPECT_GT(r.cf_test_auc, 0.5);
  // The pair CNN's short-run bound (issue 4): 3 epochs on 200 generated songs gave a balanced-test AUC
  // of 0.926 when this was written (0.64 before the head centred the tower's outputs).
  EXPECT_GE(r.pairs_test_auc, 0.85);
  EXPECT_GT(r.random_precision, 0.0);
  EXPECT_GE(r.precision_at_20, 2 * r.random_precision) << "precision@20 " << r.precision_at_20 << " random " << r.random_precision;
  for (int l = 0; l < 4; ++l) {
    std::ifstream f(o.out + "/playlists/listener_" + std::to_string(l) + ".m3u");
    ASSERT_TRUE(f.good()) << "listener " << l;
    std::string line;
    std::getline(f, line);
    EXPECT_EQ(line, "#EXTM3U");
    int entries = 0;
    while (std::getline(f, line)) {
      if (line.rfind("#EXTINF:", 0) == 0) {
        ++entries;
        ASSERT_TRUE(std::getline(f, line));
        EXPECT_TRUE(std::filesystem::exists(line)) << line;  // the track's MSD file
      }
    }
    EXPECT_EQ(entries, 20);
  }
  const nlohmann::json j = read_json_file(o.out + "/demo.json");
  EXPECT_DOUBLE_EQ(j.at("precision_at_20").get<double>(), r.precision_at_20);
  EXPECT_EQ(j.at("listeners").size(), 4u);
}

}  // namespace
}  // namespace musicrec::apps
