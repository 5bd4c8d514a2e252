// Fuzz target: the song-image cache (data/song_images.h, load_song_images) behind a valid seal.
//
// musicrec's caches are sealed (engine/file_seal.h): a damaged byte is refused before libhdf5 parses
// the file (tests FileSeal.*), so mutated bytes as such never get further than the seal. Here the
// fuzzer's bytes are the file's HDF5 content and are sealed, so they reach what a cache crafted to pass
// the seal would reach: libhdf5, and our checks of what it returns. libhdf5 faults on such content, so
// the read runs in a reader child (fuzz/isolated_fuzzing.h), where they are contained and counted.
#include "data/song_images.h"
#include "engine/file_seal.h"
#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/isolated_fuzzing.h"

namespace {
musicrec::IsolatedWorker* reader = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The slowest read of the corpus took 11 ms of CPU; one input in ten makes libhdf5 loop (allocating
  // without end), each costing the whole watchdog: 50 ms (was 80).
  reader = new musicrec::IsolatedWorker([](const std::string& path) {
    return std::to_string(musicrec::data::load_song_images(path).size());
  }, musicrec::ChildSource::kForkServer);
  musicrec::fuzz::prepare_isolated_fuzzing(50, *reader);  // its fork server now, while the process is small
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::scratch_dir() + "/images.h5";
  musicrec::write_sealed(path, data, size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] { (void)reader->call("song images " + path, path); });
}
