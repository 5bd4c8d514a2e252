// `musicrec report`: the command-line options of the run report (apps/report_job.h).
#include <fmt/core.h>

#include "apps/commands.h"
#include "apps/report_job.h"

namespace musicrec::apps {

void register_report(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "PNG plots and an HTML page of a training run (loss, accuracy, confusion, ROC)");
  cmd->add_option("run", o->run, "Run folder of `musicrec train cf` or `musicrec train pairs`")->required();
  cmd->add_option("--out", o->out, "Folder for the plots and index.html (default RUN/report)");
  cmd->callback([o] {
    for (const auto& f : write_report(*o)) fmt::print("wrote {}\n", f);
  });
}

}  // namespace musicrec::apps
