// `musicrec bench`: the command-line options of the benchmark runner (apps/bench_job.h).
#include <fmt/core.h>

#include "apps/bench_job.h"
#include "apps/commands.h"

namespace musicrec::apps {

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Run the benchmarks this machine can run and print rates against its own ceilings");
  cmd->add_flag("--quick", o->quick, "A run of a minute or two: the op benchmarks, 3 repetitions, short minimum times");
  cmd->add_flag("--gpu-only", o->gpu_only, "Only the GPU kernel benchmarks (an error where there is no CUDA device)");
  cmd->add_option("--filter", o->filter, "Only benchmarks whose name matches this regex (Google Benchmark's filter); the ceilings always run");
  cmd->add_option("--out", o->out, "Also write the table (markdown) to this file");
  cmd->add_option("--against", o->against,
                  "Another build's bin folder (e.g. an older checkout's build/bin): run its benchmark programs "
                  "interleaved with this build's and print both times per row with their ratio")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--rounds", o->rounds, "With --against: rounds, each running both builds' programs, which goes first alternating (default 4: "
                  "an even count gives each build the first turn as often)")
      ->check(CLI::Range(1, 1000))
      ->needs("--against");
  cmd->callback([o] { fmt::print("{}", run_benchmarks(*o)); });
}

}  // namespace musicrec::apps
