// `musicrec report RUNDIR`: PNG plots of a training run like the paper's figures 4 to 6 (loss and
// accuracy per epoch for train and validation, the normalised confusion matrices for validation and
// test, the test ROC curve) and an HTML page showing them with the run's configuration and final
// metrics. Works on CF and pair-CNN runs, and on an unfinished run (the per-epoch plots only).
#pragma once
#include <string>
#include <vector>

namespace musicrec::apps {

struct ReportOptions {
  std::string run, out;  // out: default RUN/report
};

// Returns the files written (PNGs, then index.html).
std::vector<std::string> write_report(const ReportOptions& o);

}  // namespace musicrec::apps
