// Spotify streaming-history reader (see spotify.h).
#include "data/spotify.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "engine/json_files.h"
#include "kernels/error.h"

namespace musicrec::data {
namespace {
namespace fs = std::filesystem;

const std::regex kAccount(R"(StreamingHistory(_music_)?\d+\.json)");
const std::regex kExtended(R"((Streaming_History_Audio_[0-9_-]+|endsong_\d+)\.json)");
const std::regex kOther(R"((StreamingHistory_podcast_\d+|Streaming_History_Video_[0-9_-]+)\.json)");

std::string str_or_empty(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void read_file(const std::string& path, SpotifyHistory& h) {
  const nlohmann::json j = read_json_file(path);  // names the file when missing or not JSON
  MR_CHECK(j.is_array(), path + ": expected a JSON array of streaming records");
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& r = j[i];
    const std::string where = path + ": record " + std::to_string(i);
    MR_CHECK(r.is_object(), where + " is not an object");
    SpotifyPlay p;
    if (r.contains("endTime")) {  // account data
      MR_CHECK(r.contains("msPlayed") && r["msPlayed"].is_number_integer(), where + ": msPlayed missing or not an integer");
      p.artist = str_or_empty(r, "artistName");
      p.track = str_or_empty(r, "trackName");
      p.end_time = str_or_empty(r, "endTime");
      p.ms_played = r["msPlayed"].get<int64_t>();
    } else if (r.contains("ts")) {  // extended history
      MR_CHECK(r.contains("ms_played") && r["ms_played"].is_number_integer(), where + ": ms_played missing or not an integer");
      p.artist = str_or_empty(r, "master_metadata_album_artist_name");
      p.track = str_or_empty(r, "master_metadata_track_name");
      p.end_time = str_or_empty(r, "ts");
      p.ms_played = r["ms_played"].get<int64_t>();
    } else {
      MR_CHECK(false, where + " has neither endTime nor ts: not a Spotify streaming record");
    }
    MR_CHECK(p.ms_played >= 0, where + ": negative play time");
    if (p.track.empty() || p.artist.empty()) {  // podcast or audiobook rows: no track
      ++h.skipped_records;
      continue;
    }
    h.plays.push_back(std::move(p));
  }
  ++h.files;
}

}  // namespace

bool is_spotify_music_file(const std::string& name) {
  return std::regex_match(name, kAccount) || std::regex_match(name, kExtended);
}
bool is_spotify_file(const std::string& name) { return is_spotify_music_file(name) || std::regex_match(name, kOther); }

SpotifyHistory read_spotify_history(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  SpotifyHistory h;
  for (const auto& p : paths) {
    MR_CHECK(fs::exists(p), p + ": no such file or folder");
    if (fs::is_directory(p)) {
      for (auto& e : fs::recursive_directory_iterator(p)) {
        if (!e.is_regular_file()) continue;
        const std::string name = e.path().filename().string();
        if (is_spotify_music_file(name)) files.push_back(e.path().string());
        else if (is_spotify_file(name)) ++h.ignored_files;
      }
    } else {
      const std::string name = fs::path(p).filename().string();
      if (std::regex_match(name, kOther)) ++h.ignored_files;
      else files.push_back(p);  // an explicitly named file is read whatever its name
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) read_file(f, h);
  MR_CHECK(h.files > 0, "no Spotify music history files found in the given paths");
  return h;
}

std::vector<TopSong> top_songs(const SpotifyHistory& h, size_t n, int64_t min_ms, bool by_ms) {
  std::map<std::pair<std::string, std::string>, TopSong> agg;
  for (const auto& p : h.plays) {
    TopSong& t = agg[{p.artist, p.track}];
    t.artist = p.artist;
    t.track = p.track;
    t.ms_played += p.ms_played;
    if (p.ms_played >= min_ms) ++t.plays;
  }
  std::vector<TopSong> all;
  for (auto& [k, v] : agg)
    if (v.plays > 0 || by_ms) all.push_back(v);
  std::sort(all.begin(), all.end(), [&](const TopSong& a, const TopSong& b) {
    if (by_ms) {
      if (a.ms_played != b.ms_played) return a.ms_played > b.ms_played;
      if (a.plays != b.plays) return a.plays > b.plays;
    } else {
      if (a.plays != b.plays) return a.plays > b.plays;
      if (a.ms_played != b.ms_played) return a.ms_played > b.ms_played;
    }
    return std::tie(a.artist, a.track) < std::tie(b.artist, b.track);
  });
  if (all.size() > n) all.resize(n);
  return all;
}

}  // namespace musicrec::data
