// The CF baseline's jobs (see cf_jobs.h).
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <unordered_set>

#include "apps/cf_common.h"
#include "apps/cf_jobs.h"

#include "apps/build_info.h"
#include "data/cf_batches.h"
#include "data/csv_writer.h"
#include "data/prefetcher.h"
#include "engine/profiler.h"
#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/training_run.h"
#include "engine/json_files.h"
#include "engine/lr_schedule.h"
#include "engine/metrics.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace {


using PartMetrics = metrics::BinarySummary;

PartMetrics evaluate(models::CfModel& m, const data::CfRows& rows, const std::vector<int64_t>& order, int64_t batch,
                     Device dev, Generator& gen) {
  std::vector<float> p = cf_predict(m, rows, order, batch, dev, gen), y = cf_labels(rows, order);
  return metrics::summarise(p, y);
}

nlohmann::json sizes_json(const TrainCfOptions& o) {
  return {{"id_dim", o.id_dim}, {"feature_dim", o.feature_dim}, {"hidden", o.hidden}, {"dropout", o.dropout}};
}

}  // namespace

CfTrainResult train_cf(const TrainCfOptions& o) {
  const Device dev = parse_device(o.device);
  data::CfLoadOptions lo;
  lo.split = data::parse_split(o.split);
  lo.split_seed = o.split_seed;
  lo.strict = o.strict;
  lo.use_cache = !o.no_cache;
  MR_CHECK(o.batch >= 1 && o.epochs >= 1 && o.lr > 0, "train cf: --batch, --epochs and --lr must be positive");
  data::CfDataset ds = data::load_cf_dataset(o.data, lo);
  if (ds.from_cache) fmt::print("data: {} rows from the cache (parsed once in {:.1f} s)\n", ds.train_csv.rows, ds.parse_seconds);
  else fmt::print("data: parsed in {:.1f} s, encoded in {:.1f} s\n{}", ds.parse_seconds, ds.encode_seconds, ds.source_report);
  const std::vector<int64_t> train_rows = ds.rows_of(data::Part::Train), val_rows = ds.rows_of(data::Part::Validation),
                             test_rows = ds.rows_of(data::Part::Test);
  MR_CHECK(!train_rows.empty() && !val_rows.empty() && !test_rows.empty(),
           "train cf: the split leaves a part empty (" + std::to_string(ds.train_csv.rows) + " rows)");
  // A fixed, evenly spread subset of training rows for the per-epoch training metrics.
  std::vector<int64_t> train_eval;
  const int64_t stride = std::max<int64_t>(1, int64_t(train_rows.size()) / std::max<int64_t>(1, o.train_eval_rows));
  for (size_t i = 0; i < train_rows.size(); i += size_t(stride)) train_eval.push_back(train_rows[i]);

  Generator gen(o.seed);
  models::CfModel model(cf_config_from(ds, sizes_json(o)), gen);
  model.to(dev);
  AdamOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = o.weight_decay;
  Adam opt(model.named_parameters(), ao);
  nlohmann::json config = {{"model", "cf"},
                           {"data", std::filesystem::absolute(o.data).string()},
                           {"device", dev.str()},
                           {"epochs", o.epochs},
                           {"batch", o.batch},
                           {"lr", o.lr},
                           {"lr_schedule", o.lr_schedule},
                           {"weight_decay", o.weight_decay},
                           {"seed", o.seed},
                           {"split", o.split},
                           {"split_seed", o.split_seed},
                           {"sizes", sizes_json(o)},
                           {"cardinality", ds.cardinality},
                           {"features", data::cf_feature_names()},
                           {"parameters", model.parameter_count()},
                           {"rows", {{"train", train_rows.size()}, {"validation", val_rows.size()}, {"test", test_rows.size()}}},
                           {"build", build_info()}};
  TrainingRun run(o.run, config, o.resume, command_line_or("musicrec train cf <the same options>"), o.quiet);
  const TrainingRun::Position at = run.start(model, opt, gen);
  fmt::print("model: {} parameters on {}; {} training rows, batch {}, {} epochs\n", model.parameter_count(), dev.str(),
             train_rows.size(), o.batch, o.epochs);

  const LrSchedule schedule = LrSchedule::for_run(o.lr_schedule, o.lr, o.epochs, int64_t(train_rows.size()), o.batch);
  for (int epoch = at.epoch; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> order = data::shuffled(train_rows, o.seed, epoch);
    const int64_t n = int64_t(order.size()), batches = (n + o.batch - 1) / o.batch;
    // A resumed epoch continues after the batches already done.
    const int64_t first = epoch == at.epoch ? at.offset : 0, first_batch = first / o.batch;
    MR_CHECK(first % o.batch == 0 || first == n, o.run + "/last.h5: position " + std::to_string(first) + " is not on a batch boundary");
    Tensor loss_sum = Tensor::scalar(epoch == at.epoch ? at.loss_sum : 0.0, DType::F32, dev);
    run.begin_epoch(first);
    auto t0 = std::chrono::steady_clock::now();
    {
      data::Prefetcher<data::CfBatch> pre(batches - first_batch, [&](int64_t k) {
        const int64_t b = first_batch + k;
        return data::make_cf_batch(ds.train_csv, order, b * o.batch, std::min(o.batch, n - b * o.batch));
      });
      data::CfBatch hb, db;
      int64_t done = first;
      for (;;) {
        {
          profiler::Range phase("data");  // waiting for the prefetcher, and the copy to the device
          if (!pre.next(hb)) break;
          db = hb.to(dev);
        }
        Tensor loss;
        {
          profiler::Range phase("step");
          opt.zero_grad();
          loss = ops::mean(ops::softmax_cross_entropy(model.forward(db.cat, db.num, gen), db.target));
          loss.backward();
          opt.set_lr(schedule.at_batch(epoch, done));  // done: samples before this batch
          opt.step();
          autograd::NoGradGuard ng;
          loss_sum = ops::add(loss_sum, ops::scale(loss, double(hb.size)));  // read when shown: no sync per step
        }
        done += hb.size;
        profiler::Range phase("bookkeeping");  // progress, NaN checks, signals, checkpoints
        run.after_step(model, opt, gen, epoch, done, n, loss, loss_sum);
      }
    }
    const double running_loss = loss_sum.item() / double(n);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = double(n - first) / std::max(secs, 1e-9);
    PartMetrics tr, va;
    {
      profiler::Range phase("evaluate");
      tr = evaluate(model, ds.train_csv, train_eval, 4096, dev, gen);
      va = evaluate(model, ds.train_csv, val_rows, 4096, dev, gen);
    }
    run.end_of_epoch(model, opt, gen, epoch, va.auc,
                     {{"epoch", epoch},
                      {"train_running_loss", running_loss},
                      {"train", metrics::to_json(tr)},
                      {"validation", metrics::to_json(va)},
                      {"samples_per_s", rate},
                      {"seconds", secs}},
                     fmt::format("epoch {}/{}: train loss {:.4f} (running {:.4f}) acc {:.4f} auc {:.4f} | val loss {:.4f} acc "
                                 "{:.4f} auc {:.4f} | {:.0f} samples/s",
                                 epoch, o.epochs, tr.loss, running_loss, tr.accuracy, tr.auc, va.loss, va.accuracy, va.auc, rate),
                     secs, n - first);
  }

  run.restore_best(model);
  const int best_epoch = run.best_epoch();
  const double train_seconds = run.train_seconds();
  const int64_t trained = run.trained();
  PartMetrics te, va;
  {
    profiler::Range phase("test");  // the best epoch's weights on the test and validation parts
    te = evaluate(model, ds.train_csv, test_rows, 4096, dev, gen);
    va = evaluate(model, ds.train_csv, val_rows, 4096, dev, gen);
  }
  nlohmann::json fin = {{"test", metrics::to_json(te, true)},
                        {"validation", metrics::to_json(va)},
                        {"best_epoch", best_epoch},
                        {"train_samples_per_s", double(trained) / train_seconds},
                        {"device", dev.str()},
                        {"paper", {{"train_accuracy", 0.7679}, {"validation_accuracy", 0.7201}, {"test_accuracy", 0.7948}}}};
  run.log(fmt::format("test (best epoch {}): loss {:.4f} accuracy {:.4f} auc {:.4f}   [paper: test accuracy 0.7948 on the real data]",
                      best_epoch, te.loss, te.accuracy, te.auc));
  const std::string truth = o.data + "/truth.json";
  if (std::filesystem::exists(truth)) {
    nlohmann::json t = read_json_file(truth);
    nlohmann::json ceil = t["ceiling_by_split"].value(o.split, nlohmann::json::object());
    if (ceil.contains("test_auc")) {
      double c_auc = ceil["test_auc"].get<double>();
      double ratio = (te.auc - 0.5) / (c_auc - 0.5);
      fin["ceiling"] = ceil;
      fin["auc_margin_fraction_of_ceiling"] = ratio;
      fmt::print("ceiling (true probabilities) on this test part: auc {:.4f} accuracy {:.4f}; the model reaches {:.1f}% "
                 "of the ceiling's AUC margin over 0.5\n",
                 c_auc, ceil.value("test_accuracy", 0.0), 100 * ratio);
    }
  }
  write_json_file(o.run + "/final.json", fin);
  return {te.auc, te.accuracy, fin.value("auc_margin_fraction_of_ceiling", 0.0), double(trained) / train_seconds};
}


