// The harness for fuzzing readers in their child process (see isolated_fuzzing.h).
#include "fuzz/isolated_fuzzing.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/signal_stack.h"
#include "fuzz/symbolize.h"
#include "fuzz/triage.h"
#include "kernels/error.h"

// libFuzzer's inline 8-bit counters (-fsanitize=fuzzer-no-link): one byte per edge of our code, in a
// section the linker brackets with these symbols. The child's copy is private after fork.
extern "C" {
extern uint8_t __start___sancov_cntrs[] __attribute__((weak));
extern uint8_t __stop___sancov_cntrs[] __attribute__((weak));
}

namespace musicrec::fuzz {
namespace {
void arm(int ms);
bool watchdog_made();
}  // namespace
}  // namespace musicrec::fuzz

// AddressSanitizer calls this as a report begins. The watchdog is disarmed, so it cannot fire inside
// the report (full stacks and symbols take CPU time) and interrupt it.
extern "C" void __asan_on_error() {
  if (musicrec::fuzz::watchdog_made()) musicrec::fuzz::arm(0);
}

namespace musicrec::fuzz {
namespace {

struct Shared {
  std::atomic<uint32_t> ready;
  uint8_t counters[];
};

Shared* g_shared = nullptr;
size_t g_counters = 0;
std::string* g_log = nullptr;  // the children's stderr
timer_t g_watchdog;
bool g_watchdog_made = false;  // true in a reader child, once its timer exists
int g_watchdog_ms = 100;
int g_library_findings = 0;

uint8_t* counters() { return __start___sancov_cntrs; }

// The watchdog: its timer's signal is handled by fuzz/signal_stack.h's report of the interrupted stack
// (that file says why not the sanitizer's), which the parent's symboliser and triage read. The mark
// comes first: if the unwinding cannot finish, the parent still knows whose report never came and
// runs the input again (inspect_child_log).
const int kWatchdogSignal = SIGRTMIN + 3;
constexpr char kWatchdogMark[] = "musicrec-watchdog: the reader used its CPU time on one request\n";

void child_started() {
  const int fd = ::open(g_log->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::dup2(fd, 2);
    ::close(fd);
  }
  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = kWatchdogSignal;
  if (::timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &g_watchdog) != 0) _exit(5);
  g_watchdog_made = true;
}

bool watchdog_made() { return g_watchdog_made; }

void arm(int ms) {  // 0 disarms
  itimerspec t{};
  t.it_value.tv_sec = ms / 1000;
  t.it_value.tv_nsec = long(ms % 1000) * 1000000L;
  ::timer_settime(g_watchdog, 0, &t, nullptr);
}

void request_begins() {
  std::memset(counters(), 0, g_counters);
  arm(g_watchdog_ms);
}

void request_ended() {
  arm(0);
  std::memcpy(g_shared->counters, counters(), g_counters);
  g_shared->ready.store(1, std::memory_order_release);
}

void install() {
  const char* start = reinterpret_cast<const char*>(__start___sancov_cntrs);
  const char* stop = reinterpret_cast<const char*>(__stop___sancov_cntrs);
  if (!start || !stop || stop <= start) {
    std::fprintf(stderr, "isolated fuzzing: no coverage counters in this binary (build with -fsanitize=fuzzer-no-link)\n");
    std::abort();
  }
  g_counters = size_t(stop - start);
  void* m = ::mmap(nullptr, sizeof(Shared) + g_counters, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::perror("isolated fuzzing: mmap");
    std::abort();
  }
  g_shared = new (m) Shared();
  g_log = new std::string(scratch_dir() + "/reader-child.log");
  // The watchdog reports a loop after g_watchdog_ms of CPU; the parent's own limit only has to outlast the child's
  // report (symbolising takes a moment), and libFuzzer's -timeout (scripts/fuzz.sh) outlasts both.
  setenv("MUSICREC_ISOLATION_TIMEOUT_S", "5", 1);
  char report[256];
  std::snprintf(report, sizeof report, "%s==musicrec-watchdog==ERROR: a loop, stopped after %d ms of CPU time; the stack:\n",
                kWatchdogMark, g_watchdog_ms);
  report_stack_on_signal(kWatchdogSignal, report, 2, 1);  // exit code 1, as the sanitizer's after a report
  IsolationHooks h;
  h.child_started = child_started;
  h.request_begins = request_begins;
  h.request_ended = request_ended;
  set_isolation_hooks(h);
}

void merge_child_coverage() {
  if (!g_shared->ready.exchange(0, std::memory_order_acquire)) return;
  uint8_t* mine = counters();
  const uint8_t* theirs = g_shared->counters;
  for (size_t i = 0; i < g_counters; ++i)
    if (theirs[i]) mine[i] = uint8_t(std::min(255, int(mine[i]) + int(theirs[i])));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void keep(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

// A child's report inside libhdf5: what the isolation contains. The first few of each kind (its
// signature, fuzz/triage.h) are kept with their inputs; the rest are counted (a campaign meets the same
// few library faults thousands of times: keeping all of them filled gigabytes). Any input libFuzzer's
// handlers in the child wrote as an artifact is removed (it is not a finding of ours).
constexpr int kKeptPerSignature = 5;
std::map<std::string, int> g_signatures;

void keep_library_finding(const std::string& log, const uint8_t* data, size_t size) {
  ++g_library_findings;
  const std::string signature = report_signature(log);
  const int seen = ++g_signatures[signature];
  const char* dir = std::getenv("MUSICREC_FUZZ_LIBRARY_DIR");
  std::string kept = "(set MUSICREC_FUZZ_LIBRARY_DIR to keep them)";
  if (dir && *dir && seen <= kKeptPerSignature) {
    const std::string base = std::string(dir) + "/" + std::to_string(::getpid()) + "-" + std::to_string(g_library_findings);
    keep(base + ".input", data, size);
    keep(base + ".log", reinterpret_cast<const uint8_t*>(log.data()), log.size());
    kept = "kept as " + base + ".{input,log}";
  } else if (dir && *dir) {
    kept = "not kept (" + std::to_string(kKeptPerSignature) + " of its kind are)";
  }
  static const std::regex written("Test unit written to (\\S+)");
  for (std::sregex_iterator it(log.begin(), log.end(), written), end; it != end; ++it)
    std::remove((*it)[1].str().c_str());
  std::fprintf(stderr, "libhdf5 finding %d in the reader child [%s], %d of its kind, contained; %s\n", g_library_findings,
               signature.c_str(), seen, kept.c_str());
}

// Raw frames of a child's report (ASAN_OPTIONS=symbolize=0, fuzz/symbolize.h) through the parent's one
// llvm-symbolizer; a report the child symbolised itself passes through unchanged.
std::string symbolized(const std::string& log) {
  static LlvmSymbolizer* symbolizer = new LlvmSymbolizer();  // lives for the run
  return symbolize_log(log, [](const std::string& module, const std::string& offset) {
    return symbolizer->lookup(module, offset);
  });
}

enum class ChildOutcome { kClean, kLibrary, kRunAgain };

// What the child's log says about this input. A report of ours stops the run here.
ChildOutcome inspect_child_log(const uint8_t* data, size_t size, bool timed_out, bool last_try) {
  const std::string raw = read_file(*g_log);
  ::truncate(g_log->c_str(), 0);
  const std::string log = has_report(raw) ? symbolized(raw) : raw;
  if (timed_out) {
    // The watchdog interrupts the loop wherever it is, inside malloc too, and the report that follows
    // is not async-signal-safe: unwinding can wait on a lock the interrupted code held (seen twice in
    // ~50,000 checkpoint inputs, each time after the timer landed in memset under libhdf5's loop; the
    // same input ran clean alone). A marked report that never finished is run again in a new child.
    if (!last_try && log.find(kWatchdogMark) != std::string::npos) return ChildOutcome::kRunAgain;
    // The last try's report may still be whole and decide: a loop of libhdf5's inside the sanitizer's
    // allocator (the watchdog landing in its memset) was reported three times, each finishing after
    // the parent's 5 s on a loaded machine (fuzz_song_images, session 8). Such a report is libhdf5's.
    if (log.find(kWatchdogMark) != std::string::npos && has_deciding_frame(log) &&
        classify_report(log) == Culprit::kLibhdf5) {
      keep_library_finding(log, data, size);
      return ChildOutcome::kLibrary;
    }
    // A child that outlived its watchdog and the parent's limit without one: nothing the triage saw.
    std::fprintf(stderr, "the reader child outlived its watchdog; its log:\n%s\n", log.c_str());
    std::abort();
  }
  if (log.empty()) return ChildOutcome::kClean;
  if (!has_report(log)) return ChildOutcome::kClean;  // libhdf5's own diagnostics and the like
  // The watchdog can land where the sanitizer cannot unwind (inside its allocator or memset, called
  // from libhdf5's loop): "<empty stack>". Such a loop is run again in a new child, where it is
  // stopped elsewhere; only a loop that never shows a frame counts as unclear, so as ours.
  if (!last_try && log.find(kWatchdogMark) != std::string::npos && !has_deciding_frame(log))
    return ChildOutcome::kRunAgain;
  if (classify_report(log) == Culprit::kLibhdf5) {
    keep_library_finding(log, data, size);
    return ChildOutcome::kLibrary;
  }
  // A loop the watchdog stopped in our code may still be libhdf5's: our code runs inside its loops too
  // (a callback it calls, an allocation on the way). An input libhdf5 recursed on without end through a
  // damaged group cycle was stopped once in our H5Lvisit callback (its sanitizer frames), where the loop
  // spent least of its time. So it runs again: a loop of ours is stopped in our code every time; one
  // stop inside libhdf5 makes it libhdf5's.
  if (!last_try && log.find(kWatchdogMark) != std::string::npos) return ChildOutcome::kRunAgain;
  std::fprintf(stderr, "==== the reader child's report, in our code (fuzz/triage.h) ====\n%s\n"
                       "==== end of the child's report ====\n", log.c_str());
  std::abort();  // libFuzzer keeps this input as a crash
}

}  // namespace

void prepare_isolated_fuzzing(int watchdog_cpu_ms, IsolatedWorker& reader) {
  if (!g_shared) {
    g_watchdog_ms = watchdog_cpu_ms;
    install();
  }
  reader.start_server();
}

int fuzz_isolated(const uint8_t* data, size_t size, const std::function<void()>& read) {
  if (!g_shared) {
    std::fprintf(stderr, "isolated fuzzing: prepare_isolated_fuzzing was not called (from LLVMFuzzerInitialize)\n");
    std::abort();
  }
  constexpr int kTries = 3;
  for (int attempt = 1;; ++attempt) {
    std::string error;
    try {
      read();
    } catch (const Error& e) {
      error = e.what();
    }
    merge_child_coverage();
    const bool timed_out = error.find("reading took over") != std::string::npos;
    const ChildOutcome outcome = inspect_child_log(data, size, timed_out, attempt == kTries);
    if (outcome != ChildOutcome::kRunAgain) return outcome == ChildOutcome::kLibrary ? -1 : 0;
  }
}

}  // namespace musicrec::fuzz
