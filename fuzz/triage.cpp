// Classifying sanitizer reports as libhdf5's or ours (see triage.h).
#include "fuzz/triage.h"

#include <cctype>
#include <sstream>
#include <vector>

namespace musicrec::fuzz {
namespace {

size_t report_start(const std::string& log) {
  size_t best = std::string::npos;
  for (const char* marker : {"==ERROR", "ERROR: libFuzzer", "runtime error"}) {
    const size_t at = log.find(marker);
    if (at < best) best = at;
  }
  if (best == std::string::npos) return best;
  const size_t line = log.rfind('\n', best);
  return line == std::string::npos ? 0 : line + 1;
}

bool is_frame(const std::string& line) {  // "    #12 0x... in f file.cpp:3:4"
  size_t i = line.find_first_not_of(' ');
  if (i == 0 || i == std::string::npos || line[i] != '#') return false;
  return i + 1 < line.size() && std::isdigit(static_cast<unsigned char>(line[i + 1]));
}

bool has_cpp_location(const std::string& line) {
  for (const char* ext : {".cpp:", ".cc:", ".h:", ".hpp:"}) {
    size_t at = line.find(ext);
    while (at != std::string::npos) {
      const size_t digit = at + std::string(ext).size();
      if (digit < line.size() && std::isdigit(static_cast<unsigned char>(line[digit]))) return true;
      at = line.find(ext, at + 1);
    }
  }
  return false;
}

// A frame the symboliser did not name, in the program itself rather than a shared library:
// "    #3 0x55d1  (/work/main/build-fuzz/bin/musicrec_fuzz_msd+0x1d752e)". It may be our code.
bool is_raw_program_frame(const std::string& line) {
  if (line.find(" in ") != std::string::npos) return false;
  const size_t open = line.rfind('(');
  if (open == std::string::npos) return false;
  const std::string module = line.substr(open + 1, line.find('+', open) - open - 1);
  return module.find(".so") == std::string::npos && module.find('<') == std::string::npos;
}

// The first frame that decides: in libhdf5, or with a C++ source location. Sanitizer interceptors and
// libFuzzer live in the fuzz binary without a source file of ours (or in fuzzer:: / __sanitizer::
// code), and libc frames name .c files or glibc's sysdeps/ headers: all are skipped. A frame of the
// program that was not symbolised (the symboliser failed) may be ours, so it decides, as ours.
std::string deciding_frame(const std::vector<std::string>& lines) {
  for (const std::string& l : lines) {
    if (!is_frame(l)) continue;
    if (is_raw_program_frame(l)) return l;
    if (l.find(" in fuzzer::") != std::string::npos || l.find(" in __sanitizer") != std::string::npos ||
        l.find(" in __asan") != std::string::npos || l.find(" in __ubsan") != std::string::npos ||
        l.find(" in __libc_") != std::string::npos || l.find("sysdeps/") != std::string::npos)
      continue;
    if (l.find("libhdf5") != std::string::npos || has_cpp_location(l)) return l;
  }
  return "";
}

Culprit where(const std::string& frame) {
  return frame.find("libhdf5") != std::string::npos ? Culprit::kLibhdf5 : Culprit::kOurs;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

bool has_report(const std::string& log) { return report_start(log) != std::string::npos; }

bool has_deciding_frame(const std::string& log) {
  const size_t start = report_start(log);
  return start != std::string::npos && !deciding_frame(lines_of(log.substr(start))).empty();
}

// The lines of the section that starts with a line containing `title`, up to the next blank line.
std::vector<std::string> section(const std::vector<std::string>& report, const char* title) {
  std::vector<std::string> out;
  bool in = false;
  for (const std::string& l : report) {
    if (!in && l.find(title) != std::string::npos) in = true;
    else if (in && l.find_first_not_of(" \t\r") == std::string::npos) break;
    if (in) out.push_back(l);
  }
  return out;
}

bool in_reader_child(const std::vector<std::string>& stack) {  // engine/isolated.cpp's child loop
  for (const std::string& l : stack)
    if (is_frame(l) && l.find("child_main") != std::string::npos) return true;
  return false;
}

namespace {
// "    #2 0x7f.. in H5T__conv_struct_opt (/lib/...)" -> "H5T__conv_struct_opt"; C++ names lose their
// arguments ("ns::(anonymous namespace)::f(long) /src/a.cpp:3:4" -> "ns::(anonymous namespace)::f");
// a frame without a name (a static function of a stripped library) gives "". A label for counting
// reports, not a parser of every name.
std::string frame_function(const std::string& frame) {
  const size_t in = frame.find(" in ");
  if (in == std::string::npos) return "";
  const std::string f = frame.substr(in + 4);
  int angle = 0;
  static const std::string anonymous = "(anonymous namespace)";
  for (size_t i = 0; i < f.size(); ++i) {
    if (f.compare(i, anonymous.size(), anonymous) == 0) i += anonymous.size() - 1;
    else if (f[i] == '<') ++angle;
    else if (f[i] == '>' && angle > 0) --angle;
    else if (angle == 0 && (f[i] == ' ' || f[i] == '(')) return f.substr(0, i);
  }
  return f;
}

// The first named frame from `from` on.
std::string first_named(const std::vector<std::string>& frames, size_t from) {
  for (size_t i = from; i < frames.size(); ++i) {
    const std::string f = frame_function(frames[i]);
    if (!f.empty()) return f;
  }
  return "";
}

}  // namespace

std::string report_signature(const std::string& log) {
  const size_t start = report_start(log);
  if (start == std::string::npos) return "no report";
  const std::vector<std::string> report = lines_of(log.substr(start));
  std::string kind = "report";
  for (const std::string& l : report) {
    const size_t at = l.find("ERROR: AddressSanitizer: ");
    if (at != std::string::npos) {
      kind = l.substr(at + 25);
      kind = kind.substr(0, kind.find(' '));
      break;
    }
    if (l.find("runtime error") != std::string::npos) {
      kind = "undefined-behaviour";
      break;
    }
    if (l.find("ERROR: libFuzzer: out-of-memory (malloc") != std::string::npos) {  // -malloc_limit_mb
      kind = "malloc-over-limit";
      break;
    }
  }
  // A watchdog report's top frame is wherever the timer landed in the loop: only the deciding frame
  // (the first of libhdf5 or of our source) names the loop.
  const bool loop = log.find("musicrec-watchdog") != std::string::npos;
  if (loop) kind = "loop";
  std::vector<std::string> frames;  // the first stack only
  for (const std::string& l : report) {
    if (is_frame(l)) frames.push_back(l);
    else if (!frames.empty()) break;
  }
  if (frames.empty()) return kind + " without a stack";
  const std::string decides = deciding_frame(frames);
  size_t at = 0;
  while (at < frames.size() && frames[at] != decides) ++at;
  const std::string d = first_named(frames, at);
  const std::string top = first_named(frames, 0);
  if (loop || top == d) return kind + " in " + (d.empty() ? "an unnamed function" : d);
  return kind + " in " + (top.empty() ? "an unnamed function" : top) + (d.empty() ? "" : " < " + d);
}

Culprit classify_report(const std::string& log) {
  const size_t start = report_start(log);
  if (start == std::string::npos) return Culprit::kOurs;
  const std::vector<std::string> report = lines_of(log.substr(start));
  const Culprit crash = where(deciding_frame(report));
  if (crash != Culprit::kLibhdf5) return crash;
  // Memory on a stack belongs to the frame the report names: libhdf5 writing past a variable of ours
  // (an attribute of six values read into one, song_images, session 9) is our bug.
  const std::vector<std::string> owner = section(report, "is located in stack of thread");
  if (!owner.empty()) {
    const std::string by = deciding_frame(owner);
    if (!by.empty()) return where(by);
  }
  const std::vector<std::string> freed = section(report, "freed by thread");
  const std::vector<std::string> alloc = section(report, "allocated by thread");
  if (in_reader_child(report)) {
    // A reader child (fuzz/isolated_fuzzing.h) holds no pointer to memory that was freed, or only
    // ever allocated, before it was forked: the parent passes it a file name, nothing else. libhdf5
    // reaching such memory followed a pointer of its own making.
    if (!freed.empty() && !in_reader_child(freed)) return Culprit::kLibhdf5;
    if (!alloc.empty() && !in_reader_child(alloc)) return Culprit::kLibhdf5;
  }
  if (alloc.empty()) return crash;
  // The sanitizer describes a bad address by the nearest block, whoever overran: an overflow past
  // libhdf5's own buffer that runs into the left redzone of the next block reads "N bytes to the left
  // of" that block. A buffer of ours that libhdf5 overran is written from its start onwards (we pass
  // only starts), so only an address inside or to the right of our block is ours. Seen in checkpoint,
  // session 9: H5O__msg_iterate_real under H5Aexists (no buffer of ours passed) wrote 48 bytes left of
  // a tensor buffer the child had allocated earlier; the rule below alone called it ours.
  for (const std::string& l : report)
    if (l.find(" is located ") != std::string::npos && l.find(" to the left of ") != std::string::npos) return crash;
  // Memory our code allocated decides against us; memory only libhdf5, libFuzzer or the runtime ever
  // held (a stale pointer of libhdf5's into a buffer libFuzzer freed) stays libhdf5's.
  const std::string by = deciding_frame(alloc);
  return by.empty() ? crash : where(by);
}

}  // namespace musicrec::fuzz
