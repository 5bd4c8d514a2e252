// The CPU kernels' thread pool (see parallel.h).
#include "kernels/cpu/parallel.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace musicrec::kernels::cpu {
namespace {

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
struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int chunks = 0;
};

class Pool {
 public:
  explicit Pool(int workers) : pid_(getpid()) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { work(i + 1); });
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

  // Chunk 0 on the calling thread, chunks 1.. on workers 1..; returns when all are done.
  void run(const Job& job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      pending_ = job.chunks - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk(job, 0);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void run_chunk(const Job& job, int c) {
    const int64_t begin = job.n * c / job.chunks, end = job.n * (c + 1) / job.chunks;
    if (begin >= end) return;
    try {
      in_pool_chunk() = true;
      (*job.fn)(begin, end);
      in_pool_chunk() = false;
    } catch (...) {
      in_pool_chunk() = false;
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      if (index >= job.chunks) continue;  // this call has fewer chunks than workers
      run_chunk(job, index);
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

 public:
  static bool& in_pool_chunk() {
    thread_local bool inside = false;
    return inside;
  }

 private:
  const pid_t pid_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  Job job_;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

std::mutex g_config_mu;
int g_threads = 0;  // 0: not yet decided
Pool* g_pool = nullptr;  // workers = g_threads - 1; never destroyed (threads outlive static destructors)
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
  std::lock_guard<std::mutex> lock(g_config_mu);
  if (g_threads == 0) g_threads = default_threads();
  return g_threads;
}

void set_cpu_threads(int threads) {
  std::lock_guard<std::mutex> run(g_run_mu);
  std::lock_guard<std::mutex> lock(g_config_mu);
  g_threads = threads >= 1 ? threads : default_threads();
}

void parallel_for(int64_t n, int64_t min_items, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int threads = cpu_threads();
  const int64_t max_chunks = std::max<int64_t>(1, std::min<int64_t>(threads, n / std::max<int64_t>(min_items, 1)));
  if (max_chunks == 1 || Pool::in_pool_chunk()) return fn(0, n);
  std::unique_lock<std::mutex> run(g_run_mu, std::try_to_lock);
  if (!run.owns_lock()) return fn(0, n);  // another thread's call is using the pool
  Pool* pool = pool_for(threads);
  if (!pool) return fn(0, n);
  Job job;
  job.fn = &fn;
  job.n = n;
  job.chunks = int(max_chunks);
  pool->run(job);
}

}  // namespace musicrec::kernels::cpu
