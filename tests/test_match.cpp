// Matching listening history to the catalogue: normalisation of artists and titles, and seeds that
// skip unmatched songs so five are used where five can be found.
#include <gtest/gtest.h>

#include "data/match.h"

namespace musicrec::data {
namespace {

TEST(Match, TitlesIgnoreCaseAccentsPunctuationAndVersionSuffixes) {
  EXPECT_EQ(normalise_title("Here Comes The Sun - Remastered 2009"), "here comes the sun");
  EXPECT_EQ(normalise_title("Here Comes the Sun - 2019 Remaster"), "here comes the sun");
  EXPECT_EQ(normalise_title("Despacito (feat. Justin Bieber)"), "despacito");
  EXPECT_EQ(normalise_title("Stay [with Justin Bieber]"), "stay");
  EXPECT_EQ(normalise_title("Bohemian Rhapsody - Live Aid"), "bohemian rhapsody");
  EXPECT_EQ(normalise_title("Café  Del Mar!"), "cafe del mar");
  EXPECT_EQ(normalise_title("Dandelions - slowed + reverb"), "dandelions slowed reverb");  // not a version suffix
  EXPECT_EQ(normalise_title("我們"), "我們");
}

TEST(Match, ArtistsIgnoreTheFeaturingAndAmpersands) {
  EXPECT_EQ(normalise_artist("The Beatles"), "beatles");
  EXPECT_EQ(normalise_artist("Earth, Wind & Fire"), "earth wind and fire");
  EXPECT_EQ(normalise_artist("Beyoncé feat. JAY-Z"), "beyonce");
  EXPECT_EQ(normalise_artist("Sonora Santanera"), normalise_artist("SONORA SANTANERA"));
}

TEST(Match, SeedsSkipUnmatchedSongsAndKeepRankOrder) {
  SpotifyHistory h;
  auto play = [&](const char* a, const char* t, int times) {
    for (int i = 0; i < times; ++i) h.plays.push_back({a, t, "2024-01-01 00:00", 60000});
  };
  play("The Beatles", "Let It Be - Remastered 2009", 9);
  play("Nobody Known", "Missing Song", 8);
  play("Earth, Wind & Fire", "September", 7);
  play("Adele", "Hello", 6);
  play("Queen", "Bohemian Rhapsody - Live Aid", 5);
  play("Unknown", "Also Missing", 4);
  play("ABBA", "Dancing Queen", 3);
  play("Muse", "Uprising", 2);
  CatalogueMatcher m;
  m.add("TR1", "Beatles", "Let It Be");
  m.add("TR2", "Earth Wind and Fire", "September");
  m.add("TR3", "Adele", "Hello");
  m.add("TR4", "Queen", "Bohemian Rhapsody");
  m.add("TR5", "ABBA", "Dancing Queen");
  m.add("TR6", "Muse", "Uprising");
  Seeds s = choose_seeds(h, m, 5);
  EXPECT_EQ(s.track_ids, (std::vector<std::string>{"TR1", "TR2", "TR3", "TR4", "TR5"}));
  ASSERT_EQ(s.unmatched.size(), 2u);
  EXPECT_EQ(s.unmatched[0].track, "Missing Song");
  // Fewer than five matches: all of them are used.
  CatalogueMatcher small;
  small.add("TR9", "Muse", "Uprising");
  EXPECT_EQ(choose_seeds(h, small, 5).track_ids, (std::vector<std::string>{"TR9"}));
}

}  // namespace
}  // namespace musicrec::data
