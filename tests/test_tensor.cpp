// Tensor basics: factories, shapes, dtypes, copies between devices, printing, device selection.
#include <gtest/gtest.h>

#include <cmath>

#include <cstdlib>

#include "engine/device.h"
#include "engine/tensor.h"
#include "kernels/error.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {

TEST(Tensor, FactoriesShapesAndTypes) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.dtype(), DType::F32);
  EXPECT_EQ(z.nbytes(), 24u);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.f));
  Tensor f = Tensor::full({4}, 2.5, DType::F64);
  EXPECT_EQ(f.to_vector<double>(), std::vector<double>(4, 2.5));
  Tensor i = Tensor::full({3}, 7, DType::I32);
  EXPECT_EQ(i.to_vector<int32_t>(), std::vector<int32_t>(3, 7));
  EXPECT_EQ(Tensor::scalar(3).dim(), 0);
  EXPECT_EQ(Tensor::scalar(3).numel(), 1);
  EXPECT_DOUBLE_EQ(Tensor::scalar(3).item(), 3);
  EXPECT_EQ(z.size(-1), 3);
}

TEST(Tensor, RejectsMoreThanFourDimsAndWrongTypes) {
  EXPECT_THROW(Tensor::zeros({1, 1, 1, 1, 1}), Error);
  EXPECT_THROW(Tensor::zeros({2, -1}), Error);
  Tensor t = Tensor::zeros({2});
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), Error);
  EXPECT_THROW(Tensor().shape(), Error);
  EXPECT_THROW(Tensor::full({2}, 1, DType::I32).set_requires_grad(true), Error);
}

TEST(Tensor, CloneDetachAndToDtype) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  Tensor c = a.clone();
  EXPECT_NE(c.raw_data(), a.raw_data());
  Tensor d = a.detach();
  EXPECT_EQ(d.raw_data(), a.raw_data());
  EXPECT_EQ(a.to_dtype(DType::F64).to_vector<double>(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(a.to_dtype(DType::I32).to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(a.to(Device::cpu()).same_as(a));
}

TEST(Tensor, PrintingIsReadableAndTruncates) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::string s = a.str();
  EXPECT_NE(s.find("[[1, 2],"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2, 2], dtype=float32, device=cpu"), std::string::npos) << s;
  std::string big = Tensor::zeros({100}).str();
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 200u);
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

TEST(Device, ParsingAndAuto) {
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_THROW(parse_device("tpu"), Error);
  EXPECT_THROW(parse_device("cuda:x"), Error);
  if (cuda_device_count() == 0) {
    EXPECT_THROW(parse_device("cuda"), Error);
    EXPECT_EQ(auto_device(), Device::cpu());
    EXPECT_FALSE(cuda_unavailable_reason().empty());
  } else {
    EXPECT_EQ(parse_device("cuda"), Device::cuda(0));
  }
  setenv("MUSICREC_DEVICE", "cpu", 1);
  EXPECT_EQ(auto_device(), Device::cpu());
  unsetenv("MUSICREC_DEVICE");
}

TEST(Tensor, CudaRoundTripAndDeviceMismatch) {
  MR_REQUIRE_CUDA();
  Tensor a = test::random_tensor({37, 5}, 1, -1, 1, DType::F32);
  Tensor g = a.to(Device::cuda());
  EXPECT_TRUE(g.is_cuda());
  EXPECT_EQ(g.cpu().to_vector<float>(), a.to_vector<float>());
  Tensor i = Tensor::from_vector(std::vector<int32_t>{1, -2, 3}, {3}, Device::cuda());
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_NE(g.str().find("device=cuda:0"), std::string::npos);
}

}  // namespace
}  // namespace musicrec
