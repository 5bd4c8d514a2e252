// Fuzz target: our own checkpoints as `--resume`, `predict` and `recommend` read them from run folders
// anyone may hand over: load_checkpoint_isolated (engine/checkpoint.h), libhdf5 in a reader child and
// our unpacking of its reply here, fuzzed through fuzz/isolated_fuzzing.h. The program starts a child
// per load; here one child serves every input (a fork per input would cap the run at ~30 per second).
#include "engine/checkpoint.h"
#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/isolated_fuzzing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static musicrec::IsolatedWorker* reader = musicrec::make_checkpoint_reader().release();
  const std::string path = musicrec::fuzz::write_input("last.h5", data, size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] { (void)musicrec::load_checkpoint_isolated(path, reader); });
}
