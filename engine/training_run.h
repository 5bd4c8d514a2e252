// The life of one training run in its folder, shared by every training job (the generic part of the
// training loop that DESIGN.md puts in engine/):
//   RUN/config.json   what the job passes: every option, the seed, the device, and (apps/build_info.h)
//                     the git commit and library versions; written at a fresh start; on --resume the
//                     options are checked against it, except "epochs" (which may grow), "device" and
//                     "build"
//   RUN/metrics.jsonl one object per finished epoch (on resume, lines past the checkpoint are dropped)
//   RUN/log.txt       the lines the run printed
//   RUN/last.h5       the latest state: weights, optimizer state, generator state and the position in
//                     the data order (epoch, samples of it done, the epoch's loss sum so far); written
//                     at every epoch's end and when the run is interrupted
//   RUN/best.h5       the state of the epoch with the best validation score
//   RUN/final.json    the job's final evaluation, written after the last epoch: a run with it is
//                     finished; one killed after its last epoch but before it resumes to write it
//
// Resuming is exact because everything else a job does is a function of that state: each epoch's data
// order comes from (seed, epoch), dropout masks from the saved generator, and a resumed epoch skips the
// samples already done. So on the CPU a run killed at any point (SIGKILL included) and resumed ends
// with the same bits as a run never stopped (tests/test_training_run.cpp).
//
// Ctrl-C (SIGINT) or SIGTERM asks the run to stop at the next step boundary: the job saves last.h5 there
// and exits with a message naming the --resume command; a second Ctrl-C ends the process at once.
// A loss that is not finite stops the run with a message naming the step; last.h5 stays the last good
// state, since nothing is saved after the bad step.
#pragma once
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tensor.h"

namespace musicrec {

class Module;
class Optimizer;
class Generator;

// Thrown (and reported by main as a normal exit) when a run stopped on request after saving its state.
struct RunInterrupted {
  std::string message;
};

class TrainingRun {
 public:
  struct Position {
    int epoch = 1;           // the epoch to run next (or to continue)
    int64_t offset = 0;      // samples of it already trained
    double loss_sum = 0;     // their weighted loss sum
    double seconds = 0;      // training time so far (for samples/s)
    int64_t trained = 0;     // samples trained so far
  };

  // `job_command` is the command line that started the job: the resume hint adds --resume DIR to it.
  // With resume = false the folder's metrics and checkpoints are replaced.
  TrainingRun(std::string dir, nlohmann::json config, bool resume, std::string job_command, bool quiet = false);
  ~TrainingRun();

  // Fresh start: {epoch 1, offset 0}. Resume: loads last.h5 into the three (RUN has to hold one).
  Position start(Module& model, Optimizer& opt, Generator& gen);

  // Call at the start of every epoch's training, with the samples of it already done (non-zero only for
  // the epoch a resume continues): times and progress count from here.
  void begin_epoch(int64_t offset);

  // Call once per step after the optimizer step. `done` = samples of the epoch trained so far, `loss`
  // the step's mean loss, `loss_sum` the epoch's running weighted sum (a device scalar; read only when
  // shown). Stops the run (throws RunInterrupted after saving last.h5) on Ctrl-C; throws Error when
  // the loss is not finite. Checks the loss every step on the CPU, every 16 steps on a GPU (naming the
  // range of steps), so that the GPU is not synchronised every step.
  void after_step(const Module& model, const Optimizer& opt, const Generator& gen, int epoch, int64_t done,
                  int64_t epoch_size, const Tensor& loss, const Tensor& loss_sum);

  // After the epoch's evaluation: appends the metrics line, prints `line`, saves last.h5 (and best.h5
  // when `score` improved). `seconds` is the epoch's training time.
  void end_of_epoch(const Module& model, const Optimizer& opt, const Generator& gen, int epoch, double score,
                    nlohmann::json metrics, const std::string& line, double seconds, int64_t samples);

  // Prints a line and appends it to log.txt.
  void log(const std::string& line);
  void restore_best(Module& model) const;
  int best_epoch() const { return best_epoch_; }
  double train_seconds() const { return seconds_; }
  int64_t trained() const { return trained_; }
  const std::string& dir() const { return dir_; }

 private:
  void save_last(const Module& model, const Optimizer& opt, const Generator& gen, const Position& p);
  void copy_last_to_best();
  void progress(int epoch, int64_t done, int64_t epoch_size, const Tensor& loss_sum);

  std::string dir_, command_;
  nlohmann::json config_;
  bool resume_, quiet_, tty_;
  int best_epoch_ = 0;
  double best_score_ = 0, seconds_ = 0;
  int64_t trained_ = 0, step_ = 0, last_checked_step_ = 0, epoch_offset_ = 0;
  int epochs_ = 0;
  std::chrono::steady_clock::time_point epoch_start_, last_print_;
};

}  // namespace musicrec
