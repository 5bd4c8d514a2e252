// Classification metrics on predicted probabilities of the positive class: ROC AUC (ties get the
// average rank, so a constant predictor scores exactly 0.5), accuracy at threshold 0.5, log loss, the
// ROC curve, and the normalised confusion matrix with sensitivity and specificity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
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
// At most `points` points of the curve, evenly spread over its length, always keeping both ends (for
// plots and reports).
RocCurve thin(const RocCurve& c, size_t points = 200);

// Accuracy, sensitivity and specificity when "positive" means prob > threshold.
struct ThresholdMetrics {
  double threshold = 0.5, accuracy = 0, sensitivity = 0, specificity = 0;
};
ThresholdMetrics at_threshold(const std::vector<float>& probs, const std::vector<float>& labels, double threshold);
// The threshold that maximises balanced accuracy, (sensitivity + specificity) / 2, on these scores: the
// midpoint between two neighbouring distinct scores (ties stay on one side). Balanced accuracy does not
// depend on the class ratio, so a threshold chosen on an imbalanced validation set carries over to a
// balanced test set; the training weights (class 1:10, KDE) move the model's outputs off the 0.5 that
// true probabilities would cross.
double balanced_accuracy_threshold(const std::vector<float>& probs, const std::vector<float>& labels);
// Everything a training job reports about a binary classifier on one part of the data.
struct BinarySummary {
  double loss = 0, accuracy = 0, auc = 0.5, sensitivity = 0, specificity = 0;
  double confusion[2][2] = {{0, 0}, {0, 0}};  // rows: true label 0, 1; columns: predicted; normalised per row
  RocCurve roc;                               // thinned
};
BinarySummary summarise(const std::vector<float>& probs, const std::vector<float>& labels);
// As metrics.jsonl and final.json hold it: loss, accuracy, auc, sensitivity, specificity, confusion,
// and (with_roc) "roc": {"fpr": [...], "tpr": [...]}.
nlohmann::json to_json(const BinarySummary& s, bool with_roc = false);

}  // namespace musicrec::metrics
