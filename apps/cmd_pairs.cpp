// `musicrec train pairs` and `musicrec predict pairs`: command-line options of the pair CNN's jobs.
#include "apps/commands.h"
#include "apps/pairs_jobs.h"

namespace musicrec::apps {

void register_pairs(CLI::App& app) {
  CLI::App* train = app.get_subcommand("train");
  auto t = std::make_shared<TrainPairsOptions>();
  auto* tp = train->add_subcommand("pairs", "The content-based song-pair CNN on MSD + Last.fm");
  tp->add_option("--msd", t->msd, "MSD folder of track files (any depth)")->required();
  tp->add_option("--lastfm", t->lastfm, "Folder holding lastfm_train/ and lastfm_test/")->required();
  tp->add_option("--run", t->run, "Run folder");
  tp->add_option("--resume", t->run, "Continue this run folder from its last.h5 (same options; --epochs may grow)")
      ->each([t](const std::string&) { t->resume = true; });
  tp->add_option("--weights", t->weights, "Loss weights: class, kde or none")->capture_default_str()
      ->check(CLI::IsMember({"class", "kde", "none"}));
  tp->add_option("--positive-weight", t->positive_weight, "Class weight of label 1 (--weights class)")->capture_default_str();
  tp->add_option("--negative-weight", t->negative_weight, "Class weight of label 0 (--weights class)")->capture_default_str();
  tp->add_option("--kde-bandwidth", t->kde_bandwidth, "Bandwidth of the score density (--weights kde)")->capture_default_str();
  tp->add_flag("--balanced", t->balanced, "Train on balanced pairs instead of the 9:1 imbalanced set");
  tp->add_option("--epochs", t->epochs, "Epochs")->capture_default_str()->check(CLI::Range(1, 100000));
  tp->add_option("--batch", t->batch, "Pairs per batch")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  tp->add_option("--lr", t->lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  tp->add_option("--lr-schedule", t->lr_schedule, "Learning rate over the run: constant, or cosine (from --lr down to 0 at the last step)")
      ->capture_default_str()->check(CLI::IsMember({"constant", "cosine"}));
  tp->add_option("--seed", t->seed, "Seed")->capture_default_str();
  tp->add_option("--device", t->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  tp->add_option("--filters1", t->filters1, "Filters of conv 1")->capture_default_str()->check(CLI::Range(1, 4096));
  tp->add_option("--filters2", t->filters2, "Filters of conv 2")->capture_default_str()->check(CLI::Range(1, 4096));
  tp->add_option("--filters3", t->filters3, "Filters of conv 3")->capture_default_str()->check(CLI::Range(1, 4096));
  tp->add_option("--conv-init-gain", t->conv_init_gain, "Gain on the conv layers' Glorot initialisation range")
      ->capture_default_str()->check(CLI::PositiveNumber);
  tp->add_option("--tower-output", t->tower_output, "What the tower gives the head: time-mean (the last feature map averaged over time) or flatten (the paper's)")
      ->capture_default_str()->check(CLI::IsMember({"flatten", "time-mean"}));
  tp->add_option("--max-train-positives", t->max_train_positives, "Cap on positive training pairs (-1: all)")->capture_default_str();
  tp->add_option("--image-cache", t->image_cache, "Song-image cache file (default MSD/.musicrec-cache/...)");
  set_training_callback(tp, [t] {
    if (t->run.empty()) throw CLI::RequiredError("--run (or --resume)");
    train_pairs(*t);
  });

  CLI::App* predict = app.get_subcommand("predict");
  auto p = std::make_shared<PredictPairsOptions>();
  auto* pp = predict->add_subcommand("pairs", "Score song pairs (CSV track_a,track_b) with a pair-CNN run");
  pp->add_option("--run", p->run, "Run folder of `musicrec train pairs`")->required();
  pp->add_option("--msd", p->msd, "MSD folder the run was trained on")->required();
  pp->add_option("--pairs", p->pairs, "CSV with header track_a,track_b")->required();
  pp->add_option("--out", p->out, "Output CSV (default PAIRS-scored.csv)");
  pp->add_option("--device", p->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  pp->callback([p] { predict_pairs(*p); });
}

}  // namespace musicrec::apps
