// Gaussian kernel-density estimates of a 1-D sample and the inverse-density sample weights the pair
// CNN trains with (bandwidth 0.2 in the paper): density_i = 1/n sum_j phi((y_i - y_j)/h)/h, and
// weight_i = (1/density_i) / mean_j(1/density_j), so the weights have mean 1.
// These are preprocessing of labels, not differentiable ops: they never record on the tape.
#pragma once
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace musicrec {

enum class KdeMethod {
  Auto,    // CUDA: tiled; CPU: exact up to 20,000 samples, binned above
  Exact,   // CPU, O(n^2) in double
  Binned,  // CPU, O(n + bins^2), error bound kde_binned_error_bound()
  Naive,   // CUDA, every thread streams y from global memory
  Tiled,   // CUDA, y staged through shared memory
};

KdeMethod parse_kde_method(const std::string& s);
const char* kde_method_name(KdeMethod m);

struct KdeOptions {
  double bandwidth = 0.2;
  KdeMethod method = KdeMethod::Auto;
  int64_t bins = 2048;
  int64_t exact_limit = 20000;  // Auto on the CPU uses Exact up to this many samples
};

// y: float [n] (float64 too on the CPU). Returns a tensor of y's shape, dtype and device.
Tensor kde_density(const Tensor& y, const KdeOptions& opt = {});
Tensor kde_sample_weights(const Tensor& y, const KdeOptions& opt = {});
// The absolute error bound of the binned density for samples in [y_min, y_max].
double kde_binned_error_bound(double y_min, double y_max, double bandwidth, int64_t bins);

}  // namespace musicrec
