// Catalogue images and their HDF5 cache (see song_images.h).
#include "data/song_images.h"

#include <atomic>
#include <thread>

#include "engine/hdf5_file.h"
#include "kernels/error.h"

namespace musicrec::data {

void SongImages::rebuild_index() {
  index.clear();
  for (int64_t i = 0; i < size(); ++i) index.emplace(track_ids[size_t(i)], i);
}

SongImages build_song_images(const std::vector<MsdTrack>& tracks, const ImageOptions& opt,
                             const std::vector<int64_t>& fit_rows, int threads) {
  SongImages s;
  s.options = opt;
  std::vector<const MsdTrack*> usable, fit;
  for (const MsdTrack& t : tracks) {
    if (t.has_analysis) usable.push_back(&t);
    else ++s.skipped;
  }
  if (fit_rows.empty()) {
    fit = usable;
  } else {
    for (int64_t r : fit_rows)
      if (tracks[size_t(r)].has_analysis) fit.push_back(&tracks[size_t(r)]);
  }
  s.stats = fit_timbre_stats(fit, opt.seconds);
  const int64_t n = int64_t(usable.size()), plane = opt.height * opt.width;
  s.images = Tensor::empty({n, 1, opt.height, opt.width});
  float* out = s.images.data<float>();
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) build_song_image(*usable[size_t(i)], opt, s.stats, out + i * plane);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const MsdTrack* t : usable) {
    s.track_ids.push_back(t->track_id);
    s.artists.push_back(t->artist_name);
    s.titles.push_back(t->title);
  }
  s.rebuild_index();
  MR_CHECK(int64_t(s.index.size()) == n, "song images: duplicate track ids in the catalogue");
  return s;
}

void save_song_images(const std::string& path, const SongImages& s) {
  Hdf5File f = Hdf5File::create_sealed(path);  // read in-process: the seal keeps damage from libhdf5
  f.set_attr("format", std::string("musicrec-song-images"));
  f.set_attr("height", s.options.height);
  f.set_attr("width", s.options.width);
  f.set_attr("seconds", s.options.seconds);
  if (!s.fingerprint.empty()) f.set_attr("fingerprint", s.fingerprint);
  f.write_strings("track_ids", s.track_ids);
  f.write_strings("artists", s.artists);
  f.write_strings("titles", s.titles);
  f.write("images", s.images);
  std::vector<double> mean(s.stats.mean.begin(), s.stats.mean.end()), sd(s.stats.stddev.begin(), s.stats.stddev.end());
  f.write("timbre_mean", Tensor::from_vector(mean, {12}));
  f.write("timbre_std", Tensor::from_vector(sd, {12}));
  f.commit();
}

SongImages load_song_images(const std::string& path) {
  Hdf5File f = Hdf5File::open_sealed(path);
  MR_CHECK(f.has_attr("format") && f.attr_str("format") == "musicrec-song-images",
           path + ": not a musicrec song-image cache");
  SongImages s;
  s.options.height = f.attr_i64("height");
  s.options.width = f.attr_i64("width");
  s.options.seconds = f.attr_f64("seconds");
  if (f.has_attr("fingerprint")) s.fingerprint = f.attr_str("fingerprint");
  s.track_ids = f.read_strings("track_ids");
  if (f.has("artists")) s.artists = f.read_strings("artists");
  if (f.has("titles")) s.titles = f.read_strings("titles");
  s.images = f.read("images");
  MR_CHECK(s.images.dim() == 4 && s.images.size(0) == int64_t(s.track_ids.size()) && s.images.size(1) == 1 &&
               s.images.size(2) == s.options.height && s.images.size(3) == s.options.width &&
               s.images.dtype() == DType::F32,
           path + ": images " + shape_str(s.images.shape()) + " do not match " + std::to_string(s.track_ids.size()) +
               " tracks of " + std::to_string(s.options.height) + " x " + std::to_string(s.options.width));
  auto mean = f.read("timbre_mean").to_vector<double>(), sd = f.read("timbre_std").to_vector<double>();
  MR_CHECK(mean.size() == 12 && sd.size() == 12, path + ": timbre statistics must have 12 values");
  std::copy(mean.begin(), mean.end(), s.stats.mean.begin());
  std::copy(sd.begin(), sd.end(), s.stats.stddev.begin());
  s.rebuild_index();
  return s;
}

}  // namespace musicrec::data
