// Per-op profiler and NVTX ranges.
//
// Every op opens an OpScope. On CUDA builds the scope is always an NVTX range (free when no tool is
// attached), so Nsight Systems and Nsight Compute traces name each op. When profiling is on
// (MUSICREC_PROFILE=1, or set_enabled), the outermost scope of each op is also timed: CUDA events on
// the stream for device ops, the steady clock for CPU ops. With MUSICREC_PROFILE=1 the table is
// printed to stderr at exit. Backward passes are timed as "<op> (backward)".
//
// Bytes: an op that knows its traffic reports it with OpScope::moves, counted as its compulsory
// traffic (each input read once, each output written once: what a perfect kernel would move), so the
// report's GB/s says how close a memory-bound op runs to the copy rate; a kernel that reads something
// twice moves more than it is credited with. Ops that do not report show "-".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/device.h"

namespace musicrec::profiler {

bool enabled();
void set_enabled(bool on);

class OpScope {
 public:
  OpScope(const char* name, Device device, bool backward = false);
  ~OpScope();
  // The bytes this op reads and writes at least (see above); kept when this scope is the timed one.
  void moves(double bytes) { bytes_ = bytes; }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  bool counted_ = false;  // entered the nesting count
  bool timed_ = false;    // outermost scope: timed
  bool nvtx_ = false;
  const char* name_;
  bool backward_;
  Device device_;
  int64_t start_ns_ = 0;
  void* start_event_ = nullptr;
  double bytes_ = -1;  // < 0: not reported
};

// A named phase of work (the training loops use "data", "step", "evaluate", "bookkeeping"): always an
// NVTX range on CUDA builds; when profiling is on, also timed on the host's clock, with the op time
// spent inside it, so the report can say how much of a phase ran outside ops (host work, launches,
// waiting). On a GPU the phase waits for the stream at its end while profiling, so its wall time
// includes the device work it queued (profiled runs are therefore a little slower). Phases nest; an
// op is charged to the innermost one.
class Range {
 public:
  explicit Range(const char* name);
  ~Range();
  Range(const Range&) = delete;
  Range& operator=(const Range&) = delete;

 private:
  const char* name_;
  const char* outer_ = nullptr;
  bool timed_ = false;
  int64_t start_ns_ = 0;
};

struct OpStat {
  std::string name;
  uint64_t calls = 0;
  double total_ms = 0;
  uint64_t calls_with_bytes = 0;  // calls that reported their bytes
  double bytes = 0;               // their sum
};

struct PhaseStat {
  std::string name;
  uint64_t calls = 0;
  double wall_ms = 0;  // host clock, from entering to leaving the phase
  double op_ms = 0;    // op time charged to this phase (its innermost enclosing one)
};

// Timings so far, longest total first (waits for pending CUDA events).
std::vector<OpStat> snapshot();
// Phase timings so far, in first-entered order.
std::vector<PhaseStat> phases();
void reset();
std::string report();

// The timeline: start_trace turns profiling on and records every timed scope from then on (each op's
// outermost scope and each phase, as the table counts them) with its start and duration, up to
// `max_slices` (past that they are counted as dropped); write_trace writes them to `path` as a Chrome
// trace (Perfetto, chrome://tracing; written whole or not at all) and ends the trace, leaving
// profiling on. Host threads get a track each, the GPU stream one of its own (its ops placed by their
// CUDA events, aligned with the host's clock by one event the stream is waited for). `--trace FILE` on
// the training commands; MUSICREC_TRACE=FILE traces a whole process and writes at exit.
void start_trace(size_t max_slices = 4'000'000);
bool tracing();
void write_trace(const std::string& path);

}  // namespace musicrec::profiler
