// `--profile` and `--trace` for the training commands (see commands.h).
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>

#include "apps/commands.h"
#include "engine/profiler.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace fs = std::filesystem;

void set_training_callback(CLI::App* cmd, std::function<void()> train) {
  auto profile = std::make_shared<bool>(false);
  auto trace = std::make_shared<std::string>();
  cmd->add_flag("--profile", *profile, "Print a per-op and per-phase time table after the run (slows GPU runs a little)");
  cmd->add_option("--trace", *trace,
                  "Write the run's timeline to this file as a Chrome trace (every op and phase, host threads and the "
                  "GPU stream; open it in ui.perfetto.dev or chrome://tracing)");
  cmd->callback([profile, trace, train = std::move(train)] {
    if (*profile) profiler::set_enabled(true);
    if (!trace->empty()) {
      // Checked before the run, not found out after it.
      const fs::path parent = fs::absolute(*trace).parent_path();
      MR_CHECK(fs::is_directory(parent), "--trace " + *trace + ": the folder " + parent.string() + " does not exist");
      MR_CHECK(::access(parent.c_str(), W_OK) == 0, "--trace " + *trace + ": cannot write in " + parent.string());
      profiler::start_trace();
    }
    train();
    if (!trace->empty()) {
      profiler::write_trace(*trace);
      fmt::print(stderr, "trace: {}\n", *trace);
    }
    if (*profile) fmt::print("{}", profiler::report());
  });
}

}  // namespace musicrec::apps
