// CPU 2x2 max pooling with stride 2; an odd last row or column is dropped (floor), as in PyTorch's
// default. The winner's index is kept so backward routes the gradient without recomputing.
#include <initializer_list>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/instantiate.h"

namespace musicrec::kernels::cpu {

template <typename T> void maxpool2x2_forward(const T* x, T* y, int32_t* argmax, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = (2 * oh) * W + 2 * ow;
        // Row-major window order with strict '>' keeps the first maximum on ties.
        for (int64_t cand : {best + 1, best + W, best + W + 1})
          if (xp[cand] > xp[best]) best = cand;
        int64_t o = (p * OH + oh) * OW + ow;
        y[o] = xp[best];
        argmax[o] = static_cast<int32_t>(best);
      }
  }
}

template <typename T>
void maxpool2x2_backward(const T* gy, const int32_t* argmax, T* gx, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = H / 2, OW = W / 2;
  fill<T>(gx, planes * H * W, T(0));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = 0; o < OH * OW; ++o) gx[p * H * W + argmax[p * OH * OW + o]] += gy[p * OH * OW + o];
}

#define MR_INST(T)                                                                             \
  template void maxpool2x2_forward<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t);      \
  template void maxpool2x2_backward<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t);
MR_INSTANTIATE_FD(MR_INST)

}  // namespace musicrec::kernels::cpu
