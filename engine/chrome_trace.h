// Chrome's trace event format, the JSON that Perfetto (ui.perfetto.dev) and chrome://tracing open: the
// profiler's timeline (profiler::start_trace) written as complete events ("ph": "X") on named tracks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace musicrec::profiler {

struct TraceSlice {
  std::string name;      // the op ("linear", "conv2d (backward)") or phase ("step")
  const char* category;  // "op" or "phase"
  int track;             // index into the track names
  int64_t start_ns;      // since the trace began
  int64_t dur_ns;
  double bytes;  // what the op moves at least (OpScope::moves); < 0: not reported
};

// The whole trace as JSON: one process, a thread per track (named by `track_names`), times in
// microseconds; `dropped` slices past the recording limit are counted in "otherData".
std::string chrome_trace_json(const std::vector<TraceSlice>& slices, const std::vector<std::string>& track_names,
                              uint64_t dropped);

}  // namespace musicrec::profiler
