// A training run's folder, resume, interruption, NaN stop and progress display (see training_run.h).
#include "engine/training_run.h"

#include <fmt/core.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/checkpoint.h"
#include "engine/json_files.h"
#include "engine/modules.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/error.h"

namespace musicrec {
namespace fs = std::filesystem;

namespace {

std::atomic<int> g_stop_requests{0};

extern "C" void on_stop_signal(int sig) {
  // First signal: ask the run to stop at the next step boundary. Second: the default action (exit now).
  if (g_stop_requests.fetch_add(1) >= 1) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// Options that may differ between a run and its resumption.
bool may_differ(const std::string& key) { return key == "epochs" || key == "device" || key == "build"; }

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

}  // namespace

TrainingRun::TrainingRun(std::string dir, nlohmann::json config, bool resume, std::string job_command, bool quiet)
    : dir_(std::move(dir)), command_(std::move(job_command)), config_(std::move(config)), resume_(resume), quiet_(quiet),
      tty_(::isatty(STDOUT_FILENO) == 1) {
  epochs_ = config_.value("epochs", 0);
  if (resume_) {
    MR_CHECK(fs::exists(dir_ + "/config.json") && fs::exists(dir_ + "/last.h5"),
             dir_ + ": nothing to resume (it needs config.json and last.h5 from an earlier run)");
    const nlohmann::json before = read_json_file(dir_ + "/config.json");
    for (auto& [key, value] : config_.items()) {
      if (may_differ(key)) continue;
      MR_CHECK(before.contains(key) && before.at(key) == value,
               dir_ + "/config.json: the run was started with " + key + " = " +
                   (before.contains(key) ? json_text(before.at(key)) : std::string("(absent)")) + ", not " + json_text(value) +
                   "; resume with the same options (only --epochs and --device may change)");
    }
  } else {
    fs::create_directories(dir_);
    for (const char* f : {"/metrics.jsonl", "/log.txt", "/last.h5", "/best.h5", "/final.json"}) fs::remove(dir_ + f);
  }
  write_json_file(dir_ + "/config.json", config_);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  g_stop_requests = 0;
}

TrainingRun::~TrainingRun() {
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void TrainingRun::log(const std::string& line) {
  if (!quiet_) {
    if (tty_) std::fputs("\r\033[K", stdout);  // clear a progress bar
    fmt::print("{}\n", line);
    std::fflush(stdout);
  }
  std::ofstream f(dir_ + "/log.txt", std::ios::app);
  f << line << "\n";
}

TrainingRun::Position TrainingRun::start(Module& model, Optimizer& opt, Generator& gen) {
  Position p;
  if (resume_) {
    const Checkpoint c = load_checkpoint_isolated(dir_ + "/last.h5");
    restore(c, model, &opt, &gen);
    const nlohmann::json m = nlohmann::json::parse(c.metadata_json);
    const nlohmann::json& pos = m.at("position");
    p.epoch = pos.at("epoch").get<int>();
    p.offset = pos.at("offset").get<int64_t>();
    p.loss_sum = pos.at("loss_sum").get<double>();
    p.seconds = pos.at("seconds").get<double>();
    p.trained = pos.at("trained").get<int64_t>();
    best_epoch_ = m.at("best").at("epoch").get<int>();
    best_score_ = m.at("best").at("score").get<double>();
    step_ = c.step;
    // Metrics of epochs after the checkpoint (a run killed between writing them and saving) go.
    const std::string metrics = dir_ + "/metrics.jsonl";
    if (fs::exists(metrics)) {
      std::ifstream in(metrics);
      std::string line, kept;
      while (std::getline(in, line))
        if (!line.empty() && nlohmann::json::parse(line).value("epoch", 0) < p.epoch) kept += line + "\n";
      in.close();
      const std::string tmp = metrics + ".tmp";
      std::ofstream(tmp) << kept;
      fs::rename(tmp, metrics);
    }
    const bool trained_all = epochs_ != 0 && p.epoch > epochs_;
    MR_CHECK(!trained_all || !fs::exists(dir_ + "/final.json"),
             dir_ + ": the run already finished its " + std::to_string(p.epoch - 1) + " epochs; resume with a larger --epochs");
    // A final.json beside a run that trains on is an earlier, shorter finish's: it goes, so that a kill
    // before the new one is written does not leave the run looking finished.
    if (!trained_all) fs::remove(dir_ + "/final.json");
    // end_of_epoch saves last.h5 and then copies it to best.h5: a kill between the two leaves a last.h5
    // naming its own epoch as the best beside an older best.h5 (or none). In that state last.h5 is the
    // best epoch's state, so copying it again is right, and harmless when the copy had been made.
    if (p.offset == 0 && best_epoch_ == p.epoch - 1 && best_epoch_ > 0) copy_last_to_best();
    if (trained_all)
      log(fmt::format("resuming {}: all {} epochs were trained; the run stopped before its final evaluation", dir_,
                      p.epoch - 1));
    else
      log(fmt::format("resuming {} at epoch {}, sample {} (step {})", dir_, p.epoch, p.offset, step_));
  }
  seconds_ = p.seconds;
  trained_ = p.trained;
  last_checked_step_ = step_;
  epoch_start_ = last_print_ = std::chrono::steady_clock::now();
  return p;
}

void TrainingRun::save_last(const Module& model, const Optimizer& opt, const Generator& gen, const Position& p) {
  Checkpoint c = capture(model, &opt, gen);
  c.epoch = p.epoch - (p.offset == 0 ? 1 : 0);
  c.step = step_;
  c.metadata_json = nlohmann::json{{"config", config_},
                                   {"position",
                                    {{"epoch", p.epoch},
                                     {"offset", p.offset},
                                     {"loss_sum", p.loss_sum},
                                     {"seconds", p.seconds},
                                     {"trained", p.trained}}},
                                   {"best", {{"epoch", best_epoch_}, {"score", best_score_}}}}
                        .dump();
  save_checkpoint(dir_ + "/last.h5", c);
}

void TrainingRun::after_step(const Module& model, const Optimizer& opt, const Generator& gen, int epoch, int64_t done,
                             int64_t epoch_size, const Tensor& loss, const Tensor& loss_sum) {
  ++step_;
  const bool on_cpu = !loss.is_cuda();
  if (on_cpu || step_ - last_checked_step_ >= 16 || done == epoch_size) {
    const double v = on_cpu ? loss.item() : loss_sum.item();
    if (!std::isfinite(v)) {
      const std::string where = on_cpu || step_ - last_checked_step_ <= 1
                                    ? fmt::format("step {}", step_)
                                    : fmt::format("one of steps {} to {}", last_checked_step_ + 1, step_);
      const std::string kept = fs::exists(dir_ + "/last.h5")
                                   ? fmt::format("{}/last.h5 keeps the last good state (before epoch {}'s bad step)", dir_, epoch)
                                   : std::string("no state had been saved yet (the first epoch had not ended)");
      throw Error(fmt::format("{}: the training loss became {} at {} (epoch {}, sample {}); stopped; {}. Try a smaller --lr",
                              dir_, v, where, epoch, done, kept));
    }
    last_checked_step_ = step_;
  }
  const auto now = std::chrono::steady_clock::now();
  if (g_stop_requests.load() > 0) {
    // With done == epoch_size the resumed run goes straight to the epoch's evaluation.
    const double secs = std::chrono::duration<double>(now - epoch_start_).count();
    save_last(model, opt, gen, Position{epoch, done, loss_sum.item(), seconds_ + secs, trained_ + done - epoch_offset_});
    const std::string again = command_.find("--resume") != std::string::npos ? command_ : command_ + " --resume " + dir_;
    const std::string msg = fmt::format("interrupted: state saved in {}/last.h5 at epoch {}, sample {} of {} (step {}). "
                                        "Resume with: {}",
                                        dir_, epoch, done, epoch_size, step_, again);
    log(msg);
    throw RunInterrupted{msg};
  }
  if (!quiet_ && std::chrono::duration<double>(now - last_print_).count() >= (tty_ ? 0.25 : 15.0)) {
    last_print_ = now;
    progress(epoch, done, epoch_size, loss_sum);
  }
}

void TrainingRun::begin_epoch(int64_t offset) {
  epoch_offset_ = offset;
  epoch_start_ = last_print_ = std::chrono::steady_clock::now();
}

void TrainingRun::progress(int epoch, int64_t done, int64_t epoch_size, const Tensor& loss_sum) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  const double rate = secs > 0 ? double(done - epoch_offset_) / secs : 0;
  const double eta = rate > 0 ? double(epoch_size - done) / rate : NAN;
  const double loss = done > 0 ? loss_sum.item() / double(done) : NAN;
  if (tty_) {
    const int width = 24, filled = int(double(width) * double(done) / double(std::max<int64_t>(1, epoch_size)));
    fmt::print("\r\033[Kepoch {}/{} [{}{}] {}/{} | {:.0f} samples/s | loss {:.4f} | eta {}", epoch, epochs_,
               std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'), done, epoch_size, rate,
               loss, fmt_duration(eta));
  } else {
    fmt::print("epoch {}/{}: {}/{} samples, {:.0f} samples/s, running loss {:.4f}, eta {}\n", epoch, epochs_, done,
               epoch_size, rate, loss, fmt_duration(eta));
  }
  std::fflush(stdout);
}

void TrainingRun::end_of_epoch(const Module& model, const Optimizer& opt, const Generator& gen, int epoch, double score,
                               nlohmann::json metrics, const std::string& line, double seconds, int64_t samples) {
  seconds_ += seconds;
  trained_ += samples;
  append_json_line(dir_ + "/metrics.jsonl", metrics);
  log(line);
  const bool improved = best_epoch_ == 0 || score > best_score_;
  if (improved) {
    best_score_ = score;
    best_epoch_ = epoch;
  }
  save_last(model, opt, gen, Position{epoch + 1, 0, 0.0, seconds_, trained_});
  if (improved) copy_last_to_best();  // a kill before this is repaired by start() on resume
}

void TrainingRun::copy_last_to_best() {
  // Copied then renamed, so a kill during the copy leaves the previous best.h5 whole.
  fs::copy_file(dir_ + "/last.h5", dir_ + "/best.h5.tmp", fs::copy_options::overwrite_existing);
  fs::rename(dir_ + "/best.h5.tmp", dir_ + "/best.h5");
}

void TrainingRun::restore_best(Module& model) const {
  MR_CHECK(best_epoch_ > 0, dir_ + ": no epoch finished, so there is no best checkpoint");
  const Checkpoint c = load_checkpoint(dir_ + "/best.h5");
  MR_CHECK(c.epoch == best_epoch_, fmt::format("{}/best.h5: holds epoch {}, but the run's best epoch is {} (last.h5); "
                                               "the file was replaced or damaged",
                                               dir_, c.epoch, best_epoch_));
  restore(c, model, nullptr, nullptr);
}

}  // namespace musicrec
