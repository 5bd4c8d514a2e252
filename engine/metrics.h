// Classification metrics on predicted probabilities of the positive class: ROC AUC (ties get the
// average rank, so a constant predictor scores exactly 0.5), accuracy at threshold 0.5 and log loss.
#pragma once
#include <cstdint>
#include <vector>

namespace musicrec::metrics {

// Labels are 0/1. Returns 0.5 when one class is absent (AUC undefined).
double roc_auc(const std::vector<float>& scores, const std::vector<float>& labels);
double accuracy(const std::vector<float>& probs, const std::vector<float>& labels, double threshold = 0.5);
double log_loss(const std::vector<float>& probs, const std::vector<float>& labels);

// The points of the ROC curve (false- and true-positive rates), one per distinct score.
struct RocCurve {
  std::vector<double> fpr, tpr;
};
RocCurve roc_curve(const std::vector<float>& scores, const std::vector<float>& labels);

}  // namespace musicrec::metrics
