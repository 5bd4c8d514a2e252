// musicrec: the command line. Parses, validates and hands over to one subcommand; every error the
// engine raises ends here as one line on stderr and exit status 1 (2 for bad usage; 130 for a training
// run stopped by Ctrl-C after saving its state).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "apps/build_info.h"
#include "apps/commands.h"
#include "engine/training_run.h"
#include "kernels/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "musicrec: content-based music recommendation with a from-scratch deep-learning engine (C++/CUDA).\n"
      "Environment: MUSICREC_DEVICE=cpu|cuda|auto, MUSICREC_PROFILE=1 (per-op timing at exit),\n"
      "MUSICREC_TRACE=FILE (the timeline as a Chrome trace, written at exit),\n"
      "MUSICREC_SYNC_CHECK=1 (synchronise after every CUDA launch), MUSICREC_TF32=1 (allow TF32),\n"
      "MUSICREC_POISON=1 (fill new allocations with NaN)."};
  app.set_version_flag("--version", "musicrec " MUSICREC_VERSION);
  app.require_subcommand(1);
  musicrec::apps::register_info(app);
  musicrec::apps::register_smoke(app);
  musicrec::apps::register_synth(app);
  musicrec::apps::register_cf(app);
  musicrec::apps::register_pairs(app);
  musicrec::apps::register_recommend(app);
  musicrec::apps::register_inspect(app);
  musicrec::apps::register_demo(app);
  musicrec::apps::register_report(app);
  musicrec::apps::register_bench(app);
  musicrec::apps::set_command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with code 0; every real usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const musicrec::RunInterrupted&) {
    return 130;  // stopped on Ctrl-C / SIGTERM after saving; the run already printed how to resume
  } catch (const musicrec::Error& e) {
    std::fprintf(stderr, "musicrec: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "musicrec: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}
