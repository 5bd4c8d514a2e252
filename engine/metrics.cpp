// Classification metrics (see metrics.h).
#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/error.h"

namespace musicrec::metrics {

namespace {
std::vector<size_t> order_by_score(const std::vector<float>& s) {
  std::vector<size_t> o(s.size());
  std::iota(o.begin(), o.end(), 0);
  std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return s[a] < s[b]; });
  return o;
}
}  // namespace

double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  MR_CHECK(scores.size() == labels.size(), "roc_auc: scores and labels differ in length");
  std::vector<size_t> o = order_by_score(scores);
  // Mann-Whitney U with average ranks for ties.
  double rank_sum_pos = 0;
  int64_t pos = 0, n = int64_t(o.size());
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j + 1 < n && scores[o[size_t(j + 1)]] == scores[o[size_t(i)]]) ++j;
    double avg_rank = 0.5 * double(i + j) + 1.0;
    for (int64_t k = i; k <= j; ++k)
      if (labels[o[size_t(k)]] > 0.5f) {
        rank_sum_pos += avg_rank;
        ++pos;
      }
    i = j + 1;
  }
  int64_t neg = n - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum_pos - double(pos) * double(pos + 1) / 2.0) / (double(pos) * double(neg));
}

double accuracy(const std::vector<float>& probs, const std::vector<float>& labels, double threshold) {
  MR_CHECK(probs.size() == labels.size() && !probs.empty(), "accuracy: empty or mismatched inputs");
  int64_t right = 0;
  for (size_t i = 0; i < probs.size(); ++i) right += (probs[i] > threshold) == (labels[i] > 0.5f);
  return double(right) / double(probs.size());
}

double log_loss(const std::vector<float>& probs, const std::vector<float>& labels) {
  MR_CHECK(probs.size() == labels.size() && !probs.empty(), "log_loss: empty or mismatched inputs");
  double s = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    double p = std::min(std::max(double(probs[i]), 1e-7), 1 - 1e-7);
    s -= labels[i] > 0.5f ? std::log(p) : std::log(1 - p);
  }
  return s / double(probs.size());
}

RocCurve roc_curve(const std::vector<float>& scores, const std::vector<float>& labels) {
  std::vector<size_t> o = order_by_score(scores);
  std::reverse(o.begin(), o.end());  // highest score first
  double pos = 0, neg = 0;
  for (float l : labels) (l > 0.5f ? pos : neg) += 1;
  RocCurve c;
  c.fpr.push_back(0);
  c.tpr.push_back(0);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    (labels[o[i]] > 0.5f ? tp : fp) += 1;
    if (i + 1 == o.size() || scores[o[i + 1]] != scores[o[i]]) {
      c.fpr.push_back(neg > 0 ? fp / neg : 0);
      c.tpr.push_back(pos > 0 ? tp / pos : 0);
    }
  }
  return c;
}

RocCurve thin(const RocCurve& c, size_t points) {
  if (c.fpr.size() <= points || points < 2) return c;
  RocCurve t;
  for (size_t k = 0; k < points; ++k) {
    const size_t i = k * (c.fpr.size() - 1) / (points - 1);
    t.fpr.push_back(c.fpr[i]);
    t.tpr.push_back(c.tpr[i]);
  }
  return t;
}

ThresholdMetrics at_threshold(const std::vector<float>& probs, const std::vector<float>& labels, double threshold) {
  MR_CHECK(probs.size() == labels.size() && !probs.empty(), "at_threshold: empty or mismatched inputs");
  int64_t tp = 0, tn = 0, pos = 0, neg = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const bool p = probs[i] > threshold, y = labels[i] > 0.5f;
    pos += y;
    neg += !y;
    tp += p && y;
    tn += !p && !y;
  }
  ThresholdMetrics m;
  m.threshold = threshold;
  m.accuracy = double(tp + tn) / double(probs.size());
  m.sensitivity = pos ? double(tp) / double(pos) : 0.0;
  m.specificity = neg ? double(tn) / double(neg) : 0.0;
  return m;
}

double balanced_accuracy_threshold(const std::vector<float>& probs, const std::vector<float>& labels) {
  MR_CHECK(probs.size() == labels.size() && !probs.empty(), "balanced_accuracy_threshold: empty or mismatched inputs");
  std::vector<size_t> order(probs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
  int64_t pos = 0, neg = 0;
  for (float y : labels) (y > 0.5f ? pos : neg) += 1;
  if (pos == 0 || neg == 0) return 0.5;
  // Walking down the sorted scores, everything above the cut is predicted positive.
  double best = -1, best_t = 0.5;
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k <= order.size(); ++k) {
    if (k == 0 || k == order.size() || probs[order[k]] != probs[order[k - 1]]) {
      const double bal = 0.5 * (double(tp) / double(pos) + double(neg - fp) / double(neg));
      if (bal > best) {
        best = bal;
        const double above = k == 0 ? 1.0 : double(probs[order[k - 1]]);
        const double below = k == order.size() ? 0.0 : double(probs[order[k]]);
        best_t = k == 0 ? std::max(above, below) : 0.5 * (above + below);
      }
    }
    if (k < order.size()) (labels[order[k]] > 0.5f ? tp : fp) += 1;
  }
  return best_t;
}

BinarySummary summarise(const std::vector<float>& probs, const std::vector<float>& labels) {
  BinarySummary s;
  if (probs.empty()) return s;
  s.loss = log_loss(probs, labels);
  s.accuracy = accuracy(probs, labels);
  s.auc = roc_auc(probs, labels);
  double c[2][2] = {{0, 0}, {0, 0}};
  for (size_t i = 0; i < probs.size(); ++i) c[labels[i] > 0.5f][probs[i] > 0.5f] += 1;
  for (int r = 0; r < 2; ++r) {
    const double n = c[r][0] + c[r][1];
    for (int k = 0; k < 2; ++k) s.confusion[r][k] = n > 0 ? c[r][k] / n : 0;
  }
  s.specificity = s.confusion[0][0];
  s.sensitivity = s.confusion[1][1];
  s.roc = thin(roc_curve(probs, labels));
  return s;
}

nlohmann::json to_json(const BinarySummary& e, bool with_roc) {
  nlohmann::json j = {{"loss", e.loss}, {"accuracy", e.accuracy}, {"auc", e.auc}, {"sensitivity", e.sensitivity},
                      {"specificity", e.specificity},
                      {"confusion", {{e.confusion[0][0], e.confusion[0][1]}, {e.confusion[1][0], e.confusion[1][1]}}}};
  if (with_roc) j["roc"] = {{"fpr", e.roc.fpr}, {"tpr", e.roc.tpr}};
  return j;
}

}  // namespace musicrec::metrics
