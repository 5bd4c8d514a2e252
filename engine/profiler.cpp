// Per-op profiler (see profiler.h).
#include "engine/profiler.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "engine/chrome_trace.h"
#include "engine/json_files.h"
#include "kernels/error.h"

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
  bool traced;  // recorded while a trace was on: also a slice of the timeline
};

// The timeline start_trace records: a slice per timed op and phase, on a track per host thread and
// one for the GPU stream.
struct Trace {
  bool on = false;
  int generation = 0;  // which trace a thread's track number belongs to
  size_t max_slices = 0;
  uint64_t dropped = 0;
  int64_t t0_ns = 0;  // host clock when the trace began
  std::vector<TraceSlice> slices;
  std::vector<std::string> tracks;
  int gpu_track = -1;
  int host_threads = 0;  // host tracks so far
  // The GPU's clock against the host's: an event recorded on the stream, waited for, and the host time
  // read just after (microseconds apart at most); device times are offsets from that event.
  void* base_event = nullptr;
  int64_t base_event_ns = 0;
};

struct State {
  std::mutex mu;
  std::map<std::string, OpStat> stats;
  std::vector<PhaseStat> phases;  // few, kept in first-entered order
  std::vector<PendingEvent> pending;
  std::vector<void*> event_pool;
  Trace trace;
};
State& state() {
  static State* s = new State();
  return *s;
}

thread_local int t_depth = 0;
thread_local const char* t_phase = nullptr;  // innermost Range while profiling
thread_local int t_track = -1;                // this thread's track in the trace of generation t_track_gen
thread_local int t_track_gen = -1;
#if MUSICREC_WITH_CUDA
bool g_cuda_ops = false;   // an op has been timed on the GPU
bool g_exit_hook = false;  // resolve_at_exit is registered
#endif

bool env_enabled() {
  const char* v = std::getenv("MUSICREC_PROFILE");
  return v && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// MUSICREC_TRACE=FILE: the whole process's timeline, written when it exits.
const char* g_trace_path = [] {
  const char* v = std::getenv("MUSICREC_TRACE");
  return v && v[0] != '\0' ? v : nullptr;
}();

bool g_enabled = [] {
  bool on = env_enabled();
  if (on) std::atexit([] { std::fputs(report().c_str(), stderr); });
  if (g_trace_path) {
    start_trace();
    std::atexit([] {
      try {
        write_trace(g_trace_path);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "musicrec: MUSICREC_TRACE: %s\n", e.what());
      }
    });
  }
  return on || g_trace_path != nullptr;
}();

// Caller holds the mutex. Adds a slice to the trace (when one is on) on `track`, from `start_ns` on the
// host clock; a scope that began before the trace did is left out.
void add_slice(std::string name, const char* category, int track, int64_t start_ns, int64_t dur_ns, double bytes) {
  Trace& tr = state().trace;
  if (!tr.on || start_ns < tr.t0_ns) return;
  if (tr.slices.size() >= tr.max_slices) {
    ++tr.dropped;
    return;
  }
  tr.slices.push_back({std::move(name), category, track, start_ns - tr.t0_ns, std::max<int64_t>(dur_ns, 0), bytes});
}

// Caller holds the mutex. This host thread's track in the current trace.
int host_track() {
  Trace& tr = state().trace;
  if (t_track_gen != tr.generation) {
    t_track_gen = tr.generation;
    t_track = int(tr.tracks.size());
    tr.tracks.push_back(fmt::format("host thread {}", ++tr.host_threads));
  }
  return t_track;
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
    Trace& tr = st.trace;
    if (p.traced && tr.on && tr.base_event) {
      float from_base = 0;
      MR_CUDA_CHECK(cudaEventElapsedTime(&from_base, static_cast<cudaEvent_t>(tr.base_event),
                                         static_cast<cudaEvent_t>(p.start)));
      if (tr.gpu_track < 0) {
        tr.gpu_track = int(tr.tracks.size());
        tr.tracks.push_back("GPU stream");
      }
      add_slice(p.name, "op", tr.gpu_track, tr.base_event_ns + int64_t(double(from_base) * 1e6), int64_t(double(ms) * 1e6),
                p.bytes);
    }
    st.event_pool.push_back(p.start);
    st.event_pool.push_back(p.stop);
  }
  st.pending.clear();
}

