// Kernel-density estimates and sample weights (see kde.h).
#include "engine/kde.h"

#include "engine/op_util.h"
#include "kernels/cpu/cpu_kernels.h"
#if MUSICREC_WITH_CUDA
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace musicrec {
using namespace ops::detail;

KdeMethod parse_kde_method(const std::string& s) {
  if (s == "auto") return KdeMethod::Auto;
  if (s == "exact") return KdeMethod::Exact;
  if (s == "binned") return KdeMethod::Binned;
  if (s == "naive") return KdeMethod::Naive;
  if (s == "tiled") return KdeMethod::Tiled;
  MR_CHECK(false, "unknown KDE method '" + s + "': expected auto, exact, binned, naive or tiled");
  return KdeMethod::Auto;
}

const char* kde_method_name(KdeMethod m) {
  switch (m) {
    case KdeMethod::Auto: return "auto";
    case KdeMethod::Exact: return "exact";
    case KdeMethod::Binned: return "binned";
    case KdeMethod::Naive: return "naive";
    default: return "tiled";
  }
}

double kde_binned_error_bound(double y_min, double y_max, double bandwidth, int64_t bins) {
  return kernels::cpu::kde_binned_error_bound(y_min, y_max, bandwidth, bins);
}

Tensor kde_density(const Tensor& y, const KdeOptions& opt) {
  check_float(y, "kde_density", "y");
  MR_CHECK(y.dim() == 1, "kde_density: y must be 1-D, got " + shape_str(y.shape()));
  MR_CHECK(opt.bandwidth > 0, "kde_density: bandwidth must be positive");
  profiler::OpScope scope("kde_density", y.device());
  const int64_t n = y.numel();
  Tensor d = empty_like(y);
  KdeMethod m = opt.method;
  if (y.is_cuda()) {
    if (m == KdeMethod::Auto) m = KdeMethod::Tiled;
    MR_CHECK(m == KdeMethod::Tiled || m == KdeMethod::Naive,
             std::string("kde_density: method '") + kde_method_name(m) + "' runs on the CPU; CUDA has naive and tiled");
#if MUSICREC_WITH_CUDA
    if (m == KdeMethod::Tiled)
      kernels::cuda::kde_density_tiled(y.data<float>(), n, static_cast<float>(opt.bandwidth), d.data<float>(), stream());
    else
      kernels::cuda::kde_density_naive(y.data<float>(), n, static_cast<float>(opt.bandwidth), d.data<float>(), stream());
#else
    no_cuda("kde_density");
#endif
    return d;
  }
  if (m == KdeMethod::Auto) m = n <= opt.exact_limit ? KdeMethod::Exact : KdeMethod::Binned;
  MR_CHECK(m == KdeMethod::Exact || m == KdeMethod::Binned,
           std::string("kde_density: method '") + kde_method_name(m) + "' runs on CUDA; the CPU has exact and binned");
  dispatch_float(y.dtype(), [&](auto z) {
    using T = decltype(z);
    if (m == KdeMethod::Exact) kernels::cpu::kde_density_exact<T>(y.data<T>(), n, opt.bandwidth, d.data<T>());
    else kernels::cpu::kde_density_binned<T>(y.data<T>(), n, opt.bandwidth, opt.bins, d.data<T>());
  });
  return d;
}

Tensor kde_sample_weights(const Tensor& y, const KdeOptions& opt) {
  Tensor d = kde_density(y, opt);
  profiler::OpScope scope("kde_weights", y.device());
  const int64_t n = y.numel();
  Tensor w = empty_like(y);
  if (n == 0) return w;
  if (y.is_cuda()) {
#if MUSICREC_WITH_CUDA
    size_t bytes = kernels::cuda::kde_weights_scratch_bytes(n);
    Tensor scratch = Tensor::empty({static_cast<int64_t>(bytes / 4 + 1)}, DType::F32, y.device());
    kernels::cuda::kde_weights_from_density(d.data<float>(), w.data<float>(), n, scratch.raw_data(), stream());
#endif
    return w;
  }
  dispatch_float(y.dtype(), [&](auto z) {
    using T = decltype(z);
    kernels::cpu::kde_weights_from_density<T>(d.data<T>(), w.data<T>(), n);
  });
  return w;
}

}  // namespace musicrec
