// Running a reader of untrusted files in a child process, so that a crash or an endless loop inside a
// library we cannot fix becomes an error naming the file instead of the end of the program.
//
// Why: libhdf5 1.10.8 (Debian 12) is not memory-safe on corrupted files. Fuzzing (fuzz/README.md) found
// heap overflows in H5VM_memcpyvv, overlapping copies in H5HG_read, huge allocations in H5T__conv_vlen
// and endless loops in H5C_protect within seconds; without a sanitizer the overflows pass silently and
// the loops hang the process. Our own checks cannot reach inside the library, a separate process can.
//
// run_isolated forks; the child runs `work` and sends back the bytes it returns through a pipe; the
// parent reads them while waiting, with a time limit (IsolatedWorker below does the same for many
// requests with one child). Outcomes:
//   the child returned          -> its bytes
//   the child threw an Error    -> an Error with the child's message (the same text as in-process)
//   the child died by a signal  -> an Error "<what>: the reader crashed (SIGSEGV) ..."
//   the child ran past the limit-> it is killed; an Error "<what>: reading took over N s ..."
// The child leaves with _exit: no destructors or exit handlers of the parent's state run there.
//
// Limits of the method: fork copies only the calling thread, so `work` must not need a lock another
// thread of the parent may hold (the readers here use libhdf5, the C++ library and malloc, whose locks
// fork handles, and nothing else); and the child must not use CUDA.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace musicrec {

class ForkServer;

struct IsolationOptions {
  double timeout_s = 30;  // MUSICREC_ISOLATION_TIMEOUT_S overrides it
};

std::string run_isolated(const std::string& what, const std::function<std::string()>& work,
                         IsolationOptions opt = {});

// A child process that serves many requests, so a scan of many files forks once, not once per file
// (fork copies the page tables of a process that maps the CUDA libraries: ~5-10 ms each time). The
// handler runs in the child on each request's bytes; call() returns its bytes or throws as
// run_isolated does. After a crash or a timeout the child is gone and the next call starts a new one;
// after an error (a file the reader refused) the child is ended too, since a damaged file may have
// damaged the library's state without crashing it, and the next file deserves a clean reader.
// One worker serves one thread at a time.
//
// Where the children come from (ChildSource): forked from this process each time, or from a fork server
// (engine/fork_server.h) made at the worker's first start, a copy of the process as it was then. fork
// costs in proportion to what is resident (~45 ms per GB here, at the fork and again at the child's
// exit), so a worker that will start many children while its process grows (a scan that gathers
// tracks and meets refused files, a fuzz target whose inputs are mostly refused) takes kForkServer.
// Its children see memory as it was at the first start: the handler must need nothing made later.
enum class ChildSource { kThisProcess, kForkServer };

class IsolatedWorker {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  explicit IsolatedWorker(Handler handler, ChildSource source = ChildSource::kThisProcess);
  ~IsolatedWorker();
  IsolatedWorker(const IsolatedWorker&) = delete;
  IsolatedWorker& operator=(const IsolatedWorker&) = delete;
  std::string call(const std::string& what, const std::string& request, IsolationOptions opt = {});
  // kForkServer: makes the fork server now if it is not made yet, so that the children are copies of
  // the process as it is now rather than at the first call (a fuzz target makes it before libFuzzer
  // allocates its tables: a smaller server forks faster). Nothing for kThisProcess.
  void start_server();
  int children_started() const { return started_; }
  int child_pid() const { return pid_; }  // -1 while none runs

 private:
  void start(const std::string& what);
  void stop();
  int wait_for_child();  // its wait status; the child has ended or is ending
  [[noreturn]] void become_child(int in, int out);
  Handler handler_;
  ChildSource source_;
  std::unique_ptr<ForkServer> server_;
  int pid_ = -1, to_child_ = -1, from_child_ = -1, started_ = 0;
  uint64_t budget_mb_;  // isolation_memory_budget_mb() when made
};

// How much memory a reader child may take beyond what it inherited: 4096 MB, or
// MUSICREC_ISOLATION_MEMORY_MB (read when a worker is made). Past it the reader's allocations fail and
// the request is an error ("the reader ran out of memory"), instead of a damaged file making libhdf5
// take all the machine's memory.
uint64_t isolation_memory_budget_mb();

// A seam for the fuzz targets (fuzz/isolated_fuzzing.h), which fuzz the readers the way the program
// runs them, in a child: functions run in every reader child, right after fork and around each
// request, so the harness can send the child's coverage back to libFuzzer and keep its sanitizer
// reports. Set once, before any child starts; all null in the program.
struct IsolationHooks {
  void (*child_started)() = nullptr;
  void (*request_begins)() = nullptr;
  void (*request_ended)() = nullptr;  // after the handler returned or threw, before the reply is sent
};
void set_isolation_hooks(const IsolationHooks& hooks);

// A limit for reading one file: 30 s plus 1 s per 10 MB (the MSD summary file is 300 MB; reading
// it takes seconds, and no valid file should come near this).
double isolation_timeout_for(const std::string& path);

// False when MUSICREC_HDF5_IN_PROCESS=1: readers then run in this process (faster, for trusted files
// and for the fuzz targets, which must see the reader's own faults).
bool isolate_untrusted_readers();

// Little helpers for passing results through the pipe: length-prefixed fields appended to a string and
// read back in the same order. A reader that runs out of bytes throws (the child's output is checked).
class ByteWriter {
 public:
  void u64(uint64_t v);
  void f64(double v);
  void str(const std::string& s);
  void f64s(const std::vector<double>& v);
  void raw(const void* p, size_t n);  // n bytes as they are (the reader knows n from what came before)
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  ByteReader(const std::string& bytes, std::string what) : b_(bytes), what_(std::move(what)) {}
  uint64_t u64();
  double f64();
  std::string str();
  std::vector<double> f64s();
  void raw(void* dst, size_t n);  // copies the next n bytes into dst
  // A count of items that each take at least `min_bytes` of what is left: refused when the bytes left
  // cannot hold them, so a count is never trusted for an allocation.
  uint64_t count(size_t min_bytes);
  bool done() const { return pos_ == b_.size(); }
  size_t remaining() const { return b_.size() - pos_; }

 private:
  void need(size_t n);
  const std::string& b_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace musicrec
