// Fuzz target: the Last.fm SQLite file lastfm_similars.db (data/lastfm.h, read_lastfm_similars_db):
// both SQLite's own file format and the target strings inside it.
#include "data/lastfm.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("lastfm_similars.db", data, size);
  MR_FUZZ_EXPECT_CLEAN_ERRORS((void)musicrec::data::read_lastfm_similars_db(path));
  return 0;
}
