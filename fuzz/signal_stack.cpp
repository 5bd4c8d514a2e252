// Writing an interrupted stack from a signal handler (see signal_stack.h).
#include "fuzz/signal_stack.h"

#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace musicrec::fuzz {
namespace {

struct Module {
  uintptr_t base = 0, lo = 0, hi = 0;  // load address; lowest and highest mapped byte + 1
  char name[1024] = {};
};
constexpr int kMaxModules = 256;
Module g_modules[kMaxModules];
int g_module_count = 0;

int add_module(dl_phdr_info* info, size_t, void*) {
  if (g_module_count == kMaxModules) return 1;
  Module& m = g_modules[g_module_count];
  m.base = info->dlpi_addr;
  m.lo = UINTPTR_MAX;
  m.hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& p = info->dlpi_phdr[i];
    if (p.p_type != PT_LOAD) continue;
    const uintptr_t lo = m.base + p.p_vaddr;
    if (lo < m.lo) m.lo = lo;
    if (lo + p.p_memsz > m.hi) m.hi = lo + p.p_memsz;
  }
  if (m.hi == 0) return 0;  // nothing mapped (the vDSO has PT_LOAD; anything without is skipped)
  const char* name = info->dlpi_name;
  if (!name || !*name) {  // the program itself: the sanitizers name it by its path, so does the symboliser
    const ssize_t n = ::readlink("/proc/self/exe", m.name, sizeof m.name - 1);
    if (n <= 0) std::snprintf(m.name, sizeof m.name, "<the program>");
  } else {
    std::snprintf(m.name, sizeof m.name, "%s", name);
  }
  ++g_module_count;
  return 0;
}

// Formatting without printf (the sanitizer intercepts it) into a fixed line.
struct Line {
  char text[1200];
  size_t size = 0;
  void add(const char* s) {
    for (; *s && size + 1 < sizeof text; ++s) text[size++] = *s;
  }
  void add_hex(uintptr_t v) {
    char digits[2 * sizeof v];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    add("0x");
    while (n > 0 && size + 1 < sizeof text) text[size++] = digits[--n];
  }
  void add_dec(int v) {
    char digits[12];
    int n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    while (n > 0 && size + 1 < sizeof text) text[size++] = digits[--n];
  }
  void write_to(int fd) {
    add("\n");
    write_raw(fd, text, size);
    size = 0;
  }
  // The system call itself: the sanitizer's write() interceptor is code of its own in a handler that
  // may have interrupted it.
  static void write_raw(int fd, const char* p, size_t n) { (void)::syscall(SYS_write, fd, p, n); }
};

void write_frame(int fd, int index, uintptr_t pc) {
  Line l;
  l.add("    #");
  l.add_dec(index);
  l.add(" ");
  l.add_hex(pc);
  l.add("  (");
  const Module* found = nullptr;
  for (int i = 0; i < g_module_count && !found; ++i)
    if (pc >= g_modules[i].lo && pc < g_modules[i].hi) found = &g_modules[i];
  l.add(found ? found->name : "<unknown module>");
  l.add("+");
  l.add_hex(found ? pc - found->base : 0);
  l.add(")");
  l.write_to(fd);
}

struct Walk {
  static constexpr int kMax = 128;
  uintptr_t pc[kMax];
  int n = 0;
  bool reached = false;  // past the signal frame
};

_Unwind_Reason_Code collect(_Unwind_Context* context, void* arg) {
  Walk& w = *static_cast<Walk*>(arg);
  int before_instruction = 0;  // set for the frame a signal interrupted: its pc is exact
  const uintptr_t ip = _Unwind_GetIPInfo(context, &before_instruction);
  if (!w.reached) {
    if (!before_instruction) return _URC_NO_REASON;  // the handler's own frames and the trampoline
    w.reached = true;
  }
  if (w.n == Walk::kMax || ip == 0) return _URC_END_OF_STACK;
  w.pc[w.n++] = before_instruction ? ip : ip - 1;  // a return address names the next line
  return _URC_NO_REASON;
}

char g_report_text[1024];
size_t g_report_size = 0;
int g_report_fd = 2, g_report_exit_code = 1;

void report_and_exit(int, siginfo_t*, void* context) {
  Line::write_raw(g_report_fd, g_report_text, g_report_size);
  write_interrupted_stack(g_report_fd, uintptr_t(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]));
  Line::write_raw(g_report_fd, "\n", 1);
  (void)::syscall(SYS_exit_group, g_report_exit_code);
}

_Unwind_Reason_Code count_only(_Unwind_Context*, void* arg) {
  ++*static_cast<int*>(arg);
  return _URC_NO_REASON;
}

}  // namespace

void prepare_signal_stack() {
  g_module_count = 0;
  dl_iterate_phdr(add_module, nullptr);
  int frames = 0;
  _Unwind_Backtrace(count_only, &frames);  // the unwinder's first use sets up what it keeps
}

void write_interrupted_stack(int fd, uintptr_t interrupted_pc) {
  Walk w;
  _Unwind_Backtrace(collect, &w);
  if (!w.reached || w.n == 0) {
    Line l;
    l.add("musicrec: could not unwind past the signal frame; the interrupted pc alone:");
    l.write_to(fd);
    write_frame(fd, 0, interrupted_pc);
    return;
  }
  for (int i = 0; i < w.n; ++i) write_frame(fd, i, w.pc[i]);
}

void report_stack_on_signal(int signal, const char* text, int fd, int exit_code) {
  prepare_signal_stack();
  g_report_size = size_t(std::snprintf(g_report_text, sizeof g_report_text, "%s", text));
  if (g_report_size >= sizeof g_report_text) g_report_size = sizeof g_report_text - 1;
  g_report_fd = fd;
  g_report_exit_code = exit_code;
  struct sigaction sa {};
  sa.sa_sigaction = report_and_exit;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(signal, &sa, nullptr) != 0) {
    std::perror("report_stack_on_signal: sigaction");
    std::abort();
  }
}

}  // namespace musicrec::fuzz
