// CUDA optimizer steps, dense and row-sparse, on the shared per-element update math (kernels/math.h).
// Row-sparse steps skip padding rows (index -1) left by the embedding backward.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/math.h"

namespace musicrec::kernels::cuda {
namespace {

__global__ void k_adam_dense(float* p, float* m, float* v, const float* g, int64_t n, float b1, float b2, float lr_t,
                             float eps_t, float wd) {
  MR_GRID_STRIDE(i, n) math::adam_update(p[i], m[i], v[i], g[i], b1, b2, lr_t, eps_t, wd);
}
__global__ void k_adam_rows(float* p, float* m, float* v, const int32_t* rows, const float* g, int64_t U, int64_t dim,
                            float b1, float b2, float lr_t, float eps_t, float wd) {
  MR_GRID_STRIDE(i, U * dim) {
    int32_t r = rows[i / dim];
    if (r < 0) continue;
    int64_t k = static_cast<int64_t>(r) * dim + i % dim;
    math::adam_update(p[k], m[k], v[k], g[i], b1, b2, lr_t, eps_t, wd);
  }
}
__global__ void k_sgd_dense(float* p, float* buf, const float* g, int64_t n, float lr, float mu, float wd) {
  MR_GRID_STRIDE(i, n) math::sgd_momentum_update(p[i], buf[i], g[i], lr, mu, wd);
}
__global__ void k_sgd_rows(float* p, float* buf, const int32_t* rows, const float* g, int64_t U, int64_t dim, float lr,
                           float mu, float wd) {
  MR_GRID_STRIDE(i, U * dim) {
    int32_t r = rows[i / dim];
    if (r < 0) continue;
    int64_t k = static_cast<int64_t>(r) * dim + i % dim;
    math::sgd_momentum_update(p[k], buf[k], g[i], lr, mu, wd);
  }
}

}  // namespace

void adam_dense(float* p, float* m, float* v, const float* g, int64_t n, float b1, float b2, float lr_t, float eps_t,
                float wd, cudaStream_t s) {
  if (n == 0) return;
  k_adam_dense<<<grid_for(n), kBlock, 0, s>>>(p, m, v, g, n, b1, b2, lr_t, eps_t, wd);
  MR_LAUNCH_CHECK("adam_dense", s);
}
void adam_rows(float* p, float* m, float* v, const int32_t* rows, const float* g, int64_t U, int64_t dim, float b1,
               float b2, float lr_t, float eps_t, float wd, cudaStream_t s) {
  if (U * dim == 0) return;
  k_adam_rows<<<grid_for(U * dim), kBlock, 0, s>>>(p, m, v, rows, g, U, dim, b1, b2, lr_t, eps_t, wd);
  MR_LAUNCH_CHECK("adam_rows", s);
}
void sgd_dense(float* p, float* buf, const float* g, int64_t n, float lr, float mu, float wd, cudaStream_t s) {
  if (n == 0) return;
  k_sgd_dense<<<grid_for(n), kBlock, 0, s>>>(p, buf, g, n, lr, mu, wd);
  MR_LAUNCH_CHECK("sgd_dense", s);
}
void sgd_rows(float* p, float* buf, const int32_t* rows, const float* g, int64_t U, int64_t dim, float lr, float mu,
              float wd, cudaStream_t s) {
  if (U * dim == 0) return;
  k_sgd_rows<<<grid_for(U * dim), kBlock, 0, s>>>(p, buf, rows, g, U, dim, lr, mu, wd);
  MR_LAUNCH_CHECK("sgd_rows", s);
}

}  // namespace musicrec::kernels::cuda
