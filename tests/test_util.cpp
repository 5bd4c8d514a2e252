// Test helpers (see test_util.h).
#include "tests/test_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/philox.h"
#if MUSICREC_WITH_CUDA
#include "engine/cuda_context.h"
#endif

namespace musicrec::test {

Tensor random_tensor(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = lo + (hi - lo) * (rng::uniform(seed, 99, i) - 1e-9);
  Tensor t = Tensor::from_vector(v, shape);
  return dtype == DType::F64 ? t : t.to_dtype(dtype);
}

Tensor distinct_tensor(const Shape& shape, uint64_t seed, double gap, DType dtype) {
  const size_t n = static_cast<size_t>(shape_numel(shape));
  std::vector<size_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t i = n; i > 1; --i) std::swap(perm[i - 1], perm[size_t(rng::uniform(seed, 98, i) * double(i - 1))]);
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (double(perm[i]) - double(n) / 2) * gap;
  Tensor t = Tensor::from_vector(v, shape);
  return dtype == DType::F64 ? t : t.to_dtype(dtype);
}

PooledGradient pooled_gradient(int64_t planes, int64_t OH, int64_t OW, uint64_t seed) {
  const Tensor out = distinct_tensor({planes * OH * OW}, seed, 0.001, DType::F32);
  PooledGradient p;
  std::vector<float> maxima(size_t(planes * (OH / 2) * (OW / 2)));
  p.argmax.resize(maxima.size());
  kernels::cpu::maxpool2x2_forward<float>(out.data<float>(), maxima.data(), p.argmax.data(), planes, OH, OW);
  p.pooled = random_tensor({int64_t(maxima.size())}, seed + 1, -1, 1, DType::F32).to_vector<float>();
  p.dense.resize(size_t(planes * OH * OW));
  kernels::cpu::maxpool2x2_backward<float>(p.pooled.data(), p.argmax.data(), p.dense.data(), planes, OH, OW);
  return p;
}

Tensor random_indices(int64_t n, int64_t vocab, uint64_t seed, Device device) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = int32_t(std::min<double>(vocab - 1, rng::uniform(seed, 97, i) * vocab));
  return Tensor::from_vector(v, {n}, device);
}

Tensor weighted_sum(const Tensor& out, const Tensor& weights) {
  return ops::matmul(ops::reshape(out, {1, -1}), ops::reshape(weights, {-1, 1}));
}

void gradcheck(const Fn& f, std::vector<Tensor> inputs, const GradCheckOptions& opt) {
  for (auto& t : inputs) {
    ASSERT_EQ(t.dtype(), DType::F64) << "gradcheck runs in double precision";
    t.set_requires_grad(true);
  }
  Tensor probe;
  {
    autograd::NoGradGuard ng;
    probe = f(inputs);
  }
  Tensor R = random_tensor(probe.shape(), 4242, 0.5, 1.5);
  // Prefill each gradient: backward must add to it, not overwrite it.
  std::vector<Tensor> prefill;
  for (size_t i = 0; i < inputs.size(); ++i) {
    prefill.push_back(random_tensor(inputs[i].shape(), 777 + i, -2, 2));
    inputs[i].set_grad(prefill.back().clone());
  }
  Tensor loss = weighted_sum(f(inputs), R);
  loss.backward();
  int reported = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor g = inputs[i].grad();
    ASSERT_TRUE(g.defined()) << "input " << i << " got no gradient";
    std::vector<double> analytic = g.to_vector<double>(), pre = prefill[i].to_vector<double>();
    double* x = inputs[i].data<double>();
    for (int64_t k = 0; k < inputs[i].numel(); ++k) {
      if (opt.skip && opt.skip(i, k)) continue;
      const double orig = x[k];
      double fp, fm;
      {
        autograd::NoGradGuard ng;
        x[k] = orig + opt.eps;
        fp = weighted_sum(f(inputs), R).item();
        x[k] = orig - opt.eps;
        fm = weighted_sum(f(inputs), R).item();
        x[k] = orig;
      }
      const double numeric = (fp - fm) / (2 * opt.eps);
      const double a = analytic[size_t(k)] - pre[size_t(k)];
      const double scale = std::max({std::fabs(a), std::fabs(numeric), 1.0});
      if (!(std::fabs(a - numeric) <= opt.tol * scale) && reported++ < 10)  // NaN fails too
        ADD_FAILURE() << "input " << i << " element " << k << ": analytic " << a << " vs numeric " << numeric;
    }
  }
}

::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << shape_str(a.shape()) << " vs " << shape_str(b.shape());
  std::vector<double> va = a.cpu().to_dtype(DType::F64).to_vector<double>();
  std::vector<double> vb = b.cpu().to_dtype(DType::F64).to_vector<double>();
  double worst = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < va.size(); ++i) {
    double err = std::fabs(va[i] - vb[i]);
    bool bad = !(err <= atol + rtol * std::fabs(vb[i]));  // NaN counts as bad
    if (bad && (worst_i < 0 || !(err <= worst))) {
      worst = err;
      worst_i = int64_t(i);
    }
  }
  if (worst_i >= 0)
    return ::testing::AssertionFailure() << "element " << worst_i << ": " << va[size_t(worst_i)] << " vs "
                                         << vb[size_t(worst_i)] << " (rtol " << rtol << ", atol " << atol << ")";
  return ::testing::AssertionSuccess();
}

void cuda_parity(const Fn& f, const std::vector<Tensor>& cpu_inputs, const std::vector<bool>& differentiable,
                 double rtol, double atol) {
#if MUSICREC_WITH_CUDA
  auto& gpu_alloc = CudaContext::get().allocator();
  bool old_poison = gpu_alloc.poison();
  gpu_alloc.set_poison(true);
  auto run = [&](Device dev, std::vector<Tensor>& ins) {
    for (size_t i = 0; i < cpu_inputs.size(); ++i) {
      ins.push_back(cpu_inputs[i].to(dev).clone());
      if (differentiable[i]) ins.back().set_requires_grad(true);
    }
    Tensor out = f(ins);
    Tensor R = random_tensor(out.shape(), 4242, 0.5, 1.5, DType::F32).to(dev);
    weighted_sum(out, R).backward();
    return out;
  };
  std::vector<Tensor> in_cpu, in_gpu;
  Tensor out_cpu = run(Device::cpu(), in_cpu);
  Tensor out_gpu = run(Device::cuda(0), in_gpu);
  CudaContext::get().synchronize();
  EXPECT_TRUE(all_close(out_gpu, out_cpu, rtol, atol)) << "forward output";
  for (size_t i = 0; i < cpu_inputs.size(); ++i) {
    if (!differentiable[i]) continue;
    EXPECT_TRUE(all_close(in_gpu[i].grad(), in_cpu[i].grad(), rtol, atol)) << "gradient of input " << i;
  }
  gpu_alloc.set_poison(old_poison);
#else
  (void)f;
  (void)cpu_inputs;
  (void)differentiable;
  (void)rtol;
  (void)atol;
  GTEST_FAIL() << "cuda_parity called in a build without CUDA";
#endif
}

}  // namespace musicrec::test
