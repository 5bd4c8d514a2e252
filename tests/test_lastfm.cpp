// The Last.fm reader on the two real JSON files (values read from the files; skipped where
// ../shared/real-samples is absent), on broken JSON, and on a lastfm_similars.db made by the test.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>

#include "data/lastfm.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

TEST(LastfmReal, BothFilesReadWithSortedSimilarsAndStringCounts) {
  MR_REQUIRE_REAL_SAMPLES(root);
  LastfmTrack t = read_lastfm_json(root + "/lastfm-json-subset/A/A/A/TRAAADZ128F9348C2E.json");
  EXPECT_EQ(t.track_id, "TRAAADZ128F9348C2E");
  EXPECT_EQ(t.artist, "La Sonora Santanera");  // Last.fm's name, not MSD's "Sonora Santanera"
  EXPECT_EQ(t.title, "Amor De Cabaret");
  EXPECT_EQ(t.timestamp, "2011-08-09 18:24:38.890272");
  ASSERT_EQ(t.similars.size(), 64u);
  EXPECT_EQ(t.similars[0].first, "TRPHLNJ128F9348769");
  EXPECT_DOUBLE_EQ(t.similars[0].second, 1.0);  // the integer 1 of the file
  EXPECT_DOUBLE_EQ(t.similars[2].second, 0.969615);
  for (size_t i = 1; i < t.similars.size(); ++i) EXPECT_GE(t.similars[i - 1].second, t.similars[i].second);
  ASSERT_EQ(t.tags.size(), 1u);
  LastfmScanReport rep;
  auto all = scan_lastfm_tree(root + "/lastfm-json-subset", rep);
  EXPECT_EQ(rep.files, 2);
  EXPECT_EQ(rep.bad, 0);
  EXPECT_EQ(all[1].track_id, "TRAAAFD128F92F423A");
}

TEST(LastfmJson, BrokenFilesAreErrorsNamingTheFileAndTheProblem) {
  test::TempDir d;
  auto err = [&](const std::string& name, const std::string& text) -> std::string {
    test::write_text(d.file(name), text);
    try {
      read_lastfm_json(d.file(name));
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(d.file(name)), std::string::npos) << e.what();
      return e.what();
    }
    ADD_FAILURE() << name << " was accepted";
    return "";
  };
  const std::string ok_head = R"({"artist": "A", "title": "T", "track_id": "TR1", "tags": [["rock", "100"]], )";
  EXPECT_NE(err("cut.json", ok_head).find("not valid JSON"), std::string::npos);
  EXPECT_NE(err("empty.json", "").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err("nokey.json", R"({"artist": "A", "title": "T", "tags": [], "similars": []})").find("missing key 'track_id'"),
            std::string::npos);
  EXPECT_NE(err("pair.json", ok_head + R"("similars": [["TR2"]]})").find("similars[0] is not a [track id, number] pair"),
            std::string::npos);
  EXPECT_NE(err("range.json", ok_head + R"("similars": [["TR2", 1.5]]})").find("outside [0, 1]"), std::string::npos);
  EXPECT_NE(err("tag.json", R"({"artist": "A", "title": "T", "track_id": "TR1", "similars": [], "tags": [["x", "many"]]})")
                .find("count 'many' is not an integer"),
            std::string::npos);
  EXPECT_NE(err("list.json", "[1, 2]").find("expected a JSON object"), std::string::npos);
  test::write_text(d.file("good.json"), ok_head + R"("similars": [["TR2", 0.5], ["TR3", 1]]})");
  LastfmTrack t = read_lastfm_json(d.file("good.json"));
  EXPECT_EQ(t.similars.size(), 2u);
  EXPECT_EQ(t.tags[0].second, 100);
  LastfmScanReport rep;
  auto tracks = scan_lastfm_tree(d.path.string(), rep);
  EXPECT_EQ(rep.tracks, 1);
  EXPECT_EQ(rep.bad, rep.files - 1);
}

TEST(LastfmDb, SimilarsSrcIsSplitIntoPairs) {
  test::TempDir d;
  const std::string path = d.file("lastfm_similars.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE similars_src (tid TEXT, target TEXT);"
                         "CREATE TABLE similars_dest (tid TEXT, target TEXT);"
                         "INSERT INTO similars_src VALUES ('TRA', 'TRB,0.87,TRC,1');"
                         "INSERT INTO similars_src VALUES ('TRB', 'TRA,0.5');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto pairs = read_lastfm_similars_db(path);
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0].track, "TRA");
  EXPECT_EQ(pairs[0].similar, "TRB");
  EXPECT_DOUBLE_EQ(pairs[0].score, 0.87);
  EXPECT_DOUBLE_EQ(pairs[1].score, 1.0);
  EXPECT_EQ(pairs[2].similar, "TRA");
}

TEST(LastfmDb, BrokenDatabasesAreClearErrors) {
  test::TempDir d;
  test::write_text(d.file("junk.db"), std::string(4096, 'x'));
  EXPECT_THROW(read_lastfm_similars_db(d.file("junk.db")), Error);
  EXPECT_THROW(read_lastfm_similars_db(d.file("absent.db")), Error);
  sqlite3* db = nullptr;
  sqlite3_open(d.file("bad.db").c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE similars_src (tid TEXT, target TEXT); INSERT INTO similars_src VALUES ('TRA', 'TRB,abc');",
               nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    read_lastfm_similars_db(d.file("bad.db"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tid TRA: score 'abc' is not a number"), std::string::npos) << e.what();
  }
  sqlite3_open(d.file("other.db").c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE t (x);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THROW(read_lastfm_similars_db(d.file("other.db")), Error);
}

}  // namespace
}  // namespace musicrec::data
