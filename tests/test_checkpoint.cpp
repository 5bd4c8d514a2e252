// Checkpoints: bit-exact round trip of model, optimizer and generator state; truncated and corrupted
// files give clear errors; a failed save leaves the previous file intact and no temporary behind;
// a checkpoint of another model is refused; h5py can read it where Python has h5py.
#include <gtest/gtest.h>

#include <cmath>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/checkpoint.h"
#include "engine/modules.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/error.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace fs = std::filesystem;

class Tiny : public Module {
 public:
  explicit Tiny(Generator& g, int64_t width = 5)
      : emb(register_module("emb", std::make_shared<Embedding>(10, 4, g))),
        conv(register_module("tower", std::make_shared<Conv2d>(1, 2, 2, 2, 0, 0, ConvActivation::Sigmoid, g))),
        fc(register_module("fc", std::make_shared<Linear>(4, width, g))) {}
  std::shared_ptr<Embedding> emb;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<Linear> fc;
};

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/musicrec-ckpt-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), std::streamsize(b.size()));
}

// One Adam step so the optimizer state is non-trivial.
void train_step(Tiny& m, Adam& opt) {
  opt.zero_grad();
  Tensor e = m.emb->forward(Tensor::from_vector(std::vector<int32_t>{1, 3}, {2}));
  ops::sum(ops::relu(m.fc->forward(e))).backward();
  opt.step();
}

TEST(Checkpoint, RoundTripIsBitExact) {
  TempDir dir;
  Generator g(5, 17);
  Tiny m(g);
  Adam opt(m.named_parameters());
  train_step(m, opt);
  Checkpoint c = capture(m, &opt, g);
  c.step = 123;
  c.epoch = 4;
  c.metadata_json = R"({"model":"tiny"})";
  fs::path file = dir.path / "ckpt.h5";
  save_checkpoint(file, c);

  Generator g2(99);
  Tiny m2(g2);
  Adam opt2(m2.named_parameters());
  Checkpoint back = load_checkpoint(file);
  EXPECT_EQ(back.step, 123);
  EXPECT_EQ(back.epoch, 4);
  EXPECT_EQ(back.metadata_json, R"({"model":"tiny"})");
  EXPECT_EQ(back.optimizer_kind, "adam");
  restore(back, m2, &opt2, &g2);
  EXPECT_EQ(g2.seed(), 5u);
  EXPECT_EQ(g2.offset(), g.offset());
  EXPECT_EQ(opt2.steps(), 1);
  auto p1 = m.named_parameters(), p2 = m2.named_parameters();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) {
    EXPECT_EQ(p1[i].first, p2[i].first);
    EXPECT_EQ(p1[i].second.to_vector<float>(), p2[i].second.to_vector<float>()) << p1[i].first;
  }
  auto s1 = opt.state(), s2 = opt2.state();
  for (size_t i = 0; i < s1.size(); ++i)
    EXPECT_EQ(s1[i].second.to_vector<float>(), s2[i].second.to_vector<float>()) << s1[i].first;
  // Parameter names become groups: /model/tower/weight.
  bool found = false;
  for (auto& [n, t] : back.model) found |= n == "tower.weight";
  EXPECT_TRUE(found);
}

TEST(Checkpoint, TruncatedFilesAreClearErrors) {
  TempDir dir;
  Generator g(1);
  Tiny m(g);
  fs::path file = dir.path / "ckpt.h5";
  save_checkpoint(file, capture(m, nullptr, g));
  std::vector<char> bytes = read_bytes(file);
  for (double frac : {0.0, 0.1, 0.5, 0.9, 0.99}) {
    fs::path cut = dir.path / "cut.h5";
    write_bytes(cut, std::vector<char>(bytes.begin(), bytes.begin() + long(double(bytes.size()) * frac)));
    try {
      load_checkpoint(cut);
      ADD_FAILURE() << "a checkpoint truncated to " << frac << " of its size loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(cut.string()), std::string::npos) << e.what();
    }
  }
}

