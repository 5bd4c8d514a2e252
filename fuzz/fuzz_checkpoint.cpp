// Fuzz target: our own checkpoints (engine/checkpoint.h, load_checkpoint), which `--resume`,
// `predict` and `recommend` read from run folders anyone may hand over.
#include "engine/checkpoint.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("last.h5", data, size);
  MR_FUZZ_EXPECT_CLEAN_ERRORS((void)musicrec::load_checkpoint(path));
  return 0;
}
