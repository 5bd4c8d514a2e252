// Symbolising a reader child's sanitizer report in the parent (fuzz/isolated_fuzzing.h).
//
// A sanitizer symbolises a report by starting llvm-symbolizer, which then loads the debug information
// of the binary: ~85 ms in every reader child that reports, and one mutated HDF5 input in six or so
// makes libhdf5 crash or loop. The isolated targets therefore run with ASAN_OPTIONS=symbolize=0
// (scripts/fuzz.sh): a child's report arrives with raw frames, "#3 0x7f..  (/lib/libhdf5.so+0x24c125)",
// and the parent rewrites them through one llvm-symbolizer it keeps for the whole run, into the lines the
// sanitizer would have printed, before fuzz/triage.h reads them.
#pragma once
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace musicrec::fuzz {

// One source frame of an address (an inlined call gives several, innermost first).
struct SourceFrame {
  std::string function;  // "??" when unknown
  std::string location;  // "file:line:col", or "" when unknown
};

using FrameLookup = std::function<std::vector<SourceFrame>(const std::string& module, const std::string& offset)>;

// Rewrites each raw frame line of `log` ("    #N 0xPC  (module+0xOFF)[ (BuildId: ...)]") as the
// sanitizer prints a symbolised one: "    #N 0xPC in function file:line:col" when the location is
// known, else "    #N 0xPC in function (module+0xOFF)"; one line per inlined frame. Other lines, and
// frames that already name a function, are kept as they are.
std::string symbolize_log(const std::string& log, const FrameLookup& lookup);

// llvm-symbolizer's answer for one address: pairs of lines (function, location), up to a blank line.
std::vector<SourceFrame> parse_symbolizer_answer(const std::vector<std::string>& lines);

// One llvm-symbolizer process ($ASAN_SYMBOLIZER_PATH, else llvm-symbolizer on the PATH), started on
// first use and kept; lookups fail soft (an unknown frame) when it cannot be started or dies, and one
// that died or stayed silent for 10 s is started again for the next lookup (up to 20 times a run).
class LlvmSymbolizer {
 public:
  LlvmSymbolizer() = default;
  ~LlvmSymbolizer();
  LlvmSymbolizer(const LlvmSymbolizer&) = delete;
  LlvmSymbolizer& operator=(const LlvmSymbolizer&) = delete;

  std::vector<SourceFrame> lookup(const std::string& module, const std::string& offset);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  bool start();
  void stop();
  bool send(const std::string& request);
  bool read_line(std::string& line);

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;  // its stdin and stdout
  std::string pending_;      // read from its stdout, not yet taken as lines
  bool failed_ = false;  // could not be started, or failed too often: frames stay raw
  int restarts_ = 0;
  static constexpr int kMaxRestarts = 20;
};

}  // namespace musicrec::fuzz
