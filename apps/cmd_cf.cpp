// `musicrec train cf` and `musicrec predict cf`: command-line options of the CF baseline's jobs.
#include "apps/cf_jobs.h"
#include "apps/commands.h"

namespace musicrec::apps {

void register_cf(CLI::App& app) {
  auto* train = app.add_subcommand("train", "Train a model");
  train->require_subcommand(1);
  auto t = std::make_shared<TrainCfOptions>();
  auto* cf = train->add_subcommand("cf", "The collaborative-filtering baseline on KKBox data");
  cf->add_option("--data", t->data, "KKBox folder (train.csv, members.csv, songs.csv[, test.csv])")->required();
  cf->add_option("--run", t->run, "Run folder for config, metrics, checkpoints");
  cf->add_option("--resume", t->run, "Continue this run folder from its last.h5 (same options; --epochs may grow)")
      ->each([t](const std::string&) { t->resume = true; });
  cf->add_option("--epochs", t->epochs, "Epochs")->capture_default_str()->check(CLI::Range(1, 100000));
  cf->add_option("--batch", t->batch, "Batch size")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  cf->add_option("--lr", t->lr, "Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  cf->add_option("--lr-schedule", t->lr_schedule, "Learning rate over the run: constant, or cosine (from --lr down to 0 at the last step)")
      ->capture_default_str()->check(CLI::IsMember({"constant", "cosine"}));
  cf->add_option("--weight-decay", t->weight_decay, "L2 penalty added to gradients (embedding rows: only rows a batch touched)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cf->add_option("--seed", t->seed, "Seed of initialisation, shuffling and dropout")->capture_default_str();
  cf->add_option("--device", t->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cf->add_option("--split", t->split, "random (80/10/10) or time (chronological)")->capture_default_str()
      ->check(CLI::IsMember({"random", "time"}));
  cf->add_option("--split-seed", t->split_seed, "Seed of the random split")->capture_default_str();
  cf->add_flag("--strict", t->strict, "A malformed CSV line is an error instead of being skipped");
  cf->add_flag("--no-cache", t->no_cache, "Parse the CSV files even if a cache exists, and write none");
  cf->add_option("--id-dim", t->id_dim, "Member and song embedding size")->capture_default_str()->check(CLI::Range(1, 4096));
  cf->add_option("--feature-dim", t->feature_dim, "Size of the other embeddings")->capture_default_str()->check(CLI::Range(1, 4096));
  cf->add_option("--hidden", t->hidden, "Hidden ReLU units")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cf->add_option("--dropout", t->dropout, "Dropout probability")->capture_default_str()->check(CLI::Range(0.0, 0.99));
  cf->add_option("--train-eval-rows", t->train_eval_rows, "Training rows scored for the per-epoch training metrics")
      ->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  set_training_callback(cf, [t] {
    if (t->run.empty()) throw CLI::RequiredError("--run (or --resume)");
    train_cf(*t);
  });

  auto* predict = app.add_subcommand("predict", "Predict with a trained model");
  predict->require_subcommand(1);
  auto p = std::make_shared<PredictCfOptions>();
  auto* pcf = predict->add_subcommand("cf", "Kaggle submission (id,target) for test.csv from a CF run");
  pcf->add_option("--run", p->run, "Run folder of `musicrec train cf`")->required();
  pcf->add_option("--data", p->data, "KKBox folder with test.csv")->required();
  pcf->add_option("--out", p->out, "Output CSV")->required();
  pcf->add_option("--device", p->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  pcf->add_flag("--strict", p->strict, "A malformed CSV line is an error");
  pcf->callback([p] { predict_cf(*p); });
}

}  // namespace musicrec::apps
