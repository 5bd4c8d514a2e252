// `musicrec recommend` and `musicrec recommend cf`: the command-line options of the recommendation jobs.
#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/cf_jobs.h"
#include "apps/commands.h"
#include "apps/recommend_job.h"
#include "data/csv_writer.h"
#include "data/msd.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace {

void run(const RecommendOptions& o) { write_recommendations(o, recommend(o)); }

}  // namespace

void register_recommend(CLI::App& app) {
  auto o = std::make_shared<RecommendOptions>();
  auto* cmd = app.add_subcommand("recommend", "A playlist from a listener's Spotify history and a trained pair CNN");
  // Not marked required: `recommend cf` has options of its own; checked in the callback instead.
  cmd->add_option("--model", o->model, "Run folder of `musicrec train pairs` (required)");
  cmd->add_option("--msd", o->msd, "MSD folder the run was trained on (required)");
  cmd->add_option("--history", o->history, "Spotify export folder(s) or file(s) (required)");
  cmd->add_option("--top", o->top, "Songs in the playlist")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  cmd->add_option("--format", o->format, "table, json, m3u or csv")->capture_default_str()
      ->check(CLI::IsMember({"table", "json", "m3u", "csv"}));
  cmd->add_option("--aggregate", o->aggregate, "A candidate's score over the seeds: max or mean")->capture_default_str()
      ->check(CLI::IsMember({"max", "mean"}));
  cmd->add_option("--by", o->by, "Rank the listener's songs by plays or ms (total time)")->capture_default_str()
      ->check(CLI::IsMember({"plays", "ms"}));
  cmd->add_option("--min-ms", o->min_ms, "Listening time from which a stream counts as a play")->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--out", o->out, "Write here instead of standard output");
  auto c = std::make_shared<RecommendCfOptions>();
  auto* cf = cmd->add_subcommand("cf", "Songs a KKBox member is most likely to replay, with a CF run");
  cf->add_option("--run", c->run, "Run folder of `musicrec train cf`")->required();
  cf->add_option("--data", c->data, "KKBox folder the run was trained on")->required();
  cf->add_option("--member", c->member, "The member's msno")->required();
  cf->add_option("--top", c->top, "Songs to list")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  cf->add_option("--device", c->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cf->callback([c] {
    auto recs = recommend_cf(*c);
    fmt::print("{:>4}  {:<46} {:>6}\n", "rank", "song_id", "score");
    for (size_t i = 0; i < recs.size(); ++i) fmt::print("{:>4}  {:<46} {:>6.3f}\n", i + 1, recs[i].song_id, recs[i].score);
  });
  cmd->callback([o, cmd] {
    if (cmd->got_subcommand("cf")) return;
    MR_CHECK(!o->model.empty() && !o->msd.empty() && !o->history.empty(),
             "recommend: --model, --msd and --history are required (or use `musicrec recommend cf`)");
    run(*o);
  });
}

}  // namespace musicrec::apps
