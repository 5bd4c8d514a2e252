// The fork server (see fork_server.h): a loop in a forked copy of this process, and the calls that talk
// to it over a SOCK_SEQPACKET socket pair.
//
// Requests are one Request each; the server answers spawn with a SpawnReply carrying the two pipe ends
// as SCM_RIGHTS, wait with the wait status, release with nothing. The server's loop uses only system
// calls and fixed arrays (no malloc): it is a fork of a process that may have other threads, and a
// lock one of them held at that moment is held forever in the copy.
#include "engine/fork_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/error.h"

namespace musicrec {
namespace {

struct Request {
  char op;  // 'S' spawn, 'W' wait, 'R' release
  pid_t pid;
};
struct SpawnReply {
  pid_t pid;  // > 0: the child; the message carries its two pipe ends
  int error;  // errno of the pipe or fork that failed
};

constexpr int kReleaseGraceMs = 100;  // as IsolatedWorker gives a child of its own to leave
constexpr int kMaxReleased = 64;

int64_t now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return int64_t(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

bool send_request(int sock, char op, pid_t pid) {
  const Request r{op, pid};
  for (;;) {
    const ssize_t n = ::send(sock, &r, sizeof r, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == ssize_t(sizeof r);
  }
}

ssize_t receive(int sock, msghdr* m) {
  for (;;) {
    const ssize_t n = ::recvmsg(sock, m, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

void send_spawn_reply(int sock, SpawnReply reply, const int* fds) {
  iovec io{&reply, sizeof reply};
  msghdr m{};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  if (fds) {
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds, 2 * sizeof(int));
  }
  while (::sendmsg(sock, &m, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

void spawn_child(int sock, const std::function<void(int, int)>& body) {
  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0) return send_spawn_reply(sock, {-1, errno}, nullptr);
  if (::pipe2(up, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(down[0]);
    ::close(down[1]);
    return send_spawn_reply(sock, {-1, err}, nullptr);
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_NAME, "mr-reader");  // in ps, top and perf, apart from the server and the program
    ::close(sock);
    ::close(down[1]);
    ::close(up[0]);
    body(down[0], up[1]);
    _exit(127);  // the body must not return
  }
  const int err = errno;
  ::close(down[0]);
  ::close(up[1]);
  const int ours[2] = {down[1], up[0]};
  send_spawn_reply(sock, {pid > 0 ? pid : -1, pid > 0 ? 0 : err}, pid > 0 ? ours : nullptr);
  ::close(down[1]);
  ::close(up[0]);
}

// Released children are reaped as they end; one past its grace is killed (and reaped next round).
struct Released {
  pid_t pid;
  int64_t deadline_ms;
};

void reap(Released* released, int& n, bool block) {
  const int64_t now = now_ms();
  for (int i = 0; i < n;) {
    if (block || now >= released[i].deadline_ms) ::kill(released[i].pid, SIGKILL);
    int status = 0;
    pid_t w;
    while ((w = ::waitpid(released[i].pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (w != 0) {  // reaped, or not ours to wait for (nothing more to do)
      released[i] = released[--n];
      continue;
    }
    ++i;
  }
}

[[noreturn]] void serve(int sock, const std::function<void(int, int)>& body) {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);  // we wait for our children: they must not be reaped for us
  Released released[kMaxReleased];
  int n = 0;
  for (;;) {
    pollfd p{sock, POLLIN, 0};
    const int ready = ::poll(&p, 1, n > 0 ? 10 : -1);
    reap(released, n, false);
    if (ready <= 0) continue;  // a tick to reap, or EINTR
    Request r{};
    const ssize_t got = ::recv(sock, &r, sizeof r, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got != ssize_t(sizeof r)) break;  // end of file: the parent closed its end or has gone
    if (r.op == 'S') {
      spawn_child(sock, body);
    } else if (r.op == 'W') {
      int status = -1;
      while (::waitpid(r.pid, &status, 0) < 0) {
        if (errno != EINTR) {
          status = -1;
          break;
        }
      }
      while (::send(sock, &status, sizeof status, MSG_NOSIGNAL) < 0 && errno == EINTR) {
      }
    } else if (r.op == 'R') {
      if (n == kMaxReleased) {  // never expected: children leave within milliseconds of release
        Released oldest[1] = {released[0]};
        int one = 1;
        reap(oldest, one, true);
        released[0] = released[--n];
      }
      released[n++] = Released{r.pid, now_ms() + kReleaseGraceMs};
    }
  }
  reap(released, n, true);
  _exit(0);
}

}  // namespace

ForkServer::ForkServer(std::function<void(int in, int out)> child_body) : child_body_(std::move(child_body)) {
  int sv[2];
  MR_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0,
           std::string("cannot create a socket for the fork server (") + std::strerror(errno) + ")");
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Keep stdio and our socket, as fd 3: a pipe end of another worker kept open here would keep its
    // child from ever seeing end of file.
    const int s = ::fcntl(sv[1], F_DUPFD, 10);
    if (s < 0 || ::dup2(s, 3) < 0) _exit(4);
    ::close_range(4, ~0U, 0);
    ::prctl(PR_SET_NAME, "mr-fork-server");
    serve(3, child_body_);
  }
  const int err = errno;
  ::close(sv[1]);
  if (pid < 0) {
    ::close(sv[0]);
    MR_CHECK(false, std::string("cannot start the fork server (") + std::strerror(err) + ")");
  }
  server_ = pid;
  socket_ = sv[0];
}

void reap_within(pid_t pid, int ms) {
  int status = 0;
  for (int waited_ms = 0; waited_ms < ms; ++waited_ms) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    ::usleep(1000);
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

ForkServer::~ForkServer() {
  ::close(socket_);  // the server reaps what it was given back and leaves
  reap_within(server_, 500);
}

ForkServer::Child ForkServer::spawn(const std::string& what) {
  MR_CHECK(send_request(socket_, 'S', 0), what + ": the fork server has gone (" + std::strerror(errno) + ")");
  SpawnReply reply{-1, 0};
  iovec io{&reply, sizeof reply};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))];
  msghdr m{};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  const ssize_t n = receive(socket_, &m);
  MR_CHECK(n == ssize_t(sizeof reply), what + ": the fork server has gone");
  int fds[2] = {-1, -1};
  const cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
    std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  if (reply.pid <= 0 || fds[0] < 0 || fds[1] < 0) {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
    if (reply.pid > 0) release(reply.pid);
    MR_CHECK(false, what + ": cannot start the reader process (" +
                        (reply.error ? std::strerror(reply.error) : "the fork server sent no pipes") + ")");
  }
  return Child{reply.pid, fds[0], fds[1]};
}

int ForkServer::wait(pid_t pid) {
  if (!send_request(socket_, 'W', pid)) return -1;
  int status = -1;
  iovec io{&status, sizeof status};
  msghdr m{};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  return receive(socket_, &m) == ssize_t(sizeof status) ? status : -1;
}

void ForkServer::release(pid_t pid) { (void)send_request(socket_, 'R', pid); }

}  // namespace musicrec
