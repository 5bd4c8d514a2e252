// The CF pipeline: the generator (schema, determinism, ceiling), splits, the encoder (fitted on the
// training part only), the dataset cache, a short training run that must beat a stated AUC bound,
// and predictions in the submission format.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/cf_jobs.h"
#include "data/cf_dataset.h"
#include "data/csv.h"
#include "data/kkbox.h"
#include "data/kkbox_synth.h"
#include "data/split.h"
#include "engine/json_files.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

data::KkboxSynthOptions small() {
  data::KkboxSynthOptions o;
  o.members = 300;
  o.songs = 600;
  o.rows = 60000;
  o.seed = 3;
  return o;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(KkboxSynth, WritesTheRealSchemaAndReadsBackCleanly) {
  test::TempDir d;
  data::synthesize_kkbox(d.path.string(), small());
  data::KkboxReadOptions ro;
  ro.strict = true;  // the generator must write nothing the reader would reject
  ro.read_extra = true;
  data::KkboxData k = data::read_kkbox(d.path.string(), ro);
  EXPECT_EQ(k.train.size(), 60000);
  EXPECT_EQ(k.test.size(), 20000);
  for (int32_t m = 0; m < k.members.size(); ++m) {
    const std::string& id = k.members.str(m);
    ASSERT_EQ(id.size(), 44u) << id;
    ASSERT_EQ(id.back(), '=');
  }
  // Real value sets: some of the real categorical values appear.
  EXPECT_GE(k.system_tab.find("my library"), 0);
  EXPECT_GE(k.source_type.find("local-library"), 0);
  EXPECT_GE(k.screen_name.find("Local playlist more"), 0);
  for (int32_t s : k.song_genre) EXPECT_GE(s, 0);  // every played song is in songs.csv
  nlohmann::json t = read_json_file(d.file("truth.json"));
  double auc = t["ceiling"]["test_auc"].get<double>();
  EXPECT_GT(auc, 0.7);
  EXPECT_LT(auc, 1.0);
  EXPECT_TRUE(t["ceiling_by_split"].contains("time"));
  EXPECT_NEAR(t["positive_rate"].get<double>(), 0.5, 0.1);
}

TEST(KkboxSynth, SameSeedSameBytes) {
  test::TempDir a, b;
  auto o = small();
  o.rows = 5000;
  data::synthesize_kkbox(a.path.string(), o);
  data::synthesize_kkbox(b.path.string(), o);
  for (const char* f : {"train.csv", "test.csv", "members.csv", "songs.csv", "song_extra_info.csv", "truth.json"})
    EXPECT_EQ(slurp(a.file(f)), slurp(b.file(f))) << f;
}

TEST(Split, RandomIsAboutEightyTenTenAndTimeIsChronological) {
  auto r = data::make_split(data::SplitKind::Random, 100000, data::kDefaultSplitSeed);
  EXPECT_NEAR(double(r.train.size()) / 1e5, 0.8, 0.01);
  EXPECT_NEAR(double(r.validation.size()) / 1e5, 0.1, 0.01);
  auto t = data::make_split(data::SplitKind::Time, 1000, 0);
  EXPECT_EQ(t.train.size(), 800u);
  EXPECT_EQ(t.train.back(), 799);
  EXPECT_EQ(t.test.front(), 900);
  EXPECT_THROW(data::parse_split("future"), Error);
}

TEST(CfEncoder, FittedOnTheTrainingPartOnly) {
  test::TempDir d;
  auto o = small();
  o.rows = 20000;
  data::synthesize_kkbox(d.path.string(), o);
  data::KkboxData k = data::read_kkbox(d.path.string());
  data::CfDataset ds = data::encode_cf(k, data::SplitKind::Time, 0);
  // Every song first seen after the training part (songs are released over time) maps to 0.
  std::set<int32_t> train_songs;
  for (int64_t r : ds.rows_of(data::Part::Train)) train_songs.insert(k.train.song[size_t(r)]);
  int64_t unknown = 0;
  for (int64_t r : ds.rows_of(data::Part::Test)) {
    int32_t idx = ds.train_csv.cat[size_t(r * data::kCfCategorical + data::kCfSong)];
    bool seen = train_songs.count(k.train.song[size_t(r)]) > 0;
    EXPECT_EQ(idx == 0, !seen);
    unknown += idx == 0;
  }
  EXPECT_GT(unknown, 0) << "the time split should meet cold-start songs";
  EXPECT_EQ(ds.cardinality[data::kCfSong], int64_t(train_songs.size()) + 1);
  // Numeric features are standardised on the training part.
  double mean = 0;
  auto tr = ds.rows_of(data::Part::Train);
  for (int64_t r : tr) mean += ds.train_csv.num[size_t(r * data::kCfNumeric)];
  EXPECT_NEAR(mean / double(tr.size()), 0.0, 1e-3);
  // Index -> id round trip.
  int32_t first_member = ds.train_csv.cat[0];
  EXPECT_EQ(ds.member_ids[size_t(first_member)], k.members.str(k.train.member[0]));
}

TEST(CfDataset, CacheIsReusedAndInvalidatedWhenAFileChanges) {
  test::TempDir d, cache;
  auto o = small();
  o.rows = 5000;
  data::synthesize_kkbox(d.path.string(), o);
  data::CfLoadOptions lo;
  lo.cache_dir = cache.path.string();
  data::CfDataset a = data::load_cf_dataset(d.path.string(), lo);
  EXPECT_FALSE(a.from_cache);
  data::CfDataset b = data::load_cf_dataset(d.path.string(), lo);
  EXPECT_TRUE(b.from_cache);
  EXPECT_EQ(a.train_csv.cat, b.train_csv.cat);
  EXPECT_EQ(a.train_csv.num, b.train_csv.num);
  EXPECT_EQ(a.part, b.part);
  EXPECT_EQ(a.song_ids, b.song_ids);
  EXPECT_EQ(a.test_csv.id, b.test_csv.id);
  // Another split gets its own cache file.
  lo.split = data::SplitKind::Time;
  EXPECT_FALSE(data::load_cf_dataset(d.path.string(), lo).from_cache);
  // Touching an input invalidates.
  lo.split = data::SplitKind::Random;
  test::write_text(d.file("members.csv"), slurp(d.file("members.csv")));
  EXPECT_FALSE(data::load_cf_dataset(d.path.string(), lo).from_cache);
}

// A cache is read like any file: codes outside their cardinalities would index past the embedding
// tables. Found by review while writing fuzz_cf_cache; the loader now checks every code, number and
// label, and load_cf_dataset treats a damaged cache as a warning and parses the CSVs again.
TEST(CfDataset, DamagedCacheContentsAreRefusedNamingTheRow) {
  test::TempDir d, cache;
  auto o = small();
  o.rows = 2000;
  data::synthesize_kkbox(d.path.string(), o);
  data::CfLoadOptions lo;
  lo.cache_dir = cache.path.string();
  data::CfDataset good = data::load_cf_dataset(d.path.string(), lo);
  const std::string path = cache.file("forged.h5");
  data::CfDataset bad = good;
  bad.train_csv.cat[size_t(7 * data::kCfCategorical + data::kCfSong)] = int32_t(good.cardinality[data::kCfSong]);
  data::save_cf_cache(path, "fp", bad);
  data::CfDataset out;
  try {
    data::load_cf_cache(path, "fp", out);
    ADD_FAILURE() << "a song code past the song table was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_csv/cat row 7 holds code " + std::to_string(good.cardinality[data::kCfSong]) +
                                         " for song, outside 0.." + std::to_string(good.cardinality[data::kCfSong] - 1)),
              std::string::npos)
        << e.what();
  }
  bad = good;
  bad.train_csv.label[3] = 0.5f;
  data::save_cf_cache(path, "fp", bad);
  EXPECT_THROW(data::load_cf_cache(path, "fp", out), Error);
  bad = good;
  bad.test_csv.num[1] = std::nanf("");
  data::save_cf_cache(path, "fp", bad);
  EXPECT_THROW(data::load_cf_cache(path, "fp", out), Error);
  data::save_cf_cache(path, "fp", good);
  EXPECT_TRUE(data::load_cf_cache(path, "fp", out));
  EXPECT_EQ(out.train_csv.cat, good.train_csv.cat);
  EXPECT_FALSE(data::load_cf_cache(path, "another fingerprint", out));
}

