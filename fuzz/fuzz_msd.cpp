// Fuzz target: MSD HDF5 files as a scan of an MSD tree reads them (read_msd_file_isolated, data/msd.h:
// libhdf5 in a reader child, fuzzed through fuzz/isolated_fuzzing.h), then the song image of each
// track read, built here as `musicrec train pairs` does.
#include <vector>

#include "data/msd.h"
#include "data/song_image.h"
#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/isolated_fuzzing.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The slowest read of the corpus (300 kB files) took 9.5 ms of CPU. One input in ten makes libhdf5
  // loop (session 9: mostly allocating without end under H5C_protect, tests/data/hdf5-damaged/), each
  // costing the whole watchdog: 50 ms, five times the slowest read (was 100).
  // libFuzzer runs every input on this thread: its reader (fuzz/isolated_fuzzing.h).
  musicrec::fuzz::prepare_isolated_fuzzing(50, musicrec::data::msd_reader_of_this_thread());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("track.h5", data, size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] {
    std::vector<musicrec::data::MsdTrack> tracks = musicrec::data::read_msd_file_isolated(path);
    std::vector<const musicrec::data::MsdTrack*> analysed;
    for (const auto& t : tracks)
      if (t.has_analysis) analysed.push_back(&t);
    musicrec::data::ImageOptions o;
    o.height = 8;  // small images: the mapping and padding paths are the same at any size
    o.width = 12;
    const musicrec::data::TimbreStats stats = musicrec::data::fit_timbre_stats(analysed, o.seconds);
    std::vector<float> image(size_t(o.height * o.width));
    for (const auto* t : analysed) musicrec::data::build_song_image(*t, o, stats, image.data());
  });
}