namespace {

// A finished CF run opened on its data: the config, the dataset encoded with the run's split (checked
// to match the run's encoders) and the model with the best checkpoint's weights, on `dev`.
struct CfRunOnData {
  nlohmann::json config;
  data::CfDataset ds;
  Generator gen;
  std::unique_ptr<models::CfModel> model;
};

CfRunOnData open_cf_run(const std::string& run, const std::string& data_dir, bool strict, Device dev) {
  CfRunOnData r;
  r.config = read_json_file(run + "/config.json");
  MR_CHECK(r.config.value("model", "") == "cf", run + "/config.json: not a CF run");
  data::CfLoadOptions lo;
  lo.split = data::parse_split(r.config.at("split").get<std::string>());
  lo.split_seed = r.config.at("split_seed").get<uint64_t>();
  lo.strict = strict;
  r.ds = data::load_cf_dataset(data_dir, lo);
  MR_CHECK(r.config.at("cardinality").get<std::vector<int64_t>>() == r.ds.cardinality,
           data_dir + ": its encoded features differ from the ones run " + run + " was trained on (different data?)");
  r.gen = Generator(r.config.value("seed", uint64_t(1)));
  r.model = std::make_unique<models::CfModel>(cf_config_from(r.ds, r.config.at("sizes")), r.gen);
  restore(load_checkpoint_isolated(run + "/best.h5"), *r.model, nullptr, nullptr);
  r.model->to(dev);
  return r;
}

}  // namespace

