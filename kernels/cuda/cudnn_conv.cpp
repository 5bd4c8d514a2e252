// cuDNN convolution plans (see cudnn_conv.h).
#include "kernels/cuda/cudnn_conv.h"

#include <algorithm>
#include <vector>

#include "kernels/cuda/check.h"

namespace musicrec::kernels::cuda {

std::string cudnn_status_text(cudnnStatus_t s) {
  std::string msg = std::string("cuDNN error: ") + cudnnGetErrorString(s);
  char last[512] = {0};
  cudnnGetLastErrorString(last, sizeof(last));
  if (last[0] != '\0') msg += std::string(" (") + last + ")";
  return msg;
}

size_t ConvAlgos::max_ws() const { return std::max(forward_ws, std::max(backward_data_ws, backward_filter_ws)); }

std::string ConvAlgos::describe() const {
  return "fwd algo " + std::to_string(forward) + " (" + std::to_string(forward_ws) + " B), bwd-data algo " +
         std::to_string(backward_data) + " (" + std::to_string(backward_data_ws) + " B), bwd-filter algo " +
         std::to_string(backward_filter) + " (" + std::to_string(backward_filter_ws) + " B)" +
         (fallback ? ", zero-workspace fallback" : "") + (measured ? ", measured" : ", heuristic");
}

namespace {
// With MUSICREC_SYNC_CHECK=1, a fault inside a cuDNN kernel is reported at the call that launched it.
void sync_check(cudnnHandle_t h, const char* what) {
  if (!sync_check_enabled()) return;
  cudaStream_t s = nullptr;
  MR_CUDNN_CHECK(cudnnGetStream(h, &s));
  after_launch(what, __FILE__, __LINE__, s);
}

int as_int(int64_t v) {
  MR_CHECK(v >= 0 && v < (1LL << 31), "convolution dimension " + std::to_string(v) + " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

}  // namespace

ConvPlan::ConvPlan(cudnnHandle_t h, const ConvShape& s, bool allow_tf32, bool deterministic, size_t workspace_limit)
    : shape_(s), deterministic_(deterministic) {
  MR_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc_));
  MR_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc_));
  MR_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc_));
  MR_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc_));
  MR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, as_int(s.N), as_int(s.C),
                                            as_int(s.H), as_int(s.W)));
  MR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y_desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, as_int(s.N), as_int(s.K),
                                            as_int(s.OH()), as_int(s.OW())));
  MR_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, as_int(s.K), as_int(s.C),
                                            as_int(s.KH), as_int(s.KW)));
  MR_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc_, as_int(s.ph), as_int(s.pw), 1, 1, 1, 1,
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  // FMA math forbids TF32 tensor cores, which round inputs to 10 mantissa bits: float32 results stay
  // comparable with the CPU and with PyTorch run with allow_tf32 = False.
  MR_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_desc_, allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  choose(h, workspace_limit, false, nullptr);
}

ConvPlan::~ConvPlan() {
  if (conv_desc_) cudnnDestroyConvolutionDescriptor(conv_desc_);
  if (w_desc_) cudnnDestroyFilterDescriptor(w_desc_);
  if (y_desc_) cudnnDestroyTensorDescriptor(y_desc_);
  if (x_desc_) cudnnDestroyTensorDescriptor(x_desc_);
}

void ConvPlan::use_zero_workspace_algorithms(cudnnHandle_t h) { choose(h, 0, true, nullptr); }

void ConvPlan::measure_algorithms(cudnnHandle_t h, const ConvScratch& s, size_t limit) {
  choose(h, std::min(limit, s.ws_bytes), false, &s);
}

