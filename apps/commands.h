// The subcommands of the `musicrec` program; each lives in its own file and is registered on the
// CLI11 app by main.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace musicrec::apps {

// Adds `--profile` and `--trace FILE` to a training command and makes `train` its callback: with
// `--profile` the run is profiled and the per-op and per-phase table (engine/profiler.h) printed after
// it; with `--trace` its timeline is written to FILE as a Chrome trace.
void set_training_callback(CLI::App* cmd, std::function<void()> train);

// `musicrec info`: build options, library versions, devices, the backend `auto` picks.
void register_info(CLI::App& app);
// `musicrec smoke`: a tiny training run (an MLP and a small conv net on generated data).
void register_smoke(CLI::App& app);
// `musicrec synth kkbox`: KKBox-format data from a planted model.
void register_synth(CLI::App& app);
// `musicrec train cf` and `musicrec predict cf`: the CF baseline.
void register_cf(CLI::App& app);
// `musicrec train pairs` and `musicrec predict pairs` (call after register_cf, which adds train/predict).
void register_pairs(CLI::App& app);
// `musicrec recommend`: a playlist from a Spotify history with a pair-CNN run.
void register_recommend(CLI::App& app);
// `musicrec inspect PATH`: a JSON summary of any file the project reads.
void register_inspect(CLI::App& app);
// `musicrec demo`: the whole pipeline on generated data.
void register_demo(CLI::App& app);
// `musicrec report RUNDIR`: plots and an HTML page of a training run.
void register_report(CLI::App& app);
// `musicrec bench`: the benchmarks, with rates against the machine's measured ceilings.
void register_bench(CLI::App& app);

}  // namespace musicrec::apps
