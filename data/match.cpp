// Catalogue matching (see match.h).
#include "data/match.h"

#include <cctype>
#include <regex>

namespace musicrec::data {
namespace {

// ASCII for the Latin-1 letters U+00C0..U+00FF (UTF-8 C3 80..C3 BF); '\0' where none fits.
const char* kLatin1 =
    "AAAAAAACEEEEIIII" "DNOOOOOxOUUUUYTs"   // U+00C0..U+00DF
    "aaaaaaaceeeeiiii" "dnooooo/ouuuuyty";  // U+00E0..U+00FF

// Lower-cased ASCII letters and digits; everything else becomes one space.
std::string fold(std::string_view s) {
  std::string out;
  bool space = true;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char a = 0;
    if (c < 0x80) {
      a = std::isalnum(c) ? char(std::tolower(c)) : 0;
      if (c == '&') {  // "Earth, Wind & Fire" = "Earth Wind and Fire"
        out += space ? "and" : " and";
        space = false;
        continue;
      }
    } else if (c == 0xC3 && i + 1 < s.size()) {
      unsigned char d = static_cast<unsigned char>(s[++i]);
      if (d >= 0x80 && d <= 0xBF) a = char(std::tolower(kLatin1[d - 0x80]));
    } else {
      // Other multi-byte characters (CJK, Cyrillic, ...) are letters kept as they are.
      size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      out.append(s.substr(i, len));
      i += len - 1;
      space = false;
      continue;
    }
    if (a && std::isalnum(static_cast<unsigned char>(a))) {
      out += a;
      space = false;
    } else if (!space) {
      out += ' ';
      space = true;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string normalise_title(std::string_view title) {
  std::string t(title);
  // Bracketed parts naming other artists or versions: "(feat. X)", "[with X]", "(Remix)", "(Live)".
  static const std::regex brackets(R"(\s*[\(\[](feat\.?|ft\.?|with|featuring|remaster(ed)?|live|remix|radio edit|mono|stereo|acoustic)\b[^\)\]]*[\)\]])",
                                   std::regex::icase);
  t = std::regex_replace(t, brackets, "");
  // " - Remastered 2011", " - 2011 Remaster", " - Live at ...", " - Radio Edit", " - feat. X".
  static const std::regex dash(R"(\s+-\s+((\d{4}\s+)?(remaster(ed)?|live|radio edit|single version|mono|stereo|edit|feat\.?|ft\.?)\b.*)$)",
                               std::regex::icase);
  t = std::regex_replace(t, dash, "");
  return fold(t);
}

std::string normalise_artist(std::string_view artist) {
  std::string a(artist);
  static const std::regex feat(R"(\s+(feat\.?|ft\.?|featuring)\s.*$)", std::regex::icase);
  a = std::regex_replace(a, feat, "");
  std::string f = fold(a);
  if (f.rfind("the ", 0) == 0) f = f.substr(4);
  return f;
}

void CatalogueMatcher::add(const std::string& track_id, std::string_view artist, std::string_view title) {
  index_.emplace(normalise_artist(artist) + "\t" + normalise_title(title), track_id);
}

std::string CatalogueMatcher::find(std::string_view artist, std::string_view title) const {
  auto it = index_.find(normalise_artist(artist) + "\t" + normalise_title(title));
  return it == index_.end() ? std::string() : it->second;
}

Seeds choose_seeds(const SpotifyHistory& h, const CatalogueMatcher& m, size_t n, int64_t min_ms, bool by_ms) {
  Seeds s;
  for (const TopSong& t : top_songs(h, size_t(-1), min_ms, by_ms)) {
    if (s.songs.size() == n) break;
    std::string id = m.find(t.artist, t.track);
    if (id.empty()) {
      s.unmatched.push_back(t);
      continue;
    }
    s.songs.push_back(t);
    s.track_ids.push_back(id);
  }
  return s;
}

}  // namespace musicrec::data
