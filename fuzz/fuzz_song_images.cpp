// Fuzz target: the song-image cache (data/song_images.h, load_song_images).
#include "data/song_images.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("images.h5", data, size);
  MR_FUZZ_EXPECT_CLEAN_ERRORS((void)musicrec::data::load_song_images(path));
  return 0;
}
