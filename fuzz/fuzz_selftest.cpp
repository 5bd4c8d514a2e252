// Self-test of fuzz/isolated_fuzzing.h: proves the harness can fail. A reader child that overflows a
// heap buffer in our code, allocates 2 GB, or loops in our code, must stop the run as a finding of ours (the parent
// prints the child's report and aborts); a child that reads fine must not. scripts/fuzz.sh --replay
// runs it on each of the four inputs below and checks the outcome (the CI's fuzz step).
#include <cstring>
#include <string>
#include <vector>

#include "engine/isolated.h"
#include "fuzz/isolated_fuzzing.h"

namespace {

std::string child_reads(const std::string& request) {
  if (request.rfind("overflow", 0) == 0) {
    char* buffer = new char[8];
    std::memset(buffer, 1, 8);
    volatile char past_the_end = buffer[8 + (request.size() & 1)];  // a heap-buffer-overflow in our code
    delete[] buffer;
    return std::string(1, past_the_end);
  }
  if (request.rfind("allocate", 0) == 0) {  // an allocation sized by a field nobody checked: over the limit
    std::vector<char> huge(size_t(1) << 31);
    return std::string(1, huge[request.size()]);
  }
  if (request.rfind("loop", 0) == 0) {
    volatile unsigned long spins = 0;
    for (;;) spins = spins + 1;  // a loop in our code: the watchdog must report it
  }
  return "read " + request;
}

musicrec::IsolatedWorker* reader = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {  // as the HDF5 targets set up
  reader = new musicrec::IsolatedWorker(child_reads, musicrec::ChildSource::kForkServer);
  musicrec::fuzz::prepare_isolated_fuzzing(100, *reader);  // its fork server now, while the process is small
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string request(reinterpret_cast<const char*>(data), size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] { (void)reader->call("selftest", request); });
}
