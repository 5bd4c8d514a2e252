// Matching a listener's songs to the catalogue by artist and title, as people and services spell them
// differently: case, accents (Latin-1 letters folded to ASCII), punctuation, "The " before an artist,
// and version suffixes ("- Remastered 2011", "- 2011 Remaster", "- Live", "- Radio Edit", "(feat. X)",
// "[with X]", "(Remix)") are all ignored.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/spotify.h"

namespace musicrec::data {

std::string normalise_title(std::string_view title);
std::string normalise_artist(std::string_view artist);

class CatalogueMatcher {
 public:
  void add(const std::string& track_id, std::string_view artist, std::string_view title);
  // The catalogue track id, or "" when nothing matches.
  std::string find(std::string_view artist, std::string_view title) const;
  size_t size() const { return index_.size(); }

 private:
  std::unordered_map<std::string, std::string> index_;  // "artist\ttitle" (normalised) -> track id
};

struct Seeds {
  std::vector<TopSong> songs;               // matched, in rank order
  std::vector<std::string> track_ids;       // their catalogue ids
  std::vector<TopSong> unmatched;           // ranked above the last seed but not in the catalogue
};

// The listener's n most played songs that the catalogue has: unmatched ones are reported and the next
// ranked songs take their place.
Seeds choose_seeds(const SpotifyHistory& h, const CatalogueMatcher& m, size_t n = 5, int64_t min_ms = 30000,
                   bool by_ms = false);

}  // namespace musicrec::data
