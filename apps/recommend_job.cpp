// `musicrec recommend` (see recommend_job.h).
#include "apps/recommend_job.h"

#include <fmt/core.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "apps/pairs_jobs.h"
#include "data/csv_writer.h"
#include "data/match.h"
#include "data/msd.h"
#include "data/song_images.h"
#include "data/spotify.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/file_seal.h"
#include "engine/hdf5_file.h"
#include "engine/json_files.h"
#include "engine/ops.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace {
namespace fs = std::filesystem;

std::string file_stamp(const std::string& p) {
  struct stat st {};
  MR_CHECK(::stat(p.c_str(), &st) == 0, p + ": missing");
  return fmt::format("{}:{}.{}", int64_t(st.st_size), int64_t(st.st_mtim.tv_sec), int64_t(st.st_mtim.tv_nsec));
}

// Tower vectors of every catalogue song: from RUN/tower_vectors.h5 when it was made from the same
// checkpoint and image cache, else computed (one pass of the tower) and saved.
Tensor tower_vectors(models::PairCnn& model, const data::SongImages& images, const std::string& run,
                     const std::string& image_cache, Device dev) {
  const std::string path = run + "/tower_vectors.h5";
  const std::string key = file_stamp(run + "/best.h5") + "|" + file_stamp(image_cache);
  if (has_seal(path)) {  // missing, or an older musicrec's unsealed file: recomputed
    try {
      Hdf5File f = Hdf5File::open_sealed(path);
      if (f.has_attr("key") && f.attr_str("key") == key) return f.read("vectors").to(dev);
    } catch (const Error& e) {
      fmt::print(stderr, "warning: ignoring unreadable {} ({})\n", path, e.what());
    }
  }
  autograd::NoGradGuard ng;
  model.eval();
  const auto& io = images.options;
  const int64_t n = images.size();
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += 512) {
    const int64_t c = std::min<int64_t>(512, n - s);
    Tensor chunk = Tensor::empty({c, 1, io.height, io.width});
    std::copy(images.images.data<float>() + s * io.height * io.width,
              images.images.data<float>() + (s + c) * io.height * io.width, chunk.data<float>());
    parts.push_back(model.tower(chunk.to(dev)));
  }
  Tensor v = ops::concat_rows(parts);
  try {
    Hdf5File f = Hdf5File::create_sealed(path);  // read in-process next time: sealed (engine/file_seal.h)
    f.write("vectors", v);
    f.set_attr("key", key);
    f.commit();
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: could not cache tower vectors in {} ({})\n", path, e.what());
  }
  return v;
}

std::string render(const RecommendOptions& o, const std::vector<Recommendation>& recs);

}  // namespace

