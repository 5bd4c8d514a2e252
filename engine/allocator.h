// A caching allocator: freed blocks go to a cache keyed by size and are handed out again, so a
// training loop that allocates the same shapes every step stops calling the backend (cudaMalloc) after
// its first step. It counts bytes in use, their peak and bytes cached. When the backend runs out of
// memory it frees the whole cache and retries once before raising an error that gives the numbers.
// The backend is an interface so the same logic serves the CPU, CUDA and the tests' fake backend.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace musicrec {

class AllocatorBackend {
 public:
  virtual ~AllocatorBackend() = default;
  virtual void* raw_alloc(size_t bytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* p) = 0;
  virtual void fill_bytes(void* p, size_t bytes, unsigned char value) = 0;
  virtual std::string name() const = 0;
};

struct AllocatorStats {
  size_t in_use = 0;       // bytes handed out and not yet returned (rounded sizes)
  size_t peak_in_use = 0;  // maximum of in_use since creation or reset_peak()
  size_t cached = 0;       // bytes held in the cache, free for reuse
  size_t raw_allocs = 0;   // backend allocations made
  size_t raw_frees = 0;    // backend frees made
  size_t cache_hits = 0;   // allocations served from the cache
  size_t oom_retries = 0;  // times the cache was emptied to satisfy an allocation
};

class CachingAllocator {
 public:
  explicit CachingAllocator(std::unique_ptr<AllocatorBackend> backend);
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(size_t bytes);
  void deallocate(void* p);
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();
  // Poisoning fills every block handed out with 0xFF bytes (NaN as float, -1 as int32), so a kernel
  // that fails to write part of its output shows up in tests. MUSICREC_POISON=1 turns it on.
  void set_poison(bool on) { poison_ = on; }
  bool poison() const { return poison_; }
  AllocatorBackend& backend() { return *backend_; }

  // Sizes are rounded up to 512 bytes (and to 2 MiB above 1 MiB) so nearby sizes share blocks.
  static size_t round_size(size_t bytes);

 private:
  void* raw_alloc_or_throw(size_t rounded, size_t requested);
  // Around fork() (pthread_atfork): every live allocator's lock is taken before and released after, in
  // parent and child, so a child never starts with a lock another thread of the parent held.
  static void lock_all_for_fork();
  static void unlock_all_after_fork();
  std::unique_ptr<AllocatorBackend> backend_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_blocks_;          // rounded size -> block
  std::unordered_map<void*, size_t> live_blocks_;     // block -> rounded size
  AllocatorStats stats_;
  bool poison_ = false;
};

// The allocator of the CPU (aligned host memory). CUDA's lives in the CUDA context.
CachingAllocator& cpu_allocator();
// Page-locked host memory (cudaHostAlloc) where a CUDA device exists, else the CPU allocator.
CachingAllocator& pinned_allocator();
std::string format_bytes(size_t bytes);

}  // namespace musicrec
