// `musicrec synth kkbox`: writes KKBox-format data from a planted model, with its ceiling in truth.json.
#include <fmt/core.h>

#include "apps/commands.h"
#include "data/kkbox_synth.h"
#include "data/msd_synth.h"

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

  auto mo = std::make_shared<data::MsdSynthOptions>();
  auto mout = std::make_shared<std::string>();
  auto* msd = synth->add_subcommand("msd", "MSD track files, Last.fm train/test JSON trees and Spotify histories + truth.json");
  msd->add_option("--out", *mout, "Folder to write")->required();
  msd->add_option("--songs", mo->songs, "Songs")->capture_default_str()->check(CLI::Range(int64_t(20), int64_t(1) << 24));
  msd->add_option("--listeners", mo->listeners, "Spotify listeners")->capture_default_str()->check(CLI::Range(0, 100000));
  msd->add_option("--styles", mo->styles, "Planted styles")->capture_default_str()->check(CLI::Range(2, 1000));
  msd->add_option("--seed", mo->seed, "Seed")->capture_default_str();
  msd->callback([mo, mout] {
    data::MsdSynthSummary s = data::synthesize_msd(*mout, *mo);
    fmt::print("wrote {}/{{data,lastfm_train,lastfm_test,spotify}} and truth.json in {:.1f} s\n", *mout, s.seconds);
    fmt::print("ceiling on the {} balanced test pairs: accuracy {:.4f}, AUC {:.4f}\n", s.test_pairs, s.test_accuracy, s.test_auc);
  });
}

}  // namespace musicrec::apps
