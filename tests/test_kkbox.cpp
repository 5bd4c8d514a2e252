// The KKBox reader on the real heads of the Kaggle files (skipped where ../shared/real-samples is
// absent) and on a hand-made folder with every trap DATA.md lists.
#include <gtest/gtest.h>

#include <cmath>

#include "data/kkbox.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

TEST(KkboxReal, CountsMatchTheSourceDescription) {
  MR_REQUIRE_REAL_SAMPLES(root);
  KkboxReadOptions o;
  o.read_extra = true;
  KkboxData d = read_kkbox(root + "/kkbox-csv-vishalshah96", o);
  // SOURCE.txt: 19,999 train rows, 4,999 real test rows (+35,000 padding), all 34,403 members,
  // 39,999 songs, 39,999 song_extra_info records of which one line is the unclosed quote.
  EXPECT_EQ(d.train.size(), 19999);
  EXPECT_EQ(d.test.size(), 4999);
  ASSERT_EQ(d.reports.size(), 5u);
  EXPECT_EQ(d.reports[2].records, 34403);
  EXPECT_EQ(d.reports[3].records, 39999);
  EXPECT_EQ(d.reports[4].malformed, 1);
  EXPECT_NE(d.reports[4].issues.find("line 24470"), std::string::npos) << d.reports[4].issues;
  EXPECT_EQ(d.reports[4].records, 40146);  // the 147 lines after the bad one are kept
  for (int i = 0; i < 4; ++i) EXPECT_EQ(d.reports[size_t(i)].malformed, 0) << d.reports[size_t(i)].file;
  // First train row (SOURCE.txt): explore / Explore / online-playlist / 1.
  EXPECT_EQ(d.members.str(d.train.member[0]), "FGtllVqz18RPiwJj/edr2gV78zirAiY/9SmYvia+kCg=");
  EXPECT_EQ(d.system_tab.str(d.train.system_tab[0]), "explore");
  EXPECT_EQ(d.screen_name.str(d.train.screen_name[0]), "Explore");
  EXPECT_EQ(d.source_type.str(d.train.source_type[0]), "online-playlist");
  EXPECT_EQ(d.train.target[0], 1);
  // The literal "null" of source_system_tab is read as missing, never as a value.
  EXPECT_EQ(d.system_tab.find("null"), -1);
  // Every interaction's member is in the complete members.csv.
  for (int32_t c : d.member_city) EXPECT_GE(c, 0);
  // Test ids are 0..4998 in order.
  EXPECT_EQ(d.test.id.front(), 0);
  EXPECT_EQ(d.test.id.back(), 4998);
}

TEST(KkboxReal, NoBreakSpacesBecomeSpaces) {
  MR_REQUIRE_REAL_SAMPLES(root);
  KkboxData d = read_kkbox(root + "/kkbox-csv-vishalshah96");
  for (int32_t a = 0; a < d.artist.size(); ++a)
    EXPECT_EQ(d.artist.str(a).find("\xC2\xA0"), std::string::npos) << d.artist.str(a);
}

// A hand-made folder with the traps of the real files.
void write_traps(const test::TempDir& d) {
  test::write_text(d.file("train.csv"),
                   "msno,song_id,source_system_tab,source_screen_name,source_type,target\n"
                   "m1,s1,my library,Local playlist more,local-library,1\n"
                   "m2,s2,null,,online-playlist,0\n"
                   "m1,s3,discover,\"Discover, Feature\",song,1\n"
                   "m3,s1,radio,Radio,radio,2\n"            // bad target
                   "m2,s1,radio,Radio\n"                    // too few fields
                   "m4,s4,\"search,Search,song,1\n"         // unclosed quote
                   "m4,s4,search,Search,song,0\n");
  test::write_text(d.file("test.csv"),
                   "id,msno,song_id,source_system_tab,source_screen_name,source_type\n"
                   "0,m1,s2,my library,Local playlist more,local-library\n"
                   ",,,,,\n,,,,,\n");  // padding rows as in the real sample
  test::write_text(d.file("members.csv"),
                   "msno,city,bd,gender,registered_via,registration_init_time,expiration_date\n"
                   "m1,1,0,,7,20110820,20170920\n"
                   "m2,13,1051,female,9,20150628,20170622\n"
                   "m3,5,27,male,4,20160411,20170712\n");  // m4 has no row: cold start side info
  test::write_text(d.file("songs.csv"),
                   "song_id,song_length,genre_ids,artist_name,composer,lyricist,language\n"
                   "s1,247640,465|958,\"Jeff\xC2\xA0" "Chang\",\"Aliaune \"\"Akon\"\" Thiam| Giorgio\",,3\n"
                   "s2,197328,,BLACKPINK,TEDDY|  FUTURE BOUNCE,TEDDY,\n"
                   "s3,x,444,A,,,52\n"  // bad song_length
                   "s4,231781,465,SUPER JUNIOR,,,31\n");
}

