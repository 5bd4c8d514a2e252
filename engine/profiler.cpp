// Per-op profiler (see profiler.h).
#include "engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#if MUSICREC_WITH_CUDA
#include <nvtx3/nvToolsExt.h>

#include "engine/cuda_context.h"
#include "kernels/cuda/check.h"
#endif

namespace musicrec::profiler {
namespace {

struct PendingEvent {
  std::string name;
  void* start;
  void* stop;
};

struct State {
  std::mutex mu;
  std::map<std::string, OpStat> stats;
  std::vector<PendingEvent> pending;
  std::vector<void*> event_pool;
};
State& state() {
  static State* s = new State();
  return *s;
}

thread_local int t_depth = 0;

bool env_enabled() {
  const char* v = std::getenv("MUSICREC_PROFILE");
  return v && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

bool g_enabled = [] {
  bool on = env_enabled();
  if (on) std::atexit([] { std::fputs(report().c_str(), stderr); });
  return on;
}();

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string key(const char* name, bool backward) { return backward ? std::string(name) + " (backward)" : name; }

void add_time(const std::string& name, double ms) {
  OpStat& s = state().stats[name];
  s.name = name;
  ++s.calls;
  s.total_ms += ms;
}

#if MUSICREC_WITH_CUDA
void* take_event() {
  State& st = state();
  if (!st.event_pool.empty()) {
    void* e = st.event_pool.back();
    st.event_pool.pop_back();
    return e;
  }
  cudaEvent_t e;
  MR_CUDA_CHECK(cudaEventCreate(&e));
  return e;
}
// Caller holds the mutex.
void resolve_pending() {
  State& st = state();
  for (auto& p : st.pending) {
    MR_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(p.stop)));
    float ms = 0;
    MR_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(p.start), static_cast<cudaEvent_t>(p.stop)));
    add_time(p.name, ms);
    st.event_pool.push_back(p.start);
    st.event_pool.push_back(p.stop);
  }
  st.pending.clear();
}
#endif

}  // namespace

bool enabled() { return g_enabled; }
void set_enabled(bool on) { g_enabled = on; }

OpScope::OpScope(const char* name, Device device, bool backward) : name_(name), backward_(backward), device_(device) {
#if MUSICREC_WITH_CUDA
  if (device.is_cuda()) {
    nvtxRangePushA(name);
    nvtx_ = true;
  }
#endif
  if (!g_enabled) return;
  counted_ = true;
  if (t_depth++ > 0) return;  // nested inside another op: the outer op's time includes it
  timed_ = true;
#if MUSICREC_WITH_CUDA
  if (device.is_cuda()) {
    std::lock_guard<std::mutex> lock(state().mu);
    start_event_ = take_event();
    MR_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(start_event_), CudaContext::get().stream()));
    return;
  }
#endif
  start_ns_ = now_ns();
}

OpScope::~OpScope() {
  if (counted_) --t_depth;
  if (timed_) {
    if (start_event_) {
#if MUSICREC_WITH_CUDA
      std::lock_guard<std::mutex> lock(state().mu);
      void* stop = take_event();
      cudaEventRecord(static_cast<cudaEvent_t>(stop), CudaContext::get().stream());
      state().pending.push_back({key(name_, backward_), start_event_, stop});
      if (state().pending.size() >= 4096) resolve_pending();
#endif
    } else {
      std::lock_guard<std::mutex> lock(state().mu);
      add_time(key(name_, backward_), double(now_ns() - start_ns_) / 1e6);
    }
  }
#if MUSICREC_WITH_CUDA
  if (nvtx_) nvtxRangePop();
#endif
}

Range::Range(const char* name) {
#if MUSICREC_WITH_CUDA
  nvtxRangePushA(name);
#else
  (void)name;
#endif
}
Range::~Range() {
#if MUSICREC_WITH_CUDA
  nvtxRangePop();
#endif
}

std::vector<OpStat> snapshot() {
  std::lock_guard<std::mutex> lock(state().mu);
#if MUSICREC_WITH_CUDA
  resolve_pending();
#endif
  std::vector<OpStat> out;
  for (auto& [k, v] : state().stats) out.push_back(v);
  std::sort(out.begin(), out.end(), [](const OpStat& a, const OpStat& b) { return a.total_ms > b.total_ms; });
  return out;
}

void reset() {
  std::lock_guard<std::mutex> lock(state().mu);
#if MUSICREC_WITH_CUDA
  resolve_pending();
#endif
  state().stats.clear();
}

std::string report() {
  auto stats = snapshot();
  double total = 0;
  for (auto& s : stats) total += s.total_ms;
  std::string out = "musicrec profile (outermost op scopes; CUDA events on the GPU, steady clock on the CPU)\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-32s %10s %12s %12s %7s\n", "op", "calls", "total ms", "mean us", "share");
  out += line;
  for (auto& s : stats) {
    std::snprintf(line, sizeof line, "%-32s %10llu %12.3f %12.2f %6.1f%%\n", s.name.c_str(),
                  static_cast<unsigned long long>(s.calls), s.total_ms, 1000.0 * s.total_ms / double(s.calls),
                  total > 0 ? 100.0 * s.total_ms / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-32s %10s %12.3f\n", "total", "", total);
  out += line;
  return out;
}

}  // namespace musicrec::profiler
