// The CPU kernels' thread pool (see parallel.h).
#include "kernels/cpu/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace musicrec::kernels::cpu {
namespace {

// Chunks per thread: enough that a late thread's share is taken over in small pieces, few enough that
// claiming them costs nothing next to the work.
constexpr int kChunksPerThread = 4;
// How long a thread waits awake for the next call (or the caller for the last chunks) before it sleeps.
constexpr std::chrono::microseconds kSpin{100};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

int default_threads() {
  if (const char* v = std::getenv("MUSICREC_CPU_THREADS"); v && *v) {
    char* end = nullptr;
    const long t = std::strtol(v, &end, 10);
    if (end && *end == '\0' && t >= 1 && t <= 256) return int(t);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return int(std::clamp<unsigned>(hw == 0 ? 1 : hw, 1, 8));
}

// One call's work: chunk c of `chunks` covers [n c / chunks, n (c + 1) / chunks), sizes within one.
// Threads claim chunks in turn from `next`, so a thread that starts late (a core still busy with
// OpenBLAS's spinning workers) leaves its share to the others instead of holding the call up. Which
// thread runs a chunk never changes a result (parallel.h). Shared with the workers by shared_ptr: a
// worker that wakes after the call has ended claims nothing from it.
struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int chunks = 0;
  std::atomic<int> next{0}, done{0};
  std::exception_ptr error;  // the first one; written under the pool's mutex
};

class Pool {
 public:
  explicit Pool(int workers) : pid_(getpid()) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int workers() const { return int(threads_.size()); }
  bool usable() const { return getpid() == pid_; }

  // Returns when every chunk has run; the calling thread claims chunks too.
  void run(const std::shared_ptr<Job>& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    drain(*job);
    spin_until([&] { return job->done.load() == job->chunks; });
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return job->done.load() == job->chunks; });
    job_.reset();
    if (job->error) std::rethrow_exception(job->error);
  }

  static bool& in_pool_chunk() {
    thread_local bool inside = false;
    return inside;
  }

 private:
  void drain(Job& job) {
    for (int c; (c = job.next.fetch_add(1)) < job.chunks;) {
      try {
        in_pool_chunk() = true;
        (*job.fn)(job.n * c / job.chunks, job.n * (c + 1) / job.chunks);
        in_pool_chunk() = false;
      } catch (...) {
        in_pool_chunk() = false;
        std::lock_guard<std::mutex> lock(mu_);
        if (!job.error) job.error = std::current_exception();
      }
      if (job.done.fetch_add(1) + 1 == job.chunks) {
        std::lock_guard<std::mutex> lock(mu_);  // the caller checks done under this mutex: no lost wake-up
        done_.notify_all();
      }
    }
  }

  // Busy-waits until ready() or for kSpin at most. A worker that sleeps on the condition variable
  // takes tens of microseconds to wake on the development VM, as long as a small kernel runs; a
  // training step's kernels follow each other within microseconds, so a worker waits a little awake
  // before it sleeps (as OpenMP's and OpenBLAS's threads do, but for a bounded time, so an idle process
  // leaves the cores alone).
  template <typename Ready> static void spin_until(Ready ready) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0; !ready(); ++i) {
      if (i % 64 == 63 && std::chrono::steady_clock::now() >= until) return;
      cpu_relax();
    }
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return stop_.load() || generation_.load() != seen; });
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
        job = job_;
      }
      if (job) drain(*job);
    }
  }

  const pid_t pid_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::shared_ptr<Job> job_;
  // Changed under mu_ (so the condition variable misses no call), read without it while spinning.
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

// The thread count is an atomic, not behind a lock: a process forked while another thread held a lock
// here would find it taken forever in the child. The pool is reached only with g_run_mu held, which
// a child of such a fork cannot take (try_lock), so it runs serially.
std::atomic<int> g_threads{0};  // 0: not yet decided
std::mutex g_config_mu;         // guards g_pool
Pool* g_pool = nullptr;  // workers = threads - 1; never destroyed (threads outlive static destructors)
std::mutex g_run_mu;     // one parallel call at a time: kernels called from two threads take turns

// nullptr in a forked child of a process that had started the pool: its threads are the parent's.
Pool* pool_for(int threads) {
  std::lock_guard<std::mutex> lock(g_config_mu);
  if (g_pool && !g_pool->usable()) return nullptr;
  if (!g_pool || g_pool->workers() != threads - 1) {
    delete g_pool;  // only when the count changed (tests, benchmarks); no call is running (g_run_mu)
    g_pool = new Pool(threads - 1);
  }
  return g_pool;
}

}  // namespace

int cpu_threads() {
  int t = g_threads.load();
  if (t == 0) {
    int unset = 0;
    g_threads.compare_exchange_strong(unset, default_threads());
    t = g_threads.load();
  }
  return t;
}

void set_cpu_threads(int threads) {
  std::lock_guard<std::mutex> run(g_run_mu);  // not while a call is using the pool
  g_threads.store(threads >= 1 ? threads : default_threads());
}

void parallel_for(int64_t n, int64_t min_items, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int threads = cpu_threads();
  const int64_t max_chunks =
      std::max<int64_t>(1, std::min<int64_t>(int64_t(kChunksPerThread) * threads, n / std::max<int64_t>(min_items, 1)));
  if (threads == 1 || max_chunks == 1 || Pool::in_pool_chunk()) return fn(0, n);
  std::unique_lock<std::mutex> run(g_run_mu, std::try_to_lock);
  if (!run.owns_lock()) return fn(0, n);  // another thread's call is using the pool
  Pool* pool = pool_for(threads);
  if (!pool) return fn(0, n);
  auto job = std::make_shared<Job>();
  job->fn = &fn;
  job->n = n;
  job->chunks = int(max_chunks);
  pool->run(job);
}

}  // namespace musicrec::kernels::cpu
