// CF batch assembly (see cf_batches.h).
#include "data/cf_batches.h"

#include "kernels/philox.h"

namespace musicrec::data {

CfBatch CfBatch::to(Device d) const {
  CfBatch b;
  b.cat = cat.to(d);
  b.num = num.to(d);
  if (target.defined()) b.target = target.to(d);
  b.size = size;
  return b;
}

CfBatch make_cf_batch(const CfRows& rows, const std::vector<int64_t>& order, int64_t start, int64_t count) {
  CfBatch b;
  b.size = count;
  b.cat = Tensor::empty_pinned({kCfCategorical, count}, DType::I32);
  b.num = Tensor::empty_pinned({count, kCfNumeric}, DType::F32);
  int32_t* cat = b.cat.data<int32_t>();
  float* num = b.num.data<float>();
  const bool labels = !rows.label.empty();
  int32_t* tgt = nullptr;
  if (labels) {
    b.target = Tensor::empty_pinned({count}, DType::I32);
    tgt = b.target.data<int32_t>();
  }
  for (int64_t i = 0; i < count; ++i) {
    const int64_t r = order[size_t(start + i)];
    for (int f = 0; f < kCfCategorical; ++f) cat[f * count + i] = rows.cat[size_t(r * kCfCategorical + f)];
    for (int k = 0; k < kCfNumeric; ++k) num[i * kCfNumeric + k] = rows.num[size_t(r * kCfNumeric + k)];
    if (labels) tgt[i] = rows.label[size_t(r)] > 0.5f ? 1 : 0;
  }
  return b;
}

std::vector<int64_t> shuffled(const std::vector<int64_t>& rows, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p = rows;
  for (size_t i = p.size(); i > 1; --i) {
    size_t j = size_t(double(rng::uniform(seed, 0x5a0f + uint64_t(epoch), i)) * double(i));
    if (j >= i) j = i - 1;
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

}  // namespace musicrec::data
