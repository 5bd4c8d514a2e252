// Writes the seed corpora of the fuzz targets: small valid files of every format made by the
// project's own writers, plus cut-down copies of ../shared/real-samples when a folder is given.
// Usage: musicrec_fuzz_seeds OUT_DIR [REAL_SAMPLES_DIR]; OUT_DIR/<target>/ gets the seeds.
// Inputs whose target reads a leading selector byte (csv, kkbox, spotify) get that byte here too.
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "data/cf_dataset.h"
#include "data/msd_writer.h"
#include "data/song_images.h"
#include "engine/checkpoint.h"
#include "engine/file_seal.h"
#include "fuzz/kkbox_files.h"
#include "kernels/error.h"

namespace fs = std::filesystem;
using namespace musicrec;

namespace {

void put(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A sealed file's content after its header (engine/file_seal.h); the sealed file is removed.
void unseal(const fs::path& sealed, const fs::path& out) {
  const std::string bytes = slurp(sealed);
  MR_CHECK(bytes.size() > kSealBytes, sealed.string() + ": not a sealed file");
  std::ofstream(out, std::ios::binary) << bytes.substr(kSealBytes);
  fs::remove(sealed);
}

std::string first_lines(const fs::path& p, int n) {
  std::ifstream in(p, std::ios::binary);
  std::string out, line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out += line + "\n";
  return out;
}

data::MsdTrack small_track(int segments) {
  data::MsdTrack t;
  t.track_id = "TRAAAAA128F0000000";
  t.song_id = "SOAAAAA12A8C000000";
  t.artist_name = "Artist";
  t.title = "Title";
  t.release = "Release";
  t.duration = 0.5 * segments + 1;
  t.tempo = 120;
  t.loudness = -8;
  t.key = 2;
  t.mode = 1;
  t.time_signature = 4;
  t.year = 1999;
  t.has_analysis = segments > 0;
  for (int s = 0; s < segments; ++s) {
    t.segments_start.push_back(0.5 * s);
    for (int b = 0; b < 12; ++b) {
      t.pitches.push_back((b + s) % 12 / 11.0);
      t.timbre.push_back(b == 0 ? 40.0 + s : 10.0 * b - 50);
    }
  }
  return t;
}

void lastfm_db(const fs::path& path) {
  fs::remove(path);
  sqlite3* db = nullptr;
  MR_CHECK(sqlite3_open(path.c_str(), &db) == SQLITE_OK, "cannot create " + path.string());
  const char* sql =
      "CREATE TABLE similars_src (tid text, target text);"
      "INSERT INTO similars_src VALUES ('TRAAAAA128F0000000', 'TRAAAAB128F0000001,1,TRAAAAC128F0000002,0.25');"
      "INSERT INTO similars_src VALUES ('TRAAAAB128F0000001', 'TRAAAAA128F0000000,0.5');";
  char* err = nullptr;
  MR_CHECK(sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK, std::string("sqlite: ") + (err ? err : "?"));
  sqlite3_close(db);
}

Checkpoint small_checkpoint() {
  Checkpoint c;
  c.model.emplace_back("dense.weight", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}));
  c.model.emplace_back("dense.bias", Tensor::from_vector(std::vector<float>{0.5f, -0.5f}, {2}));
  c.optimizer.emplace_back("m/dense.weight", Tensor::from_vector(std::vector<float>(6, 0.1f), {2, 3}));
  c.optimizer_kind = "adam";
  c.optimizer_steps = 3;
  c.step = 3;
  c.epoch = 1;
  c.rng_seed = 7;
  c.rng_offset = 99;
  c.metadata_json = R"({"model": "fuzz"})";
  return c;
}

data::SongImages small_images() {
  data::SongImages s;
  s.track_ids = {"TRAAAAA128F0000000", "TRAAAAB128F0000001"};
  s.artists = {"Artist A", "Artist B"};
  s.titles = {"Title A", "Title B"};
  s.options.height = 4;
  s.options.width = 6;
  std::vector<float> px(2 * 4 * 6);
  for (size_t i = 0; i < px.size(); ++i) px[i] = float(i % 7) / 7.0f;
  s.images = Tensor::from_vector(px, {2, 1, 4, 6});
  for (int c = 0; c < 12; ++c) {
    s.stats.mean[size_t(c)] = c;
    s.stats.stddev[size_t(c)] = 1 + c;
  }
  return s;
}

data::CfDataset small_cf() {
  data::CfDataset ds;
  ds.cardinality.assign(data::kCfCategorical, 3);
  ds.train_csv.rows = 2;
  ds.train_csv.cat.assign(2 * data::kCfCategorical, 1);
  ds.train_csv.cat[0] = 2;
  ds.train_csv.num = {0.5f, -0.5f, 1.0f, 0.0f};
  ds.train_csv.label = {1, 0};
  ds.part = {0, 1};
  ds.test_csv.rows = 1;
  ds.test_csv.cat.assign(data::kCfCategorical, 0);
  ds.test_csv.num = {0, 0};
  ds.test_csv.id = {0};
  ds.member_ids = {"", "m1", "m2"};
  ds.song_ids = {"", "s1", "s2"};
  ds.source_report = "train.csv: 2 records\n";
  return ds;
}

