// `musicrec inspect PATH`: a JSON summary of any file (or folder) the project reads: an MSD track or
// aggregate file, a Last.fm JSON file or lastfm_similars.db, a KKBox CSV, a musicrec checkpoint, or a
// folder of MSD or Last.fm files. A file it cannot read is one line on stderr and exit status 1.
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/json_files.h"
#include "apps/commands.h"
#include "data/csv.h"
#include "data/file_scan.h"
#include "data/lastfm.h"
#include "data/msd.h"
#include "data/spotify.h"
#include "engine/checkpoint.h"
#include "engine/hdf5_file.h"
#include "engine/isolated.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace {

nlohmann::json msd_json(const data::MsdTrack& t) {
  nlohmann::json j = {{"track_id", t.track_id}, {"song_id", t.song_id}, {"artist_name", t.artist_name},
                      {"title", t.title},       {"release", t.release}, {"duration", t.duration},
                      {"tempo", t.tempo},       {"key", t.key},         {"mode", t.mode},
                      {"year", t.year}};
  if (t.has_analysis) {
    j["segments"] = t.segments();
    j["segments_before_60s"] = t.segments_before(60.0);
  }
  return j;
}

nlohmann::json inspect_h5(const std::string& path) {
  {
    Hdf5File f = Hdf5File::open(path);
    if (f.has_attr("format") && f.attr_str("format") == "musicrec-checkpoint") {
      Checkpoint c = load_checkpoint(path);
      int64_t params = 0;
      for (auto& [n, t] : c.model) params += t.numel();
      return {{"kind", "musicrec checkpoint"}, {"step", c.step}, {"epoch", c.epoch}, {"tensors", c.model.size()},
              {"parameters", params}, {"optimizer", c.optimizer_kind}};
    }
  }
  std::vector<data::MsdTrack> tracks = data::read_msd_file(path);
  if (tracks.size() == 1) {
    nlohmann::json j = msd_json(tracks[0]);
    j["kind"] = tracks[0].has_analysis ? "MSD track file" : "MSD summary file";
    return j;
  }
  nlohmann::json j = {{"kind", "MSD aggregate file"}, {"tracks", tracks.size()}};
  if (!tracks.empty()) j["first"] = msd_json(tracks.front());
  return j;
}

// An HDF5 file from anywhere is read in a child process (engine/isolated.h): a damaged one can crash or
// hang libhdf5, and then this is an error naming the file rather than a crash of musicrec.
nlohmann::json inspect_h5_isolated(const std::string& path) {
  if (!isolate_untrusted_readers()) return inspect_h5(path);
  return nlohmann::json::parse(run_isolated(path, [&] { return inspect_h5(path).dump(); },
                                               IsolationOptions{isolation_timeout_for(path)}));
}
nlohmann::json inspect_lastfm(const data::LastfmTrack& t) {
  nlohmann::json j = {{"kind", "Last.fm track"}, {"track_id", t.track_id}, {"artist", t.artist}, {"title", t.title},
                      {"similars", t.similars.size()}, {"tags", t.tags.size()}};
  if (!t.similars.empty()) {
    auto [lo, hi] = std::minmax_element(t.similars.begin(), t.similars.end(),
                                        [](auto& a, auto& b) { return a.second < b.second; });
    j["score_min"] = lo->second;
    j["score_max"] = hi->second;
    j["similar_at_least_0.5"] = std::count_if(t.similars.begin(), t.similars.end(), [](auto& p) { return p.second >= 0.5; });
  }
  return j;
}

nlohmann::json inspect_spotify(const std::string& path) {
  data::SpotifyHistory h = data::read_spotify_history({path});
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : data::top_songs(h, 5))
    top.push_back({{"artist", t.artist}, {"title", t.track}, {"plays", t.plays}, {"minutes", double(t.ms_played) / 60000.0}});
  return {{"kind", "Spotify streaming history"}, {"files", h.files}, {"ignored_files", h.ignored_files},
          {"plays", h.plays.size()}, {"skipped_podcast_records", h.skipped_records},
          {"top_five", top}, {"rule", "plays of at least 30 s; ties by total time, then name"}};
}

nlohmann::json inspect_csv(const std::string& path) {
  data::CsvReader r(path, {});
  std::vector<std::string_view> f;
  while (r.next(f)) {
  }
  return {{"kind", "CSV"}, {"columns", r.header()}, {"records", r.stats().records},
          {"malformed", r.stats().malformed}, {"blank", r.stats().blank}, {"issues", r.issues_summary()}};
}

nlohmann::json inspect(const std::string& path) {
  namespace fs = std::filesystem;
  MR_CHECK(fs::exists(path), path + ": no such file or folder");
  if (fs::is_directory(path)) {
    for (auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file() && data::is_spotify_music_file(e.path().filename().string())) return inspect_spotify(path);
    // What a scan would read (hidden folders such as .musicrec-cache are not the data's).
    if (data::tree_has_files(path, ".h5")) {
      data::MsdScanReport rep;
      auto tracks = data::scan_msd_tree(path, rep);
      return {{"kind", "MSD folder"}, {"files", rep.files}, {"tracks", rep.tracks}, {"bad_files", rep.bad},
              {"first_errors", rep.first_errors}};
    }
    if (data::tree_has_files(path, ".json")) {
      data::LastfmScanReport rep;
      data::scan_lastfm_tree(path, rep);
      return {{"kind", "Last.fm folder"}, {"files", rep.files}, {"tracks", rep.tracks}, {"bad_files", rep.bad},
              {"similar_pairs", rep.similar_pairs}, {"first_errors", rep.first_errors}};
    }
    MR_CHECK(false, path + ": a folder with no .h5 or .json files");
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".h5" || ext == ".hdf5") return inspect_h5_isolated(path);
  if (ext == ".json" && data::is_spotify_file(fs::path(path).filename().string())) return inspect_spotify(path);
  if (ext == ".json") return inspect_lastfm(data::read_lastfm_json(path));
  if (ext == ".csv") return inspect_csv(path);
  if (ext == ".db") {
    auto pairs = data::read_lastfm_similars_db(path);
    return {{"kind", "Last.fm similars database"}, {"pairs", pairs.size()}};
  }
  MR_CHECK(false, path + ": unknown file type (expected .h5, .json, .csv or .db)");
  return {};
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "JSON summary of an MSD, Last.fm, KKBox, Spotify or musicrec file or folder");
  cmd->add_option("path", *path, "File or folder")->required();
  cmd->callback([path] {
    nlohmann::json j = inspect(*path);
    j["path"] = *path;
    fmt::print("{}\n", json_text(j, 2));
  });
}

}  // namespace musicrec::apps
