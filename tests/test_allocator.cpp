// The caching allocator on a fake backend that counts calls and can run out of memory, so every
// behaviour the CUDA allocator relies on is tested on any machine; plus the real CUDA allocator
// where a device exists.
#include <gtest/gtest.h>

#include <cmath>

#include <cstdlib>
#include <cstring>

#include "engine/allocator.h"
#include "engine/tensor.h"
#include "kernels/error.h"
#include "tests/test_util.h"
#if MUSICREC_WITH_CUDA
#include "engine/cuda_context.h"
#endif

namespace musicrec {
namespace {

class FakeBackend : public AllocatorBackend {
 public:
  size_t capacity;      // bytes the "device" has
  size_t used = 0;
  int allocs = 0, frees = 0;
  std::unordered_map<void*, size_t> sizes;
  explicit FakeBackend(size_t cap) : capacity(cap) {}
  void* raw_alloc(size_t b) override {
    if (used + b > capacity) return nullptr;
    void* p = std::malloc(b);
    sizes[p] = b;
    used += b;
    ++allocs;
    return p;
  }
  void raw_free(void* p) override {
    used -= sizes.at(p);
    sizes.erase(p);
    std::free(p);
    ++frees;
  }
  void fill_bytes(void* p, size_t b, unsigned char v) override { std::memset(p, v, b); }
  std::string name() const override { return "fake"; }
};

TEST(CachingAllocator, ReusesFreedBlocksWithoutCallingTheBackend) {
  auto* be = new FakeBackend(1 << 20);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  void* p = a.allocate(1000);
  a.deallocate(p);
  void* q = a.allocate(900);  // same 1024-byte class
  EXPECT_EQ(p, q);
  EXPECT_EQ(be->allocs, 1);
  EXPECT_EQ(a.stats().cache_hits, 1u);
  a.deallocate(q);
}

TEST(CachingAllocator, CountsInUsePeakAndCached) {
  auto* be = new FakeBackend(1 << 20);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  void* p = a.allocate(512);
  void* q = a.allocate(1536);
  EXPECT_EQ(a.stats().in_use, 2048u);
  a.deallocate(p);
  EXPECT_EQ(a.stats().in_use, 1536u);
  EXPECT_EQ(a.stats().cached, 512u);
  EXPECT_EQ(a.stats().peak_in_use, 2048u);
  a.deallocate(q);
  a.empty_cache();
  EXPECT_EQ(a.stats().cached, 0u);
  EXPECT_EQ(be->used, 0u);
  EXPECT_EQ(be->frees, 2);
}

TEST(CachingAllocator, DoesNotHandASmallRequestAHugeBlock) {
  auto* be = new FakeBackend(1 << 24);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  void* big = a.allocate(8 << 20);
  a.deallocate(big);
  void* small = a.allocate(512);
  EXPECT_NE(small, big);
  EXPECT_EQ(be->allocs, 2);
  a.deallocate(small);
}

TEST(CachingAllocator, SteadyLoopStopsAllocatingAfterTheFirstStep) {
  auto* be = new FakeBackend(1 << 24);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  const size_t sizes[] = {4096, 100, 70000, 3 << 20, 4096};
  int after_first = 0;
  for (int step = 0; step < 10; ++step) {
    std::vector<void*> live;
    for (size_t s : sizes) live.push_back(a.allocate(s));
    for (void* p : live) a.deallocate(p);
    if (step == 0) after_first = be->allocs;
  }
  EXPECT_EQ(be->allocs, after_first);
}

TEST(CachingAllocator, OutOfMemoryEmptiesTheCacheAndRetriesOnce) {
  auto* be = new FakeBackend(4 << 20);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  void* p = a.allocate(2 << 20);
  a.deallocate(p);  // 2 MiB cached; 2 MiB free in the "device"
  void* q = a.allocate(4 << 20);  // only fits once the cache is returned
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(a.stats().oom_retries, 1u);
  EXPECT_EQ(a.stats().cached, 0u);
  a.deallocate(q);
}

TEST(CachingAllocator, OutOfMemoryAfterTheRetryIsAClearError) {
  auto* be = new FakeBackend(1 << 20);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  try {
    a.allocate(8 << 20);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("out of fake memory allocating 8.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("in use"), std::string::npos) << m;
  }
}

TEST(CachingAllocator, PoisonFillsNewBlocks) {
  auto* be = new FakeBackend(1 << 20);
  CachingAllocator a{std::unique_ptr<AllocatorBackend>(be)};
  a.set_poison(true);
  auto* p = static_cast<unsigned char*>(a.allocate(64));
  for (int i = 0; i < 64; ++i) ASSERT_EQ(p[i], 0xFF);
  a.deallocate(p);
}

TEST(CachingAllocator, ForeignPointerIsAnError) {
  CachingAllocator a{std::make_unique<FakeBackend>(1 << 20)};
  int x;
  EXPECT_THROW(a.deallocate(&x), Error);
}

TEST(CachingAllocator, TensorsReturnTheirStorageToTheCpuCache) {
  size_t before = cpu_allocator().stats().in_use;
  {
    Tensor t = Tensor::zeros({1000});
    EXPECT_GE(cpu_allocator().stats().in_use, before + 4000);
  }
  EXPECT_EQ(cpu_allocator().stats().in_use, before);
}

TEST(CachingAllocator, CudaSteadyStateMakesNoNewDeviceAllocations) {
  MR_REQUIRE_CUDA();
#if MUSICREC_WITH_CUDA
  auto& a = CudaContext::get().allocator();
  auto step = [] {
    Tensor x = Tensor::zeros({256, 100}, DType::F32, Device::cuda());
    Tensor y = Tensor::zeros({100, 64}, DType::F32, Device::cuda());
    (void)x;
    (void)y;
  };
  step();
  size_t raw = a.stats().raw_allocs;
  for (int i = 0; i < 10; ++i) step();
  EXPECT_EQ(a.stats().raw_allocs, raw);
#endif
}

}  // namespace
}  // namespace musicrec
