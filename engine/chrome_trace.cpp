// Chrome trace JSON of the profiler's timeline (see chrome_trace.h). Written by hand rather than
// through a JSON tree: a long run records millions of slices, and each is one formatted line.
#include "engine/chrome_trace.h"

#include <fmt/core.h>

namespace musicrec::profiler {
namespace {

// A JSON string's body: names are the engine's own op and phase names, but a quote or a control
// character must still not break the file.
std::string escaped(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string chrome_trace_json(const std::vector<TraceSlice>& slices, const std::vector<std::string>& track_names,
                              uint64_t dropped) {
  std::string out = "{\"displayTimeUnit\": \"ns\", \"otherData\": {\"producer\": \"musicrec\", \"dropped_slices\": " +
                    std::to_string(dropped) + "},\n\"traceEvents\": [\n";
  out += "{\"ph\": \"M\", \"pid\": 1, \"tid\": 0, \"name\": \"process_name\", \"args\": {\"name\": \"musicrec\"}}";
  for (size_t t = 0; t < track_names.size(); ++t)
    out += fmt::format(
        ",\n{{\"ph\": \"M\", \"pid\": 1, \"tid\": {}, \"name\": \"thread_name\", \"args\": {{\"name\": \"{}\"}}}}"
        ",\n{{\"ph\": \"M\", \"pid\": 1, \"tid\": {}, \"name\": \"thread_sort_index\", \"args\": {{\"sort_index\": {}}}}}",
        t, escaped(track_names[t]), t, t);
  for (const TraceSlice& s : slices) {
    // Microseconds with three decimals: the format's unit, to the nanosecond the clocks give.
    out += fmt::format(",\n{{\"ph\": \"X\", \"pid\": 1, \"tid\": {}, \"cat\": \"{}\", \"name\": \"{}\", \"ts\": {:.3f}, "
                       "\"dur\": {:.3f}",
                       s.track, s.category, escaped(s.name), double(s.start_ns) * 1e-3, double(s.dur_ns) * 1e-3);
    if (s.bytes >= 0) out += fmt::format(", \"args\": {{\"bytes\": {:.0f}}}", s.bytes);
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace musicrec::profiler
