// engine/file_seal.h: musicrec's caches carry a CRC-32 of their bytes, checked before libhdf5 parses
// them; any damaged, cut or appended byte is an error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "engine/file_seal.h"
#include "engine/hdf5_file.h"
#include "engine/tensor.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void spill(const std::string& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

using test::error_of;

std::string write_small_sealed(const test::TempDir& d) {
  const std::string path = d.file("cache.h5");
  Hdf5File f = Hdf5File::create_sealed(path);
  f.set_attr("format", std::string("test"));
  f.write("values", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}));
  f.commit();
  return path;
}

TEST(FileSeal, ASealedHdf5FileReadsBackAndSaysWhatItCovers) {
  test::TempDir d;
  const std::string path = write_small_sealed(d);
  EXPECT_TRUE(has_seal(path));
  check_seal(path);
  Hdf5File f = Hdf5File::open_sealed(path);
  EXPECT_EQ(f.attr_str("format"), "test");
  EXPECT_EQ(f.read("values").to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // The header is text: what it covers, and the CRC of exactly those bytes.
  const std::string bytes = slurp(path);
  ASSERT_GT(bytes.size(), kSealBytes);
  const std::string header = bytes.substr(0, kSealBytes);
  EXPECT_EQ(header.rfind("musicrec sealed file\nbytes " + std::to_string(bytes.size() - kSealBytes) + "\ncrc32 ", 0), 0u) << header;
  char want[16];
  std::snprintf(want, sizeof want, "%08x", crc32_of(bytes.data() + kSealBytes, bytes.size() - kSealBytes));
  EXPECT_NE(header.find(std::string("crc32 ") + want + "\n"), std::string::npos) << header;
  // No temporary is left beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(FileSeal, EveryDamagedCutOrAppendedByteIsRefusedNamingTheFile) {
  test::TempDir d;
  const std::string path = write_small_sealed(d);
  const std::string good = slurp(path);
  // A flipped bit anywhere after the header: in the superblock, in the middle, in the last byte.
  for (size_t at : {kSealBytes, kSealBytes + 8, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = char(bad[at] ^ 0x10);
    spill(path, bad);
    const std::string e = error_of([&] { Hdf5File::open_sealed(path); });
    EXPECT_NE(e.find(path + ": damaged: its bytes' CRC-32 is "), std::string::npos) << "byte " << at << ": " << e;
  }
  spill(path, good.substr(0, good.size() - 100));
  EXPECT_NE(error_of([&] { check_seal(path); }).find("cut short or appended to"), std::string::npos);
  spill(path, good + "x");
  EXPECT_NE(error_of([&] { check_seal(path); }).find("cut short or appended to"), std::string::npos);
  std::string header_damaged = good;
  header_damaged[30] = 'Z';  // inside "bytes N"
  spill(path, header_damaged);
  EXPECT_NE(error_of([&] { check_seal(path); }).find(path + ": "), std::string::npos);
  spill(path, good.substr(0, 100));
  EXPECT_NE(error_of([&] { check_seal(path); }).find("not sealed by musicrec"), std::string::npos);
  spill(path, good);
  check_seal(path);
}

TEST(FileSeal, AnUnsealedHdf5FileIsNotTakenForACache) {
  test::TempDir d;
  const std::string path = d.file("plain.h5");
  Hdf5File f = Hdf5File::create(path);
  f.set_attr("format", std::string("test"));
  f.commit();
  EXPECT_FALSE(has_seal(path));
  const std::string e = error_of([&] { Hdf5File::open_sealed(path); });
  EXPECT_NE(e.find(path + ": not sealed by musicrec"), std::string::npos) << e;
  Hdf5File::open(path);  // it is a good HDF5 file all the same
}

TEST(FileSeal, ContentSealedAfterTheFactReadsAsHdf5) {
  // The fuzz targets seal arbitrary content: an HDF5 file's bytes behind a prepended header (a user
  // block, as h5jam makes) are found by libhdf5.
  test::TempDir d;
  Hdf5File f = Hdf5File::create(d.file("plain.h5"));
  f.write("values", Tensor::from_vector(std::vector<float>{7, 8}, {2}));
  f.commit();
  const std::string content = slurp(d.file("plain.h5"));
  write_sealed(d.file("sealed.h5"), content.data(), content.size());
  EXPECT_EQ(slurp(d.file("sealed.h5")).size(), kSealBytes + content.size());
  EXPECT_EQ(Hdf5File::open_sealed(d.file("sealed.h5")).read("values").to_vector<float>(), (std::vector<float>{7, 8}));
  write_sealed(d.file("empty.h5"), nullptr, 0);
  check_seal(d.file("empty.h5"));
  EXPECT_FALSE(error_of([&] { Hdf5File::open_sealed(d.file("empty.h5")); }).empty());
}

}  // namespace
}  // namespace musicrec
