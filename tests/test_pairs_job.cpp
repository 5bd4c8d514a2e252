// The pair CNN's jobs end to end on a small generated catalogue: training writes its run folder with
// per-epoch metrics, predictions score a pairs CSV and report unknown track ids. (No learning bound
// yet: see the closing note of issue 4; the plumbing is what this test holds.)
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/pairs_jobs.h"
#include "data/csv.h"
#include "data/msd_synth.h"
#include "engine/json_files.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

TEST(PairsJob, TrainsWritesItsRunFolderAndPredicts) {
  test::TempDir d, run;
  data::MsdSynthOptions so;
  so.songs = 60;
  so.listeners = 0;
  data::synthesize_msd(d.path.string(), so);
  apps::TrainPairsOptions o;
  o.msd = d.file("data");
  o.lastfm = d.path.string();
  o.run = run.path.string();
  o.epochs = 1;
  o.batch = 128;
  o.device = "cpu";
  o.weights = "kde";
  o.filters1 = 4;
  o.filters2 = 4;
  o.filters3 = 4;
  apps::PairsTrainResult r = apps::train_pairs(o);
  EXPECT_GE(r.test_accuracy, 0.0);
  EXPECT_LE(r.test_accuracy, 1.0);
  EXPECT_GT(r.ceiling_accuracy, 0.5);
  for (const char* f : {"config.json", "metrics.jsonl", "best.h5", "last.h5", "final.json"})
    EXPECT_TRUE(std::filesystem::exists(run.file(f))) << f;
  nlohmann::json fin = read_json_file(run.file("final.json"));
  for (const char* k : {"accuracy", "auc", "sensitivity", "specificity", "confusion"}) EXPECT_TRUE(fin["test"].contains(k)) << k;
  EXPECT_TRUE(fin["ceiling"]["same_test_pairs"].get<bool>());  // seed 1 builds the pairs synth's ceiling used
  // The threshold chosen on validation: a probability, and its test metrics consistent with each other
  // (the test set is balanced, so accuracy is the mean of sensitivity and specificity).
  const nlohmann::json& tv = fin["test_at_validation_threshold"];
  EXPECT_GE(tv["threshold"].get<double>(), 0.0);
  EXPECT_LE(tv["threshold"].get<double>(), 1.0);
  EXPECT_NEAR(tv["accuracy"].get<double>(), 0.5 * (tv["sensitivity"].get<double>() + tv["specificity"].get<double>()), 1e-9);
  EXPECT_TRUE(std::filesystem::exists(d.file("data/.musicrec-cache/images-40x120-60s.h5")));
  EXPECT_EQ(read_json_file(run.file("config.json"))["tower_output"], "time-mean");  // the default
  EXPECT_EQ(read_json_file(run.file("config.json"))["lr_schedule"], "cosine");
  // A second run reuses the image cache; it also uses the paper's flattened tower, which predict must
  // rebuild from its config.json.
  test::TempDir run2;
  o.run = run2.path.string();
  o.weights = "class";
  o.tower_output = "flatten";
  apps::train_pairs(o);
  EXPECT_EQ(read_json_file(run2.file("config.json"))["tower_output"], "flatten");

  // Score two known pairs and one with an unknown id.
  nlohmann::json truth = read_json_file(d.file("truth.json"));
  std::vector<std::string> ids;
  for (auto& [id, style] : truth["song_style"].items()) ids.push_back(id);
  test::write_text(d.file("pairs.csv"), "track_a,track_b\n" + ids[0] + "," + ids[1] + "\n" + ids[2] + "," + ids[3] +
                                            "\nTRNOSUCHTRACK00000," + ids[0] + "\n");
  apps::PredictPairsOptions p;
  p.run = run.path.string();
  p.msd = d.file("data");
  p.pairs = d.file("pairs.csv");
  p.out = d.file("scored.csv");
  p.device = "cpu";
  apps::predict_pairs(p);
  data::CsvReader rd(p.out, {"track_a", "track_b", "score"});
  std::vector<std::string_view> f;
  int n = 0;
  while (rd.next(f)) {
    double s = std::stod(std::string(f[2]));
    EXPECT_TRUE(s >= 0 && s <= 1);
    ++n;
  }
  EXPECT_EQ(n, 2);
  p.run = run2.path.string();
  p.out = d.file("scored2.csv");
  apps::predict_pairs(p);
  data::CsvReader rd2(p.out, {"track_a", "track_b", "score"});
  n = 0;
  while (rd2.next(f)) ++n;
  EXPECT_EQ(n, 2);
}

TEST(PairsJob, BadArgumentsAreClearErrors) {
  apps::TrainPairsOptions o;
  o.msd = "/nonexistent";
  o.lastfm = "/nonexistent";
  o.run = "/tmp/never";
  o.weights = "magic";
  EXPECT_THROW(apps::train_pairs(o), Error);
  o.weights = "class";
  EXPECT_THROW(apps::train_pairs(o), Error);  // no such folders
}

}  // namespace
}  // namespace musicrec
