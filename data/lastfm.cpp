// Last.fm dataset reader (see lastfm.h).
#include "data/lastfm.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/file_scan.h"
#include "engine/json_files.h"
#include "kernels/error.h"

namespace musicrec::data {

LastfmTrack read_lastfm_json(const std::string& path) {
  const nlohmann::json j = read_json_file(path);  // names the file when missing or not JSON
  MR_CHECK(j.is_object(), path + ": expected a JSON object");
  for (const char* key : {"track_id", "similars", "tags", "artist", "title"})
    MR_CHECK(j.contains(key), path + ": missing key '" + key + "'");
  LastfmTrack t;
  auto str = [&](const char* key) {
    MR_CHECK(j[key].is_string(), path + ": '" + key + "' is not a string");
    return j[key].get<std::string>();
  };
  t.track_id = str("track_id");
  t.artist = str("artist");
  t.title = str("title");
  if (j.contains("timestamp") && j["timestamp"].is_string()) t.timestamp = j["timestamp"].get<std::string>();
  MR_CHECK(j["similars"].is_array(), path + ": 'similars' is not a list");
  for (size_t i = 0; i < j["similars"].size(); ++i) {
    const auto& p = j["similars"][i];
    MR_CHECK(p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_number(),
             path + ": similars[" + std::to_string(i) + "] is not a [track id, number] pair");
    double s = p[1].get<double>();
    MR_CHECK(std::isfinite(s) && s >= 0 && s <= 1,
             path + ": similars[" + std::to_string(i) + "] has score " + std::to_string(s) + " outside [0, 1]");
    t.similars.emplace_back(p[0].get<std::string>(), s);
  }
  MR_CHECK(j["tags"].is_array(), path + ": 'tags' is not a list");
  for (size_t i = 0; i < j["tags"].size(); ++i) {
    const auto& p = j["tags"][i];
    MR_CHECK(p.is_array() && p.size() == 2 && p[0].is_string() && (p[1].is_string() || p[1].is_number()),
             path + ": tags[" + std::to_string(i) + "] is not a [tag, count] pair");
    int32_t count = 0;
    if (p[1].is_string()) {
      std::string c = p[1].get<std::string>();
      auto r = std::from_chars(c.data(), c.data() + c.size(), count);
      MR_CHECK(r.ec == std::errc() && r.ptr == c.data() + c.size(), path + ": tags[" + std::to_string(i) +
                                                                        "] count '" + c + "' is not an integer");
    } else {
      count = p[1].get<int32_t>();
    }
    t.tags.emplace_back(p[0].get<std::string>(), count);
  }
  return t;
}

std::vector<LastfmTrack> scan_lastfm_tree(const std::string& root, LastfmScanReport& report, int threads) {
  ScanResult<LastfmTrack> r = scan_tree<LastfmTrack>(root, ".json", read_lastfm_json, threads);
  report = LastfmScanReport{};
  report.files = r.files;
  report.bad = r.bad;
  report.first_errors = r.first_errors;
  for (auto& t : r.items) report.similar_pairs += int64_t(t.similars.size());
  report.tracks = int64_t(r.items.size());
  return std::move(r.items);
}

std::vector<SimilarPair> read_lastfm_similars_db(const std::string& path) {
  MR_CHECK(std::filesystem::is_regular_file(path), path + ": missing or not a file");
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    MR_CHECK(false, path + ": cannot open as SQLite (" + msg + ")");
  }
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT tid, target FROM similars_src", -1, &st, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    MR_CHECK(false, path + ": not a lastfm_similars.db (" + msg + ")");
  }
  std::vector<SimilarPair> out;
  std::string error;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char* tid = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const char* target = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    if (!tid || !target) continue;
    std::string_view rest(target);
    // "TRxxx,0.87,TRyyy,0.5,...": pairs of (track id, score).
    while (!rest.empty()) {
      size_t c1 = rest.find(',');
      if (c1 == std::string_view::npos) {
        error = std::string("tid ") + tid + ": target ends with a track id and no score";
        break;
      }
      std::string_view id = rest.substr(0, c1);
      rest.remove_prefix(c1 + 1);
      size_t c2 = rest.find(',');
      std::string num(rest.substr(0, c2));
      char* end = nullptr;
      double s = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || !std::isfinite(s)) {
        error = std::string("tid ") + tid + ": score '" + num + "' is not a number";
        break;
      }
      out.push_back({tid, std::string(id), s});
      rest = c2 == std::string_view::npos ? std::string_view() : rest.substr(c2 + 1);
    }
    if (!error.empty()) break;
  }
  std::string step_error = (rc != SQLITE_DONE && rc != SQLITE_ROW) ? sqlite3_errmsg(db) : "";
  sqlite3_finalize(st);
  sqlite3_close(db);
  MR_CHECK(error.empty(), path + ": " + error);
  MR_CHECK(step_error.empty(), path + ": read failed (" + step_error + ")");
  return out;
}

}  // namespace musicrec::data
