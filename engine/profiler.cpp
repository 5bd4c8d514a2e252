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
  const char* phase;
  double bytes;
};

struct State {
  std::mutex mu;
  std::map<std::string, OpStat> stats;
  std::vector<PhaseStat> phases;  // few, kept in first-entered order
  std::vector<PendingEvent> pending;
  std::vector<void*> event_pool;
};
State& state() {
  static State* s = new State();
  return *s;
}

thread_local int t_depth = 0;
thread_local const char* t_phase = nullptr;  // innermost Range while profiling
#if MUSICREC_WITH_CUDA
bool g_cuda_ops = false;  // an op has been timed on the GPU
#endif

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

// Caller holds the mutex.
PhaseStat& phase_stat(const char* name) {
  auto& ph = state().phases;
  for (auto& p : ph)
    if (p.name == name) return p;
  ph.push_back(PhaseStat{name, 0, 0, 0});
  return ph.back();
}

// Caller holds the mutex.
void add_time(const std::string& name, double ms, const char* phase, double bytes) {
  OpStat& s = state().stats[name];
  s.name = name;
  ++s.calls;
  s.total_ms += ms;
  if (bytes >= 0) {
    ++s.calls_with_bytes;
    s.bytes += bytes;
  }
  if (phase) phase_stat(phase).op_ms += ms;
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
    add_time(p.name, ms, p.phase, p.bytes);
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
    g_cuda_ops = true;
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
      state().pending.push_back({key(name_, backward_), start_event_, stop, t_phase, bytes_});
      if (state().pending.size() >= 4096) resolve_pending();
#endif
    } else {
      std::lock_guard<std::mutex> lock(state().mu);
      add_time(key(name_, backward_), double(now_ns() - start_ns_) / 1e6, t_phase, bytes_);
    }
  }
#if MUSICREC_WITH_CUDA
  if (nvtx_) nvtxRangePop();
#endif
}

Range::Range(const char* name) : name_(name) {
#if MUSICREC_WITH_CUDA
  nvtxRangePushA(name);
#endif
  if (!g_enabled) return;
  timed_ = true;
  outer_ = t_phase;
  t_phase = name;
  start_ns_ = now_ns();
}

Range::~Range() {
  if (timed_) {
#if MUSICREC_WITH_CUDA
    if (g_cuda_ops) CudaContext::get().synchronize();  // only once an op ran on the GPU
#endif
    const double ms = double(now_ns() - start_ns_) / 1e6;
    t_phase = outer_;
    std::lock_guard<std::mutex> lock(state().mu);
    PhaseStat& p = phase_stat(name_);
    ++p.calls;
    p.wall_ms += ms;
  }
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

std::vector<PhaseStat> phases() {
  std::lock_guard<std::mutex> lock(state().mu);
#if MUSICREC_WITH_CUDA
  resolve_pending();
#endif
  return state().phases;
}

void reset() {
  std::lock_guard<std::mutex> lock(state().mu);
#if MUSICREC_WITH_CUDA
  resolve_pending();
#endif
  state().stats.clear();
  state().phases.clear();
}

std::string report() {
  auto stats = snapshot();
  double total = 0;
  for (auto& s : stats) total += s.total_ms;
  std::string out = "musicrec profile (outermost op scopes; CUDA events on the GPU, steady clock on the CPU;\n"
                    "GB: each input read and each output written once, where the op reports it)\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-32s %10s %12s %12s %7s %10s %8s\n", "op", "calls", "total ms", "mean us", "share",
                "GB", "GB/s");
  out += line;
  for (auto& s : stats) {
    std::snprintf(line, sizeof line, "%-32s %10llu %12.3f %12.2f %6.1f%%", s.name.c_str(),
                  static_cast<unsigned long long>(s.calls), s.total_ms, 1000.0 * s.total_ms / double(s.calls),
                  total > 0 ? 100.0 * s.total_ms / total : 0.0);
    out += line;
    // A rate only where every call reported its bytes: a partial sum over all the time would understate it.
    if (s.calls_with_bytes == s.calls && s.total_ms > 0)
      std::snprintf(line, sizeof line, " %10.3f %8.1f\n", s.bytes / 1e9, s.bytes / 1e6 / s.total_ms);
    else
      std::snprintf(line, sizeof line, " %10s %8s\n", "-", "-");
    out += line;
  }
  std::snprintf(line, sizeof line, "%-32s %10s %12.3f\n", "total", "", total);
  out += line;
  const auto ph = phases();
  if (!ph.empty()) {
    out += "\nphases (host clock; \"outside ops\" = host work, launches and waiting inside the phase)\n";
    std::snprintf(line, sizeof line, "%-16s %8s %12s %10s %12s %12s %8s\n", "phase", "calls", "wall ms", "mean ms",
                  "in ops ms", "outside ms", "outside");
    out += line;
    for (const auto& p : ph) {
      const double outside = std::max(0.0, p.wall_ms - p.op_ms);
      std::snprintf(line, sizeof line, "%-16s %8llu %12.3f %10.3f %12.3f %12.3f %7.1f%%\n", p.name.c_str(),
                    static_cast<unsigned long long>(p.calls), p.wall_ms, p.wall_ms / double(std::max<uint64_t>(p.calls, 1)),
                    p.op_ms, outside, p.wall_ms > 0 ? 100.0 * outside / p.wall_ms : 0.0);
      out += line;
    }
  }
  return out;
}

}  // namespace musicrec::profiler
