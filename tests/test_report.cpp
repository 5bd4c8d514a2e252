// `musicrec report`: from a run folder's config.json, metrics.jsonl and final.json it writes the five
// PNG plots and an HTML page that shows them with the final metrics; an unfinished run gets the
// per-epoch plots only; a folder that is not a run is a clear error. Skipped where gnuplot is absent
// (scripts/setup.sh installs it).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "apps/report_job.h"
#include "engine/json_files.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::apps {
namespace {

bool have_gnuplot() { return std::system("command -v gnuplot > /dev/null 2>&1") == 0; }

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_run(const std::string& run, bool finished) {
  std::filesystem::create_directories(run);
  write_json_file(run + "/config.json", {{"model", "pairs"}, {"epochs", 3}, {"lr", 0.001}});
  std::ofstream m(run + "/metrics.jsonl");
  for (int e = 1; e <= 3; ++e) {
    nlohmann::json part = {{"loss", 0.6 - 0.1 * e}, {"accuracy", 0.6 + 0.1 * e}, {"auc", 0.7 + 0.08 * e},
                           {"confusion", {{0.7, 0.3}, {0.2, 0.8}}}};
    m << nlohmann::json{{"epoch", e}, {"train", part}, {"validation", part}, {"train_running_loss", 0.7 - 0.1 * e}}.dump() << "\n";
  }
  m.close();
  if (finished)
    write_json_file(run + "/final.json",
                    {{"best_epoch", 2},
                     {"test", {{"accuracy", 0.91}, {"auc", 0.97}, {"sensitivity", 0.9}, {"specificity", 0.92},
                               {"confusion", {{0.92, 0.08}, {0.1, 0.9}}},
                               {"roc", {{"fpr", {0.0, 0.1, 0.5, 1.0}}, {"tpr", {0.0, 0.8, 0.97, 1.0}}}}}},
                     {"paper", {{"balanced_test_accuracy", 0.8515}}}});
}

TEST(Report, FinishedRunGetsFivePlotsAndAPage) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)";
  test::TempDir dir;
  const std::string run = (dir.path / "run").string();
  write_run(run, true);
  const std::vector<std::string> files = write_report({run, ""});
  ASSERT_EQ(files.size(), 6u);
  for (const char* png : {"loss.png", "accuracy.png", "confusion-validation.png", "confusion-test.png", "roc.png"}) {
    const std::string bytes = read_text(run + "/report/" + png);
    ASSERT_GT(bytes.size(), 2000u) << png;
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << png;
  }
  const std::string html = read_text(run + "/report/index.html");
  for (const char* want : {"<img src=\"roc.png\"", "0.9100", "0.9700", "balanced test (best epoch 2)", "&quot;lr&quot;"})
    EXPECT_NE(html.find(want), std::string::npos) << want;
}

TEST(Report, UnfinishedRunGetsThePerEpochPlots) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)";
  test::TempDir dir;
  const std::string run = (dir.path / "run").string();
  write_run(run, false);
  const std::vector<std::string> files = write_report({run, (dir.path / "out").string()});
  EXPECT_EQ(files.size(), 4u);  // loss, accuracy, validation confusion, page
  EXPECT_NE(read_text((dir.path / "out/index.html").string()).find("has not finished"), std::string::npos);
}

TEST(Report, NotARunFolderIsAClearError) {
  test::TempDir dir;
  try {
    write_report({dir.path.string(), ""});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace musicrec::apps
