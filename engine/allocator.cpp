// Caching allocator (see allocator.h) and the CPU backend.
#include "engine/allocator.h"

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/device.h"
#include "kernels/error.h"
#if MUSICREC_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace musicrec {

namespace {
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeThreshold = size_t(1) << 20;
constexpr size_t kLargeRound = size_t(2) << 20;

class CpuBackend final : public AllocatorBackend {
 public:
  void* raw_alloc(size_t bytes) override { return std::aligned_alloc(64, bytes); }
  void raw_free(void* p) override { std::free(p); }
  void fill_bytes(void* p, size_t bytes, unsigned char v) override { std::memset(p, v, bytes); }
  std::string name() const override { return "cpu"; }
};

// fork() copies only the calling thread, so a lock another thread held at that moment would stay taken
// forever in the child. The isolated readers (engine/isolated.h) fork and build CPU tensors in the child
// (checkpoints), so the allocators do what malloc does for its own locks: take them all around fork.
// The registry is never destroyed: allocators that are static objects unregister at exit.
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::set<CachingAllocator*>& registry() {
  static auto* s = new std::set<CachingAllocator*>;
  return *s;
}

bool env_poison() {
  const char* v = std::getenv("MUSICREC_POISON");
  return v && v[0] != '\0' && std::strcmp(v, "0") != 0;
}
}  // namespace

std::string format_bytes(size_t b) {
  char buf[64];
  if (b >= (size_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(size_t(1) << 30));
  else if (b >= (size_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(size_t(1) << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", double(b) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%zu B", b);
  return buf;
}

CachingAllocator::CachingAllocator(std::unique_ptr<AllocatorBackend> backend) : backend_(std::move(backend)) {
  poison_ = env_poison();
  static std::once_flag fork_handlers;
  std::call_once(fork_handlers, [] { pthread_atfork(lock_all_for_fork, unlock_all_after_fork, unlock_all_after_fork); });
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().insert(this);
}

void CachingAllocator::lock_all_for_fork() {
  registry_mutex().lock();
  for (CachingAllocator* a : registry()) a->mu_.lock();
}

void CachingAllocator::unlock_all_after_fork() {
  for (CachingAllocator* a : registry()) a->mu_.unlock();
  registry_mutex().unlock();
}

CachingAllocator::~CachingAllocator() {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry().erase(this);
  }
  // Live blocks belong to tensors that outlive the allocator only at process exit; leave them.
  for (auto& [size, p] : free_blocks_) backend_->raw_free(p);
}

size_t CachingAllocator::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t r = bytes < kLargeThreshold ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

void* CachingAllocator::raw_alloc_or_throw(size_t rounded, size_t requested) {
  void* p = backend_->raw_alloc(rounded);
  if (!p && !free_blocks_.empty()) {
    ++stats_.oom_retries;
    for (auto& [size, block] : free_blocks_) {
      backend_->raw_free(block);
      ++stats_.raw_frees;
    }
    free_blocks_.clear();
    stats_.cached = 0;
    p = backend_->raw_alloc(rounded);
  }
  if (!p)
    throw Error("out of " + backend_->name() + " memory allocating " + format_bytes(requested) + " (in use " +
                format_bytes(stats_.in_use) + ", peak " + format_bytes(stats_.peak_in_use) +
                ", cache already emptied)");
  ++stats_.raw_allocs;
  return p;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t rounded = round_size(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Take the smallest cached block that fits, but not one more than twice the size: a small tensor
    // must not pin a huge block.
    auto it = free_blocks_.lower_bound(rounded);
    size_t got = rounded;
    if (it != free_blocks_.end() && it->first <= 2 * rounded) {
      got = it->first;
      p = it->second;
      free_blocks_.erase(it);
      stats_.cached -= got;
      ++stats_.cache_hits;
    } else {
      p = raw_alloc_or_throw(rounded, bytes);
    }
    live_blocks_[p] = got;
    stats_.in_use += got;
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  }
  if (poison_) backend_->fill_bytes(p, round_size(bytes), 0xFF);
  return p;
}

void CachingAllocator::deallocate(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_blocks_.find(p);
  MR_CHECK(it != live_blocks_.end(), "deallocate of a pointer this allocator did not hand out");
  size_t size = it->second;
  live_blocks_.erase(it);
  stats_.in_use -= size;
  stats_.cached += size;
  free_blocks_.emplace(size, p);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, p] : free_blocks_) {
    backend_->raw_free(p);
    ++stats_.raw_frees;
  }
  free_blocks_.clear();
  stats_.cached = 0;
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_in_use = stats_.in_use;
}

#if MUSICREC_WITH_CUDA
namespace {
class PinnedBackend final : public AllocatorBackend {
 public:
  void* raw_alloc(size_t bytes) override {
    void* p = nullptr;
    if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void raw_free(void* p) override { cudaFreeHost(p); }
  void fill_bytes(void* p, size_t bytes, unsigned char v) override { std::memset(p, v, bytes); }
  std::string name() const override { return "pinned host"; }
};
}  // namespace
#endif

CachingAllocator& pinned_allocator() {
#if MUSICREC_WITH_CUDA
  if (cuda_device_count() > 0) {
    static CachingAllocator* a = new CachingAllocator(std::make_unique<PinnedBackend>());
    return *a;
  }
#endif
  return cpu_allocator();
}

CachingAllocator& cpu_allocator() {
  // Never destroyed: tensors in static objects may still free into it during exit.
  static CachingAllocator* a = new CachingAllocator(std::make_unique<CpuBackend>());
  return *a;
}

}  // namespace musicrec