// At exit, the events still pending are read while the CUDA runtime is alive: registered after the
// first op timed on the GPU, and so after the runtime's own teardown was registered, this runs
// before it (exit handlers run last-registered first), ahead of the report and trace of
// MUSICREC_PROFILE and MUSICREC_TRACE, registered before any CUDA call.
void resolve_at_exit() {
  try {
    std::lock_guard<std::mutex> lock(state().mu);
    resolve_pending();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "musicrec: profiler: %s\n", e.what());
  }
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
    Trace& tr = state().trace;
    if (tr.on && !tr.base_event) {
      tr.base_event = take_event();
      MR_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(tr.base_event), CudaContext::get().stream()));
      MR_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(tr.base_event)));
      tr.base_event_ns = now_ns();
    }
    start_event_ = take_event();
    MR_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(start_event_), CudaContext::get().stream()));
    if (!g_exit_hook) {
      g_exit_hook = true;
      std::atexit(resolve_at_exit);
    }
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
      state().pending.push_back({key(name_, backward_), start_event_, stop, t_phase, bytes_, state().trace.on});
      if (state().pending.size() >= 4096) resolve_pending();
#endif
    } else {
      const int64_t end_ns = now_ns();
      std::string name = key(name_, backward_);
      std::lock_guard<std::mutex> lock(state().mu);
      add_time(name, double(end_ns - start_ns_) / 1e6, t_phase, bytes_);
      if (state().trace.on) add_slice(std::move(name), "op", host_track(), start_ns_, end_ns - start_ns_, bytes_);
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
    const int64_t end_ns = now_ns();
    t_phase = outer_;
    std::lock_guard<std::mutex> lock(state().mu);
    PhaseStat& p = phase_stat(name_);
    ++p.calls;
    p.wall_ms += double(end_ns - start_ns_) / 1e6;
    if (state().trace.on) add_slice(name_, "phase", host_track(), start_ns_, end_ns - start_ns_, -1);
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

namespace {
// Caller holds the mutex. Ends the current trace (if any): the GPU events still pending are read into
// it first, its clock-alignment event goes back to the pool, and what it recorded is returned; the
// state keeps only the generation count.
Trace close_trace() {
#if MUSICREC_WITH_CUDA
  resolve_pending();
  if (state().trace.base_event) state().event_pool.push_back(state().trace.base_event);
#endif
  Trace& tr = state().trace;
  Trace closed = std::move(tr);
  tr = Trace();
  tr.generation = closed.generation;
  return closed;
}
}  // namespace

void start_trace(size_t max_slices) {
  MR_CHECK(max_slices > 0, "profiler: a trace must have room for at least one slice");
  {
    std::lock_guard<std::mutex> lock(state().mu);
    close_trace();  // ops timed before the trace are not slices of it
    Trace& tr = state().trace;
    tr.on = true;
    ++tr.generation;
    tr.max_slices = max_slices;
    tr.t0_ns = now_ns();
  }
  g_enabled = true;
}

bool tracing() {
  std::lock_guard<std::mutex> lock(state().mu);
  return state().trace.on;
}

void write_trace(const std::string& path) {
  Trace closed;
  {
    std::lock_guard<std::mutex> lock(state().mu);
    MR_CHECK(state().trace.on, path + ": no trace to write (profiler::start_trace was not called)");
    closed = close_trace();
  }
  std::vector<TraceSlice>& slices = closed.slices;
  // Slices are recorded as scopes end (an op before the phase around it): by start time they read in
  // order, and a phase comes before the ops it holds.
  std::stable_sort(slices.begin(), slices.end(), [](const TraceSlice& a, const TraceSlice& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.dur_ns > b.dur_ns;
  });
  write_text_file(path, chrome_trace_json(slices, closed.tracks, closed.dropped));
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