void predict_cf(const PredictCfOptions& o) {
  const Device dev = parse_device(o.device);
  CfRunOnData r = open_cf_run(o.run, o.data, o.strict, dev);
  const data::CfDataset& ds = r.ds;
  MR_CHECK(ds.test_csv.rows > 0, o.data + "/test.csv: missing or has no rows");
  std::vector<int64_t> all(size_t(ds.test_csv.rows));
  for (int64_t i = 0; i < ds.test_csv.rows; ++i) all[size_t(i)] = i;
  std::vector<float> p = cf_predict(*r.model, ds.test_csv, all, 4096, dev, r.gen);
  data::CsvWriter w(o.out, {"id", "target"});
  for (size_t i = 0; i < p.size(); ++i) {
    w.field(ds.test_csv.id[i]).field_float(p[i], 6);
    w.end_row();
  }
  w.close();
  fmt::print("wrote {} predictions to {}\n", p.size(), o.out);
}

std::vector<CfRecommendation> recommend_cf(const RecommendCfOptions& o) {
  MR_CHECK(o.top >= 1, "recommend cf: --top must be positive");
  const Device dev = parse_device(o.device);
  CfRunOnData run = open_cf_run(o.run, o.data, false, dev);
  const data::CfDataset& ds = run.ds;
  auto it = std::find(ds.member_ids.begin(), ds.member_ids.end(), o.member);
  MR_CHECK(!o.member.empty() && it != ds.member_ids.end(), "recommend cf: member '" + o.member +
                                                               "' does not occur in the training part of " + o.data);
  const int32_t member = int32_t(it - ds.member_ids.begin());
  const int F = data::kCfCategorical;
  const auto& rows = ds.train_csv;
  // Song features from each song's first row; the member's features, most frequent context, and songs.
  std::vector<int64_t> song_row(size_t(ds.cardinality[data::kCfSong]), -1);
  std::map<std::array<int32_t, 3>, int64_t> contexts;
  std::unordered_set<int32_t> played;
  int64_t member_row = -1;
  for (int64_t r = 0; r < rows.rows; ++r) {
    const int32_t* c = &rows.cat[size_t(r * F)];
    if (song_row[size_t(c[data::kCfSong])] < 0) song_row[size_t(c[data::kCfSong])] = r;
    if (c[data::kCfMember] == member) {
      played.insert(c[data::kCfSong]);
      ++contexts[{c[2], c[3], c[4]}];
      if (member_row < 0) member_row = r;
    }
  }
  std::array<int32_t, 3> ctx{0, 0, 0};
  int64_t most = -1;
  for (auto& [k, n] : contexts)
    if (n > most) {
      most = n;
      ctx = k;
    }
  std::vector<int32_t> candidates;
  for (int32_t s = 1; s < int32_t(song_row.size()); ++s)
    if (song_row[size_t(s)] >= 0 && !played.count(s)) candidates.push_back(s);
  // Candidate rows: the member's features and context with each song's features.
  data::CfRows cand;
  cand.rows = int64_t(candidates.size());
  const int32_t* mrow = &rows.cat[size_t(member_row * F)];
  for (int32_t s : candidates) {
    const int32_t* srow = &rows.cat[size_t(song_row[size_t(s)] * F)];
    const int32_t feats[data::kCfCategorical] = {member, s, ctx[0], ctx[1], ctx[2], srow[5], srow[6], srow[7],
                                                 mrow[8], mrow[9], mrow[10], mrow[11]};
    cand.cat.insert(cand.cat.end(), feats, feats + F);
    cand.num.push_back(rows.num[size_t(song_row[size_t(s)] * data::kCfNumeric)]);
    cand.num.push_back(rows.num[size_t(member_row * data::kCfNumeric + 1)]);
  }
  std::vector<int64_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  std::vector<float> p = cf_predict(*run.model, cand, order, 4096, dev, run.gen);
  std::vector<size_t> rank(p.size());
  for (size_t i = 0; i < rank.size(); ++i) rank[i] = i;
  const size_t k = std::min(rank.size(), size_t(o.top));
  std::partial_sort(rank.begin(), rank.begin() + long(k), rank.end(), [&](size_t a, size_t b) {
    return p[a] != p[b] ? p[a] > p[b] : candidates[a] < candidates[b];
  });
  std::vector<CfRecommendation> out;
  for (size_t i = 0; i < k; ++i) out.push_back({ds.song_ids[size_t(candidates[rank[i]])], double(p[rank[i]])});
  return out;
}

}  // namespace musicrec::apps
