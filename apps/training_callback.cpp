// `--profile` for the training commands (see commands.h).
#include <fmt/core.h>

#include "apps/commands.h"
#include "engine/profiler.h"

namespace musicrec::apps {

void set_training_callback(CLI::App* cmd, std::function<void()> train) {
  auto profile = std::make_shared<bool>(false);
  cmd->add_flag("--profile", *profile, "Print a per-op and per-phase time table after the run (slows GPU runs a little)");
  cmd->callback([profile, train = std::move(train)] {
    if (*profile) profiler::set_enabled(true);
    train();
    if (*profile) fmt::print("{}", profiler::report());
  });
}

}  // namespace musicrec::apps
