// fuzz/symbolize.h: a reader child's raw frames rewritten in the parent as the sanitizer would print
// them, so that fuzz/triage.h decides the same; and the signatures that group library reports.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "fuzz/symbolize.h"
#include "fuzz/triage.h"

namespace musicrec::fuzz {
namespace {

// A watchdog report from a checkpoint reader child, as ASAN_OPTIONS=symbolize=0 prints it (cut).
const std::string kRawLoop =
    "AddressSanitizer:DEADLYSIGNAL\n"
    "musicrec-watchdog: the reader used its CPU time on one request\n"
    "==9513==ERROR: AddressSanitizer: SEGV on unknown address 0x000000000000 (pc 0x7f34167699a9 bp 0x607000000330 sp 0x7ffd652711b0 T0)\n"
    "    #0 0x7f34167699a9  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1699a9) (BuildId: e923ff058f7cfc1a31cc68764211396ffb3aeb91)\n"
    "    #1 0x7f341668d9fc  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x8d9fc) (BuildId: e923ff058f7cfc1a31cc68764211396ffb3aeb91)\n"
    "    #2 0x563f7aea95a6  (/work/main/build-fuzz/bin/musicrec_fuzz_checkpoint+0x24d5a6) (BuildId: 7812e95fb28c54e53d9b56207f790bc703f19d6b)\n"
    "\n"
    "SUMMARY: AddressSanitizer: SEGV (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1699a9)\n";

// What llvm-symbolizer says of those three addresses: a static libhdf5 function it cannot name, an
// exported one, and our code with an inlined call.
std::vector<SourceFrame> fake_lookup(const std::string& module, const std::string& offset) {
  if (module.find("libhdf5") != std::string::npos && offset == "0x1699a9") return {{"??", "??:0:0"}};
  if (module.find("libhdf5") != std::string::npos) return {{"H5C_protect", "??:0:0"}};
  return {{"musicrec::Hdf5File::attr_str(std::string const&) const", "/work/main/engine/hdf5_file.cpp:280:3"},
          {"musicrec::load_checkpoint(std::string const&)", "/work/main/engine/checkpoint.cpp:90:12"}};
}

TEST(FuzzSymbolize, RawFramesAreRewrittenAsTheSanitizerPrintsThem) {
  std::map<std::string, int> asked;
  const std::string out = symbolize_log(kRawLoop, [&](const std::string& m, const std::string& o) {
    ++asked[m + "+" + o];
    return fake_lookup(m, o);
  });
  EXPECT_EQ(asked.size(), 3u);
  // Unknown: the raw frame is kept whole.
  EXPECT_NE(out.find("    #0 0x7f34167699a9  (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1699a9) (BuildId: e923"), std::string::npos) << out;
  // A name without a location keeps the module, as the sanitizer does.
  EXPECT_NE(out.find("    #1 0x7f341668d9fc in H5C_protect (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x8d9fc) (BuildId: e923"), std::string::npos) << out;
  // Inlined frames: one line each, innermost first, the same frame number.
  EXPECT_NE(out.find("    #2 0x563f7aea95a6 in musicrec::Hdf5File::attr_str(std::string const&) const /work/main/engine/hdf5_file.cpp:280:3\n"
                     "    #2 0x563f7aea95a6 in musicrec::load_checkpoint(std::string const&) /work/main/engine/checkpoint.cpp:90:12\n"),
            std::string::npos) << out;
  // Lines that are not raw frames pass unchanged; so does a log the child symbolised itself.
  EXPECT_NE(out.find("SUMMARY: AddressSanitizer: SEGV (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x1699a9)\n"), std::string::npos);
  EXPECT_EQ(symbolize_log(out, fake_lookup), out);
  // The triage reads the rewritten report: the deciding frame is libhdf5's.
  EXPECT_EQ(classify_report(out), Culprit::kLibhdf5);
  // Raw, the first frame in our binary has no C++ location: it could not have decided.
  EXPECT_EQ(classify_report(kRawLoop), Culprit::kLibhdf5);
}

TEST(FuzzSymbolize, ASymbolizerAnswerIsPairsOfLines) {
  const auto frames = parse_symbolizer_answer({"inner()", "/a.cpp:1:2", "outer()", "/b.cpp:3:4"});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "inner()");
  EXPECT_EQ(frames[1].location, "/b.cpp:3:4");
  EXPECT_TRUE(parse_symbolizer_answer({}).empty());
}

// The real llvm-symbolizer (installed by scripts/setup.sh with clang) names a function of this binary.
void a_function_to_find() { asm volatile(""); }

// Where the tests run without the project's set-up (the GPU check's bundle on a lent machine has no
// clang), there is no symbolizer to start: the tests that need one skip rather than fail.
bool llvm_symbolizer_available() {
  bool found = std::getenv("ASAN_SYMBOLIZER_PATH") != nullptr;
  std::istringstream dirs(std::getenv("PATH") ? std::getenv("PATH") : "");
  for (std::string dir; !found && std::getline(dirs, dir, ':');) found = std::filesystem::exists(dir + "/llvm-symbolizer");
  return found;
}

TEST(FuzzSymbolize, TheKeptLlvmSymbolizerNamesAFunctionOfThisBinary) {
  if (!llvm_symbolizer_available()) GTEST_SKIP() << "llvm-symbolizer is not on the PATH";
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&a_function_to_find), &info), 0);
  const auto offset = reinterpret_cast<uintptr_t>(&a_function_to_find) - reinterpret_cast<uintptr_t>(info.dli_fbase);
  std::ostringstream hex;
  hex << "0x" << std::hex << offset;
  const std::string module = std::filesystem::canonical("/proc/self/exe").string();
  LlvmSymbolizer s;
  for (int i = 0; i < 3; ++i) {  // one process answers every lookup
    const auto frames = s.lookup(module, hex.str());
    ASSERT_FALSE(frames.empty());
    EXPECT_NE(frames[0].function.find("a_function_to_find"), std::string::npos) << frames[0].function;
    EXPECT_TRUE(s.running());
  }
}

