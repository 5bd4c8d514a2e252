// Per-element math of every op, written once for host and device (see hd.h). The CPU loops in
// kernels/cpu and the CUDA kernels in kernels/cuda call exactly these functions, so CPU and GPU
// differ only in floating-point evaluation order, never in formula.
#pragma once
#include <math.h>  // the C names (expf, log1pf, sqrtf) exist for host and device alike

#include <cmath>
#include <cstdint>

#include "kernels/hd.h"

namespace musicrec::math {

// Explicit float and double overloads: an unqualified exp(float) on the host may silently widen to
// double, which would make the CPU reference differ from the device in more than rounding.
MR_HD float fexp(float x) { return expf(x); }
MR_HD double fexp(double x) { return ::exp(x); }
MR_HD float flog1p(float x) { return log1pf(x); }
MR_HD double flog1p(double x) { return ::log1p(x); }
MR_HD float fsqrt(float x) { return sqrtf(x); }
MR_HD double fsqrt(double x) { return ::sqrt(x); }

template <typename T> MR_HD T relu(T x) { return x > T(0) ? x : T(0); }
// Gradient of ReLU; the kink at 0 takes the left derivative (0), as PyTorch does.
template <typename T> MR_HD T relu_grad(T x, T gy) { return x > T(0) ? gy : T(0); }

// Sigmoid that never overflows: exp is only taken of a non-positive number.
template <typename T> MR_HD T sigmoid(T x) {
  if (x >= T(0)) {
    T z = fexp(-x);
    return T(1) / (T(1) + z);
  }
  T z = fexp(x);
  return z / (T(1) + z);
}
// Sigmoid gradient from the saved output y = sigmoid(x).
template <typename T> MR_HD T sigmoid_grad_from_output(T y, T gy) { return gy * y * (T(1) - y); }

// Binary cross-entropy on a logit x with target y in [0,1], stable for any |x|:
//   -[y log s(x) + (1-y) log(1-s(x))] = max(x,0) - x*y + log(1 + exp(-|x|)).
template <typename T> MR_HD T bce_with_logits(T x, T y) {
  T ax = x >= T(0) ? x : -x;
  return (x > T(0) ? x : T(0)) - x * y + flog1p(fexp(-ax));
}
// d/dx of bce_with_logits = sigmoid(x) - y.
template <typename T> MR_HD T bce_with_logits_grad(T x, T y) { return sigmoid(x) - y; }

// Standard normal density and the Gaussian kernel of bandwidth h: phi((u)/h)/h.
template <typename T> MR_HD T gaussian_kernel(T u, T inv_h) {
  const T inv_sqrt_2pi = T(0.39894228040143267794);
  T z = u * inv_h;
  return inv_sqrt_2pi * inv_h * fexp(T(-0.5) * z * z);
}

// One Adam step on one element (Kingma & Ba, with bias correction folded into the step size).
// lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) and eps_t = eps * sqrt(1 - b2^t) make this exactly
//   p -= lr * mhat / (sqrt(vhat) + eps),  mhat = m/(1-b1^t), vhat = v/(1-b2^t)
// while keeping the per-element work to one sqrt and one division. weight_decay is L2 (added to g).
template <typename T>
MR_HD void adam_update(T& p, T& m, T& v, T g, T b1, T b2, T lr_t, T eps_t, T weight_decay) {
  g += weight_decay * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  p -= lr_t * m / (fsqrt(v) + eps_t);
}

// SGD with (heavy-ball) momentum as PyTorch defines it: buf = mu*buf + g; p -= lr*buf.
template <typename T>
MR_HD void sgd_momentum_update(T& p, T& buf, T g, T lr, T momentum, T weight_decay) {
  g += weight_decay * p;
  buf = momentum * buf + g;
  p -= lr * buf;
}

}  // namespace musicrec::math
