// Symbolising raw sanitizer frames through one kept llvm-symbolizer (see symbolize.h).
#include "fuzz/symbolize.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <regex>
#include <sstream>

extern char** environ;

namespace musicrec::fuzz {
namespace {

bool known_location(const std::string& location) { return !location.empty() && location.rfind("??", 0) != 0; }

}  // namespace

std::string symbolize_log(const std::string& log, const FrameLookup& lookup) {
  // "    #3 0x7f341666b462  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x6b462) (BuildId: e923...)"
  static const std::regex raw(R"(^(\s*#\d+) (0x[0-9a-f]+)\s+\(([^()]+)\+(0x[0-9a-f]+)\)(.*)$)");
  std::istringstream in(log);
  std::string out;
  out.reserve(log.size() * 2);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, raw)) {
      out += line + '\n';
      continue;
    }
    const std::string index = m[1], pc = m[2], module = m[3], offset = m[4], tail = m[5];
    const std::vector<SourceFrame> frames = lookup(module, offset);
    bool any = false;
    for (const SourceFrame& f : frames) {
      if (f.function == "??" && !known_location(f.location)) continue;
      any = true;
      out += index + ' ' + pc + " in " + f.function + ' ';
      out += known_location(f.location) ? f.location : "(" + module + '+' + offset + ')' + tail;
      out += '\n';
    }
    if (!any) out += line + '\n';  // nothing known: the raw frame stays, module and offset included
  }
  return out;
}

std::vector<SourceFrame> parse_symbolizer_answer(const std::vector<std::string>& lines) {
  std::vector<SourceFrame> frames;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) frames.push_back({lines[i], lines[i + 1]});
  return frames;
}

LlvmSymbolizer::~LlvmSymbolizer() { stop(); }

bool LlvmSymbolizer::start() {
  if (failed_) return false;
  if (pid_ > 0) return true;
  failed_ = true;  // until it has started
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return false;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return false;
  }
  const char* env = std::getenv("ASAN_SYMBOLIZER_PATH");
  const std::string program = env && *env ? env : "llvm-symbolizer";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<std::string> args = {program, "--demangle", "--inlines", "--default-arch=x86_64"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawnp(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  to_ = in[1];
  from_ = out[0];
  if (rc != 0) {
    pid_ = -1;
    stop();
    return false;
  }
  failed_ = false;
  return true;
}

void LlvmSymbolizer::stop() {
  if (to_ >= 0) ::close(to_);
  if (from_ >= 0) ::close(from_);
  to_ = from_ = -1;
  pending_.clear();
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

bool LlvmSymbolizer::send(const std::string& request) {
  // A write to a symbolizer that died must fail here, not raise SIGPIPE in the fuzzer.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const char* p = request.data();
  size_t n = request.size();
  while (n > 0) {
    const ssize_t w = ::write(to_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    n -= size_t(w);
  }
  if (n > 0 && errno == EPIPE) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return n == 0;
}

bool LlvmSymbolizer::read_line(std::string& line) {
  size_t end;
  while ((end = pending_.find('\n')) == std::string::npos) {
    pollfd p{from_, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;  // a symbolizer silent for 10 s is given up
    char buf[4096];
    const ssize_t r = ::read(from_, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    pending_.append(buf, size_t(r));
  }
  line = pending_.substr(0, end);
  pending_.erase(0, end + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::vector<SourceFrame> LlvmSymbolizer::lookup(const std::string& module, const std::string& offset) {
  if (!start()) return {};
  std::vector<std::string> lines;
  bool complete = false;
  if (send("CODE \"" + module + "\" " + offset + "\n")) {
    for (std::string l; read_line(l);) {  // pairs of lines up to the blank one that ends an answer
      if (l.empty()) {
        complete = true;
        break;
      }
      lines.push_back(l);
    }
  }
  if (!complete) {
    // Died, or silent for 10 s (a loaded machine): started again for the next lookup. Until session 9
    // it was given up for the rest of the run, and a song_images campaign ran 27,000 library reports
    // on raw frames after one such stop under load (fuzz/triage.h now takes a raw frame of the
    // program as ours). A symbolizer that keeps failing is given up after kMaxRestarts.
    stop();
    ++restarts_;
    std::fprintf(stderr, "llvm-symbolizer gave no answer for %s %s; %s\n", module.c_str(), offset.c_str(),
                 restarts_ > kMaxRestarts ? "given up: frames stay raw" : "it will be started again");
    if (restarts_ > kMaxRestarts) failed_ = true;
    return {};
  }
  return parse_symbolizer_answer(lines);
}

}  // namespace musicrec::fuzz