// Both ways of asking return the same per-algorithm records, ranked fastest first (by heuristics, or
// by the times measured), so one pick serves both. When timing, the passes run in the order forward
// (writes y), backward data (reads y, writes x), backward filter (reads x and y, writes w).
void ConvPlan::choose(cudnnHandle_t h, size_t limit, bool zero_ws_only, const ConvScratch* timed) {
  ConvAlgos a;
  a.fallback = zero_ws_only;
  a.measured = timed != nullptr;
  int count = 0, returned = 0;
  MR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(static_cast<size_t>(count));
  if (timed)
    MR_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, x_desc_, timed->x, w_desc_, timed->w, conv_desc_, y_desc_,
                                                          timed->y, count, &returned, fwd.data(), timed->ws, limit));
  else
    MR_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, x_desc_, w_desc_, conv_desc_, y_desc_, count, &returned,
                                                          fwd.data()));
  // The forward pass is deterministic for every algorithm, so determinism is not asked of it.
  MR_CHECK(pick_algorithm(fwd.data(), returned, limit, zero_ws_only, false, &a.forward, &a.forward_ws),
           "cuDNN offers no forward convolution algorithm within the workspace limit");

  MR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
  std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bwd(static_cast<size_t>(count));
  if (timed)
    MR_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, w_desc_, timed->w, y_desc_, timed->y, conv_desc_,
                                                               x_desc_, timed->x, count, &returned, bwd.data(),
                                                               timed->ws, limit));
  else
    MR_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w_desc_, y_desc_, conv_desc_, x_desc_, count,
                                                               &returned, bwd.data()));
  MR_CHECK(pick_algorithm(bwd.data(), returned, limit, zero_ws_only, deterministic_, &a.backward_data,
                          &a.backward_data_ws),
           "cuDNN offers no backward-data convolution algorithm within the workspace limit");

  MR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
  std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bwf(static_cast<size_t>(count));
  if (timed)
    MR_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, x_desc_, timed->x, y_desc_, timed->y, conv_desc_,
                                                                 w_desc_, timed->w, count, &returned, bwf.data(),
                                                                 timed->ws, limit));
  else
    MR_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x_desc_, y_desc_, conv_desc_, w_desc_, count,
                                                                 &returned, bwf.data()));
  MR_CHECK(pick_algorithm(bwf.data(), returned, limit, zero_ws_only, deterministic_, &a.backward_filter,
                          &a.backward_filter_ws),
           "cuDNN offers no backward-filter convolution algorithm within the workspace limit");
  algos_ = a;
}

void ConvPlan::forward(cudnnHandle_t h, const float* x, const float* w, float* y, void* ws, size_t ws_bytes) const {
  const float one = 1.f, zero = 0.f;
  MR_CUDNN_CHECK(cudnnConvolutionForward(h, &one, x_desc_, x, w_desc_, w, conv_desc_,
                                         static_cast<cudnnConvolutionFwdAlgo_t>(algos_.forward), ws, ws_bytes, &zero,
                                         y_desc_, y));
  sync_check(h, "cudnnConvolutionForward");
}

void ConvPlan::backward_data(cudnnHandle_t h, const float* gy, const float* w, float* gx, void* ws,
                             size_t ws_bytes) const {
  const float one = 1.f, zero = 0.f;
  MR_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, w_desc_, w, y_desc_, gy, conv_desc_,
                                              static_cast<cudnnConvolutionBwdDataAlgo_t>(algos_.backward_data), ws,
                                              ws_bytes, &zero, x_desc_, gx));
  sync_check(h, "cudnnConvolutionBackwardData");
}

void ConvPlan::backward_filter(cudnnHandle_t h, const float* x, const float* gy, float* gw, void* ws,
                               size_t ws_bytes) const {
  const float one = 1.f, zero = 0.f;
  MR_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, x_desc_, x, y_desc_, gy, conv_desc_,
                                                static_cast<cudnnConvolutionBwdFilterAlgo_t>(algos_.backward_filter),
                                                ws, ws_bytes, &zero, w_desc_, gw));
  sync_check(h, "cudnnConvolutionBackwardFilter");
}

}  // namespace musicrec::kernels::cuda
