// Readers in a child process (engine/isolated.h): every way the child can end becomes the right
// outcome in the parent, and a real damaged HDF5 file that makes libhdf5 loop is an error naming it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/msd.h"
#include "data/msd_writer.h"
#include "engine/isolated.h"
#include "kernels/error.h"
#include "test_files.h"

namespace musicrec {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

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

TEST(Isolated, AWorkerServesManyRequestsWithOneChildAndReplacesACrashedOne) {
  IsolatedWorker w([](const std::string& req) -> std::string {
    if (req == "crash") std::abort();
    if (req == "bad") throw Error(req + ": refused");
    return "read " + req;
  });
  for (int i = 0; i < 20; ++i) EXPECT_EQ(w.call("f", std::to_string(i)), "read " + std::to_string(i));
  EXPECT_EQ(w.children_started(), 1);
  EXPECT_EQ(error_of([&] { w.call("bad", "bad"); }), "bad: refused");
  EXPECT_EQ(w.children_started(), 1);  // an error is an answer, the child stays
  EXPECT_NE(error_of([&] { w.call("c.h5", "crash"); }).find("c.h5: the reader crashed (SIGABRT)"), std::string::npos);
  EXPECT_EQ(w.call("f", "after"), "read after");
  EXPECT_EQ(w.children_started(), 2);
}

TEST(Isolated, BytesRoundTripAndATruncatedResultIsAnError) {
  ByteWriter w;
  w.u64(42);
  w.f64(-1.5);
  w.str("TRAAAAW128F429D538");
  w.f64s({1, 2, 3});
  const std::string bytes = w.take();
  ByteReader r(bytes, "t.h5");
  EXPECT_EQ(r.u64(), 42u);
  EXPECT_EQ(r.f64(), -1.5);
  EXPECT_EQ(r.str(), "TRAAAAW128F429D538");
  EXPECT_EQ(r.f64s(), (std::vector<double>{1, 2, 3}));
  EXPECT_TRUE(r.done());
  const std::string cut = bytes.substr(0, bytes.size() - 4);
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

}  // namespace
}  // namespace musicrec
