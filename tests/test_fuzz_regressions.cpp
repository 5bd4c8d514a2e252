// Inputs the fuzz targets found (fuzz/README.md), kept as files: each tests/data/fuzz/<target>-<what>.*
// goes to the reader of that target, which must refuse it with a musicrec::Error (not crash, not
// allocate from a forged size). A new finding is added by copying its crash file here under that name.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "data/cf_dataset.h"
#include "data/lastfm.h"
#include "data/msd.h"
#include "data/song_images.h"
#include "engine/checkpoint.h"
#include "kernels/error.h"

namespace musicrec {
namespace {

TEST(FuzzRegressions, EveryKeptInputIsAClearError) {
  const std::map<std::string, std::function<void(const std::string&)>> readers = {
      {"song_images", [](const std::string& p) { data::load_song_images(p); }},
      {"checkpoint", [](const std::string& p) { load_checkpoint(p); }},
      {"msd", [](const std::string& p) { data::read_msd_file(p); }},
      {"lastfm_json", [](const std::string& p) { data::read_lastfm_json(p); }},
      {"cf_cache", [](const std::string& p) { data::CfDataset d; data::load_cf_cache(p, "fuzz-fingerprint", d); }},
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
      EXPECT_NE(std::string(err.what()).find(e.path().string()), std::string::npos) << name << ": " << err.what();
    }
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

}  // namespace
}  // namespace musicrec
