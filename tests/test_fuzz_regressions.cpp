// Inputs the fuzz targets found (fuzz/README.md), kept as files: each tests/data/fuzz/<target>-<what>.*
// goes to the reader of that target, which must refuse it with a musicrec::Error (not crash, not
// allocate from a forged size). A new finding is added by copying its crash file here under that name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <map>
#include <string>

#include "data/cf_dataset.h"
#include "data/lastfm.h"
#include "data/msd.h"
#include "data/song_images.h"
#include "engine/checkpoint.h"
#include "engine/file_seal.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

// The caches are sealed (engine/file_seal.h) and their fuzz targets seal each input, so a kept cache
// input is the HDF5 content: it is sealed into a copy, which then must be refused by our checks.
std::string sealed_copy(const std::string& input, const test::TempDir& d) {
  std::ifstream in(input, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const std::string out = d.file(std::filesystem::path(input).filename().string());
  write_sealed(out, bytes.data(), bytes.size());
  return out;
}

TEST(FuzzRegressions, EveryKeptInputIsAClearError) {
  test::TempDir d;
  // Each reads an input as its target did and returns the path it read.
  const std::map<std::string, std::function<std::string(const std::string&)>> readers = {
      {"song_images", [&](const std::string& p) { const auto s = sealed_copy(p, d); data::load_song_images(s); return s; }},
      {"checkpoint", [](const std::string& p) { load_checkpoint(p); return p; }},
      {"msd", [](const std::string& p) { data::read_msd_file(p); return p; }},
      {"lastfm_json", [](const std::string& p) { data::read_lastfm_json(p); return p; }},
      {"cf_cache", [&](const std::string& p) {
         const auto s = sealed_copy(p, d);
         data::CfDataset ds;
         data::load_cf_cache(s, "fuzz-fingerprint", ds);
         return s;
       }},
  };
  const std::filesystem::path dir = std::filesystem::path(MUSICREC_SOURCE_DIR) / "tests/data/fuzz";
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string target = name.substr(0, name.find('-'));
    ASSERT_TRUE(readers.count(target)) << name << ": no reader for target '" << target << "'";
    try {
      readers.at(target)(e.path().string());
      ADD_FAILURE() << name << " was read without an error";
    } catch (const Error& err) {
      const std::string read = target == "song_images" || target == "cf_cache" ? d.file(name) : e.path().string();
      EXPECT_NE(std::string(err.what()).find(read), std::string::npos) << name << ": " << err.what();
      // Behind a valid seal the error is our check of the content, not the seal's.
      EXPECT_EQ(std::string(err.what()).find("sealed"), std::string::npos) << name << ": " << err.what();
    }
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

// A chunk index claiming a 2 GB chunk in a 58 kB file: libhdf5 allocated (and under the sanitizers
// cleared) 2 GB for every read of it. It must be refused by its size, before any chunk is read.
TEST(FuzzRegressions, AChunkIndexClaimingMoreThanTheFileIsRefusedBeforeReading) {
  const std::string path = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/fuzz/msd-chunk-index-claims-2gb.h5";
  const std::string e = test::error_of([&] { data::read_msd_file(path); });
  EXPECT_NE(e.find(path + ": dataset /analysis/segments_start claims 2145356432 stored bytes in a file of 58136"),
            std::string::npos) << e;
}

// A checkpoint dataset of a few bytes split into 32,769 chunks: a read walks every chunk, stored or
// not, and took longer than the fuzz watchdog allows. Refused by its chunk count before reading.
TEST(FuzzRegressions, AChunkLayoutOfManyChunksForFewBytesIsRefusedBeforeReading) {
  const std::string path = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/fuzz/checkpoint-32769-chunks.h5";
  const std::string e = test::error_of([&] { load_checkpoint(path); });
  EXPECT_NE(e.find(path + ": dataset /optimizer/m/dense/weight is split into 32769 chunks for 28 stored bytes"),
            std::string::npos) << e;
}

// A filter pipeline damaged into "no compression" over a 140-byte compressed chunk: libhdf5 copied a
// whole 8,160-byte chunk out of it (a heap overflow under the sanitizers, junk without). Refused first.
TEST(FuzzRegressions, AnUnfilteredChunkSmallerThanAChunkIsRefusedBeforeReading) {
  const std::string path = std::string(MUSICREC_SOURCE_DIR) + "/tests/data/fuzz/msd-unfiltered-chunk-of-140-bytes.h5";
  const std::string e = test::error_of([&] { data::read_msd_file(path); });
  EXPECT_NE(e.find(path + ": dataset /analysis/segments_timbre stores 140 bytes, less than one uncompressed chunk of 8160"),
            std::string::npos) << e;
}

// A string list whose layout claims 2^64 - 1 stored bytes: the message cast that size, as a double
// (2^64 after rounding), to uint64_t, which is undefined (UBSan in fuzz_song_images; x86 gives 2^63).
TEST(FuzzRegressions, AStoredSizeOf2To64IsNamedAsSuch) {
  test::TempDir d;
  const std::string sealed =
      sealed_copy(std::string(MUSICREC_SOURCE_DIR) + "/tests/data/fuzz/song_images-storage-size-of-2-to-the-64.h5", d);
  const std::string e = test::error_of([&] { data::load_song_images(sealed); });
  EXPECT_NE(e.find("claims 18446744073709551615 or more stored bytes in a file of"), std::string::npos) << e;
}

}  // namespace
}  // namespace musicrec
