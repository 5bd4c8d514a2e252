// Readers in a child process (engine/isolated.h): every way the child can end becomes the right
// outcome in the parent, and a real damaged HDF5 file that makes libhdf5 loop is an error naming it.
#include <gtest/gtest.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/msd.h"
#include "data/msd_writer.h"
#include "engine/allocator.h"
#include "engine/checkpoint.h"
#include "engine/isolated.h"
#include "engine/tensor.h"
#include "kernels/error.h"
#include "test_files.h"

namespace musicrec {
namespace {

using test::error_of;

TEST(Isolated, ReturnsTheChildsBytesEvenWhenTheyOverflowThePipe) {
  std::string big(5 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = char(i % 251);
  EXPECT_EQ(run_isolated("big", [&] { return big; }), big);
  EXPECT_EQ(run_isolated("empty", [] { return std::string(); }), "");
}

TEST(Isolated, AnErrorComesBackWithItsOwnMessage) {
  const std::string msg = error_of([] {
    run_isolated("f.h5", []() -> std::string { throw Error("f.h5: /analysis/segments_timbre has 13 columns, expected 12"); });
  });
  EXPECT_EQ(msg, "f.h5: /analysis/segments_timbre has 13 columns, expected 12");
  const std::string other = error_of([] { run_isolated("g.h5", []() -> std::string { throw std::bad_alloc(); }); });
  EXPECT_NE(other.find("g.h5: "), std::string::npos) << other;
  EXPECT_NE(other.find("bad_alloc"), std::string::npos) << other;
}

TEST(Isolated, ACrashIsAnErrorNamingTheFileAndTheSignal) {
  // abort() rather than a bad access: the sanitizer build intercepts SIGSEGV, not SIGABRT.
  const std::string msg = error_of([] { run_isolated("damaged.h5", []() -> std::string { std::abort(); }); });
  EXPECT_NE(msg.find("damaged.h5: the reader crashed (SIGABRT)"), std::string::npos) << msg;
  // The parent carries on: the next reader works.
  EXPECT_EQ(run_isolated("next.h5", [] { return std::string("ok"); }), "ok");
}

TEST(Isolated, AnEndlessLoopIsStoppedAtTheLimit) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([] {
    run_isolated("loop.h5", []() -> std::string {
      for (;;) ::pause();
    }, IsolationOptions{0.5});
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(msg.find("loop.h5: reading took over 0.5 s and was stopped"), std::string::npos) << msg;
  EXPECT_LT(secs, 5.0);
}

// Every behaviour of a worker is the same whichever way its children are forked.
class IsolatedWorkers : public ::testing::TestWithParam<ChildSource> {};
INSTANTIATE_TEST_SUITE_P(Isolated, IsolatedWorkers, ::testing::Values(ChildSource::kThisProcess, ChildSource::kForkServer),
                         [](const auto& info) { return info.param == ChildSource::kThisProcess ? "ForkedHere" : "FromAForkServer"; });

TEST_P(IsolatedWorkers, ServeManyRequestsWithOneChildAndReplaceACrashedOne) {
  IsolatedWorker w([](const std::string& req) -> std::string {
    if (req == "crash") std::abort();
    if (req == "bad") throw Error(req + ": refused");
    return "read " + req;
  }, GetParam());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(w.call("f", std::to_string(i)), "read " + std::to_string(i));
  EXPECT_EQ(w.children_started(), 1);
  EXPECT_EQ(error_of([&] { w.call("bad", "bad"); }), "bad: refused");
  EXPECT_EQ(w.children_started(), 1);
  // A child that refused a file reads no more: libhdf5's state may be damaged without a crash.
  EXPECT_EQ(w.call("f", "next"), "read next");
  EXPECT_EQ(w.children_started(), 2);
  EXPECT_NE(error_of([&] { w.call("c.h5", "crash"); }).find("c.h5: the reader crashed (SIGABRT)"), std::string::npos);
  EXPECT_EQ(w.call("f", "after"), "read after");
  EXPECT_EQ(w.children_started(), 3);
}

TEST_P(IsolatedWorkers, StopAChildThatLoopsAndGoOnWithANewOne) {
  IsolatedWorker w([](const std::string& req) -> std::string {
    if (req == "loop")
      for (;;) ::pause();
    return "read " + req;
  }, GetParam());
  EXPECT_EQ(w.call("f", "a"), "read a");
  const std::string msg = error_of([&] { w.call("loop.h5", "loop", IsolationOptions{0.3}); });
  EXPECT_NE(msg.find("loop.h5: reading took over 0.3 s and was stopped"), std::string::npos) << msg;
  EXPECT_EQ(w.call("f", "b"), "read b");
  EXPECT_EQ(w.children_started(), 2);
}

TEST_P(IsolatedWorkers, AChildThatLeavesWithoutAnAnswerIsAnErrorWithItsExitStatus) {
  IsolatedWorker w([](const std::string&) -> std::string { _exit(7); }, GetParam());
  EXPECT_EQ(error_of([&] { w.call("f.h5", "x"); }), "f.h5: the reader process ended without an answer (exit status 7)");
}

// The fork server's own properties: it forks the children (so their cost is the server's size, not
// ours), its copy of memory is the process's at the first start, it is replaced if it goes, and it
// leaves with its worker, taking its children with it.
int g_generation = 1;

TEST(Isolated, AForkServersChildrenAreItsOwnAndSeeMemoryAsAtTheFirstStart) {
  pid_t server = -1;
  {
    IsolatedWorker w([](const std::string& req) -> std::string {
      if (req == "bad") throw Error("refused");
      return std::to_string(::getppid()) + " " + std::to_string(g_generation);
    }, ChildSource::kForkServer);
    const std::string first = w.call("f", "x");
    server = pid_t(std::stol(first));
    EXPECT_NE(server, ::getpid());
    EXPECT_EQ(first, std::to_string(server) + " 1");
    g_generation = 2;  // made after the server: its children never see it
    EXPECT_THROW(w.call("f", "bad"), Error);
    EXPECT_EQ(w.call("f", "x"), std::to_string(server) + " 1");
    EXPECT_EQ(w.children_started(), 2);
    // A server killed from outside is replaced by a copy of the process as it is now.
    ASSERT_EQ(::kill(server, SIGKILL), 0);
    EXPECT_THROW(w.call("f", "bad"), Error);  // its child, orphaned, still answers once
    const std::string again = w.call("f", "x");
    const pid_t second = pid_t(std::stol(again));
    EXPECT_NE(second, server);
    EXPECT_EQ(again, std::to_string(second) + " 2");
    server = second;
  }
  g_generation = 1;
  // The worker is gone: its server has left and been waited for (no zombie).
  EXPECT_EQ(::kill(server, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

#if defined(__SANITIZE_ADDRESS__)
#define MUSICREC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MUSICREC_UNDER_ASAN 1
#endif
#endif

TEST(Isolated, AReaderThatAllocatesWithoutEndRunsOutOfItsMemoryBudget) {
#ifdef MUSICREC_UNDER_ASAN
  // The sanitizer's allocator reports running out of memory itself (and ends the process) instead of
  // returning NULL or throwing std::bad_alloc; the limit is the same.
  GTEST_SKIP() << "AddressSanitizer reports out-of-memory itself";
#endif
  ::setenv("MUSICREC_ISOLATION_MEMORY_MB", "64", 1);
  const uint64_t budget = isolation_memory_budget_mb();
  for (const ChildSource source : {ChildSource::kThisProcess, ChildSource::kForkServer}) {
    // What libhdf5 does on a damaged local heap: small blocks, without end.
    IsolatedWorker w([](const std::string& how) -> std::string {
      // Free memory the child inherited in malloc's arenas is already counted as its own: it may be
      // used besides the budget (limit_child_memory). A fresh process has a few MB of it; one that ran
      // other tests first (the GPU check runs each quarter of the suite in one process) can have more.
      const size_t in_hand_mb = mallinfo2().fordblks >> 20;
      std::vector<void*> blocks;
      for (size_t taken = 0; taken < (size_t(1) << 30); taken += 4096) {  // 1 GB: far past the budget
        void* p = how == "malloc" ? std::malloc(4096) : static_cast<void*>(new char[4096]);
        if (!p) return "malloc returned NULL after " + std::to_string(taken >> 20) + " MB, " + std::to_string(in_hand_mb) + " MB in hand";
        std::memset(p, 1, 4096);
        blocks.push_back(p);
      }
      return "never";
    }, source);
    const std::string c_library = w.call("a damaged file", "malloc");
    ASSERT_NE(c_library.find("malloc returned NULL after"), std::string::npos) << c_library;
    const uint64_t got_mb = std::stoull(c_library.substr(c_library.find("after ") + 6));
    const uint64_t in_hand_mb = std::stoull(c_library.substr(c_library.find(", ") + 2));
    EXPECT_GE(got_mb, 32u) << c_library;  // the budget, less the pointers' vector and malloc's headers
    EXPECT_LE(got_mb, 64u + in_hand_mb + 1) << c_library;
    try {
      w.call("a damaged file", "new");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("a damaged file: std::bad_alloc (the reader had reached its memory budget of 64 MB, "
                                           "MUSICREC_ISOLATION_MEMORY_MB"),
                std::string::npos) << e.what();
    }
  }
  ::unsetenv("MUSICREC_ISOLATION_MEMORY_MB");
  EXPECT_EQ(budget, 64u);
  EXPECT_EQ(isolation_memory_budget_mb(), 4096u);
}

TEST(Isolated, AnMsdFileThatMakesLibhdf5AllocateWithoutEndIsAnErrorSayingSo) {
#ifdef MUSICREC_UNDER_ASAN
  GTEST_SKIP() << "AddressSanitizer reports out-of-memory itself";
#endif
  // Found by fuzz_msd: read in-process, libhdf5 took 8 GB in 23 s (small blocks under H5Dopen2), all an
  // 8 GB `ulimit -v` allowed, then reported the table missing. In a reader child they fail at the budget.
  const std::string file = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/hdf5-damaged/msd-local-heap-allocates-without-end.h5";
  ::setenv("MUSICREC_ISOLATION_MEMORY_MB", "256", 1);
  std::string msg;
  // On a thread of its own: each thread's reader is made at its first read, with the budget of that
  // moment; this one's reader may have been made by a test that ran before in the same process, with
  // the default 4,096 MB (which the file then takes, in ~18 s).
  std::thread([&] {
    try {
      (void)data::read_msd_file_isolated(file);
    } catch (const Error& e) {
      msg = e.what();
    }
  }).join();
  ::unsetenv("MUSICREC_ISOLATION_MEMORY_MB");
  EXPECT_EQ(msg.rfind(file + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find("(the reader had reached its memory budget of 256 MB, MUSICREC_ISOLATION_MEMORY_MB"), std::string::npos) << msg;
}

TEST(Isolated, AForkServerStartedAheadServesMemoryAsAtItsStart) {
  // What a fuzz target does in LLVMFuzzerInitialize: the server is made before the process grows.
  IsolatedWorker w([](const std::string&) { return std::to_string(::getppid()) + " " + std::to_string(g_generation); },
                   ChildSource::kForkServer);
  w.start_server();
  EXPECT_EQ(w.children_started(), 0);  // a server, no child yet
  g_generation = 3;
  const std::string answer = w.call("f", "x");
  EXPECT_EQ(answer.substr(answer.find(' ')), " 1");
  EXPECT_NE(pid_t(std::stol(answer)), ::getpid());
  w.start_server();  // made already: the same server
  EXPECT_EQ(w.call("f", "x"), answer);
  g_generation = 1;
  // A worker forking from this process has no server to start.
  IsolatedWorker direct([](const std::string&) { return std::to_string(::getppid()); });
  direct.start_server();
  EXPECT_EQ(direct.call("f", "x"), std::to_string(::getpid()));
}

// The processes whose parent is `parent`, zombies included (they stay in /proc until reaped).
int children_of(pid_t parent) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t close = line.rfind(')');  // "pid (name) state ppid ...": the name may hold spaces
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    long ppid = 0;
    if (rest >> state >> ppid && ppid == parent) ++n;
  }
  return n;
}

TEST(Isolated, AForkServerReapsEveryChildItWasGivenBack) {
  IsolatedWorker w([](const std::string& req) -> std::string {
    if (req == "who") return std::to_string(::getppid());
    throw Error("refused");
  }, ChildSource::kForkServer);
  for (int i = 0; i < 200; ++i) EXPECT_THROW(w.call("f", "x"), Error);
  EXPECT_EQ(w.children_started(), 200);
  const pid_t server = pid_t(std::stol(w.call("f", "who")));
  // Given back children are reaped within moments: only the one serving now is left.
  int left = 0;
  for (int i = 0; i < 200 && (left = children_of(server)) > 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(left, 1);
}

TEST(Isolated, BytesRoundTripAndATruncatedResultIsAnError) {
  ByteWriter w;
  w.u64(42);
  w.f64(-1.5);
  w.str("TRAAAAW128F429D538");
  w.f64s({1, 2, 3});
  const float floats[2] = {0.25f, -8.0f};
  w.u64(2);
  w.raw(floats, sizeof floats);
  const std::string bytes = w.take();
  ByteReader r(bytes, "t.h5");
  EXPECT_EQ(r.u64(), 42u);
  EXPECT_EQ(r.f64(), -1.5);
  EXPECT_EQ(r.str(), "TRAAAAW128F429D538");
  EXPECT_EQ(r.f64s(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(r.count(sizeof(float)), 2u);
  EXPECT_EQ(r.remaining(), sizeof floats);
  float back[2];
  r.raw(back, sizeof back);
  EXPECT_EQ(back[0], 0.25f);
  EXPECT_EQ(back[1], -8.0f);
  EXPECT_TRUE(r.done());
  // Empty fields (a track without segments, a tensor of shape [0, 5]) copy nothing to a null pointer:
  // found by fuzz_msd once the target read through the child (UBSan: null passed to memcpy).
  ByteWriter empty;
  empty.f64s({});
  empty.raw(nullptr, 0);
  const std::string eb = empty.take();
  ByteReader re(eb, "t.h5");
  EXPECT_TRUE(re.f64s().empty());
  re.raw(nullptr, 0);
  EXPECT_TRUE(re.done());
  // A count the bytes left cannot hold is refused before anyone sizes a vector by it.
  ByteWriter forged;
  forged.u64(uint64_t(1) << 60);
  forged.u64(7);
  const std::string fb = forged.take();
  ByteReader rf(fb, "t.h5");
  EXPECT_THROW(rf.count(8), Error);
  const std::string cut = bytes.substr(0, bytes.size() - 8 - sizeof floats - 4);  // inside the f64s
  ByteReader r2(cut, "t.h5");
  r2.u64();
  r2.f64();
  r2.str();
  const std::string msg = error_of([&] { r2.f64s(); });
  EXPECT_NE(msg.find("t.h5: the reader process sent a truncated result"), std::string::npos) << msg;
}

// A checkpoint-shaped file the fuzzer found (fuzz/README.md) on which libhdf5 1.10.8 loops forever.
TEST(Isolated, InspectOfAFileThatMakesLibhdf5LoopIsAnErrorNamingIt) {
  const std::string file = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/hdf5-damaged/checkpoint-loops-in-libhdf5.h5";
  const test::ProgramRun r = test::run_musicrec("inspect " + file, "MUSICREC_ISOLATION_TIMEOUT_S=1");
  const std::string& out = r.out;
  EXPECT_EQ(r.status, 1) << out;
  EXPECT_NE(out.find(file + ": reading took over 1 s and was stopped"), std::string::npos) << out;
}

// The tree scan reads every file in a child: valid files give the same tracks as in-process.
TEST(Isolated, MsdFilesReadInAChildEqualTheInProcessRead) {
  test::TempDir d;
  data::MsdTrack t;
  t.track_id = "TRISOLA128F0000001";
  t.song_id = "SOISOLA12A8C000001";
  t.artist_name = "Isolde";
  t.title = "Read Elsewhere";
  t.release = "Forks";
  t.duration = 3.25;
  t.tempo = 121.5;
  t.key = 4;
  t.mode = 1;
  t.year = 1999;
  t.has_analysis = true;
  t.segments_start = {0.0, 1.0, 2.5};
  for (int i = 0; i < 36; ++i) {
    t.pitches.push_back(i / 36.0);
    t.timbre.push_back(i * 1.5 - 20);
  }
  const std::string dir = d.path.string(), path = d.file("TRISOLA128F0000001.h5");
  data::write_msd_track_file(path, t);
  const auto in_process = data::read_msd_file(path);
  const auto child = data::read_msd_file_isolated(path);
  ASSERT_EQ(child.size(), in_process.size());
  EXPECT_EQ(child[0].track_id, in_process[0].track_id);
  EXPECT_EQ(child[0].title, in_process[0].title);
  EXPECT_EQ(child[0].year, in_process[0].year);
  EXPECT_EQ(child[0].key, in_process[0].key);
  EXPECT_EQ(child[0].duration, in_process[0].duration);
  EXPECT_EQ(child[0].segments_start, in_process[0].segments_start);
  EXPECT_EQ(child[0].pitches, in_process[0].pitches);
  EXPECT_EQ(child[0].timbre, in_process[0].timbre);
  const std::string msg = error_of([&] { data::read_msd_file_isolated(dir + "/missing.h5"); });
  EXPECT_EQ(msg, error_of([&] { data::read_msd_file(dir + "/missing.h5"); }));
}

// Checkpoints from elsewhere (predict, recommend, --resume) are read in a child: the same content as
// in-process, bit for bit, and the file on which libhdf5 loops is an error naming it.
TEST(Isolated, CheckpointsReadInAChildEqualTheInProcessReadAndALoopIsAnError) {
  test::TempDir d;
  Checkpoint c;
  c.model = {{"tower.conv1.weight", Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 3e-8f, 7.0f}, {2, 2})},
             {"head.bias", Tensor::from_vector(std::vector<double>{0.125}, {1})},
             {"table.rows", Tensor::from_vector(std::vector<int32_t>{4, -9, 2}, {3})},
             {"empty", Tensor::empty({0, 5})}};
  c.optimizer = {{"m/tower.conv1.weight", Tensor::from_vector(std::vector<float>{0.5f, 0.25f, 0.f, -1.f}, {2, 2})}};
  c.optimizer_kind = "adam";
  c.optimizer_steps = 17;
  c.step = 42;
  c.epoch = 3;
  c.rng_seed = 0xfeedfacecafebeefULL;
  c.rng_offset = 99;
  c.metadata_json = R"({"position":{"epoch":3}})";
  const std::string path = d.file("last.h5");
  save_checkpoint(path, c);
  const Checkpoint a = load_checkpoint(path), b = load_checkpoint_isolated(path);
  EXPECT_EQ(b.optimizer_kind, a.optimizer_kind);
  EXPECT_EQ(b.metadata_json, a.metadata_json);
  EXPECT_EQ(b.optimizer_steps, 17);
  EXPECT_EQ(b.step, 42);
  EXPECT_EQ(b.epoch, 3);
  EXPECT_EQ(b.rng_seed, 0xfeedfacecafebeefULL);
  EXPECT_EQ(b.rng_offset, 99u);
  for (auto [x, y] : {std::pair{&a.model, &b.model}, std::pair{&a.optimizer, &b.optimizer}}) {
    ASSERT_EQ(x->size(), y->size());
    for (size_t i = 0; i < x->size(); ++i) {
      const Tensor &tx = (*x)[i].second, &ty = (*y)[i].second;
      EXPECT_EQ((*x)[i].first, (*y)[i].first);
      EXPECT_EQ(tx.dtype(), ty.dtype()) << (*x)[i].first;
      EXPECT_EQ(tx.shape(), ty.shape()) << (*x)[i].first;
      ASSERT_EQ(tx.nbytes(), ty.nbytes());
      EXPECT_EQ(0, std::memcmp(tx.raw_data(), ty.raw_data(), tx.nbytes())) << (*x)[i].first;
    }
  }
  EXPECT_EQ(error_of([&] { load_checkpoint_isolated(d.file("missing.h5")); }),
            error_of([&] { load_checkpoint(d.file("missing.h5")); }));

  const std::string looping = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/hdf5-damaged/checkpoint-loops-in-libhdf5.h5";
  setenv("MUSICREC_ISOLATION_TIMEOUT_S", "1", 1);
  const std::string msg = error_of([&] { load_checkpoint_isolated(looping); });
  unsetenv("MUSICREC_ISOLATION_TIMEOUT_S");
  EXPECT_NE(msg.find(looping + ": reading took over 1 s and was stopped"), std::string::npos) << msg;
}

// The child builds CPU tensors, so it must never start with the allocator's lock held by another thread
// of the parent (engine/allocator.cpp takes every allocator lock around fork). Without that, a fork
// landing while the other thread is inside allocate() leaves a child that waits forever.
// The churning thread calls the allocator directly rather than making tensors: Tensor::empty also
// mallocs (the shared Storage), and the malloc of GCC 12's AddressSanitizer takes no lock around fork
// (LLVM added that in llvm/llvm-project#75290, Dec 2023), so under the sanitizer build a child could
// inherit ASan's own lock and hang, a property of that runtime, not of this code (seen in CI: 1 child
// in ~1,000 on a loaded machine, stuck in SizeClassAllocator64::GetFromAllocator). allocate() and
// deallocate() malloc only with the allocator's lock held, which the fork handler holds, so this
// loop tests exactly the allocator's own lock in every build, glibc's malloc or ASan's.
TEST(Isolated, AChildNeverInheritsAnAllocatorLockHeldByAnotherThread) {
  test::TempDir d;
  Checkpoint c;
  c.model = {{"w", Tensor::from_vector(std::vector<float>(1000, 0.5f), {10, 100})}};
  const std::string path = d.file("c.h5");
  save_checkpoint(path, c);
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      void* p = cpu_allocator().allocate(256);  // allocate and free in a tight loop
      cpu_allocator().deallocate(p);
    }
  });
  setenv("MUSICREC_ISOLATION_TIMEOUT_S", "10", 1);
  int loaded = 0;
  std::string failure;
  for (int i = 0; i < 100 && failure.empty(); ++i) {
    try {
      loaded += load_checkpoint_isolated(path).model.size() == 1;
    } catch (const Error& e) {
      failure = e.what();
    }
  }
  unsetenv("MUSICREC_ISOLATION_TIMEOUT_S");
  stop = true;
  churn.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(loaded, 100);
}

}  // namespace
}  // namespace musicrec
