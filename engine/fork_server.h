// A fork server: a copy of this process, made once, that forks child processes on request, so that each
// child costs what forking the process cost when the server was made, however much the process has
// grown since.
//
// Why: fork copies the page tables of everything resident, and the child's exit tears its copy down
// again. Measured on the 2-core VM (a C++ program that fills N MB, then forks children that _exit):
// 0.23 ms per child at 0 MB, 8.8 ms at 200 MB, 42 ms at 800 MB, 91 ms at 2 GB; with AddressSanitizer
// 0.5, 12 and 47 ms at 0, 200 and 800 MB. IsolatedWorker (engine/isolated.h) starts a new reader child
// after every file a reader refused: a scan that has gathered gigabytes of tracks, or libFuzzer's
// parent (its corpus and the sanitizer's quarantine; most fuzzed inputs are refused), pays that for
// every such file. The server does nothing but fork, so it stays as small as the process was.
//
// The children are the server's, not ours: only the server can wait for one, and it does so only when
// told (wait, release), so a pid we hold stays that child's until we release it (kill(pid) is safe
// until then). The server runs one thread and allocates nothing, so its forks inherit no lock held by
// another thread. It leaves when the socket closes (this object's end, or this whole process, gone);
// the destructor waits for it.
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>

namespace musicrec {

// Waits up to `ms` milliseconds for our child `pid` to end, then kills it; reaps it either way.
void reap_within(pid_t pid, int ms);

class ForkServer {
 public:
  // A child: its pid, and our ends of its request pipe (we write) and its reply pipe (we read).
  struct Child {
    pid_t pid = -1;
    int to_child = -1, from_child = -1;
  };
  // Forks the server now. In each child it starts, child_body(in, out) runs with the child's ends of
  // the two pipes (any fd numbers; the body arranges them) and must not return.
  explicit ForkServer(std::function<void(int in, int out)> child_body);
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  // Starts a child. Throws an Error naming `what` when the server cannot (it has gone, or fork failed).
  Child spawn(const std::string& what);
  // The child's wait status once it has ended (it must be ending: its reply pipe reached end of file,
  // or it was killed); -1 when the server could not tell.
  int wait(pid_t pid);
  // We are done with the child: the server reaps it when it ends, and kills it if it has not ended
  // within 100 ms (a child ends when its request pipe closes).
  void release(pid_t pid);
  pid_t server_pid() const { return server_; }

 private:
  std::function<void(int, int)> child_body_;
  pid_t server_ = -1;
  int socket_ = -1;
};

}  // namespace musicrec
