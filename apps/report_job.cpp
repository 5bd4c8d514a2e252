// `musicrec report` (see report_job.h). The plots are drawn by gnuplot (Debian's gnuplot-nox, pngcairo
// terminal): this file writes the data files and one gnuplot script beside them, runs gnuplot once,
// and writes the HTML page that shows the plots with the configuration and final metrics.
#include "apps/report_job.h"

#include <fmt/core.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/json_files.h"
#include "kernels/error.h"

namespace musicrec::apps {
namespace fs = std::filesystem;

namespace {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream f(path);
  MR_CHECK(f.good(), path + ": missing (is this a run folder of `musicrec train`?)");
  std::vector<nlohmann::json> rows;
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      throw Error(fmt::format("{}: line {} is not JSON ({})", path, n, e.what()));
    }
  }
  MR_CHECK(!rows.empty(), path + ": no finished epoch to report");
  return rows;
}

double num(const nlohmann::json& j, const char* part, const char* key) {
  return j.contains(part) && j[part].contains(key) ? j[part][key].get<double>() : NAN;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string confusion_data(const nlohmann::json& c) {
  // gnuplot's `matrix` reads rows top to bottom as y = 0, 1: row 0 = true label 0.
  return fmt::format("{} {}\n{} {}\n", c[0][0].get<double>(), c[0][1].get<double>(), c[1][0].get<double>(),
                     c[1][1].get<double>());
}

std::string confusion_plot(const std::string& data, const std::string& png, const std::string& title) {
  return fmt::format(R"GP(
set output '{png}'
set title "{title}"
unset key
set size ratio 1
set xrange [-0.5:1.5]
set yrange [1.5:-0.5]
set xtics ("predicted 0" 0, "predicted 1" 1)
set ytics ("true 0" 0, "true 1" 1)
set cbrange [0:1]
set cblabel "share of the true class"
set bmargin
set xlabel "predicted label"
set ylabel "true label"
set palette defined (0 "#ffffff", 1 "#6baed6")
unset grid
plot '{data}' matrix with image, '' matrix using 1:2:(sprintf("%.3f", $3)) with labels font ",18" textcolor rgb "#000000"
unset size
set grid
)GP", fmt::arg("png", png), fmt::arg("title", title), fmt::arg("data", data));
}

}  // namespace

