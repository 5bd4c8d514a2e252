// The choice among cuDNN's per-algorithm records (kernels/cuda/cudnn_conv.h: pick_algorithm), which
// both ways of choosing use: cuDNN's heuristics and MUSICREC_CUDNN_FIND's timing, whose records list
// non-deterministic and over-limit algorithms first when they are fastest. Plain host structs: runs in
// every CUDA build, with or without a device.
#include <gtest/gtest.h>

#if MUSICREC_WITH_CUDA
#include <vector>

#include "kernels/cuda/cudnn_conv.h"

namespace musicrec::kernels::cuda {
namespace {

cudnnConvolutionBwdFilterAlgoPerf_t record(int algo, cudnnStatus_t status, size_t memory, bool deterministic) {
  cudnnConvolutionBwdFilterAlgoPerf_t p{};
  p.algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo);
  p.status = status;
  p.memory = memory;
  p.determinism = deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
  return p;
}

struct Choice {
  bool found;
  int algo;
  size_t ws;
};
Choice pick(const std::vector<cudnnConvolutionBwdFilterAlgoPerf_t>& r, size_t limit, bool zero_ws_only,
            bool deterministic) {
  Choice c{false, -1, 0};
  c.found = pick_algorithm(r.data(), int(r.size()), limit, zero_ws_only, deterministic, &c.algo, &c.ws);
  return c;
}

TEST(CudnnPick, TakesTheFirstRecordThatQualifies) {
  // Ranked fastest first: a failed run, a non-deterministic one, one over the limit, then two that fit.
  const std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> r = {
      record(3, CUDNN_STATUS_ALLOC_FAILED, 0, true), record(0, CUDNN_STATUS_SUCCESS, 0, false),
      record(5, CUDNN_STATUS_SUCCESS, 1 << 20, true), record(1, CUDNN_STATUS_SUCCESS, 4096, true),
      record(2, CUDNN_STATUS_SUCCESS, 0, true)};
  Choice c = pick(r, 1 << 16, false, true);
  EXPECT_TRUE(c.found);
  EXPECT_EQ(c.algo, 1);
  EXPECT_EQ(c.ws, 4096u);
  c = pick(r, 1 << 20, false, true);  // the limit is inclusive
  EXPECT_EQ(c.algo, 5);
  EXPECT_EQ(c.ws, size_t(1) << 20);
  c = pick(r, 1 << 16, false, false);  // non-deterministic allowed: the fastest that ran
  EXPECT_EQ(c.algo, 0);
  c = pick(r, 1 << 30, true, true);  // zero workspace only, whatever the limit
  EXPECT_EQ(c.algo, 2);
  EXPECT_EQ(c.ws, 0u);
}

TEST(CudnnPick, SaysSoWhenNothingQualifies) {
  const std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> r = {record(0, CUDNN_STATUS_SUCCESS, 0, false),
                                                              record(1, CUDNN_STATUS_SUCCESS, 64, true),
                                                              record(2, CUDNN_STATUS_NOT_SUPPORTED, 0, true)};
  Choice c = pick(r, 32, false, true);
  EXPECT_FALSE(c.found);
  EXPECT_EQ(c.algo, -1) << "nothing written when nothing qualifies";
  EXPECT_FALSE(pick({}, 1 << 20, false, false).found);
  // Only the records cuDNN says it returned are read.
  Choice d{false, -1, 0};
  d.found = pick_algorithm(r.data(), 1, 1 << 20, false, true, &d.algo, &d.ws);
  EXPECT_FALSE(d.found);
}

}  // namespace
}  // namespace musicrec::kernels::cuda
#endif
