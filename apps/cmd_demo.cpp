// `musicrec demo`: the command-line options of the whole-pipeline demo (apps/demo_job.h).
#include "apps/commands.h"
#include "apps/demo_job.h"

namespace musicrec::apps {

void register_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  auto* cmd = app.add_subcommand(
      "demo", "The whole pipeline on generated data: CF baseline, pair CNN, playlists, precision@20");
  cmd->add_option("--out", o->out, "Folder for the data, runs, playlists and demo.json")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--songs", o->songs, "MSD catalogue size")->capture_default_str()->check(CLI::Range(int64_t(40), int64_t(1) << 24));
  cmd->add_option("--listeners", o->listeners, "Spotify listeners")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(100000)));
  cmd->add_option("--kkbox-rows", o->kkbox_rows, "KKBox train.csv rows")->capture_default_str()->check(CLI::Range(int64_t(1000), int64_t(1) << 34));
  cmd->add_option("--cf-epochs", o->cf_epochs, "CF baseline epochs")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--pair-epochs", o->pair_epochs, "Pair CNN epochs")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", o->seed, "Seed of the data and the training")->capture_default_str();
  cmd->callback([o] { run_demo(*o); });
}

}  // namespace musicrec::apps
