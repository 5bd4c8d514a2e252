// The catalogue's song images, built once (two threads) and cached in one HDF5 file with their track
// ids, the image options and the timbre statistics, so training and recommendation never reread the
// MSD tree. Tracks without segment analysis (summary rows) are left out and counted.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/song_image.h"
#include "engine/tensor.h"

namespace musicrec::data {

struct SongImages {
  std::vector<std::string> track_ids;
  std::vector<std::string> artists, titles;  // for matching listening histories (empty in old caches)
  Tensor images;  // float [n, 1, H, W] on the CPU
  ImageOptions options;
  TimbreStats stats;
  int64_t skipped = 0;  // tracks without analysis
  std::string fingerprint;  // of the MSD tree the images came from (apps/pairs_jobs.h); "" when unknown
  std::unordered_map<std::string, int64_t> index;  // track id -> row
  int64_t size() const { return int64_t(track_ids.size()); }
  void rebuild_index();
};

// Images of `tracks`, with timbre statistics fitted on tracks[i] for i in fit_rows (the training songs;
// all tracks when fit_rows is empty).
SongImages build_song_images(const std::vector<MsdTrack>& tracks, const ImageOptions& opt,
                             const std::vector<int64_t>& fit_rows = {}, int threads = 2);
// The cache is written whole through a temporary and sealed (engine/file_seal.h); loading checks the
// seal before libhdf5 reads a byte of it.
void save_song_images(const std::string& path, const SongImages& s);
SongImages load_song_images(const std::string& path);

}  // namespace musicrec::data
