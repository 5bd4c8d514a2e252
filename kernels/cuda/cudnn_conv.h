// cuDNN convolution for one shape (NCHW float32, stride 1, zero padding, cross-correlation as on the
// CPU). A ConvPlan holds the descriptors and the algorithms chosen once for that shape: the best
// heuristic choice that fits the workspace limit (deterministic backward algorithms only unless told
// otherwise), or the fastest when each algorithm has been run and timed on scratch buffers
// (cudnnFind*AlgorithmEx, as PyTorch's cudnn.benchmark), or, when the workspace cannot be had,
// algorithms that need no workspace at all.
// It uses cuDNN's legacy convolution API (deprecated in 9.x but complete); keeping it behind this
// class lets the graph API replace it without touching the engine.
#pragma once
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/error.h"

namespace musicrec::kernels::cuda {

std::string cudnn_status_text(cudnnStatus_t s);

struct ConvShape {
  int64_t N, C, H, W, K, KH, KW, ph, pw;
  int64_t OH() const { return H + 2 * ph - KH + 1; }
  int64_t OW() const { return W + 2 * pw - KW + 1; }
  int64_t input_elems() const { return N * C * H * W; }
  int64_t filter_elems() const { return K * C * KH * KW; }
  int64_t output_elems() const { return N * K * OH() * OW(); }
  bool operator==(const ConvShape& o) const {
    return N == o.N && C == o.C && H == o.H && W == o.W && K == o.K && KH == o.KH && KW == o.KW && ph == o.ph &&
           pw == o.pw;
  }
};

struct ConvAlgos {
  int forward = -1, backward_data = -1, backward_filter = -1;
  size_t forward_ws = 0, backward_data_ws = 0, backward_filter_ws = 0;
  bool fallback = false;  // true when chosen for zero workspace
  bool measured = false;  // true when chosen by timing every algorithm (ConvPlan::measure_algorithms)
  size_t max_ws() const;
  std::string describe() const;
};

// Device buffers on which ConvPlan::measure_algorithms runs every algorithm: x holds input_elems()
// floats (the backward-data pass writes into it), w filter_elems() (the backward-filter pass writes
// into it), y output_elems() (the forward pass writes into it); ws is up to ws_bytes of workspace.
struct ConvScratch {
  void* x = nullptr;
  void* w = nullptr;
  void* y = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
};

// The first of cuDNN's per-algorithm results (ranked fastest first, by heuristics or by timing) that
// succeeded, fits the limit (or, with zero_ws_only, needs no workspace) and, where asked, is
// deterministic. Returns false when none qualifies.
template <typename Perf>
bool pick_algorithm(const Perf* perf, int returned, size_t limit, bool zero_ws_only, bool deterministic, int* algo,
                    size_t* ws) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS) continue;
    if (zero_ws_only ? p.memory != 0 : p.memory > limit) continue;
    if (deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    *algo = static_cast<int>(p.algo);
    *ws = p.memory;
    return true;
  }
  return false;
}

class ConvPlan {
 public:
  ConvPlan(cudnnHandle_t h, const ConvShape& shape, bool allow_tf32, bool deterministic, size_t workspace_limit);
  ~ConvPlan();
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;

  const ConvAlgos& algos() const { return algos_; }
  const ConvShape& shape() const { return shape_; }
  bool deterministic() const { return deterministic_; }
  // Re-chooses every pass with algorithms that need no workspace.
  void use_zero_workspace_algorithms(cudnnHandle_t h);
  // Re-chooses every pass by running each algorithm on the scratch buffers (their contents are
  // overwritten) and taking the fastest that qualifies, with at most min(limit, s.ws_bytes) of
  // workspace. Timings vary from run to run, so two processes may choose differently (and round
  // differently); within a process the plan, and so the bits, stay fixed.
  void measure_algorithms(cudnnHandle_t h, const ConvScratch& s, size_t limit);

  void forward(cudnnHandle_t h, const float* x, const float* w, float* y, void* ws, size_t ws_bytes) const;
  void backward_data(cudnnHandle_t h, const float* gy, const float* w, float* gx, void* ws, size_t ws_bytes) const;
  void backward_filter(cudnnHandle_t h, const float* x, const float* gy, float* gw, void* ws, size_t ws_bytes) const;

 private:
  // timed: run and time the algorithms on these buffers; nullptr: cuDNN's heuristics.
  void choose(cudnnHandle_t h, size_t limit, bool zero_ws_only, const ConvScratch* timed);
  ConvShape shape_;
  bool deterministic_;
  cudnnTensorDescriptor_t x_desc_ = nullptr, y_desc_ = nullptr;
  cudnnFilterDescriptor_t w_desc_ = nullptr;
  cudnnConvolutionDescriptor_t conv_desc_ = nullptr;
  ConvAlgos algos_;
};

}  // namespace musicrec::kernels::cuda

#define MR_CUDNN_CHECK(call)                                                                             \
  do {                                                                                                   \
    cudnnStatus_t mr_s_ = (call);                                                                        \
    if (mr_s_ != CUDNN_STATUS_SUCCESS)                                                                   \
      ::musicrec::throw_error(#call, __FILE__, __LINE__, ::musicrec::kernels::cuda::cudnn_status_text(mr_s_)); \
  } while (0)
