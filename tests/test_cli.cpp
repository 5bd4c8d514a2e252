// The musicrec program as a user runs it: --help, info (text and JSON), smoke, and bad usage.
#include <gtest/gtest.h>

#include <cmath>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/test_files.h"

namespace {

using CliRun = musicrec::test::ProgramRun;
using musicrec::test::musicrec_program;

CliRun run_cli(const std::string& args) { return musicrec::test::run_musicrec(args); }

TEST(Cli, HelpListsTheCommands) {
  CliRun r = run_cli("--help");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("info"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("smoke"), std::string::npos) << r.out;
}

TEST(Cli, InfoNamesLibrariesDevicesAndTheAutoBackend) {
  CliRun r = run_cli("info");
  EXPECT_EQ(r.status, 0) << r.out;
  for (const char* want : {"hdf5", "blas", "auto picks:", "devices:"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from:\n" << r.out;
#if MUSICREC_WITH_CUDA
  for (const char* want : {"cudnn", "cublas", "cuda_runtime"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " missing from:\n" << r.out;
#endif
  CliRun j = run_cli("info --json");
  EXPECT_EQ(j.status, 0);
  EXPECT_NE(j.out.find("\"auto_device\""), std::string::npos) << j.out;
}

TEST(Cli, MusicrecDeviceCpuForcesTheCpu) {
  const std::string out = musicrec::test::run_musicrec("info", "MUSICREC_DEVICE=cpu").out;
  EXPECT_NE(out.find("auto picks: cpu (MUSICREC_DEVICE=cpu)"), std::string::npos) << out;
}

// MUSICREC_TRACE=FILE: any command's timeline, written when the process exits (the smoke run's ops,
// outside the training commands' phases).
TEST(Cli, MusicrecTraceWritesTheWholeProcesssTimelineAtExit) {
  const std::string path = "/tmp/musicrec-cli-trace-" + std::to_string(getpid()) + ".json";
  std::filesystem::remove(path);
  CliRun r = musicrec::test::run_musicrec("smoke --device cpu --steps 300", "MUSICREC_TRACE=" + path);
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << r.out;
  const nlohmann::json trace = nlohmann::json::parse(f);
  std::filesystem::remove(path);
  std::set<std::string> ops;
  for (const auto& e : trace["traceEvents"])
    if (e["ph"] == "X") ops.insert(e["name"].get<std::string>());
  EXPECT_TRUE(ops.count("linear") && ops.count("matmul (backward)") && ops.count("adam_step")) << trace.dump(1).substr(0, 2000);
}

TEST(Cli, InfoShowsTheCpuKernelThreadsMusicrecCpuThreadsSets) {
  const std::string out = musicrec::test::run_musicrec("info", "MUSICREC_CPU_THREADS=3").out;
  EXPECT_NE(out.find("cpu  (kernels on 3 threads"), std::string::npos) << out;
  const std::string one = musicrec::test::run_musicrec("info --json", "MUSICREC_CPU_THREADS=1").out;
  EXPECT_NE(one.find("\"kernel_threads\": 1"), std::string::npos) << one;
}

// The float products' kernel: the library when asked for; a value that names none is an error that
// says which values there are, and the program exits 1.
TEST(Cli, InfoNamesTheFloatProductsKernelMusicrecCpuSgemmPicks) {
  const std::string lib = musicrec::test::run_musicrec("info", "MUSICREC_CPU_SGEMM=library").out;
  EXPECT_NE(lib.find("float products: BLAS library"), std::string::npos) << lib;
  const std::string best = musicrec::test::run_musicrec("info --json").out;
  EXPECT_NE(best.find("\"float_products\": "), std::string::npos) << best;
  const CliRun bad = musicrec::test::run_musicrec("info", "MUSICREC_CPU_SGEMM=fastest");
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("MUSICREC_CPU_SGEMM='fastest': expected best, library or own"), std::string::npos) << bad.out;
}

TEST(Cli, SmokeRunLearnsOnTheCpu) {
  CliRun r = run_cli("smoke --device cpu --steps 300 --checkpoint /tmp/musicrec-cli-smoke.h5");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("smoke run passed"), std::string::npos) << r.out;
  std::remove("/tmp/musicrec-cli-smoke.h5");
}

TEST(Cli, BadUsageAndBadDevicesFailWithAMessage) {
  CliRun r = run_cli("frobnicate");
  EXPECT_EQ(r.status, 2) << r.out;
  CliRun d = run_cli("smoke --device tpu");
  EXPECT_EQ(d.status, 1) << d.out;
  EXPECT_NE(d.out.find("unknown device 'tpu'"), std::string::npos) << d.out;
  CliRun s = run_cli("smoke --steps 0");
  EXPECT_EQ(s.status, 2) << s.out;
}

TEST(Cli, InspectSummarisesRealFilesAndRejectsOthersInOneLine) {
  std::string root = std::string(MUSICREC_SOURCE_DIR) + "/../shared/real-samples";
  if (std::system(("test -d " + root).c_str()) != 0) GTEST_SKIP() << "../shared/real-samples is absent";
  CliRun m = run_cli("inspect " + root + "/msd-h5-mirdata-TRAAAFP128F931B4E3/TRAAAFP128F931B4E3.h5");
  EXPECT_EQ(m.status, 0) << m.out;
  EXPECT_NE(m.out.find("\"segments\": 1059"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("\"segments_before_60s\": 269"), std::string::npos) << m.out;
  CliRun l = run_cli("inspect " + root + "/lastfm-json-subset/A/A/A/TRAAADZ128F9348C2E.json");
  EXPECT_NE(l.out.find("\"similars\": 64"), std::string::npos) << l.out;
  CliRun k = run_cli("inspect " + root + "/kkbox-csv-vishalshah96/song_extra_info.csv");
  EXPECT_NE(k.out.find("line 24470"), std::string::npos) << k.out;
  CliRun sp = run_cli("inspect " + root + "/spotify-extended-streaming-history-2022-2023");
  EXPECT_NE(sp.out.find("\"skipped_podcast_records\": 13"), std::string::npos) << sp.out;
  EXPECT_NE(sp.out.find("\"top_five\""), std::string::npos) << sp.out;
  CliRun bad = run_cli("inspect /etc/hostname");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("musicrec: error: /etc/hostname: unknown file type"), std::string::npos) << bad.out;
}

// Bytes that are not UTF-8: in a CSV header they are kept as bytes by the reader and shown as U+FFFD
// in JSON output (it used to end in "unexpected error", nlohmann refusing to dump them); in a JSON input
// they are a parse error naming the file. Either way exit status and message are the usual ones.
TEST(Cli, NonUtf8TextIsShownOrRefusedNeverAnUnexpectedError) {
  char tmpl[] = "/tmp/musicrec-utf8-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    FILE* f = std::fopen((dir + "/h.csv").c_str(), "wb");
    std::fputs("\xffmsno,song_id\nx,s\xa0\n", f);
    std::fclose(f);
    f = std::fopen((dir + "/TRAAAAA128F0000000.json").c_str(), "wb");
    std::fputs("{\"artist\": \"A\xc3\", \"timestamp\": \"t\", \"similars\": [], \"tags\": [], "
               "\"track_id\": \"TRAAAAA128F0000000\", \"title\": \"T\"}", f);
    std::fclose(f);
  }
  CliRun csv = run_cli("inspect " + dir + "/h.csv");
  EXPECT_EQ(csv.status, 0) << csv.out;
  EXPECT_NE(csv.out.find("\"\xef\xbf\xbdmsno\""), std::string::npos) << csv.out;
  CliRun json = run_cli("inspect " + dir + "/TRAAAAA128F0000000.json");
  EXPECT_EQ(json.status, 1) << json.out;
  EXPECT_NE(json.out.find("musicrec: error: " + dir + "/TRAAAAA128F0000000.json: not valid JSON"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("ill-formed UTF-8"), std::string::npos) << json.out;
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