TEST(KkboxTraps, EveryTrapIsHandled) {
  test::TempDir d;
  write_traps(d);
  KkboxData k = read_kkbox(d.path.string());
  EXPECT_EQ(k.train.size(), 4);
  EXPECT_EQ(k.reports[0].malformed, 3);
  EXPECT_NE(k.reports[0].issues.find("target is not 0 or 1"), std::string::npos) << k.reports[0].issues;
  EXPECT_EQ(k.test.size(), 1);
  const int32_t m2 = k.members.find("m2"), s1 = k.songs.find("s1"), s2 = k.songs.find("s2"), s3 = k.songs.find("s3");
  // "null" and empty both mean missing.
  EXPECT_EQ(k.system_tab.str(k.train.system_tab[1]), "");
  EXPECT_EQ(k.screen_name.str(k.train.screen_name[2]), "Discover, Feature");
  // bd 1051 is an outlier: unknown age; dates give the membership length.
  EXPECT_EQ(k.member_age[size_t(m2)], -1);
  EXPECT_FLOAT_EQ(k.member_days[size_t(m2)], float(725));
  // First genre of "465|958"; U+00A0 normalised; empty genre and language kept as missing ("").
  EXPECT_EQ(k.genre.str(k.song_genre[size_t(s1)]), "465");
  EXPECT_EQ(k.artist.str(k.song_artist[size_t(s1)]), "Jeff Chang");
  EXPECT_EQ(k.genre.str(k.song_genre[size_t(s2)]), "");
  EXPECT_EQ(k.language.str(k.song_language[size_t(s2)]), "");
  // A songs.csv row with a bad length is skipped: s3 has no side information.
  EXPECT_EQ(k.song_genre[size_t(s3)], -1);
  EXPECT_TRUE(std::isnan(k.song_length_ms[size_t(s3)]));
  EXPECT_EQ(k.reports[3].malformed, 1);
}

TEST(KkboxTraps, StrictModeStopsAtTheFirstBadLine) {
  test::TempDir d;
  write_traps(d);
  KkboxReadOptions o;
  o.strict = true;
  try {
    read_kkbox(d.path.string(), o);
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_TRUE(m.find("train.csv: line 5: target is not 0 or 1") != std::string::npos ||
                m.find("songs.csv: line 4") != std::string::npos)
        << m;
  }
}

TEST(KkboxTraps, MissingFilesAndColumnsAreOneClearError) {
  test::TempDir d;
  write_traps(d);
  std::filesystem::remove(d.file("songs.csv"));
  try {
    read_kkbox(d.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("songs.csv: missing"), std::string::npos) << e.what();
  }
  write_traps(d);
  test::write_text(d.file("members.csv"), "msno,city\nm1,1\n");
  try {
    read_kkbox(d.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("members.csv: missing columns bd, gender"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_kkbox(d.file("nope")), Error);
}

TEST(Kkbox, DatesAndAges) {
  EXPECT_FLOAT_EQ(days_between(20170101, 20170201), 31.f);
  EXPECT_FLOAT_EQ(days_between(20160228, 20160301), 2.f);  // leap year
  EXPECT_TRUE(std::isnan(days_between(0, 20170101)));
  EXPECT_EQ(plausible_age(0), -1);
  EXPECT_EQ(plausible_age(-43), -1);
  EXPECT_EQ(plausible_age(1051), -1);
  EXPECT_EQ(plausible_age(27), 27);
}

}  // namespace
}  // namespace musicrec::data
