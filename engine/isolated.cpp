// Readers in a child process (see isolated.h).
#include "engine/isolated.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "engine/fork_server.h"
#include "kernels/error.h"

namespace musicrec {
namespace {

// The first byte the child sends says how `work` ended; the rest is the payload or the message.
constexpr char kReturned = 'R', kThrewError = 'E', kThrewOther = 'X';

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

// write_all with SIGPIPE held back in this thread: a write to a child that has died must be an error
// here, not the signal that ends the whole program.
bool write_to_child(int fd, const std::string& request) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const uint64_t n = request.size();
  const bool ok = write_all(fd, reinterpret_cast<const char*>(&n), sizeof n) && write_all(fd, request.data(), request.size());
  if (!ok && errno == EPIPE) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);  // take the pending SIGPIPE this write raised
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

bool read_all(int fd, char* p, size_t n) {  // false at end of file or on an error
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

IsolationHooks g_hooks;  // see set_isolation_hooks

// A field of /proc/self/status in kB ("VmData": the data segment and private mappings; "VmSize",
// "VmPeak": all mappings, now and at most), read without allocating; 0 when unknown.
uint64_t status_kb(const char* field) {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* at = std::strstr(buf, field);
  return at ? std::strtoull(at + std::strlen(field) + 1, nullptr, 10) : 0;
}

uint64_t g_child_budget_kb = 0, g_child_size_at_start_kb = 0;  // in a child, once its limit is set

// A damaged HDF5 file can make libhdf5 allocate without end: an MSD file found by fuzzing made it
// take 8 GB in 23 s (small blocks in H5C_protect, under H5Dopen2), until an 8 GB `ulimit -v` stopped it. The child may
// grow by its budget beyond what it inherited; past that malloc fails, libhdf5 reports an error, and
// our C++ code gets std::bad_alloc; either error then says the budget was reached (budget_note).
void limit_child_memory(uint64_t budget_mb) {
  const uint64_t now_kb = status_kb("VmData");
  if (now_kb == 0 || budget_mb == 0) return;
  const rlim_t limit = rlim_t((now_kb + budget_mb * 1024) * 1024);
  rlimit r{};
  if (::getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < limit) return;  // tighter already
  r.rlim_cur = limit;
  if (::setrlimit(RLIMIT_DATA, &r) == 0) {
    g_child_budget_kb = budget_mb * 1024;
    g_child_size_at_start_kb = status_kb("VmSize");
  }
}

// libhdf5 reports a failed allocation as whatever it was doing failing ("dataset missing"), after it
// has freed what it held; the child's peak size tells why.
bool reached_memory_limit() {
  return g_child_budget_kb > 0 && status_kb("VmPeak") >= g_child_size_at_start_kb + g_child_budget_kb / 10 * 9;
}

std::string budget_note(uint64_t budget_mb) {
  if (!reached_memory_limit()) return "";
  return " (the reader had reached its memory budget of " + std::to_string(budget_mb) +
         " MB, MUSICREC_ISOLATION_MEMORY_MB: a damaged HDF5 file can make the library allocate without end)";
}

// The child's loop: a request is a u64 length and its bytes; the reply is a kind byte, a u64 length
// and the bytes. It ends when the parent closes its end. `budget_mb`: the child's memory budget
// (limit_child_memory), named in an error's message when it was reached.
[[noreturn]] void child_main(int in, int out, const IsolatedWorker::Handler& handler, uint64_t budget_mb) {
  for (;;) {
    uint64_t n = 0;
    if (!read_all(in, reinterpret_cast<char*>(&n), sizeof n)) _exit(0);
    std::string request(n, '\0');
    if (!read_all(in, request.data(), n)) _exit(0);
    char kind = kReturned;
    std::string reply;
    if (g_hooks.request_begins) g_hooks.request_begins();
    try {
      reply = handler(request);
    } catch (const Error& e) {
      kind = kThrewError;
      reply = e.what() + budget_note(budget_mb);
    } catch (const std::exception& e) {  // std::bad_alloc among them
      kind = kThrewOther;
      reply = e.what() + budget_note(budget_mb);
    } catch (...) {
      kind = kThrewOther;
      reply = "unknown exception";
    }
    if (g_hooks.request_ended) g_hooks.request_ended();
    const uint64_t len = reply.size();
    if (!write_all(out, &kind, 1) || !write_all(out, reinterpret_cast<const char*>(&len), sizeof len) ||
        !write_all(out, reply.data(), reply.size()))
      _exit(3);
  }
}

double env_timeout(double fallback) {
  const char* v = std::getenv("MUSICREC_ISOLATION_TIMEOUT_S");
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  return (end && *end == '\0' && t > 0) ? t : fallback;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

}  // namespace

void set_isolation_hooks(const IsolationHooks& hooks) { g_hooks = hooks; }

double isolation_timeout_for(const std::string& path) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  return 30.0 + (ec ? 0.0 : double(bytes) / 10e6);
}

bool isolate_untrusted_readers() {
  const char* v = std::getenv("MUSICREC_HDF5_IN_PROCESS");
  return !(v && std::strcmp(v, "1") == 0);
}

IsolatedWorker::IsolatedWorker(Handler handler, ChildSource source)
    : handler_(std::move(handler)), source_(source), budget_mb_(isolation_memory_budget_mb()) {}

uint64_t isolation_memory_budget_mb() {
  const char* v = std::getenv("MUSICREC_ISOLATION_MEMORY_MB");
  if (!v || !*v) return 4096;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(v, &end, 10);
  return (end && *end == '\0' && mb > 0) ? uint64_t(mb) : 4096;
}

IsolatedWorker::~IsolatedWorker() { stop(); }  // then server_, if any, leaves

// In a new child, with its ends of the request and reply pipes.
void IsolatedWorker::become_child(int in, int out) {
  // Keep only stdio and our two pipe ends, moved to 3 and 4: pipe ends of another worker started at
  // the same moment by another thread must not stay open here, or that worker would never see its
  // child's end of file.
  const int in_moved = ::fcntl(in, F_DUPFD, 10), out_moved = ::fcntl(out, F_DUPFD, 10);
  if (in_moved < 0 || out_moved < 0 || ::dup2(in_moved, 3) < 0 || ::dup2(out_moved, 4) < 0) _exit(4);
  ::close_range(5, ~0U, 0);
  limit_child_memory(budget_mb_);  // read by the parent when the worker was made: no getenv after a fork
  if (g_hooks.child_started) g_hooks.child_started();
  child_main(3, 4, handler_, budget_mb_);
}

void IsolatedWorker::start_server() {
  if (source_ == ChildSource::kForkServer && !server_)
    server_ = std::make_unique<ForkServer>([this](int in, int out) { become_child(in, out); });
}

void IsolatedWorker::start(const std::string& what) {
  if (source_ == ChildSource::kForkServer) {
    ForkServer::Child c;
    // A server that has gone (killed from outside) is replaced once, by a copy of the process as it is now.
    if (server_) {
      try {
        c = server_->spawn(what);
      } catch (const Error&) {
        server_.reset();
      }
    }
    if (!server_) {
      start_server();
      c = server_->spawn(what);
    }
    pid_ = c.pid;
    to_child_ = c.to_child;
    from_child_ = c.from_child;
    ++started_;
    return;
  }
  int down[2], up[2];
  MR_CHECK(::pipe2(down, O_CLOEXEC) == 0, what + ": cannot create a pipe for the reader process (" + std::strerror(errno) + ")");
  if (::pipe2(up, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(down[0]);
    ::close(down[1]);
    MR_CHECK(false, what + ": cannot create a pipe for the reader process (" + std::strerror(err) + ")");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    for (int fd : {down[0], down[1], up[0], up[1]}) ::close(fd);
    MR_CHECK(false, what + ": cannot start the reader process (" + std::strerror(err) + ")");
  }
  if (pid == 0) become_child(down[0], up[1]);
  ::close(down[0]);
  ::close(up[1]);
  pid_ = pid;
  to_child_ = down[1];
  from_child_ = up[0];
  ++started_;
}

void IsolatedWorker::stop() {
  if (pid_ < 0) return;
  ::close(to_child_);  // the child sees end of file and leaves
  ::close(from_child_);
  if (server_) {  // the server reaps it (and kills it if it lingers) while we go on
    server_->release(pid_);
    pid_ = -1;
    return;
  }
  reap_within(pid_, 100);  // a child that does not leave at once (still busy after a timeout) is killed
  pid_ = -1;
}

std::string IsolatedWorker::call(const std::string& what, const std::string& request, IsolationOptions opt) {
  const double timeout_s = env_timeout(opt.timeout_s);
  if (pid_ < 0) start(what);
  if (!write_to_child(to_child_, request)) {
    stop();  // the child has gone since the last call; one new child, once
    start(what);
    MR_CHECK(write_to_child(to_child_, request), what + ": cannot send the request to the reader process");
  }

  // The reply: 1 kind byte + 8 length bytes, then the payload; read with the time limit.
  std::string got;
  size_t want = 9;
  bool timed_out = false, eof = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::vector<char> buf(1 << 16);
  while (got.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{from_child_, POLLIN, 0};
    const int r = ::poll(&p, 1, int(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    const ssize_t k = ::read(from_child_, buf.data(), std::min(buf.size(), want - got.size()));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      eof = true;
      break;
    }
    got.append(buf.data(), size_t(k));
    if (want == 9 && got.size() == 9) {
      uint64_t len;
      std::memcpy(&len, got.data() + 1, sizeof len);
      want = 9 + len;
    }
  }
  if (timed_out) {
    ::kill(pid_, SIGKILL);
    stop();
    throw Error(what + ": reading took over " + seconds_text(timeout_s) +
                " s and was stopped (a damaged HDF5 file can make the library loop; the limit is "
                "MUSICREC_ISOLATION_TIMEOUT_S)");
  }
  if (eof) {
    const int status = wait_for_child();
    ::close(to_child_);
    ::close(from_child_);
    pid_ = -1;
    if (status != -1 && WIFSIGNALED(status)) {  // -1: the status could not be had
      const int sig = WTERMSIG(status);
      const char* name = sigabbrev_np(sig);
      throw Error(what + ": the reader crashed (SIG" + (name ? std::string(name) : std::to_string(sig)) +
                  ") on this file: it is damaged in a way the HDF5 library does not check");
    }
    throw Error(what + ": the reader process ended without an answer (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  const char kind = got[0];
  std::string payload = got.substr(9);
  if (kind == kReturned) return payload;
  // A file the reader refused may have been damaged in a way that left libhdf5's state damaged too
  // without a crash (its overflows pass silently without a sanitizer): that child reads no more files.
  stop();
  if (kind == kThrewError) throw Error(payload);
  throw Error(what + ": " + payload);
}

int IsolatedWorker::wait_for_child() {
  if (server_) return server_->wait(pid_);
  int status = -1;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

std::string run_isolated(const std::string& what, const std::function<std::string()>& work, IsolationOptions opt) {
  IsolatedWorker w([&](const std::string&) { return work(); });
  return w.call(what, std::string(), opt);
}

// ---- bytes ----
void ByteWriter::u64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
void ByteWriter::f64(double v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
void ByteWriter::str(const std::string& s) {
  u64(s.size());
  out_ += s;
}
void ByteWriter::f64s(const std::vector<double>& v) {
  u64(v.size());
  out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
}

void ByteWriter::raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }

void ByteReader::need(size_t n) {
  MR_CHECK(n <= b_.size() - pos_, what_ + ": the reader process sent a truncated result");
}
uint64_t ByteReader::u64() {
  need(sizeof(uint64_t));
  uint64_t v;
  std::memcpy(&v, b_.data() + pos_, sizeof v);
  pos_ += sizeof v;
  return v;
}
double ByteReader::f64() {
  need(sizeof(double));
  double v;
  std::memcpy(&v, b_.data() + pos_, sizeof v);
  pos_ += sizeof v;
  return v;
}
std::string ByteReader::str() {
  const uint64_t n = u64();
  need(n);
  std::string s = b_.substr(pos_, n);
  pos_ += n;
  return s;
}
void ByteReader::raw(void* dst, size_t n) {
  need(n);
  if (n > 0) std::memcpy(dst, b_.data() + pos_, n);  // an empty tensor's data pointer may be null
  pos_ += n;
}
uint64_t ByteReader::count(size_t min_bytes) {
  const uint64_t n = u64();
  MR_CHECK(n <= (b_.size() - pos_) / std::max<size_t>(1, min_bytes), what_ + ": the reader process sent a truncated result");
  return n;
}
std::vector<double> ByteReader::f64s() {
  const uint64_t n = u64();
  MR_CHECK(n <= (b_.size() - pos_) / sizeof(double), what_ + ": the reader process sent a truncated result");
  std::vector<double> v(n);
  if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(double));  // an empty vector's data() is null
  pos_ += n * sizeof(double);
  return v;
}

}  // namespace musicrec
