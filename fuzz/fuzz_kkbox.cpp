// Fuzz target: the KKBox reader (data/kkbox.h) and the CF encoding of what it returns. A folder holds
// five small valid files; each input replaces one of them (byte 0 picks which, and strict mode), so
// the joins between files (members and songs of unknown ids, odd dates, ages, lengths) are reached.
#include <cstring>
#include <filesystem>

#include "data/cf_dataset.h"
#include "data/kkbox.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/kkbox_files.h"
#include "kernels/error.h"

namespace {

using musicrec::fuzz::kKkboxFiles;
using musicrec::fuzz::KkboxFile;

std::string folder() {
  static const std::string dir = [] {
    std::string d = musicrec::fuzz::scratch_dir() + "/kkbox";
    std::filesystem::create_directories(d);
    for (const KkboxFile& f : kKkboxFiles) musicrec::fuzz::write_input("kkbox/" + std::string(f.name), reinterpret_cast<const uint8_t*>(f.valid), std::strlen(f.valid));
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string dir = folder();
  const KkboxFile& f = kKkboxFiles[data[0] % kKkboxFiles.size()];
  musicrec::fuzz::write_input("kkbox/" + std::string(f.name), data + 1, size - 1);
  musicrec::data::KkboxReadOptions o;
  o.strict = data[0] & 8;
  o.read_extra = true;
  MR_FUZZ_EXPECT_CLEAN_ERRORS({
    musicrec::data::KkboxData d = musicrec::data::read_kkbox(dir, o);
    (void)musicrec::data::encode_cf(d, musicrec::data::SplitKind::Random, 1);
  });
  musicrec::fuzz::write_input("kkbox/" + std::string(f.name), reinterpret_cast<const uint8_t*>(f.valid), std::strlen(f.valid));
  return 0;
}
