// `musicrec demo` (see demo_job.h).
//
// Default sizes: the KKBox set is `synth kkbox`'s default (1M rows; CF trains in about 15 s per run of
// 3 epochs on the 2-core CPU); the MSD catalogue is 500 songs (8 styles, 10 listeners), where an epoch
// of the pair CNN's 42k class-weighted training pairs takes about 20-30 s on the same CPU, so the
// whole demo stays well under 10 minutes. Bigger catalogues are a flag away (--songs).
#include "apps/demo_job.h"

#include <fmt/core.h>

#include <chrono>
#include <filesystem>

#include "apps/cf_jobs.h"
#include "apps/pairs_jobs.h"
#include "apps/recommend_job.h"
#include "data/kkbox_synth.h"
#include "data/msd_synth.h"
#include "engine/json_files.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace fs = std::filesystem;

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
void stage(const std::string& what) { fmt::print("\n== {} ==\n", what); }
}  // namespace

DemoResult run_demo(const DemoOptions& o) {
  MR_CHECK(o.listeners >= 1, "demo: --listeners must be at least 1");
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(o.out);
  DemoResult r;

  stage("1/5 KKBox-format data (synth kkbox)");
  data::KkboxSynthOptions ko;
  ko.members = o.kkbox_members;
  ko.songs = o.kkbox_songs;
  ko.rows = o.kkbox_rows;
  ko.seed = o.seed;
  data::synthesize_kkbox(o.out + "/kkbox", ko);

  stage("2/5 CF baseline (train cf)");
  TrainCfOptions co;
  co.data = o.out + "/kkbox";
  co.run = o.out + "/runs/cf";
  co.device = o.device;
  co.epochs = o.cf_epochs;
  co.seed = o.seed;
  const CfTrainResult cf = train_cf(co);
  r.cf_test_accuracy = cf.test_accuracy;
  r.cf_test_auc = cf.test_auc;

  stage("3/5 MSD, Last.fm and Spotify data (synth msd)");
  data::MsdSynthOptions mo;
  mo.songs = o.songs;
  mo.listeners = o.listeners;
  mo.seed = o.seed;
  data::synthesize_msd(o.out + "/msd", mo);

  stage("4/5 song-pair CNN (train pairs)");
  TrainPairsOptions po;
  po.msd = o.out + "/msd/data";
  po.lastfm = o.out + "/msd";
  po.run = o.out + "/runs/pairs";
  po.device = o.device;
  po.epochs = o.pair_epochs;
  po.seed = o.seed;
  const PairsTrainResult pr = train_pairs(po);
  r.pairs_test_accuracy = pr.test_accuracy;
  r.pairs_test_auc = pr.test_auc;
  r.pairs_ceiling_accuracy = pr.ceiling_accuracy;

  stage("5/5 playlists from the listeners' Spotify histories (recommend)");
  const nlohmann::json truth = read_json_file(o.out + "/msd/truth.json");
  const nlohmann::json& style = truth.at("song_style");
  fs::create_directories(o.out + "/playlists");
  double precision_sum = 0, random_sum = 0;
  nlohmann::json per_listener = nlohmann::json::array();
  for (const auto& l : truth.at("listeners")) {
    const std::string name = l.at("listener").get<std::string>();
    const int fav = l.at("favourite_style").get<int>();
    RecommendOptions ro;
    ro.model = po.run;
    ro.msd = po.msd;
    ro.history = {o.out + "/msd/spotify/" + name};
    ro.device = o.device;
    ro.top = 20;
    ro.format = "m3u";
    ro.out = o.out + "/playlists/" + name + ".m3u";
    std::vector<std::string> candidates;
    const std::vector<Recommendation> recs = recommend(ro, &candidates);
    write_recommendations(ro, recs);
    int64_t hits = 0, pool = 0;
    for (const auto& rec : recs) hits += style.at(rec.track_id).get<int>() == fav;
    for (const auto& id : candidates) pool += style.at(id).get<int>() == fav;
    const double p = recs.empty() ? 0.0 : double(hits) / double(recs.size());
    const double q = candidates.empty() ? 0.0 : double(pool) / double(candidates.size());
    precision_sum += p;
    random_sum += q;
    ++r.listeners;
    per_listener.push_back({{"listener", name}, {"favourite_style", fav}, {"precision_at_20", p}, {"random_pick", q}});
  }
  MR_CHECK(r.listeners > 0, o.out + "/msd/truth.json: no listeners");
  r.precision_at_20 = precision_sum / double(r.listeners);
  r.random_precision = random_sum / double(r.listeners);
  r.seconds = since(t0);

  write_json_file(o.out + "/demo.json",
                  {{"cf", {{"test_accuracy", r.cf_test_accuracy}, {"test_auc", r.cf_test_auc}, {"paper_test_accuracy", 0.7948}}},
                   {"pairs",
                    {{"balanced_test_accuracy", r.pairs_test_accuracy},
                     {"balanced_test_auc", r.pairs_test_auc},
                     {"ceiling_accuracy", r.pairs_ceiling_accuracy},
                     {"paper_balanced_test_accuracy", 0.8515}}},
                   {"precision_at_20", r.precision_at_20},
                   {"random_pick", r.random_precision},
                   {"listeners", per_listener},
                   {"seconds", r.seconds}});

  fmt::print("\n== musicrec demo: results (generated data; the paper's figures are on the real data) ==\n");
  fmt::print("{:<44} {:>10} {:>10}\n", "", "musicrec", "paper");
  fmt::print("{:<44} {:>10.4f} {:>10.4f}\n", "CF baseline, test accuracy (KKBox format)", r.cf_test_accuracy, 0.7948);
  fmt::print("{:<44} {:>10.4f} {:>10}\n", "CF baseline, test AUC", r.cf_test_auc, "-");
  fmt::print("{:<44} {:>10.4f} {:>10.4f}\n", "pair CNN, balanced test accuracy", r.pairs_test_accuracy, 0.8515);
  fmt::print("{:<44} {:>10.4f} {:>10}\n", "pair CNN, balanced test AUC", r.pairs_test_auc, "-");
  if (r.pairs_ceiling_accuracy > 0)
    fmt::print("{:<44} {:>10.4f} {:>10}\n", "pair CNN, ceiling (true probabilities)", r.pairs_ceiling_accuracy, "-");
  fmt::print("playlists for {} listeners in {}/playlists/\n", r.listeners, o.out);
  fmt::print("precision@20: {:.3f} (random pick: {:.3f})\n", r.precision_at_20, r.random_precision);
  fmt::print("demo finished in {:.0f} s; figures in {}/demo.json\n", r.seconds, o.out);
  return r;
}

}  // namespace musicrec::apps
