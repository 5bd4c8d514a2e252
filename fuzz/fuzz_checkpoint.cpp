// Fuzz target: our own checkpoints as `--resume`, `predict` and `recommend` read them from run folders
// anyone may hand over: load_checkpoint_isolated (engine/checkpoint.h), libhdf5 in a reader child and
// our unpacking of its reply here, fuzzed through fuzz/isolated_fuzzing.h. The program starts a child
// per load; here one worker serves every input, its children forked by a fork server made before
// libFuzzer's tables (most inputs are refused, each ending its child; forking libFuzzer's grown parent
// for each new one cost more than the read).
#include "engine/checkpoint.h"
#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/isolated_fuzzing.h"

namespace {
musicrec::IsolatedWorker* reader = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The slowest read of the corpus took 5.6 ms of CPU, and libhdf5 loops on one input in ~30 here.
  reader = musicrec::make_checkpoint_reader(musicrec::ChildSource::kForkServer).release();
  musicrec::fuzz::prepare_isolated_fuzzing(40, *reader);  // its fork server now, while the process is small
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("last.h5", data, size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] { (void)musicrec::load_checkpoint_isolated(path, reader); });
}
