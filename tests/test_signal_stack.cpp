// Tests of fuzz/signal_stack.h: the stack a CPU-time timer interrupted, written from its handler.
#include "fuzz/signal_stack.h"

#include <gtest/gtest.h>
#include <link.h>
#include <signal.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace musicrec::fuzz {
namespace {

std::atomic<bool> g_fired{false};
uintptr_t g_interrupted_pc = 0;
int g_out_fd = -1;
uintptr_t g_spin_returns_to = 0;

void on_timer(int, siginfo_t*, void* context) {
  g_interrupted_pc = uintptr_t(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
  write_interrupted_stack(g_out_fd, g_interrupted_pc);
  g_fired = true;
}

// Spins until the timer's handler has run: the interrupted frame is this function's.
__attribute__((noinline)) void spin_until_the_timer_fires() {
  g_spin_returns_to = uintptr_t(__builtin_return_address(0));
  volatile uint64_t spins = 0;
  while (!g_fired.load(std::memory_order_relaxed)) spins = spins + 1;
}

uintptr_t program_base() {
  uintptr_t base = 0;
  dl_iterate_phdr([](dl_phdr_info* info, size_t, void* out) {
    *static_cast<uintptr_t*>(out) = info->dlpi_addr;
    return 1;  // the first module is the program
  }, &base);
  return base;
}

std::string program_path() {
  char path[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, size_t(n)) : "";
}

TEST(SignalStack, ATimerInterruptingALoopGivesTheLoopsFrameAndItsCallers) {
  prepare_signal_stack();
  char path[] = "/tmp/musicrec-signal-stack-XXXXXX";
  g_out_fd = ::mkstemp(path);
  ASSERT_GE(g_out_fd, 0);
  struct sigaction sa {}, old {};
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  const int signal = SIGRTMIN + 4;
  ASSERT_EQ(::sigaction(signal, &sa, &old), 0);
  // This thread's clock and this thread as the target: the test program has other threads (OpenBLAS's
  // pthread build starts its worker when loaded), and once in the CI's sanitizer run the process timer
  // interrupted a pc in libc, which this spin never calls: most likely the signal went to that worker. The watchdog's reader child is
  // single-threaded (forked), so a process timer is right there.
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = signal;
  ev._sigev_un._tid = ::gettid();
  timer_t timer;
  ASSERT_EQ(::timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &timer), 0);
  itimerspec t{};
  t.it_value.tv_nsec = 20 * 1000 * 1000;
  g_fired = false;
  ASSERT_EQ(::timer_settime(timer, 0, &t, nullptr), 0);
  spin_until_the_timer_fires();
  ::timer_delete(timer);
  ::sigaction(signal, &old, nullptr);
  ::close(g_out_fd);

  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ::unlink(path);
  ASSERT_GE(lines.size(), 3u) << "the unwinder stopped at the signal frame";
  // "    #N 0xPC  (module+0xOFFSET)", as a sanitizer prints a raw frame (fuzz/symbolize.h reads it).
  const std::regex frame(R"(^    #(\d+) 0x([0-9a-f]+)  \((.+)\+0x([0-9a-f]+)\)$)");
  std::vector<uintptr_t> pcs;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, frame)) << lines[i];
    EXPECT_EQ(std::stoul(m[1]), i);
    pcs.push_back(uintptr_t(std::stoull(m[2], nullptr, 16)));
    if (i == 0) {
      EXPECT_EQ(m[3].str(), program_path());
      EXPECT_EQ(std::stoull(m[4], nullptr, 16), pcs[0] - program_base());
    }
  }
  // The first frame is the interrupted one, exactly; the next is where the spin returns to (one byte
  // back, naming the call): the unwinder went through the signal frame, not around it.
  EXPECT_EQ(pcs[0], g_interrupted_pc);
  EXPECT_EQ(pcs[1], g_spin_returns_to - 1);
}

}  // namespace
}  // namespace musicrec::fuzz
