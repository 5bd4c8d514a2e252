// The song-pair CNN's jobs (see pairs_jobs.h).
#include "apps/pairs_jobs.h"

#include "apps/build_info.h"

#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "data/csv.h"
#include "data/csv_writer.h"
#include "data/file_scan.h"
#include "data/lastfm.h"
#include "data/msd.h"
#include "data/pairs.h"
#include "data/song_images.h"
#include "engine/profiler.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/training_run.h"
#include "engine/hdf5_file.h"
#include "engine/json_files.h"
#include "engine/kde.h"
#include "engine/metrics.h"
#include "engine/ops.h"
#include "engine/lr_schedule.h"
#include "engine/optim.h"
#include "kernels/error.h"
#include "kernels/philox.h"
#include "models/pair_cnn.h"

namespace musicrec::apps {
namespace fs = std::filesystem;

// Number and total size of the .h5 files of an MSD tree: what the image cache is keyed by.
std::string msd_fingerprint(const std::string& root) {
  const std::vector<std::string> files = data::tree_files(root, ".h5");  // the files a scan reads
  int64_t bytes = 0;
  for (const std::string& f : files) bytes += int64_t(fs::file_size(f));
  return fmt::format("{} files, {} bytes", files.size(), bytes);
}

static models::TowerOutput parse_tower_output(const std::string& s) {
  if (s == "flatten") return models::TowerOutput::Flatten;
  if (s == "time-mean") return models::TowerOutput::TimeMean;
  MR_CHECK(false, "--tower-output must be flatten or time-mean, not '" + s + "'");
  return models::TowerOutput::Flatten;
}

models::PairCnnConfig pair_model_config(const nlohmann::json& c) {
  models::PairCnnConfig m;
  m.height = c.at("image").at("height").get<int64_t>();
  m.width = c.at("image").at("width").get<int64_t>();
  m.filters = c.at("filters").get<std::array<int64_t, 3>>();
  m.conv_init_gain = c.value("conv_init_gain", 8.0);
  m.tower_output = parse_tower_output(c.value("tower_output", std::string("flatten")));  // older runs: flatten
  return m;
}

namespace {

std::string default_cache(const std::string& msd, const data::ImageOptions& io) {
  return fmt::format("{}/.musicrec-cache/images-{}x{}-{}s.h5", msd, io.height, io.width, int(io.seconds));
}

// The catalogue's images: from the cache when it matches the tree, else built (timbre statistics from
// the songs whose Last.fm file is in lastfm_train) and cached.
data::SongImages catalogue_images(const std::string& msd, const std::unordered_set<std::string>& train_ids,
                                  const std::string& cache, const data::ImageOptions& io) {
  const std::string fp = msd_fingerprint(msd);
  if (fs::exists(cache)) {
    try {
      data::SongImages s = data::load_song_images(cache);
      if (s.fingerprint == fp && s.options.height == io.height &&
          s.options.width == io.width && s.options.seconds == io.seconds) {
        fmt::print("images: {} songs from the cache {}\n", s.size(), cache);
        return s;
      }
    } catch (const Error& e) {
      fmt::print(stderr, "warning: ignoring unreadable image cache ({})\n", e.what());
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  data::MsdScanReport rep;
  std::vector<data::MsdTrack> tracks = data::scan_msd_tree(msd, rep);
  if (rep.bad > 0) fmt::print(stderr, "warning: {} of {} MSD files skipped (first: {})\n", rep.bad, rep.files, rep.first_errors[0]);
  std::vector<int64_t> fit;
  for (int64_t i = 0; i < int64_t(tracks.size()); ++i)
    if (train_ids.count(tracks[size_t(i)].track_id)) fit.push_back(i);
  MR_CHECK(!fit.empty(), msd + ": none of its tracks has a Last.fm training file");
  data::SongImages s = data::build_song_images(tracks, io, fit);
  fmt::print("images: {} songs built in {:.1f} s ({} without analysis skipped)\n", s.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), s.skipped);
  s.fingerprint = fp;  // a cache of another tree (or of this one, changed since) never matches
  try {
    fs::create_directories(fs::path(cache).parent_path());
    data::save_song_images(cache, s);
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: could not write the image cache {} ({}); continuing without it\n", cache, e.what());
  }
  return s;
}

struct PairBatch {
  Tensor distinct, side_a, side_b, label, weight;
};

PairBatch make_batch(const std::vector<data::SongPair>& pairs, const std::vector<float>& weights,
                     const std::vector<int64_t>& order, int64_t start, int64_t count) {
  std::unordered_map<int32_t, int32_t> slot;
  std::vector<int32_t> distinct, a(static_cast<size_t>(count)), b(static_cast<size_t>(count));
  std::vector<float> y(static_cast<size_t>(count)), w(static_cast<size_t>(count));
  auto at = [&](int32_t song) {
    auto [it, fresh] = slot.emplace(song, int32_t(distinct.size()));
    if (fresh) distinct.push_back(song);
    return it->second;
  };
  for (int64_t i = 0; i < count; ++i) {
    const int64_t k = order[size_t(start + i)];
    const data::SongPair& p = pairs[size_t(k)];
    a[size_t(i)] = at(p.a);
    b[size_t(i)] = at(p.b);
    y[size_t(i)] = float(p.label);
    w[size_t(i)] = weights.empty() ? 1.f : weights[size_t(k)];
  }
  return {Tensor::from_vector(distinct, {int64_t(distinct.size())}), Tensor::from_vector(a, {count}),
          Tensor::from_vector(b, {count}), Tensor::from_vector(y, {count, 1}), Tensor::from_vector(w, {count, 1})};
}

// Images of the given catalogue rows, gathered on the device from the flattened table [N, H*W].
Tensor gather_images(const Tensor& table, const Tensor& rows, const data::ImageOptions& io) {
  return ops::reshape(ops::embedding(table, rows), {rows.size(0), 1, io.height, io.width});
}

using metrics::BinarySummary;

// Scores pairs: the tower once per distinct song (in chunks), then the head over the pairs.
std::vector<float> score_pairs(models::PairCnn& m, const Tensor& table, const data::ImageOptions& io,
                               const std::vector<std::pair<int32_t, int32_t>>& pairs, Device dev) {
  autograd::NoGradGuard ng;
  const bool was = m.training();
  m.eval();
  std::unordered_map<int32_t, int32_t> slot;
  std::vector<int32_t> distinct;
  for (auto& [a, b] : pairs)
    for (int32_t s : {a, b})
      if (slot.emplace(s, int32_t(distinct.size())).second) distinct.push_back(s);
  std::vector<Tensor> parts;
  for (size_t s = 0; s < distinct.size(); s += 512) {
    std::vector<int32_t> chunk(distinct.begin() + long(s), distinct.begin() + long(std::min(distinct.size(), s + 512)));
    parts.push_back(m.tower(gather_images(table, Tensor::from_vector(chunk, {int64_t(chunk.size())}, dev), io)));
  }
  std::vector<float> probs;
  if (parts.empty()) return probs;
  Tensor H = ops::concat_rows(parts);
  for (size_t s = 0; s < pairs.size(); s += 4096) {
    const size_t e = std::min(pairs.size(), s + 4096);
    std::vector<int32_t> ia, ib;
    for (size_t i = s; i < e; ++i) {
      ia.push_back(slot[pairs[i].first]);
      ib.push_back(slot[pairs[i].second]);
    }
    Tensor ta = Tensor::from_vector(ia, {int64_t(ia.size())}, dev), tb = Tensor::from_vector(ib, {int64_t(ib.size())}, dev);
    for (float l : m.head(H, ta, tb).to_vector<float>())
      probs.push_back(float(l >= 0 ? 1.0 / (1.0 + std::exp(-double(l))) : std::exp(double(l)) / (1.0 + std::exp(double(l)))));
  }
  m.train(was);
  return probs;
}

struct Scored {
  std::vector<float> probs, labels;
};
Scored score_set(models::PairCnn& m, const Tensor& table, const data::ImageOptions& io,
                 const std::vector<data::SongPair>& pairs, Device dev) {
  std::vector<std::pair<int32_t, int32_t>> ab;
  Scored s;
  for (auto& p : pairs) {
    ab.emplace_back(p.a, p.b);
    s.labels.push_back(float(p.label));
  }
  s.probs = score_pairs(m, table, io, ab, dev);
  return s;
}

BinarySummary evaluate(models::PairCnn& m, const Tensor& table, const data::ImageOptions& io,
                       const std::vector<data::SongPair>& pairs, Device dev) {
  const Scored s = score_set(m, table, io, pairs, dev);
  return metrics::summarise(s.probs, s.labels);
}

}  // namespace

PairsTrainResult train_pairs(const TrainPairsOptions& o) {
  const Device dev = parse_device(o.device);
  MR_CHECK(o.weights == "class" || o.weights == "kde" || o.weights == "none",
           "train pairs: --weights must be class, kde or none, not '" + o.weights + "'");
  MR_CHECK(o.epochs >= 1 && o.batch >= 1 && o.lr > 0, "train pairs: --epochs, --batch and --lr must be positive");
  data::LastfmScanReport rtr, rte;
  std::vector<data::LastfmTrack> lf_train = data::scan_lastfm_tree(o.lastfm + "/lastfm_train", rtr);
  std::vector<data::LastfmTrack> lf_test = data::scan_lastfm_tree(o.lastfm + "/lastfm_test", rte);
  fmt::print("last.fm: {} training and {} test tracks ({} bad files skipped)\n", rtr.tracks, rte.tracks, rtr.bad + rte.bad);
  std::unordered_set<std::string> train_ids;
  for (auto& t : lf_train) train_ids.insert(t.track_id);
  data::ImageOptions io;
  const std::string cache = o.image_cache.empty() ? default_cache(o.msd, io) : o.image_cache;
  data::SongImages images = catalogue_images(o.msd, train_ids, cache, io);
  data::PairOptions po;
  po.balanced = o.balanced;
  po.seed = o.seed + 6;
  po.max_train_positives = o.max_train_positives;
  data::PairSets pairs = data::build_pairs(lf_train, lf_test, images.index, po);
  MR_CHECK(!pairs.train.empty() && !pairs.validation.empty() && !pairs.test.empty(),
           "train pairs: not enough pairs (train " + std::to_string(pairs.train.size()) + ", validation " +
               std::to_string(pairs.validation.size()) + ", test " + std::to_string(pairs.test.size()) + ")");
  fmt::print("pairs: {} training, {} validation, {} test ({} listed and {} random negatives)\n", pairs.train.size(),
             pairs.validation.size(), pairs.test.size(), pairs.listed_negatives, pairs.random_negatives);

  // Per-pair loss weights.
  std::vector<float> weights;
  if (o.weights == "class") {
    for (auto& p : pairs.train) weights.push_back(float(p.label ? o.positive_weight : o.negative_weight));
  } else if (o.weights == "kde") {
    std::vector<float> scores;
    for (auto& p : pairs.train) scores.push_back(p.score);
    KdeOptions ko;
    ko.bandwidth = o.kde_bandwidth;
    weights = kde_sample_weights(Tensor::from_vector(scores, {int64_t(scores.size())}, dev), ko).to_vector<float>();
  }

  Generator gen(o.seed);
  models::PairCnnConfig mc;
  mc.height = io.height;
  mc.width = io.width;
  mc.filters = {o.filters1, o.filters2, o.filters3};
  mc.conv_init_gain = o.conv_init_gain;
  mc.tower_output = parse_tower_output(o.tower_output);
  models::PairCnn model(mc, gen);
  model.to(dev);
  Adam opt(model.named_parameters(), AdamOptions{o.lr});
  // The catalogue's images live on the device for the whole run (flattened for row gathers).
  const Tensor table = ops::reshape(images.images, {images.size(), io.height * io.width}).to(dev);

  nlohmann::json config = {{"model", "pairs"},
                           {"msd", fs::absolute(o.msd).string()},
                           {"lastfm", fs::absolute(o.lastfm).string()},
                           {"image_cache", fs::absolute(cache).string()},
                           {"image", {{"height", io.height}, {"width", io.width}, {"seconds", io.seconds}}},
                           {"filters", mc.filters},
                           {"conv_init_gain", mc.conv_init_gain},
                           {"tower_output", o.tower_output},
                           {"weights", o.weights},
                           {"class_weights", {o.negative_weight, o.positive_weight}},
                           {"kde_bandwidth", o.kde_bandwidth},
                           {"balanced", o.balanced},
                           {"epochs", o.epochs},
                           {"batch", o.batch},
                           {"lr", o.lr},
                           {"lr_schedule", o.lr_schedule},
                           {"seed", o.seed},
                           {"device", dev.str()},
                           {"parameters", model.parameter_count()},
                           {"pairs", {{"train", pairs.train.size()}, {"validation", pairs.validation.size()}, {"test", pairs.test.size()}}},
                           {"build", build_info()}};
  TrainingRun run(o.run, config, o.resume, command_line_or("musicrec train pairs <the same options>"), o.quiet);
  const TrainingRun::Position at = run.start(model, opt, gen);

  std::vector<int64_t> all(pairs.train.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  const LrSchedule schedule = LrSchedule::for_run(o.lr_schedule, o.lr, o.epochs, int64_t(all.size()), o.batch);
  std::vector<data::SongPair> train_eval;
  for (size_t i = 0; i < pairs.train.size(); i += std::max<size_t>(1, pairs.train.size() / 20000)) train_eval.push_back(pairs.train[i]);
  for (int epoch = at.epoch; epoch <= o.epochs; ++epoch) {
    std::vector<int64_t> order = all;
    for (size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[std::min(i - 1, size_t(double(rng::uniform(o.seed, 0x9a11 + uint64_t(epoch), i)) * double(i)))]);
    const int64_t n = int64_t(order.size());
    // A resumed epoch continues after the samples already done (batches are contiguous slices).
    const int64_t first = epoch == at.epoch ? at.offset : 0;
    Tensor loss_sum = Tensor::scalar(epoch == at.epoch ? at.loss_sum : 0.0, DType::F32, dev);
    run.begin_epoch(first);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = first; s < n; s += o.batch) {
      const int64_t count = std::min(o.batch, n - s);
      Tensor images, side_a, side_b, label, weight;
      {
        profiler::Range phase("data");
        PairBatch hb = make_batch(pairs.train, weights, order, s, count);
        images = gather_images(table, hb.distinct.to(dev), io);
        side_a = hb.side_a.to(dev);
        side_b = hb.side_b.to(dev);
        label = hb.label.to(dev);
        weight = hb.weight.to(dev);
      }
      Tensor loss;
      {
        profiler::Range phase("step");
        opt.zero_grad();
        Tensor logits = model.forward(images, side_a, side_b);
        loss = ops::mean(ops::bce_with_logits(logits, label, weight));
        loss.backward();
        opt.set_lr(schedule.at_batch(epoch, s));
        opt.step();
        autograd::NoGradGuard ng;
        loss_sum = ops::add(loss_sum, ops::scale(loss, double(count)));
      }
      profiler::Range phase("bookkeeping");  // progress, NaN checks, signals, checkpoints
      run.after_step(model, opt, gen, epoch, s + count, n, loss, loss_sum);
    }
    const double running = loss_sum.item() / double(n);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BinarySummary tr, va;
    {
      profiler::Range phase("evaluate");
      tr = evaluate(model, table, io, train_eval, dev);
      va = evaluate(model, table, io, pairs.validation, dev);
    }
    const double rate = double(n - first) / std::max(secs, 1e-9);
    run.end_of_epoch(model, opt, gen, epoch, va.auc,
                     {{"epoch", epoch}, {"train_running_loss", running}, {"train", metrics::to_json(tr)}, {"validation", metrics::to_json(va)},
                      {"pairs_per_s", rate}, {"seconds", secs}},
                     fmt::format("epoch {}/{}: train loss {:.4f} (weighted running {:.4f}) acc {:.4f} auc {:.4f} | val loss "
                                 "{:.4f} acc {:.4f} auc {:.4f} | {:.0f} pairs/s",
                                 epoch, o.epochs, tr.loss, running, tr.accuracy, tr.auc, va.loss, va.accuracy, va.auc, rate),
                     secs, n - first);
  }
  run.restore_best(model);
  const int best_epoch = run.best_epoch();
  const double seconds = run.train_seconds();
  const int64_t trained = run.trained();
  Scored test_scores, val_scores;
  {
    profiler::Range phase("test");  // the best epoch's weights on the test and validation pairs
    test_scores = score_set(model, table, io, pairs.test, dev);
    val_scores = score_set(model, table, io, pairs.validation, dev);
  }
  BinarySummary te = metrics::summarise(test_scores.probs, test_scores.labels);
  // The weights move the outputs off 0.5 (class 1:10 pushes them up): the threshold that balances
  // sensitivity and specificity on the validation pairs, applied to the test pairs, is reported beside
  // the fixed 0.5 (engine/metrics.h says why this carries over from 9:1 validation to a balanced test).
  const double threshold = metrics::balanced_accuracy_threshold(val_scores.probs, val_scores.labels);
  const metrics::ThresholdMetrics tt = metrics::at_threshold(test_scores.probs, test_scores.labels, threshold);
  nlohmann::json fin = {{"test", metrics::to_json(te, true)},
                        {"test_at_validation_threshold",
                         {{"threshold", tt.threshold}, {"accuracy", tt.accuracy}, {"sensitivity", tt.sensitivity},
                          {"specificity", tt.specificity}}},
                        {"best_epoch", best_epoch},
                        {"train_pairs_per_s", double(trained) / seconds},
                        {"device", dev.str()},
                        {"paper", {{"imbalanced_train_accuracy", 0.9287}, {"imbalanced_validation_accuracy", 0.8414},
                                   {"balanced_test_accuracy", 0.8515}}}};
  run.log(fmt::format("balanced test (best epoch {}): accuracy {:.4f} sensitivity {:.4f} specificity {:.4f} auc {:.4f}   "
                      "[paper: 0.8515 on the real data]",
                      best_epoch, te.accuracy, te.sensitivity, te.specificity, te.auc));
  run.log(fmt::format("at the threshold chosen on validation ({:.3f}, balancing sensitivity and specificity): "
                      "accuracy {:.4f} sensitivity {:.4f} specificity {:.4f}",
                      tt.threshold, tt.accuracy, tt.sensitivity, tt.specificity));
  PairsTrainResult r{te.accuracy, te.auc, te.sensitivity, te.specificity, 0.0, double(trained) / seconds};
  r.accuracy_at_validation_threshold = tt.accuracy;
  const std::string truth = o.lastfm + "/truth.json";
  if (fs::exists(truth)) {
    nlohmann::json t = read_json_file(truth);
    if (t.contains("ceiling") && t["ceiling"].contains("test_accuracy")) {
      r.ceiling_accuracy = t["ceiling"]["test_accuracy"].get<double>();
      // synth computes the ceiling on the test pairs of the default pair seed (--seed 1). Another seed
      // draws other random negatives for its test set: the ceiling is then that of a set built the
      // same way, not of these very pairs.
      const bool same_pairs = po.seed == data::PairOptions{}.seed;
      fin["ceiling"] = t["ceiling"];
      fin["ceiling"]["same_test_pairs"] = same_pairs;
      run.log(fmt::format("ceiling (true probabilities) on {}: accuracy {:.4f}, auc {:.4f}; the model is {:.1f} "
                          "points below ({:.1f} at the validation threshold)",
                          same_pairs ? "these test pairs" : "the test pairs of --seed 1 (this seed draws other random negatives)",
                          r.ceiling_accuracy, t["ceiling"].value("test_auc", 0.0), 100 * (r.ceiling_accuracy - te.accuracy),
                          100 * (r.ceiling_accuracy - tt.accuracy)));
    }
  }
  write_json_file(o.run + "/final.json", fin);
  return r;
}

void predict_pairs(const PredictPairsOptions& o) {
  const Device dev = parse_device(o.device);
  nlohmann::json config = read_json_file(o.run + "/config.json");
  MR_CHECK(config.value("model", "") == "pairs", o.run + "/config.json: not a pair-CNN run");
  const std::string cache = config.at("image_cache").get<std::string>();
  data::SongImages images = data::load_song_images(cache);
  const std::string fp = msd_fingerprint(o.msd);
  MR_CHECK(images.fingerprint == fp, o.msd + ": differs from the MSD folder run " + o.run + " was trained on (" + fp + ")");
  Generator gen(1);
  models::PairCnn model(pair_model_config(config), gen);
  restore(load_checkpoint_isolated(o.run + "/best.h5"), model, nullptr, nullptr);
  model.to(dev);
  data::CsvReader r(o.pairs, {"track_a", "track_b"});
  const size_t ca = r.column("track_a"), cb = r.column("track_b");
  std::vector<std::pair<int32_t, int32_t>> ab;
  std::vector<std::pair<std::string, std::string>> names;
  std::vector<std::string_view> f;
  int64_t unknown = 0;
  while (r.next(f)) {
    auto ia = images.index.find(std::string(f[ca])), ib = images.index.find(std::string(f[cb]));
    if (ia == images.index.end() || ib == images.index.end()) {
      if (unknown++ < 5)
        fmt::print(stderr, "{}: line {}: unknown track id {}\n", o.pairs, r.line(),
                   ia == images.index.end() ? std::string(f[ca]) : std::string(f[cb]));
      continue;
    }
    ab.emplace_back(int32_t(ia->second), int32_t(ib->second));
    names.emplace_back(f[ca], f[cb]);
  }
  if (unknown) fmt::print(stderr, "{} pairs with unknown track ids skipped\n", unknown);
  const data::ImageOptions io = images.options;
  const Tensor table = ops::reshape(images.images, {images.size(), io.height * io.width}).to(dev);
  std::vector<float> p = score_pairs(model, table, io, ab, dev);
  const std::string out = o.out.empty() ? o.pairs.substr(0, o.pairs.rfind('.')) + "-scored.csv" : o.out;
  data::CsvWriter w(out, {"track_a", "track_b", "score"});
  for (size_t i = 0; i < p.size(); ++i) {
    w.field(names[i].first).field(names[i].second).field_float(p[i], 6);
    w.end_row();
  }
  w.close();
  fmt::print("wrote {} scored pairs to {}\n", p.size(), out);
}

}  // namespace musicrec::apps
