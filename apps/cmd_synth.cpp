// `musicrec synth kkbox`: writes KKBox-format data from a planted model, with its ceiling in truth.json.
#include <fmt/core.h>

#include "apps/commands.h"
#include "data/kkbox_synth.h"

namespace musicrec::apps {

void register_synth(CLI::App& app) {
  auto* synth = app.add_subcommand("synth", "Generate data in the real public formats, from a planted model");
  synth->require_subcommand(1);
  auto o = std::make_shared<data::KkboxSynthOptions>();
  auto out = std::make_shared<std::string>();
  auto* kk = synth->add_subcommand("kkbox", "KKBox files (train, test, members, songs, song_extra_info) + truth.json");
  kk->add_option("--out", *out, "Folder to write")->required();
  kk->add_option("--members", o->members, "Members")->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  kk->add_option("--songs", o->songs, "Songs that get played")->capture_default_str()->check(CLI::Range(int64_t(2), int64_t(1) << 30));
  kk->add_option("--rows", o->rows, "train.csv rows (test.csv gets a third as many)")->capture_default_str()
      ->check(CLI::Range(int64_t(10), int64_t(1) << 33));
  kk->add_option("--seed", o->seed, "Seed")->capture_default_str();
  kk->callback([o, out] {
    data::KkboxSynthSummary s = data::synthesize_kkbox(*out, *o);
    fmt::print("wrote {}/{{train,test,members,songs,song_extra_info}}.csv and truth.json in {:.1f} s\n", *out, s.seconds);
    fmt::print("positive rate {:.3f}; ceiling on the random split's test part: AUC {:.4f}, accuracy {:.4f}\n",
               s.positive_rate, s.test_auc, s.test_accuracy);
  });
}

}  // namespace musicrec::apps