std::vector<Recommendation> recommend(const RecommendOptions& o, std::vector<std::string>* candidate_ids) {
  MR_CHECK(o.aggregate == "max" || o.aggregate == "mean", "recommend: --aggregate must be max or mean");
  MR_CHECK(o.by == "plays" || o.by == "ms", "recommend: --by must be plays or ms");
  MR_CHECK(o.top >= 1, "recommend: --top must be positive");
  const Device dev = parse_device(o.device);
  nlohmann::json config = read_json_file(o.model + "/config.json");
  MR_CHECK(config.value("model", "") == "pairs", o.model + "/config.json: not a pair-CNN run");
  const std::string cache = config.at("image_cache").get<std::string>();
  data::SongImages images = data::load_song_images(cache);
  MR_CHECK(images.fingerprint == msd_fingerprint(o.msd), o.msd + ": differs from the MSD folder run " + o.model + " was trained on");
  MR_CHECK(images.artists.size() == size_t(images.size()), cache + ": made by an older build without artist and title; delete it and retrain");
  Generator gen(1);
  models::PairCnn model(pair_model_config(config), gen);
  restore(load_checkpoint_isolated(o.model + "/best.h5"), model, nullptr, nullptr);
  model.to(dev);
  model.eval();

  data::CatalogueMatcher matcher;
  for (int64_t i = 0; i < images.size(); ++i) matcher.add(images.track_ids[size_t(i)], images.artists[size_t(i)], images.titles[size_t(i)]);
  data::SpotifyHistory h = data::read_spotify_history(o.history);
  {
    std::string where;
    for (const auto& p : o.history) where += (where.empty() ? "" : ", ") + p;
    MR_CHECK(!h.plays.empty(), "recommend: " + where + ": the history holds no song plays to choose seeds from");
  }
  data::Seeds seeds = data::choose_seeds(h, matcher, 5, o.min_ms, o.by == "ms");
  for (auto& u : seeds.unmatched) fmt::print(stderr, "not in the catalogue, skipped as a seed: {} - {}\n", u.artist, u.track);
  MR_CHECK(!seeds.track_ids.empty(), "recommend: none of the listener's most played songs is in the catalogue");
  // Everything the listener played (as far as the catalogue has it) is excluded.
  std::unordered_set<int64_t> played;
  for (auto& p : h.plays) {
    std::string id = matcher.find(p.artist, p.track);
    if (!id.empty()) played.insert(images.index.at(id));
  }

  Tensor H = tower_vectors(model, images, o.model, cache, dev);
  std::vector<int64_t> candidates;
  for (int64_t i = 0; i < images.size(); ++i)
    if (!played.count(i)) candidates.push_back(i);
  if (candidate_ids)
    for (int64_t i : candidates) candidate_ids->push_back(images.track_ids[size_t(i)]);
  const size_t S = seeds.track_ids.size();
  const size_t n_candidates = candidates.size();
  std::vector<double> maxp(n_candidates, -1.0), sum(n_candidates, 0.0), best(n_candidates, 0.0);
  std::vector<int> closest(n_candidates, 0);
  autograd::NoGradGuard ng;
  // Each seed against the whole catalogue through the catalogue head (dense 1's candidate share is
  // computed once, see models/pair_cnn.h), then only the candidates are read.
  const models::CatalogueHead head = model.prepare_catalogue(H);
  for (size_t s = 0; s < S; ++s) {
    const std::vector<float> logits = model.logits_against(head, images.index.at(seeds.track_ids[s])).to_vector<float>();
    for (size_t i = 0; i < candidates.size(); ++i) {
      const double l = logits[size_t(candidates[i])], p = l >= 0 ? 1 / (1 + std::exp(-l)) : std::exp(l) / (1 + std::exp(l));
      sum[i] += p;
      if (p > maxp[i]) {
        maxp[i] = p;
        closest[i] = int(s);  // the seed a candidate is closest to is its best-scoring one
      }
    }
  }
  for (size_t i = 0; i < candidates.size(); ++i) best[i] = o.aggregate == "max" ? maxp[i] : sum[i] / double(S);
  std::vector<size_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t k = std::min(order.size(), size_t(o.top));
  std::partial_sort(order.begin(), order.begin() + long(k), order.end(), [&](size_t x, size_t y) {
    return best[x] != best[y] ? best[x] > best[y] : images.track_ids[size_t(candidates[x])] < images.track_ids[size_t(candidates[y])];
  });
  std::vector<Recommendation> out;
  for (size_t r = 0; r < k; ++r) {
    const size_t i = order[r];
    const int64_t row = candidates[i];
    const data::TopSong& seed = seeds.songs[size_t(closest[i])];
    out.push_back({images.track_ids[size_t(row)], images.artists[size_t(row)], images.titles[size_t(row)],
                   seed.artist + " - " + seed.track, best[i]});
  }
  return out;
}

namespace {
std::string render(const RecommendOptions& o, const std::vector<Recommendation>& recs) {
  std::ostringstream os;
  if (o.format == "json") {
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (size_t i = 0; i < recs.size(); ++i)
      j.push_back({{"rank", i + 1}, {"track_id", recs[i].track_id}, {"artist", recs[i].artist}, {"title", recs[i].title},
                   {"score", recs[i].score}, {"closest_seed", recs[i].closest_seed}});
    os << json_text(j, 2) << "\n";
  } else if (o.format == "m3u") {
    os << "#EXTM3U\n";
    for (auto& r : recs)
      os << "#EXTINF:-1," << r.artist << " - " << r.title << "\n" << data::msd_track_path(o.msd, r.track_id) << "\n";
  } else {  // table
    os << fmt::format("{:>4}  {:<28} {:<32} {:>6}  {}\n", "rank", "artist", "title", "score", "closest seed");
    for (size_t i = 0; i < recs.size(); ++i)
      os << fmt::format("{:>4}  {:<28.28} {:<32.32} {:>6.3f}  {}\n", i + 1, recs[i].artist, recs[i].title, recs[i].score,
                        recs[i].closest_seed);
  }
  return os.str();
}

}  // namespace

void write_recommendations(const RecommendOptions& o, const std::vector<Recommendation>& recs) {
  if (o.format == "csv") {
    MR_CHECK(!o.out.empty(), "recommend: --format csv needs --out FILE");
    data::CsvWriter w(o.out, {"rank", "track_id", "artist", "title", "score", "closest_seed"});
    for (size_t i = 0; i < recs.size(); ++i) {
      w.field(int64_t(i + 1)).field(recs[i].track_id).field(recs[i].artist).field(recs[i].title);
      w.field_float(recs[i].score, 6).field(recs[i].closest_seed);
      w.end_row();
    }
    w.close();
    fmt::print("wrote {} recommendations to {}\n", recs.size(), o.out);
    return;
  }
  std::string text = render(o, recs);
  if (o.out.empty()) {
    fmt::print("{}", text);
    return;
  }
  write_text_file(o.out, text);
  fmt::print("wrote {} recommendations to {}\n", recs.size(), o.out);
}


}  // namespace musicrec::apps