TEST(FuzzSymbolize, ASymbolizerThatDiedIsStartedAgain) {
  if (!llvm_symbolizer_available()) GTEST_SKIP() << "llvm-symbolizer is not on the PATH";
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&a_function_to_find), &info), 0);
  std::ostringstream hex;
  hex << "0x" << std::hex << (reinterpret_cast<uintptr_t>(&a_function_to_find) - reinterpret_cast<uintptr_t>(info.dli_fbase));
  const std::string module = std::filesystem::canonical("/proc/self/exe").string();
  LlvmSymbolizer s;
  ASSERT_FALSE(s.lookup(module, hex.str()).empty());
  const pid_t first = s.pid();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  EXPECT_TRUE(s.lookup(module, hex.str()).empty());  // the lookup it died in: that frame stays raw
  const auto again = s.lookup(module, hex.str());     // a new one answers the next
  ASSERT_FALSE(again.empty());
  EXPECT_NE(again[0].function.find("a_function_to_find"), std::string::npos);
  EXPECT_NE(s.pid(), first);
}

TEST(FuzzSymbolize, ASignatureNamesTheKindAndTheDecidingFunction) {
  const std::string symbolized = symbolize_log(kRawLoop, fake_lookup);
  // A loop is named by its deciding frame (the first in libhdf5): its first named one from there.
  EXPECT_EQ(report_signature(symbolized), "loop in H5C_protect");
  const std::string overflow =
      "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6 at pc 0x5 bp 0x7 sp 0x8\n"
      "    #0 0x5607044c96ac in __interceptor_memcpy (/work/main/build-fuzz/bin/musicrec_fuzz_msd+0x1176ac)\n"
      "    #1 0x7fba6fc4c125 in H5D__compact_readvv (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x24c125)\n"
      "    #2 0x5607045ce2bb in musicrec::data::(anonymous namespace)::read_table(long) /work/main/data/msd.cpp:60:7\n"
      "\n";
  EXPECT_EQ(report_signature(overflow), "heap-buffer-overflow in __interceptor_memcpy < H5D__compact_readvv");
  const std::string ours =
      "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x0\n"
      "    #0 0x5607045ce2bb in musicrec::data::(anonymous namespace)::read_table(long) /work/main/data/msd.cpp:60:7\n";
  EXPECT_EQ(report_signature(ours), "SEGV in musicrec::data::(anonymous namespace)::read_table");
  EXPECT_EQ(report_signature("==1==ERROR: AddressSanitizer: SEGV on unknown address\n    <empty stack>\n"),
            "SEGV without a stack");
  EXPECT_EQ(report_signature("INFO: nothing\n"), "no report");
  // libFuzzer's -malloc_limit_mb report prints its own hook first; the library frame decides.
  const std::string oom =
      "==7855== ERROR: libFuzzer: out-of-memory (malloc(1073742376))\n"
      "    #0 0x56036070e8b1 in __sanitizer_print_stack_trace (/work/main/build-fuzz/bin/musicrec_fuzz_checkpoint+0x1c38b1)\n"
      "    #1 0x560360681208 in fuzzer::PrintStackTrace() (/work/main/build-fuzz/bin/musicrec_fuzz_checkpoint+0x136208)\n"
      "    #2 0x7fba6fc4c125 in H5FL_blk_malloc (/lib/x86_64-linux-gnu/libhdf5_serial.so.103+0x24c125)\n";
  EXPECT_EQ(report_signature(oom), "malloc-over-limit in __sanitizer_print_stack_trace < H5FL_blk_malloc");
  EXPECT_EQ(classify_report(oom), Culprit::kLibhdf5);
}

}  // namespace
}  // namespace musicrec::fuzz
