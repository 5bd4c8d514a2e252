// Strings in our HDF5 files (engine/hdf5_file.h): written fixed-length since 2026-11-26, so that no
// file of ours sends libhdf5 to its global heap (fuzz/README.md); the variable-length strings of files
// written before still read. And the walk over a file's groups (Hdf5File::datasets).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <string>
#include <vector>

#include "engine/hdf5_file.h"
#include "test_files.h"

namespace musicrec {
namespace {

bool dataset_is_variable_length(const std::string& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const hid_t t = H5Dget_type(d);
  const bool variable = H5Tis_variable_str(t) > 0;
  H5Tclose(t);
  H5Dclose(d);
  H5Fclose(f);
  return variable;
}

TEST(Hdf5Strings, ListsAndAttributesRoundTripFixedLength) {
  test::TempDir dir;
  const std::string path = dir.file("s.h5");
  const std::vector<std::string> ids = {"TRAAAAW128F429D538", "", "a", "Beyoncé – Halo", std::string(40, 'x')};
  std::string json = "{\"note\": \"";
  json += std::string(20000, 'j');  // an attribute of 20 kB, as a long run's metadata may be
  json += "\"}";
  {
    Hdf5File f = Hdf5File::create(path);
    f.write_strings("ids", ids);
    f.write_strings("group/empty", {});
    f.set_attr("format", std::string("musicrec-checkpoint"));
    f.set_attr("blank", std::string());
    f.set_attr("metadata", json);
    f.commit();
  }
  EXPECT_FALSE(dataset_is_variable_length(path, "ids"));
  const Hdf5File f = Hdf5File::open(path);
  EXPECT_EQ(f.read_strings("ids"), ids);
  EXPECT_TRUE(f.read_strings("group/empty").empty());
  EXPECT_EQ(f.attr_str("format"), "musicrec-checkpoint");
  EXPECT_EQ(f.attr_str("blank"), "");
  EXPECT_EQ(f.attr_str("metadata"), json);
}

// A file as musicrec wrote it before: variable-length strings, written here with libhdf5 directly.
TEST(Hdf5Strings, VariableLengthStringsOfOlderFilesStillRead) {
  test::TempDir dir;
  const std::string path = dir.file("old.h5");
  const std::vector<const char*> ids = {"TRAAAAW128F429D538", "", "SOAAAGQ12A8C1420C8"};
  {
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hsize_t n = ids.size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t d = H5Dcreate2(f, "ids", t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data()), 0);
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "format", t, scalar, H5P_DEFAULT, H5P_DEFAULT);
    const char* format = "musicrec-checkpoint";
    ASSERT_GE(H5Awrite(a, t, &format), 0);
    for (hid_t id : {a}) H5Aclose(id);
    H5Dclose(d);
    H5Sclose(scalar);
    H5Sclose(space);
    H5Tclose(t);
    H5Fclose(f);
  }
  ASSERT_TRUE(dataset_is_variable_length(path, "ids"));
  const Hdf5File f = Hdf5File::open(path);
  EXPECT_EQ(f.read_strings("ids"), (std::vector<std::string>{"TRAAAAW128F429D538", "", "SOAAAGQ12A8C1420C8"}));
  EXPECT_EQ(f.attr_str("format"), "musicrec-checkpoint");
}

// Found by fuzz_song_images (session 9): an attribute holding six values, read into one int64, made
// libhdf5 write 48 bytes over our stack (stack-buffer-overflow under the sanitizer). Every attribute
// read into one variable must hold one value; a variable-length string one value too (one pointer).
TEST(Hdf5Attributes, AnAttributeOfSeveralValuesIsRefusedNotReadIntoOne) {
  test::TempDir dir;
  const std::string path = dir.file("six.h5");
  {
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 6;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const int64_t values[6] = {1, 2, 3, 4, 5, 6};
    const hid_t a = H5Acreate2(f, "rows", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Awrite(a, H5T_NATIVE_INT64, values), 0);
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char* names[6] = {"a", "b", "c", "d", "e", "f"};
    const hid_t s = H5Acreate2(f, "format", t, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Awrite(s, t, names), 0);
    for (hid_t id : {a, s}) H5Aclose(id);
    H5Tclose(t);
    H5Sclose(space);
    H5Fclose(f);
  }
  const Hdf5File f = Hdf5File::open(path);
  for (const std::string& msg : {test::error_of([&] { (void)f.attr_i64("rows"); }), test::error_of([&] { (void)f.attr_u64("rows"); }),
                                 test::error_of([&] { (void)f.attr_f64("rows"); })})
    EXPECT_NE(msg.find(path + ": attribute 'rows' holds 6 values, expected one"), std::string::npos) << msg;
  const std::string msg = test::error_of([&] { (void)f.attr_str("format"); });
  EXPECT_NE(msg.find(path + ": attribute 'format' holds 6 values, expected one"), std::string::npos) << msg;
}

// Found by fuzz_checkpoint: a damaged checkpoint whose group /model/dense/bias links back to /model/dense
// with a link count of 1, so libhdf5's H5Lvisit recursed without end. Each group is entered once now.
TEST(Hdf5Groups, AGroupThatLinksBackToItsParentIsListedOnce) {
  const std::string file =
      std::string(MUSICREC_SOURCE_DIR) + "/tests/data/hdf5-damaged/checkpoint-group-links-back-to-its-parent.h5";
  EXPECT_EQ(Hdf5File::open(file).datasets(), (std::vector<std::string>{"model/dense/weight"}));
}

// Only hard links are followed: an external link would open another file, a soft one may dangle.
TEST(Hdf5Groups, ExternalAndSoftLinksAreNotFollowed) {
  test::TempDir dir;
  const std::string other = dir.file("other.h5"), path = dir.file("links.h5");
  {
    Hdf5File f = Hdf5File::create(other);
    f.write_strings("secret", {"x"});
    f.commit();
  }
  {
    Hdf5File f = Hdf5File::create(path);
    f.write_strings("model/ids", {"a"});
    f.commit();
  }
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(H5Lcreate_external(other.c_str(), "/secret", f, "model/elsewhere", H5P_DEFAULT, H5P_DEFAULT), 0);
  ASSERT_GE(H5Lcreate_soft("/model/ids", f, "model/alias", H5P_DEFAULT, H5P_DEFAULT), 0);
  ASSERT_GE(H5Lcreate_hard(f, "/model", f, "again", H5P_DEFAULT, H5P_DEFAULT), 0);  // a cycle libhdf5 counts
  H5Fclose(f);
  EXPECT_EQ(Hdf5File::open(path).datasets(), (std::vector<std::string>{"again/ids"}));
}

// The element size comes from the file's datatype message. fuzz_msd met a "float" of 72 bytes (precision
// 64), read as float32 while libhdf5 copied 72-byte elements out of a buffer sized for 8-byte ones.
TEST(Hdf5Tensors, AFloatOfAnUnusualSizeIsRefusedBeforeReading) {
  test::TempDir dir;
  const std::string path = dir.file("wide.h5");
  {
    const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t t = H5Tcopy(H5T_IEEE_F64LE);
    ASSERT_GE(H5Tset_size(t, 72), 0);
    hsize_t n = 3;
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t d = H5Dcreate2(f, "x", t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    // No data written: libhdf5 has no conversion to such a float; the type alone must be refused.
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(t);
    H5Fclose(f);
  }
  const std::string msg = test::error_of([&] { Hdf5File::open(path).read("x"); });
  EXPECT_NE(msg.find(path + ": dataset /x has an unsupported element type (a float of 72 bytes"), std::string::npos) << msg;
}

}  // namespace
}  // namespace musicrec
