// The bad-input row "a file it may not read" (docs/bad-inputs.md), for every kind of reader: a CSV, an
// HDF5 file (checkpoint) and a JSON file (Last.fm) that the process has no permission to read give an
// error naming the file and the reason. Root reads everything, so as root the readers run in a child
// process that has dropped to the unprivileged user `nobody` (uid 65534).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "data/csv.h"
#include "data/lastfm.h"
#include "engine/checkpoint.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

// Runs `read` in a child that cannot read `path`; the child's exit status: 0 = an Error naming the file
// and "Permission denied", 1 = no error, 2 = an Error without them, 3 = another exception.
template <class F>
int read_without_permission(const std::string& path, F read) {
  chmod(path.c_str(), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(4);
    try {
      read();
    } catch (const Error& e) {
      const std::string m = e.what();
      _exit(m.find(path) != std::string::npos && m.find("Permission denied") != std::string::npos ? 0 : 2);
    } catch (...) {
      _exit(3);
    }
    _exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Permissions, UnreadableFilesAreErrorsNamingFileAndReason) {
  test::TempDir d;
  // The child (nobody) must be able to reach the folder, not read the files in it.
  std::filesystem::permissions(d.path, std::filesystem::perms::all);
  const std::string csv = d.file("train.csv"), ckpt = d.file("last.h5"), json = d.file("TRAAAAA128F0000000.json");
  test::write_text(csv, "a,b\n1,2\n");
  Checkpoint c;
  c.model.emplace_back("w", Tensor::zeros({2}));
  save_checkpoint(ckpt, c);
  test::write_text(json, "{}");
  EXPECT_EQ(read_without_permission(csv, [&] { data::CsvReader r(csv, {"a"}); }), 0) << "CSV";
  EXPECT_EQ(read_without_permission(ckpt, [&] { load_checkpoint(ckpt); }), 0) << "checkpoint";
  EXPECT_EQ(read_without_permission(json, [&] { data::read_lastfm_json(json); }), 0) << "Last.fm JSON";
}

}  // namespace
}  // namespace musicrec
