// Fuzz target: the CF dataset cache (data/cf_dataset.h, load_cf_cache) behind a valid seal, read in a
// reader child, for the reasons given in fuzz_song_images.cpp. The fingerprint is fixed, as make_seeds
// writes it, so mutations reach the arrays behind the header check.
#include "data/cf_dataset.h"
#include "engine/file_seal.h"
#include "engine/isolated.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/isolated_fuzzing.h"

namespace {
musicrec::IsolatedWorker* reader = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The slowest read of the corpus took 48 ms of CPU (a large cache): 100 ms, twice that. Each loop of
  // libhdf5 costs the whole watchdog; at 250 ms they were most of a run (before the chunked-scalar check).
  reader = new musicrec::IsolatedWorker([](const std::string& path) {
    musicrec::data::CfDataset ds;
    return std::string(musicrec::data::load_cf_cache(path, "fuzz-fingerprint", ds) ? "loaded" : "stale");
  }, musicrec::ChildSource::kForkServer);
  musicrec::fuzz::prepare_isolated_fuzzing(100, *reader);  // its fork server now, while the process is small
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::scratch_dir() + "/cf.h5";
  musicrec::write_sealed(path, data, size);
  return musicrec::fuzz::fuzz_isolated(data, size, [&] { (void)reader->call("CF cache " + path, path); });
}
