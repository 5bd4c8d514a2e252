// Files for tests: a temporary folder removed at the end of the test, writing small text files, and
// where the real samples are (../shared/real-samples beside the checkout, or $MUSICREC_REAL_SAMPLES).
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "kernels/error.h"

namespace musicrec::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "musicrec-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// What `f` throws as a musicrec::Error, or "" when it throws nothing.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}
inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The real-samples folder, or "" when it is absent (tests then skip).
inline std::string real_samples() {
  const char* env = std::getenv("MUSICREC_REAL_SAMPLES");
  std::filesystem::path p = env && env[0] ? std::filesystem::path(env)
                                          : std::filesystem::path(MUSICREC_SOURCE_DIR) / ".." / "shared" / "real-samples";
  return std::filesystem::is_directory(p) ? p.string() : "";
}

// The musicrec program under test: $MUSICREC_BIN where the tests run from a copied bundle, else the
// build's own.
inline std::string musicrec_program() {
  const char* env = std::getenv("MUSICREC_BIN");
  return env && env[0] ? env : MUSICREC_BIN;
}

struct ProgramRun {
  int status;       // exit status, -1 when ended by a signal
  std::string out;  // stdout and stderr together
};
// Runs `<env> musicrec <args>` through the shell (env: "NAME=value ..." or "").
inline ProgramRun run_musicrec(const std::string& args, const std::string& env = "") {
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + musicrec_program() + " " + args + " 2>&1";
  ProgramRun r{0, ""};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed: " + cmd};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace musicrec::test

#define MR_REQUIRE_REAL_SAMPLES(var)                                                              \
  const std::string var = ::musicrec::test::real_samples();                                       \
  if (var.empty()) GTEST_SKIP() << "../shared/real-samples is absent (a fresh clone has none)"
