// CPU losses (per-row softmax cross-entropy, per-element weighted BCE on logits).
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"
#include "kernels/math.h"

namespace musicrec::kernels::cpu {

template <typename T>
void softmax_xent_forward(const T* logits, const int32_t* targets, T* probs, T* loss, int64_t rows, int64_t classes) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * classes;
    T* p = probs + r * classes;
    T mx = x[0];
    for (int64_t c = 1; c < classes; ++c) mx = x[c] > mx ? x[c] : mx;
    T s = 0;
    for (int64_t c = 0; c < classes; ++c) {
      p[c] = math::fexp(x[c] - mx);
      s += p[c];
    }
    for (int64_t c = 0; c < classes; ++c) p[c] /= s;
    loss[r] = std::log(s) + mx - x[targets[r]];
  }
}

template <typename T>
void softmax_xent_backward(const T* probs, const int32_t* targets, const T* gloss, T* gx, int64_t rows, int64_t classes) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < classes; ++c)
      gx[r * classes + c] = gloss[r] * (probs[r * classes + c] - (c == targets[r] ? T(1) : T(0)));
}

template <typename T> void bce_logits_forward(const T* x, const T* y, const T* w, T* loss, int64_t n) {
  for (int64_t i = 0; i < n; ++i) loss[i] = (w ? w[i] : T(1)) * math::bce_with_logits(x[i], y[i]);
}
template <typename T> void bce_logits_backward(const T* x, const T* y, const T* w, const T* gloss, T* gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = gloss[i] * (w ? w[i] : T(1)) * math::bce_with_logits_grad(x[i], y[i]);
}

#define MR_INST(T)                                                                                           \
  template void softmax_xent_forward<T>(const T*, const int32_t*, T*, T*, int64_t, int64_t);                 \
  template void softmax_xent_backward<T>(const T*, const int32_t*, const T*, T*, int64_t, int64_t);          \
  template void bce_logits_forward<T>(const T*, const T*, const T*, T*, int64_t);                            \
  template void bce_logits_backward<T>(const T*, const T*, const T*, const T*, T*, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
