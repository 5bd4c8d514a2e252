// Metrics against hand-computed values, ties included.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/metrics.h"

namespace musicrec::metrics {
namespace {

TEST(Metrics, AucHandComputedWithTies) {
  // Positives at 0.8 and 0.4, negatives at 0.4 and 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 tie, 0.4>0.1) = 3.5/4.
  EXPECT_DOUBLE_EQ(roc_auc({0.8f, 0.4f, 0.4f, 0.1f}, {1, 1, 0, 0}), 0.875);
  EXPECT_DOUBLE_EQ(roc_auc({0.5f, 0.5f, 0.5f}, {1, 0, 1}), 0.5);  // constant scores
  EXPECT_DOUBLE_EQ(roc_auc({0.1f, 0.9f}, {1, 0}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.3f, 0.2f}, {1, 1}), 0.5);  // one class only
}

TEST(Metrics, AccuracyAndLogLoss) {
  EXPECT_DOUBLE_EQ(accuracy({0.9f, 0.2f, 0.6f, 0.4f}, {1, 0, 0, 0}), 0.75);
  EXPECT_NEAR(log_loss({0.9f, 0.2f}, {1, 0}), -(std::log(0.9) + std::log(0.8)) / 2, 1e-6);
  EXPECT_TRUE(std::isfinite(log_loss({0.0f, 1.0f}, {1, 0})));  // clipped, not infinite
}

TEST(Metrics, RocCurveEndsAtOneOneAndMatchesTheAuc) {
  std::vector<float> s = {0.9f, 0.8f, 0.7f, 0.6f, 0.55f, 0.4f}, y = {1, 1, 0, 1, 0, 0};
  RocCurve c = roc_curve(s, y);
  EXPECT_DOUBLE_EQ(c.fpr.back(), 1.0);
  EXPECT_DOUBLE_EQ(c.tpr.back(), 1.0);
  double area = 0;
  for (size_t i = 1; i < c.fpr.size(); ++i) area += (c.fpr[i] - c.fpr[i - 1]) * (c.tpr[i] + c.tpr[i - 1]) / 2;
  EXPECT_NEAR(area, roc_auc(s, y), 1e-12);
}

}  // namespace
}  // namespace musicrec::metrics

namespace musicrec::metrics {
namespace {

TEST(Metrics, BalancedAccuracyThresholdSplitsShiftedScoresAndIgnoresTheClassRatio) {
  // Separable scores all above 0.5 (as a model trained with class weights 1:10 gives): 0.5 calls every
  // pair similar, the chosen threshold separates them.
  const std::vector<float> p = {0.95f, 0.9f, 0.7f, 0.6f}, y = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(at_threshold(p, y, 0.5).accuracy, 0.5);
  const double t = balanced_accuracy_threshold(p, y);
  EXPECT_NEAR(t, 0.8, 1e-6);
  const ThresholdMetrics m = at_threshold(p, y, t);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.sensitivity, 1.0);
  EXPECT_DOUBLE_EQ(m.specificity, 1.0);
  // Nine times the negatives (a 9:1 validation set) and one misplaced negative: the same cut, because
  // balanced accuracy weighs the classes equally.
  std::vector<float> p9 = {0.95f, 0.92f, 0.9f}, y9 = {1, 0, 1};
  for (int k = 0; k < 9; ++k) {
    p9.insert(p9.end(), {0.7f, 0.6f});
    y9.insert(y9.end(), {0, 0});
  }
  const double t9 = balanced_accuracy_threshold(p9, y9);
  EXPECT_NEAR(t9, 0.8, 1e-6);  // below the misplaced 0.92 negative: losing 1 of 19 negatives beats losing 1 of 2 positives
  EXPECT_NEAR(at_threshold(p9, y9, t9).sensitivity, 1.0, 1e-12);
}

TEST(Metrics, BalancedAccuracyThresholdKeepsTiesTogether) {
  const std::vector<float> p = {0.5f, 0.5f, 0.5f, 0.5f, 0.2f}, y = {1, 0, 1, 0, 0};
  const double t = balanced_accuracy_threshold(p, y);
  // Cutting inside the tie is impossible: either all four 0.5s are positive or none are.
  const ThresholdMetrics m = at_threshold(p, y, t);
  EXPECT_TRUE((m.sensitivity == 1.0 && m.specificity == 1.0 / 3.0) || (m.sensitivity == 0.0 && m.specificity == 1.0));
  EXPECT_DOUBLE_EQ(balanced_accuracy_threshold({0.3f, 0.4f}, {1, 1}), 0.5);  // one class: the default
}

}  // namespace
}  // namespace musicrec::metrics
