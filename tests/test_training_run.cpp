// Training runs a person can interrupt and trust (engine/training_run.h), tested on the real program:
// the same seed gives bitwise the same weights and metrics on the CPU; a run killed with SIGKILL at
// arbitrary moments and resumed each time ends with weights bitwise equal to a run never stopped; Ctrl-C
// (SIGINT) saves at a step boundary, exits 130 and prints the resume command; a NaN loss stops with the
// step named; bad --resume use is a clear error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "data/kkbox_synth.h"
#include "engine/checkpoint.h"
#include "engine/tensor.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {
namespace fs = std::filesystem;

struct Proc {
  pid_t pid = -1;
  std::string out_path;
};

// Starts the program with `args` (stdout and stderr to out_path), returns at once.
Proc start(const std::vector<std::string>& args, const std::string& out_path) {
  Proc p;
  p.out_path = out_path;
  p.pid = fork();
  if (p.pid == 0) {
    FILE* f = std::freopen(out_path.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), fileno(stderr));
    std::vector<char*> argv;
    std::string prog = test::musicrec_program();
    argv.push_back(prog.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(prog.c_str(), argv.data());
    _exit(127);
  }
  return p;
}

int wait_exit(const Proc& p) {
  int status = 0;
  waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every parameter and optimizer tensor of a checkpoint, bytes compared.
void expect_same_state(const std::string& a_path, const std::string& b_path) {
  const Checkpoint a = load_checkpoint(a_path), b = load_checkpoint(b_path);
  ASSERT_EQ(a.model.size(), b.model.size());
  for (size_t i = 0; i < a.model.size(); ++i) {
    ASSERT_EQ(a.model[i].first, b.model[i].first);
    const Tensor &x = a.model[i].second, &y = b.model[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << "parameter " << a.model[i].first << " differs";
  }
  ASSERT_EQ(a.optimizer.size(), b.optimizer.size());
  for (size_t i = 0; i < a.optimizer.size(); ++i)
    EXPECT_EQ(std::memcmp(a.optimizer[i].second.raw_data(), b.optimizer[i].second.raw_data(), a.optimizer[i].second.nbytes()), 0)
        << "optimizer state " << a.optimizer[i].first << " differs";
  EXPECT_EQ(a.rng_offset, b.rng_offset);
  EXPECT_EQ(a.step, b.step);
}

// metrics.jsonl without the timing fields, which differ between any two runs.
std::string metrics_without_times(const std::string& run) {
  std::ifstream f(run + "/metrics.jsonl");
  std::string line, out;
  while (std::getline(f, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("samples_per_s");
    out += j.dump() + "\n";
  }
  return out;
}

class TrainingRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    data::KkboxSynthOptions o;
    o.members = 150;
    o.songs = 300;
    o.rows = 60000;
    data::synthesize_kkbox((dir_->path / "kk").string(), o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string path(const std::string& name) { return (dir_->path / name).string(); }
  static std::vector<std::string> cf_args(const std::string& run_flag, const std::string& run, int epochs = 3) {
    return {"train", "cf", "--data", path("kk"), run_flag, run, "--device", "cpu", "--epochs", std::to_string(epochs),
            "--batch", "256", "--train-eval-rows", "2000"};
  }
  static test::TempDir* dir_;
};
test::TempDir* TrainingRunTest::dir_ = nullptr;

TEST_F(TrainingRunTest, SameSeedGivesBitwiseTheSameWeightsAndMetrics) {
  for (const char* r : {"det-a", "det-b"}) {
    Proc p = start(cf_args("--run", path(r)), path(std::string(r) + ".out"));
    ASSERT_EQ(wait_exit(p), 0) << read_text(p.out_path);
  }
  expect_same_state(path("det-a/last.h5"), path("det-b/last.h5"));
  expect_same_state(path("det-a/best.h5"), path("det-b/best.h5"));
  EXPECT_EQ(metrics_without_times(path("det-a")), metrics_without_times(path("det-b")));
  const nlohmann::json cfg = nlohmann::json::parse(read_text(path("det-a/config.json")));
  EXPECT_TRUE(cfg.contains("build") && cfg["build"].contains("git_commit") && cfg["build"].contains("libraries"));
  EXPECT_EQ(cfg.value("seed", 0), 1);
  EXPECT_NE(read_text(path("det-a/log.txt")).find("epoch 3/3"), std::string::npos);
}

TEST_F(TrainingRunTest, KilledAtAnyMomentAndResumedEndsBitwiseEqual) {
  // With the cosine schedule, so that the learning rate of a resumed step is checked too (it is a
  // function of the step number: engine/lr_schedule.h).
  const auto args = [](const std::string& run_flag, const std::string& run) {
    std::vector<std::string> a = cf_args(run_flag, run, 6);
    a.insert(a.end(), {"--lr-schedule", "cosine"});
    return a;
  };
  const auto t0 = std::chrono::steady_clock::now();
  Proc ref = start(args("--run", path("ref")), path("ref.out"));
  ASSERT_EQ(wait_exit(ref), 0) << read_text(ref.out_path);
  // Kill delays scale with how long a whole run takes here (a sanitizer build is ten times slower).
  const double whole = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // Kill -9 after a growing delay, resume, repeat until the run finishes on its own. The delays fall
  // before the first checkpoint, mid-epoch, during evaluation and during saves. When the machine's
  // load changed after the reference run, so that the run finished before a second kill, it starts
  // again with delays half as long (a slow reference makes every delay too long): down to 1/64, as a
  // reference run beside a heavy test (ctest -j2) can take several times as long as the runs after it.
  const std::string run = path("killed");
  int kills = 0, resumes = 0, rc = -1;
  for (double scale = 1.0; scale > 0.01 && (kills < 2 || resumes < 1); scale /= 2) {
    fs::remove_all(run);
    kills = resumes = 0;
    rc = -1;
    for (int attempt = 0; attempt < 40 && rc != 0; ++attempt) {
      const bool resume = fs::exists(run + "/last.h5");
      resumes += resume;
      Proc p = start(args(resume ? "--resume" : "--run", run), path("killed.out"));
      std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(whole * scale * (0.2 + 0.09 * attempt))));
      int status = 0;
      if (waitpid(p.pid, &status, WNOHANG) == 0) {
        kill(p.pid, SIGKILL);
        wait_exit(p);
        // final.json is the last thing a run writes: a kill that lands after it (while the process
        // exits) found the run finished, which a resume would rightly refuse. (Seen once in a CI run.)
        if (fs::exists(run + "/final.json")) {
          rc = 0;
        } else {
          ++kills;
          rc = -1;
        }
      } else {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;  // it ended before the kill
        ASSERT_EQ(rc, 0) << read_text(path("killed.out"));
      }
    }
    ASSERT_EQ(rc, 0) << "never finished: " << read_text(path("killed.out"));
  }
  EXPECT_GE(kills, 2) << "the run was too quick to be killed; the test proves nothing";
  EXPECT_GE(resumes, 1) << "no kill came after a checkpoint; the test proves nothing";
  expect_same_state(path("ref/last.h5"), run + "/last.h5");
  expect_same_state(path("ref/best.h5"), run + "/best.h5");
  EXPECT_EQ(metrics_without_times(path("ref")), metrics_without_times(run));
}

TEST_F(TrainingRunTest, CtrlCSavesAtAStepBoundaryAndPrintsHowToResume) {
  const std::string run = path("ctrlc");
  Proc p = start(cf_args("--run", run, 4), path("ctrlc.out"));
  // Wait for the first epoch's checkpoint, then interrupt in the middle of the second epoch.
  for (int i = 0; i < 6000 && !fs::exists(run + "/last.h5"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(p.pid, SIGINT);
  const int rc = wait_exit(p);
  const std::string out = read_text(p.out_path);
  if (rc == 0) GTEST_SKIP() << "the run ended before the interrupt arrived";
  ASSERT_EQ(rc, 130) << out;
  EXPECT_NE(out.find("interrupted: state saved in " + run + "/last.h5"), std::string::npos) << out;
  EXPECT_NE(out.find("--resume " + run), std::string::npos) << out;
  const Checkpoint c = load_checkpoint(run + "/last.h5");
  const nlohmann::json pos = nlohmann::json::parse(c.metadata_json).at("position");
  EXPECT_EQ(pos.at("offset").get<int64_t>() % 256, 0) << "saved off a batch boundary";
  // Resuming finishes the run; with 4 epochs it must equal an uninterrupted 4-epoch run.
  Proc r = start(cf_args("--resume", run, 4), path("ctrlc-resume.out"));
  ASSERT_EQ(wait_exit(r), 0) << read_text(r.out_path);
  EXPECT_NE(read_text(r.out_path).find("resuming"), std::string::npos);
  Proc ref = start(cf_args("--run", path("ref4"), 4), path("ref4.out"));
  ASSERT_EQ(wait_exit(ref), 0);
  expect_same_state(path("ref4/last.h5"), run + "/last.h5");
}

TEST_F(TrainingRunTest, KilledAfterItsLastEpochResumesToTheSameFinalEvaluation) {
  // The windows a kill after the last epoch can hit, made by hand: after last.h5 but before its copy
  // to best.h5 (one epoch, so it is the best), and before final.json. Both resume to the end.
  Proc ref = start(cf_args("--run", path("fin-ref"), 1), path("fin-ref.out"));
  ASSERT_EQ(wait_exit(ref), 0) << read_text(ref.out_path);
  const std::string run = path("fin");
  Proc first = start(cf_args("--run", run, 1), path("fin.out"));
  ASSERT_EQ(wait_exit(first), 0) << read_text(first.out_path);
  // A finished run does not resume.
  Proc again = start(cf_args("--resume", run, 1), path("fin-again.out"));
  EXPECT_EQ(wait_exit(again), 1);
  EXPECT_NE(read_text(again.out_path).find("already finished its 1 epochs"), std::string::npos) << read_text(again.out_path);

  fs::remove(run + "/final.json");
  fs::remove(run + "/best.h5");
  Proc resumed = start(cf_args("--resume", run, 1), path("fin-resumed.out"));
  ASSERT_EQ(wait_exit(resumed), 0) << read_text(resumed.out_path);
  EXPECT_NE(read_text(resumed.out_path).find("stopped before its final evaluation"), std::string::npos)
      << read_text(resumed.out_path);
  expect_same_state(path("fin-ref/best.h5"), run + "/best.h5");
  const nlohmann::json want = nlohmann::json::parse(read_text(path("fin-ref/final.json")));
  const nlohmann::json got = nlohmann::json::parse(read_text(run + "/final.json"));
  EXPECT_EQ(got.at("test"), want.at("test"));
  EXPECT_EQ(got.at("best_epoch"), 1);
}

TEST_F(TrainingRunTest, NonFiniteLossStopsNamingTheStepAndKeepsTheLastGoodState) {
  // A learning rate of 1e30 overflows Adam's update into inf weights, then NaN losses.
  std::vector<std::string> args = cf_args("--run", path("nan"), 2);
  args.insert(args.end(), {"--lr", "1e30"});
  Proc p = start(args, path("nan.out"));
  const int rc = wait_exit(p);
  const std::string out = read_text(p.out_path);
  ASSERT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("the training loss became"), std::string::npos) << out;
  EXPECT_NE(out.find("at step "), std::string::npos) << out;
}

// `--trace FILE`: the run's timeline as a Chrome trace, every op inside one of the training loop's
// named phases (the final test evaluation has one too), beside the `--profile` table; a folder that
// cannot take the file is an error before the run starts, not after it ends.
TEST_F(TrainingRunTest, TracedRunPutsEveryOpInsideANamedPhase) {
  std::vector<std::string> args = cf_args("--run", path("traced"), 1);
  args.insert(args.end(), {"--profile", "--trace", path("traced.json")});
  Proc p = start(args, path("traced.out"));
  ASSERT_EQ(wait_exit(p), 0) << read_text(p.out_path);
  const std::string out = read_text(p.out_path);
  EXPECT_NE(out.find("trace: " + path("traced.json")), std::string::npos) << out;
  EXPECT_NE(out.find("\ntest "), std::string::npos) << "the test evaluation's phase in the table:\n" << out;
  const nlohmann::json trace = nlohmann::json::parse(read_text(path("traced.json")));
  std::vector<nlohmann::json> phases, ops;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X") (e["cat"] == "phase" ? phases : ops).push_back(e);
  std::set<std::string> names;
  for (const auto& ph : phases) names.insert(ph["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"bookkeeping", "data", "evaluate", "step", "test"}));
  ASSERT_FALSE(ops.empty());
  size_t outside = 0;
  for (const auto& op : ops) {
    const double t0 = op["ts"], t1 = t0 + op["dur"].get<double>();
    outside += std::none_of(phases.begin(), phases.end(), [&](const nlohmann::json& ph) {
      return ph["tid"] == op["tid"] && ph["ts"].get<double>() <= t0 && t1 <= ph["ts"].get<double>() + ph["dur"].get<double>() + 1e-3;
    });
  }
  EXPECT_EQ(outside, 0u) << "of " << ops.size() << " ops";

  args = cf_args("--run", path("traced-nowhere"), 1);
  args.insert(args.end(), {"--trace", path("no-such-folder/t.json")});
  Proc bad = start(args, path("traced-nowhere.out"));
  EXPECT_NE(wait_exit(bad), 0);
  EXPECT_NE(read_text(bad.out_path).find("--trace " + path("no-such-folder/t.json") + ": the folder"), std::string::npos)
      << read_text(bad.out_path);
  EXPECT_FALSE(fs::exists(path("traced-nowhere"))) << "nothing ran";
}

TEST_F(TrainingRunTest, BadResumeIsAClearError) {
  Proc p = start(cf_args("--resume", path("no-such-run")), path("bad.out"));
  EXPECT_EQ(wait_exit(p), 1);
  EXPECT_NE(read_text(path("bad.out")).find("nothing to resume"), std::string::npos) << read_text(path("bad.out"));
  // Changing an option other than --epochs or --device on resume is refused, naming the option.
  Proc a = start(cf_args("--run", path("opt")), path("opt.out"));
  ASSERT_EQ(wait_exit(a), 0);
  std::vector<std::string> args = cf_args("--resume", path("opt"), 4);
  args.insert(args.end(), {"--lr", "0.01"});
  Proc b = start(args, path("opt2.out"));
  EXPECT_EQ(wait_exit(b), 1);
  EXPECT_NE(read_text(path("opt2.out")).find("lr"), std::string::npos) << read_text(path("opt2.out"));
}

}  // namespace
}  // namespace musicrec