TEST(CfDataset, UnwritableCacheIsOnlyAWarning) {
  test::TempDir d;
  auto o = small();
  o.rows = 2000;
  data::synthesize_kkbox(d.path.string(), o);
  data::CfLoadOptions lo;
  lo.cache_dir = "/proc/musicrec-cannot-write-here";
  data::CfDataset ds = data::load_cf_dataset(d.path.string(), lo);
  EXPECT_EQ(ds.train_csv.rows, 2000);
}

TEST(CfTraining, ShortRunBeatsItsBoundAndPredicts) {
  test::TempDir d, run, cache;
  data::synthesize_kkbox(d.path.string(), small());
  apps::TrainCfOptions t;
  t.data = d.path.string();
  t.run = run.path.string();
  t.epochs = 4;
  t.batch = 256;
  t.device = "cpu";
  apps::CfTrainResult r = apps::train_cf(t);
  std::printf("short run: test AUC %.4f, %.1f%% of the ceiling's margin\n", r.test_auc,
              100 * r.auc_margin_fraction_of_ceiling);
  // 60k rows over 300 members and 600 songs against a 0.835 ceiling: measured 0.7719 test AUC (81.1 %
  // of the margin) on 2026-11-25. The bound leaves room for rounding differences between machines,
  // not for a model that stopped learning (a constant predictor scores 0.5).
  EXPECT_GT(r.test_auc, 0.75);
  EXPECT_GT(r.auc_margin_fraction_of_ceiling, 0.70);
  // Run folder contents.
  for (const char* f : {"config.json", "metrics.jsonl", "best.h5", "last.h5", "final.json"})
    EXPECT_TRUE(std::filesystem::exists(run.file(f))) << f;
  std::string lines = slurp(run.file("metrics.jsonl"));
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 4);  // one line per epoch
  nlohmann::json fin = read_json_file(run.file("final.json"));
  EXPECT_NEAR(fin["test"]["auc"].get<double>(), r.test_auc, 1e-12);
  // Predictions: one per test.csv row, probabilities, the Kaggle header.
  apps::PredictCfOptions p;
  p.run = run.path.string();
  p.data = d.path.string();
  p.out = run.file("submission.csv");
  p.device = "cpu";
  apps::predict_cf(p);
  data::CsvReader sub(p.out, {"id", "target"});
  EXPECT_EQ(sub.header(), (std::vector<std::string>{"id", "target"}));
  std::vector<std::string_view> f;
  int64_t n = 0;
  while (sub.next(f)) {
    double v = std::stod(std::string(f[1]));
    ASSERT_TRUE(v >= 0 && v <= 1) << v;
    ASSERT_EQ(std::stoll(std::string(f[0])), n);
    ++n;
  }
  EXPECT_EQ(n, 20000);
}