TEST(Checkpoint, CorruptedParameterDataFailsItsChecksum) {
  TempDir dir;
  Generator g(1);
  Tiny m(g, 64);
  // A recognisable parameter: fc.weight filled with 1.25f, so its bytes can be found in the file.
  Tensor w = m.fc->weight();
  w.copy_from(Tensor::full(w.shape(), 1.25));
  fs::path file = dir.path / "ckpt.h5";
  save_checkpoint(file, capture(m, nullptr, g));
  std::vector<char> bytes = read_bytes(file);
  float v = 1.25f;
  char pattern[16];
  for (int i = 0; i < 4; ++i) std::memcpy(pattern + 4 * i, &v, 4);
  auto it = std::search(bytes.begin(), bytes.end(), pattern, pattern + 16);
  ASSERT_NE(it, bytes.end()) << "parameter bytes not found in the file";
  it[5] ^= 0x10;  // one flipped bit inside fc.weight's data
  write_bytes(file, bytes);
  try {
    load_checkpoint(file);
    FAIL() << "a corrupted checkpoint loaded";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("fc/weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("corrupted"), std::string::npos) << msg;
  }
}

TEST(Checkpoint, NotAnHdf5FileOrNotOursOrMissing) {
  TempDir dir;
  fs::path junk = dir.path / "junk.h5";
  write_bytes(junk, std::vector<char>(1000, 'x'));
  EXPECT_THROW(load_checkpoint(junk), Error);
  EXPECT_THROW(load_checkpoint(dir.path / "missing.h5"), Error);
  EXPECT_THROW(load_checkpoint(dir.path), Error);  // a directory
}

TEST(Checkpoint, FailedSaveKeepsThePreviousFileAndLeavesNoTemporary) {
  TempDir dir;
  Generator g(1);
  Tiny m(g);
  fs::path file = dir.path / "ckpt.h5";
  save_checkpoint(file, capture(m, nullptr, g));
  std::vector<char> before = read_bytes(file);
  // A checkpoint whose second dataset cannot be written (a parameter name that is also a group).
  Checkpoint bad = capture(m, nullptr, g);
  bad.model.emplace_back("fc", Tensor::zeros({2}));  // "fc" is already a group holding fc.weight
  EXPECT_THROW(save_checkpoint(file, bad), Error);
  EXPECT_EQ(read_bytes(file), before);
  for (auto& e : fs::directory_iterator(dir.path)) EXPECT_EQ(e.path().filename(), "ckpt.h5");
  // And a folder that does not exist is a clear error.
  EXPECT_THROW(save_checkpoint(dir.path / "no" / "such" / "dir.h5", capture(m, nullptr, g)), Error);
}

// A process killed (SIGKILL) in the middle of saving leaves the previous checkpoint readable: the child
// saves a 64 MB checkpoint over and over; it is killed at several moments, some of which fall inside a
// save (each save takes tens of milliseconds), and the file must load every time with the content of
// one of the complete saves.
TEST(Checkpoint, KilledDuringSaveLeavesThePreviousCheckpointReadable) {
  TempDir dir;
  const fs::path file = dir.path / "ckpt.h5";
  int killed_mid_save = 0;
  for (int round = 0; round < 4; ++round) {
    const pid_t pid = fork();
    if (pid == 0) {
      Checkpoint c;
      c.model.emplace_back("big", Tensor::full({4096, 4096}, 1.0, DType::F32));
      for (int64_t i = 0;; ++i) {
        c.step = i;
        save_checkpoint(file, c);
      }
    }
    // Wait for the first complete save, then kill at a moment that moves between rounds.
    for (int i = 0; i < 3000 && !fs::exists(file); ++i) usleep(2000);
    usleep(useconds_t(40000 + 23000 * round));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    for (auto& e : fs::directory_iterator(dir.path)) killed_mid_save += e.path().filename().string().find(".tmp-") != std::string::npos;
    Checkpoint back;
    ASSERT_NO_THROW(back = load_checkpoint(file)) << "round " << round;
    ASSERT_EQ(back.model.size(), 1u);
    EXPECT_EQ(back.model[0].second.to_vector<float>()[12345], 1.0f);
  }
  EXPECT_GE(killed_mid_save, 1) << "no kill fell inside a save; the test proves nothing";
  // The next save clears the temporaries the killed saves left behind.
  Checkpoint c;
  c.model.emplace_back("small", Tensor::zeros({2}));
  save_checkpoint(file, c);
  for (auto& e : fs::directory_iterator(dir.path)) EXPECT_EQ(e.path().filename(), "ckpt.h5");
}

// A full disk during a save, simulated with RLIMIT_FSIZE (the kernel fails writes past the limit with
// EFBIG, as it fails them with ENOSPC on a full disk; SIGXFSZ is ignored so the write returns the error).
// In a child process so the limit stays there: the save must fail with an error, the previous
// checkpoint must be byte-identical and no temporary may be left.
TEST(Checkpoint, DiskFullDuringSaveKeepsThePreviousFileAndLeavesNoTemporary) {
  TempDir dir;
  const fs::path file = dir.path / "ckpt.h5";
  Checkpoint small;
  small.model.emplace_back("w", Tensor::full({64}, 2.0, DType::F32));
  save_checkpoint(file, small);
  const std::vector<char> before = read_bytes(file);
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {1 << 20, 1 << 20};  // 1 MB per file
    setrlimit(RLIMIT_FSIZE, &lim);
    Checkpoint big;
    big.model.emplace_back("w", Tensor::full({1024, 1024}, 1.0, DType::F32));  // 4 MB
    try {
      save_checkpoint(file, big);
    } catch (const Error& e) {
      const bool named = std::string(e.what()).find(file.string()) != std::string::npos;
      _exit(named ? 0 : 3);
    }
    _exit(2);  // the save claimed success
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died instead of reporting an error";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: the save succeeded past the limit; 3: the error does not name the file";
  EXPECT_EQ(read_bytes(file), before);
  for (auto& e : fs::directory_iterator(dir.path)) EXPECT_EQ(e.path().filename(), "ckpt.h5");
  EXPECT_EQ(load_checkpoint(file).model[0].second.to_vector<float>()[5], 2.0f);
}

TEST(Checkpoint, CheckpointOfAnotherModelIsRefused) {
  TempDir dir;
  Generator g(1);
  Tiny small(g, 5), wide(g, 7);
  fs::path file = dir.path / "ckpt.h5";
  save_checkpoint(file, capture(small, nullptr, g));
  EXPECT_THROW(restore(load_checkpoint(file), wide, nullptr, nullptr), Error);
  Adam opt(small.named_parameters());
  Checkpoint c = load_checkpoint(file);
  EXPECT_THROW(restore(c, small, &opt, nullptr), Error);  // saved without optimizer state
}

// Strings are fixed-length since 2026-11-26 (engine/hdf5_file.cpp): h5py reads them as bytes, as it
// reads the MSD files' strings.
TEST(Checkpoint, ReadableByH5py) {
  if (std::system("python3 -c 'import h5py' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 has no h5py";
  TempDir dir;
  Generator g(1);
  Tiny m(g);
  fs::path file = dir.path / "ckpt.h5";
  Checkpoint c = capture(m, nullptr, g);
  c.step = 7;
  save_checkpoint(file, c);
  std::string cmd = "python3 -c \"import h5py,sys; f=h5py.File('" + file.string() +
                    "','r'); assert f['model/fc/weight'].shape==(5,4), f['model/fc/weight'].shape; "
                    "assert f.attrs['step']==7; assert f.attrs['format']==b'musicrec-checkpoint', f.attrs['format']\"";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace musicrec
