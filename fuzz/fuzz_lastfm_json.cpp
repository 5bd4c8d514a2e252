// Fuzz target: one Last.fm track file (data/lastfm.h, read_lastfm_json).
#include "data/lastfm.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("TRAAAAA128F0000000.json", data, size);
  MR_FUZZ_EXPECT_CLEAN_ERRORS((void)musicrec::data::read_lastfm_json(path));
  return 0;
}