std::vector<std::string> write_report(const ReportOptions& o) {
  const std::string run = o.run;
  const nlohmann::json config = read_json_file(run + "/config.json");
  const std::vector<nlohmann::json> epochs = read_metrics(run + "/metrics.jsonl");
  const bool finished = fs::exists(run + "/final.json");
  const nlohmann::json fin = finished ? read_json_file(run + "/final.json") : nlohmann::json::object();
  const std::string out = o.out.empty() ? run + "/report" : o.out;
  MR_CHECK(out.find_first_of("'\"\n") == std::string::npos,
           "report: the output folder's name may not contain quotes or newlines (it goes into a gnuplot script): " + out);
  fs::create_directories(out);
  const std::string model = config.value("model", "?");

  // Per-epoch data: epoch, train loss, val loss, train acc, val acc, train auc, val auc, running loss.
  std::ostringstream ep;
  ep << "# epoch train_loss validation_loss train_accuracy validation_accuracy train_auc validation_auc train_running_loss\n";
  for (const auto& e : epochs)
    ep << fmt::format("{} {} {} {} {} {} {} {}\n", e.value("epoch", 0), num(e, "train", "loss"), num(e, "validation", "loss"),
                      num(e, "train", "accuracy"), num(e, "validation", "accuracy"), num(e, "train", "auc"),
                      num(e, "validation", "auc"), e.value("train_running_loss", NAN));
  write_text_file(out + "/epochs.dat", ep.str());

  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,600 enhanced font 'sans,12' linewidth 1.5\n"
        "set grid lc rgb '#dddddd'\nset key below box\nset bmargin 7\n";
  const std::string running_label = model == "pairs" ? "train, running (weighted) during the epoch" : "train, running during the epoch";
  gp << fmt::format(R"GP(
set output '{out}/loss.png'
set title "Loss per epoch ({model} run)"
set xlabel "epoch"
set ylabel "log loss (binary cross-entropy)"
set xtics 1
plot '{out}/epochs.dat' using 1:2 with linespoints pt 7 lc rgb '#1f77b4' title 'train', \
     '' using 1:3 with linespoints pt 5 lc rgb '#d62728' title 'validation', \
     '' using 1:8 with lines dt 2 lc rgb '#7f7f7f' title '{running}'
set output '{out}/accuracy.png'
set title "Accuracy and AUC per epoch ({model} run)"
set ylabel "accuracy (threshold 0.5) / ROC AUC"
plot '{out}/epochs.dat' using 1:4 with linespoints pt 7 lc rgb '#1f77b4' title 'train accuracy', \
     '' using 1:5 with linespoints pt 5 lc rgb '#d62728' title 'validation accuracy', \
     '' using 1:6 with lines dt 2 lc rgb '#1f77b4' title 'train AUC', \
     '' using 1:7 with lines dt 2 lc rgb '#d62728' title 'validation AUC'
set xtics autofreq
)GP",
                    fmt::arg("out", out), fmt::arg("model", model), fmt::arg("running", running_label));
  std::vector<std::string> pngs = {"loss.png", "accuracy.png"};

  // Confusion matrices: validation at the best epoch (or the last), and the test part.
  const int best = fin.value("best_epoch", 0);
  const nlohmann::json* val = &epochs.back();
  for (const auto& e : epochs)
    if (e.value("epoch", 0) == best) val = &e;
  if (val->contains("validation") && (*val)["validation"].contains("confusion")) {
    write_text_file(out + "/confusion-validation.dat", confusion_data((*val)["validation"]["confusion"]));
    gp << confusion_plot(out + "/confusion-validation.dat", out + "/confusion-validation.png",
                         fmt::format("Validation, epoch {} (normalised per true class)", val->value("epoch", 0)));
    pngs.push_back("confusion-validation.png");
  }
  if (fin.contains("test") && fin["test"].contains("confusion")) {
    write_text_file(out + "/confusion-test.dat", confusion_data(fin["test"]["confusion"]));
    gp << confusion_plot(out + "/confusion-test.dat", out + "/confusion-test.png",
                         model == "pairs" ? "Balanced test set (normalised per true class)" : "Test part (normalised per true class)");
    pngs.push_back("confusion-test.png");
  }
  if (fin.contains("test") && fin["test"].contains("roc")) {
    const auto& roc = fin["test"]["roc"];
    std::ostringstream r;
    r << "# false_positive_rate true_positive_rate\n";
    for (size_t i = 0; i < roc["fpr"].size(); ++i) r << roc["fpr"][i].get<double>() << " " << roc["tpr"][i].get<double>() << "\n";
    write_text_file(out + "/roc-test.dat", r.str());
    gp << fmt::format(R"GP(
set output '{out}/roc.png'
set bmargin
set title "ROC curve on the test set (AUC {auc:.4f})"
set size ratio 1
set xrange [0:1]
set yrange [0:1]
set xtics 0.2
set ytics 0.2
set xlabel "false-positive rate (1 - specificity)"
set ylabel "true-positive rate (sensitivity)"
set key inside bottom right box opaque
plot '{out}/roc-test.dat' using 1:2 with lines lw 2 lc rgb '#1f77b4' title 'model', x with lines dt 2 lc rgb '#7f7f7f' title 'random guess'
)GP",
                      fmt::arg("out", out), fmt::arg("auc", fin["test"].value("auc", 0.0)));
    pngs.push_back("roc.png");
  }
  write_text_file(out + "/plots.gp", gp.str());

  // One gnuplot call draws them all.
  const std::string cmd = fmt::format("gnuplot '{}/plots.gp' > '{}/gnuplot.log' 2>&1", out, out);
  const int status = std::system(cmd.c_str());
  MR_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 127,
           "report: gnuplot was not found; install it (apt-get install gnuplot-nox, done by scripts/setup.sh)");
  MR_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "report: gnuplot failed on " + out + "/plots.gp (see " + out + "/gnuplot.log)");

  // The page.
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>musicrec run " << html_escape(run)
    << "</title>\n<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       "th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}pre{background:#f7f7f7;padding:1em;overflow:auto}"
       "</style></head><body>\n";
  h << "<h1>musicrec " << html_escape(model) << " run</h1>\n<p>" << html_escape(fs::absolute(run).string()) << " &middot; "
    << epochs.size() << " epochs reported" << (finished ? "" : " (the run has not finished: no test metrics yet)") << "</p>\n";
  if (finished) {
    h << "<h2>Final metrics</h2>\n<table><tr><th></th><th>accuracy</th><th>AUC</th><th>sensitivity</th><th>specificity</th><th>loss</th></tr>\n";
    auto row = [&](const std::string& name, const nlohmann::json& m) {
      auto cell = [&](const char* k) { return m.contains(k) ? fmt::format("{:.4f}", m[k].get<double>()) : std::string("-"); };
      h << "<tr><th>" << name << "</th><td>" << cell("accuracy") << "</td><td>" << cell("auc") << "</td><td>" << cell("sensitivity")
        << "</td><td>" << cell("specificity") << "</td><td>" << cell("loss") << "</td></tr>\n";
    };
    if (fin.contains("test")) row(model == "pairs" ? "balanced test (best epoch " + std::to_string(best) + ")" : "test (best epoch " + std::to_string(best) + ")", fin["test"]);
    if (fin.contains("ceiling")) row("ceiling (true probabilities)", nlohmann::json{{"accuracy", fin["ceiling"].value("test_accuracy", NAN)}, {"auc", fin["ceiling"].value("test_auc", NAN)}});
    if (fin.contains("paper")) {
      for (auto& [k, v] : fin["paper"].items()) row("paper: " + k, nlohmann::json{{"accuracy", v}});
    }
    h << "</table>\n";
  }
  h << "<h2>Plots</h2>\n";
  for (const auto& p : pngs) h << "<img src=\"" << p << "\" alt=\"" << p << "\">\n";
  h << "<h2>Configuration</h2>\n<pre>" << html_escape(json_text(config, 2)) << "</pre>\n</body></html>\n";
  write_text_file(out + "/index.html", h.str());
  std::vector<std::string> written;
  for (const auto& p : pngs) written.push_back(out + "/" + p);
  written.push_back(out + "/index.html");
  return written;
}

}  // namespace musicrec::apps