// The first `n` records of a Spotify export, so the seed stays small.
std::string spotify_head(const fs::path& p, size_t n) {
  nlohmann::json j = nlohmann::json::parse(slurp(p));
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < j.size() && i < n; ++i) out.push_back(j[i]);
  return out.dump(2);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: musicrec_fuzz_seeds OUT_DIR [REAL_SAMPLES_DIR]\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path real = argc > 2 ? fs::path(argv[2]) : fs::path();
  const bool have_real = !real.empty() && fs::is_directory(real);

  // CSV and KKBox: selector byte, then the file.
  for (size_t k = 0; k < fuzz::kKkboxFiles.size(); ++k) {
    put(out / "csv", "seed-" + std::to_string(k), std::string(1, char(k % 8)) + fuzz::kKkboxFiles[k].valid);
    put(out / "kkbox", "seed-" + std::to_string(k), std::string(1, char(k)) + fuzz::kKkboxFiles[k].valid);
  }
  put(out / "csv", "seed-quotes", std::string(1, '\0') + "a,b\n\"x \"\"y\"\"\",2\r\n\"open,3\n\xEF\xBB\xBFz,4\n");

  // MSD: a track with segments and a summary-style track without.
  data::write_msd_track_file((out / "msd" / "seed-track.h5").string(), small_track(24));
  data::write_msd_track_file((out / "msd" / "seed-summary.h5").string(), small_track(0));

  put(out / "lastfm_json", "seed-track.json",
      R"({"artist": "A", "timestamp": "2011-08-09 18:24:38.890272", "similars": [["TRAAAAB128F0000001", 1], )"
      R"(["TRAAAAC128F0000002", 0.25]], "tags": [["rock", "100"]], "track_id": "TRAAAAA128F0000000", "title": "T"})");
  fs::create_directories(out / "lastfm_db");
  lastfm_db(out / "lastfm_db" / "seed.db");

  put(out / "spotify", "seed-account",
      std::string(1, '\0') + R"([{"endTime": "2020-06-16 16:55", "artistName": "A", "trackName": "T", "msPlayed": 32512}])");
  put(out / "spotify", "seed-extended",
      std::string(1, '\2') + R"([{"ts": "2022-11-12T13:59:51Z", "ms_played": 66871, "master_metadata_track_name": "T", )"
                             R"("master_metadata_album_artist_name": "A", "episode_name": null}, )"
                             R"({"ts": "2022-11-12T14:00:00Z", "ms_played": 1, "master_metadata_track_name": null, )"
                             R"("master_metadata_album_artist_name": null, "episode_name": "E"}])");

  fs::create_directories(out / "checkpoint");
  save_checkpoint((out / "checkpoint" / "seed.h5").string(), small_checkpoint());
  // The caches are sealed (engine/file_seal.h); their targets seal each input, so a seed is the HDF5
  // content after the seal's header.
  fs::create_directories(out / "song_images");
  data::save_song_images((out / "song_images" / "sealed.h5").string(), small_images());
  unseal(out / "song_images" / "sealed.h5", out / "song_images" / "seed.h5");
  fs::create_directories(out / "cf_cache");
  data::save_cf_cache((out / "cf_cache" / "sealed.h5").string(), "fuzz-fingerprint", small_cf());
  unseal(out / "cf_cache" / "sealed.h5", out / "cf_cache" / "seed.h5");

  if (have_real) {
    for (const auto& e : fs::recursive_directory_iterator(real)) {
      if (!e.is_regular_file()) continue;
      const fs::path p = e.path();
      const std::string dir = p.parent_path().filename().string(), name = p.filename().string(), ext = p.extension().string();
      const std::string seed = "real-" + dir + "-" + name;
      if (ext == ".h5") fs::copy_file(p, out / "msd" / seed, fs::copy_options::overwrite_existing);
      else if (ext == ".json" && name.rfind("TR", 0) == 0) fs::copy_file(p, out / "lastfm_json" / seed, fs::copy_options::overwrite_existing);
      else if (ext == ".json" && name.find("History") != std::string::npos) {
        const char selector = name.rfind("StreamingHistory_music", 0) == 0 ? 1 : name.rfind("StreamingHistory", 0) == 0 ? 0 : 2;
        put(out / "spotify", seed, std::string(1, selector) + spotify_head(p, 5));
      } else if (ext == ".csv") {
        for (size_t k = 0; k < fuzz::kKkboxFiles.size(); ++k)
          if (name == fuzz::kKkboxFiles[k].name) {
            put(out / "kkbox", seed, std::string(1, char(k)) + first_lines(p, 20));
            put(out / "csv", seed, std::string(1, char(k % 8)) + first_lines(p, 20));
          }
      }
    }
  }
  std::cout << "seed corpora in " << out.string() << (have_real ? " (with real samples)" : " (generated only)") << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "musicrec_fuzz_seeds: error: " << e.what() << "\n";
  return 1;
}
