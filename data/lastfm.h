// Reader of the Last.fm dataset (../shared/DATA.md §3): one JSON file per track in the MSD path layout
// (lastfm_train/A/B/C/<track id>.json), and the SQLite file lastfm_similars.db (table similars_src:
// tid, target = "TRxxx,0.87,TRyyy,0.5,..."). Both give (track, similar track, score) triples.
// A JSON file that does not parse, lacks a key or has the wrong types is an error naming the file; a
// tree scan reports and skips such files.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace musicrec::data {

struct LastfmTrack {
  std::string track_id, artist, title, timestamp;
  std::vector<std::pair<std::string, double>> similars;  // as in the file: descending score
  std::vector<std::pair<std::string, int32_t>> tags;      // counts are strings "0".."100" in the file
};

LastfmTrack read_lastfm_json(const std::string& path);

struct LastfmScanReport {
  int64_t files = 0, tracks = 0, bad = 0, similar_pairs = 0;
  std::vector<std::string> first_errors;  // up to 5
};
// Every *.json under `root`, in path order, read on `threads` threads.
std::vector<LastfmTrack> scan_lastfm_tree(const std::string& root, LastfmScanReport& report, int threads = 2);

struct SimilarPair {
  std::string track, similar;
  double score;
};
// similars_src of lastfm_similars.db. Errors name the file (not SQLite, no such table, a malformed
// target string with its tid).
std::vector<SimilarPair> read_lastfm_similars_db(const std::string& path);

}  // namespace musicrec::data