TEST(CfTraining, DefaultsReachNinetyPercentOfTheCeilingMargin) {
  // The bar: on `musicrec synth kkbox` defaults, `musicrec train cf` defaults on the CPU reach a
  // test AUC whose margin over 0.5 is at least 90 % of the ceiling's. Measured 92.5 % (2026-11-25).
  test::TempDir d, run;
  data::synthesize_kkbox(d.path.string(), data::KkboxSynthOptions{});
  apps::TrainCfOptions t;
  t.data = d.path.string();
  t.run = run.path.string();
  t.device = "cpu";
  apps::CfTrainResult r = apps::train_cf(t);
  EXPECT_GE(r.auc_margin_fraction_of_ceiling, 0.9);
}

TEST(CfTraining, SameSeedSameBitsOnTheCpu) {
  test::TempDir d, r1, r2;
  auto o = small();
  o.rows = 8000;
  data::synthesize_kkbox(d.path.string(), o);
  apps::TrainCfOptions t;
  t.data = d.path.string();
  t.epochs = 1;
  t.device = "cpu";
  t.run = r1.path.string();
  double a = apps::train_cf(t).test_auc;
  t.run = r2.path.string();
  double b = apps::train_cf(t).test_auc;
  EXPECT_EQ(a, b);
  // Everything but the timings is bitwise the same.
  nlohmann::json m1 = nlohmann::json::parse(slurp(r1.file("metrics.jsonl")));
  nlohmann::json m2 = nlohmann::json::parse(slurp(r2.file("metrics.jsonl")));
  for (const char* k : {"train", "validation", "train_running_loss"}) EXPECT_EQ(m1[k], m2[k]) << k;
}

TEST(CfTraining, RecommendsUnplayedSongsForAMember) {
  test::TempDir d, run;
  auto o = small();
  o.rows = 20000;
  data::synthesize_kkbox(d.path.string(), o);
  apps::TrainCfOptions t;
  t.data = d.path.string();
  t.run = run.path.string();
  t.epochs = 1;
  t.device = "cpu";
  apps::train_cf(t);
  data::KkboxData k = data::read_kkbox(d.path.string());
  const std::string member = k.members.str(k.train.member[0]);
  std::set<std::string> played;
  for (int64_t r = 0; r < k.train.size(); ++r)
    if (k.train.member[size_t(r)] == k.train.member[0]) played.insert(k.songs.str(k.train.song[size_t(r)]));
  apps::RecommendCfOptions ro;
  ro.run = run.path.string();
  ro.data = d.path.string();
  ro.member = member;
  ro.top = 15;
  ro.device = "cpu";
  auto recs = apps::recommend_cf(ro);
  ASSERT_EQ(recs.size(), 15u);
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(played.count(recs[i].song_id), 0u) << recs[i].song_id;
    if (i) {
      EXPECT_LE(recs[i].score, recs[i - 1].score);
    }
  }
  ro.member = "no-such-member";
  EXPECT_THROW(apps::recommend_cf(ro), Error);
}

TEST(CfTraining, PredictRefusesARunOfOtherData) {
  test::TempDir d1, d2, run;
  auto o = small();
  o.rows = 5000;
  data::synthesize_kkbox(d1.path.string(), o);
  o.seed = 99;
  o.members = 200;
  data::synthesize_kkbox(d2.path.string(), o);
  apps::TrainCfOptions t;
  t.data = d1.path.string();
  t.run = run.path.string();
  t.epochs = 1;
  t.device = "cpu";
  apps::train_cf(t);
  apps::PredictCfOptions p;
  p.run = run.path.string();
  p.data = d2.path.string();
  p.out = run.file("s.csv");
  EXPECT_THROW(apps::predict_cf(p), Error);
  EXPECT_FALSE(std::filesystem::exists(p.out));
}

}  // namespace
}  // namespace musicrec
