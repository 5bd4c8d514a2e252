// Fuzz target: Spotify streaming-history exports (data/spotify.h) and the top-songs ranking made from
// them. Byte 0 picks the file name, which decides the export form the reader expects.
#include <array>

#include "data/spotify.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const std::array<const char*, 4> names{"StreamingHistory0.json", "StreamingHistory_music_0.json",
                                               "Streaming_History_Audio_2022.json", "endsong_0.json"};
  const std::string path = musicrec::fuzz::write_input(names[data[0] % names.size()], data + 1, size - 1);
  MR_FUZZ_EXPECT_CLEAN_ERRORS({
    musicrec::data::SpotifyHistory h = musicrec::data::read_spotify_history({path});
    (void)musicrec::data::top_songs(h, 20, 30000, data[0] & 4);
  });
  return 0;
}
