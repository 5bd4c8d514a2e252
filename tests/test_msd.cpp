// The MSD reader on the five real track files (values from their SOURCE.txt and DATA.md; skipped
// where ../shared/real-samples is absent) and on broken files: not HDF5, truncated, missing tables,
// wrong shapes, NaN values, segment ranges outside the arrays, and aggregate files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/core.h>
#include "data/file_scan.h"
#include "data/msd.h"
#include "engine/hdf5_file.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

TEST(MsdReal, TrackFactsMatchTheSources) {
  MR_REQUIRE_REAL_SAMPLES(root);
  struct Fact {
    const char* file;
    const char* artist;
    const char* title;
    double duration;
    int64_t segments;
    int year;
  };
  const Fact facts[] = {
      {"msd-h5-subset-4-tracks/TRAAABD128F429CF47.h5", "The Box Tops", "Soul Deep", 148.04, 550, 1969},
      {"msd-h5-subset-4-tracks/TRAAADZ128F9348C2E.h5", "Sonora Santanera", "Amor De Cabaret", 177.48, 562, 0},
      {"msd-h5-subset-4-tracks/TRAAAEF128F4273421.h5", "Adam Ant", "Something Girls", 233.40, 821, 1982},
      {"msd-h5-subset-4-tracks/TRAAAFD128F92F423A.h5", "Gob", "Face the Ashes", 209.61, 673, 2007},
  };
  for (const Fact& f : facts) {
    MsdTrack t = read_msd_track(root + "/" + f.file);
    EXPECT_EQ(t.artist_name, f.artist);
    EXPECT_EQ(t.title, f.title);
    EXPECT_NEAR(t.duration, f.duration, 0.01);
    EXPECT_EQ(t.segments(), f.segments);
    EXPECT_EQ(t.year, f.year);
    EXPECT_TRUE(t.has_analysis);
    EXPECT_EQ(t.pitches.size(), size_t(12 * f.segments));
    // DATA.md: pitches in [0.002, 1] with maximum 1; 194-269 segments start before 60 s.
    EXPECT_DOUBLE_EQ(*std::max_element(t.pitches.begin(), t.pitches.end()), 1.0);
    EXPECT_GE(*std::min_element(t.pitches.begin(), t.pitches.end()), 0.0);
    EXPECT_GE(t.segments_before(60), 194);
    EXPECT_LE(t.segments_before(60), 269);
    EXPECT_TRUE(std::is_sorted(t.segments_start.begin(), t.segments_start.end()));
  }
  // mirdata's fixture (asserted in mirdata tests/test_msd.py): 1059 segments, tempo 141.968, key 3.
  MsdTrack m = read_msd_track(root + "/msd-h5-mirdata-TRAAAFP128F931B4E3/TRAAAFP128F931B4E3.h5");
  EXPECT_EQ(m.track_id, "TRAAAFP128F931B4E3");
  EXPECT_EQ(m.segments(), 1059);
  EXPECT_DOUBLE_EQ(m.tempo, 141.968);
  EXPECT_EQ(m.key, 3);
}

TEST(MsdReal, TreeScanFindsAllFiveAndTruncatedCopiesFail) {
  MR_REQUIRE_REAL_SAMPLES(root);
  MsdScanReport rep;
  auto tracks = scan_msd_tree(root, rep);
  EXPECT_EQ(rep.files, 5);
  EXPECT_EQ(rep.tracks, 5);
  EXPECT_EQ(rep.bad, 0);
  // Truncated copies: each one an error naming the file, and a scan skips them.
  test::TempDir d;
  std::ifstream in(root + "/msd-h5-subset-4-tracks/TRAAABD128F429CF47.h5", std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::create_directories(d.path / "A" / "A" / "B");
  for (double frac : {0.1, 0.5, 0.95}) {
    std::string p = d.file("A/A/B/cut" + std::to_string(int(frac * 100)) + ".h5");
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(double(bytes.size()) * frac));
    try {
      read_msd_file(p);
      ADD_FAILURE() << "a truncated file (" << frac << ") was read";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  test::write_text(d.file("A/A/B/text.h5"), "not an hdf5 file");
  auto ok = scan_msd_tree(d.path.string(), rep);
  EXPECT_EQ(rep.files, 4);
  EXPECT_EQ(rep.bad, 4);
  EXPECT_TRUE(ok.empty());
}

// A minimal file in the MSD layout: the three compound tables (only the members the reader needs,
// deliberately in non-alphabetical order to prove reading by name) and the segment arrays. Each
// test breaks one thing.
struct Fixture {
  int rows = 1;
  std::vector<int32_t> idx = {0};
  int64_t segments = 3;
  int pitch_cols = 12;
  bool nan_timbre = false;
  bool drop_analysis_table = false;
};

void write_table(hid_t file, const char* name, std::vector<std::pair<const char*, hid_t>> members, const void* data,
                 size_t row_size, hsize_t rows) {
  hid_t t = H5Tcreate(H5T_COMPOUND, row_size);
  size_t off = 0;
  for (auto& [n, ty] : members) {
    H5Tinsert(t, n, off, ty);
    off += H5Tget_size(ty);
  }
  hid_t sp = H5Screate_simple(1, &rows, nullptr);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t ds = H5Dcreate2(file, name, t, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(ds);
  H5Pclose(lcpl);
  H5Sclose(sp);
  H5Tclose(t);
}

void write_fixture(const std::string& path, const Fixture& fx) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t s32 = H5Tcopy(H5T_C_S1);
  H5Tset_size(s32, 32);
  std::vector<char> meta(size_t(fx.rows) * 128, 0);
  for (int r = 0; r < fx.rows; ++r) {
    char* row = meta.data() + r * 128;
    std::snprintf(row, 32, "Title %d", r);         // title first: the file order is not the reader's
    std::snprintf(row + 32, 32, "Artist %d", r);
    std::snprintf(row + 64, 32, "SOID%d", r);
    std::snprintf(row + 96, 32, "Release");
  }
  write_table(f, "/metadata/songs", {{"title", s32}, {"artist_name", s32}, {"song_id", s32}, {"release", s32}},
              meta.data(), 128, hsize_t(fx.rows));
  if (!fx.drop_analysis_table) {
    const size_t rs = 32 + 8 * 3 + 4 * 6;
    std::vector<char> ana(rs * size_t(fx.rows), 0);
    for (int r = 0; r < fx.rows; ++r) {
      char* row = ana.data() + size_t(r) * rs;
      double dur = 100 + r, tempo = 120, loud = -5;
      int32_t ints[6] = {2, 1, 4, fx.idx[size_t(r)], fx.idx[size_t(r)], fx.idx[size_t(r)]};
      std::snprintf(row, 32, "TRFIXTURE%03d", r);
      std::memcpy(row + 32, &dur, 8);
      std::memcpy(row + 40, &tempo, 8);
      std::memcpy(row + 48, &loud, 8);
      std::memcpy(row + 56, ints, sizeof ints);
    }
    write_table(f, "/analysis/songs",
                {{"track_id", s32}, {"duration", H5T_NATIVE_DOUBLE}, {"tempo", H5T_NATIVE_DOUBLE},
                 {"loudness", H5T_NATIVE_DOUBLE}, {"key", H5T_NATIVE_INT32}, {"mode", H5T_NATIVE_INT32},
                 {"time_signature", H5T_NATIVE_INT32}, {"idx_segments_start", H5T_NATIVE_INT32},
                 {"idx_segments_pitches", H5T_NATIVE_INT32}, {"idx_segments_timbre", H5T_NATIVE_INT32}},
                ana.data(), rs, hsize_t(fx.rows));
  }
  std::vector<int32_t> years(size_t(fx.rows), 1999);
  write_table(f, "/musicbrainz/songs", {{"year", H5T_NATIVE_INT32}}, years.data(), 4, hsize_t(fx.rows));
  H5Tclose(s32);
  H5Fclose(f);
}

void add_arrays(const std::string& path, const Fixture& fx) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  auto put = [&](const char* name, std::vector<double> v, std::vector<hsize_t> dims) {
    hid_t sp = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    hid_t ds = H5Dcreate2(f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(ds);
    H5Sclose(sp);
  };
  const hsize_t n = hsize_t(fx.segments);
  std::vector<double> start(n), p(n * hsize_t(fx.pitch_cols), 0.5), t(n * 12, 1.0);
  for (hsize_t i = 0; i < n; ++i) start[i] = 0.5 * double(i);
  if (fx.nan_timbre) t[5] = std::nan("");
  put("/analysis/segments_start", start, {n});
  put("/analysis/segments_pitches", p, {n, hsize_t(fx.pitch_cols)});
  put("/analysis/segments_timbre", t, {n, 12});
  H5Fclose(f);
}

std::string expect_error(const std::string& path) {
  try {
    read_msd_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " was read without error";
  return "";
}

TEST(MsdFixture, ReadsFieldsByNameAndSlicesAggregates) {
  test::TempDir d;
  Fixture fx;
  fx.rows = 3;
  fx.idx = {0, 2, 2};  // song 0: segments 0-1, song 1: none, song 2: 2..4
  fx.segments = 5;
  write_fixture(d.file("agg.h5"), fx);
  add_arrays(d.file("agg.h5"), fx);
  auto tracks = read_msd_file(d.file("agg.h5"));
  ASSERT_EQ(tracks.size(), 3u);
  EXPECT_EQ(tracks[0].title, "Title 0");
  EXPECT_EQ(tracks[0].artist_name, "Artist 0");
  EXPECT_EQ(tracks[2].track_id, "TRFIXTURE002");
  EXPECT_EQ(tracks[1].year, 1999);
  EXPECT_EQ(tracks[0].segments(), 2);
  EXPECT_EQ(tracks[1].segments(), 0);
  EXPECT_EQ(tracks[2].segments(), 3);
  EXPECT_DOUBLE_EQ(tracks[2].segments_start[0], 1.0);
  EXPECT_THROW(read_msd_track(d.file("agg.h5")), Error);  // not a single-track file
  // Without arrays it is a summary file: tables only.
  write_fixture(d.file("summary.h5"), fx);
  auto summary = read_msd_file(d.file("summary.h5"));
  EXPECT_EQ(summary.size(), 3u);
  EXPECT_FALSE(summary[0].has_analysis);
}

// The tables are read in one H5Dread each with a conversion buffer sized to the table, at most 1 MB:
// a summary file whose metadata table is 1.5 MB converts in several passes and must keep every row.
TEST(MsdFixture, TablesLargerThanOneConversionPassKeepEveryRow) {
  test::TempDir d;
  Fixture fx;
  fx.rows = 12000;
  fx.idx.assign(size_t(fx.rows), 0);
  write_fixture(d.file("summary.h5"), fx);
  auto tracks = read_msd_file(d.file("summary.h5"));
  ASSERT_EQ(tracks.size(), size_t(fx.rows));
  for (int r : {0, 1, 8191, 8192, 11999}) {
    const MsdTrack& t = tracks[size_t(r)];
    EXPECT_EQ(t.title, "Title " + std::to_string(r));
    EXPECT_EQ(t.artist_name, "Artist " + std::to_string(r));
    EXPECT_EQ(t.song_id, "SOID" + std::to_string(r));
    EXPECT_EQ(t.release, "Release");
    EXPECT_EQ(t.track_id, fmt::format("TRFIXTURE{:03d}", r));
    EXPECT_DOUBLE_EQ(t.duration, 100.0 + r);
    EXPECT_DOUBLE_EQ(t.tempo, 120.0);
    EXPECT_EQ(t.key, 2);
    EXPECT_EQ(t.time_signature, 4);
    EXPECT_EQ(t.year, 1999);
  }
}

// musicrec keeps its caches in DIR/.musicrec-cache beside the data: a scan (and the image cache's
// fingerprint of the tree) must not take them for MSD files.
TEST(MsdFixture, TreeScansSkipHiddenFolders) {
  test::TempDir d;
  std::filesystem::create_directories(d.path / "A" / ".hidden");
  std::filesystem::create_directories(d.path / ".musicrec-cache");
  Fixture fx;
  write_fixture(d.file("A/TRFIXTURE.h5"), fx);
  add_arrays(d.file("A/TRFIXTURE.h5"), fx);
  test::write_text(d.file(".musicrec-cache/images-40x120-60s.h5"), "not an MSD file");
  test::write_text(d.file("A/.hidden/other.h5"), "not an MSD file");
  EXPECT_EQ(data::tree_files(d.path.string(), ".h5"), std::vector<std::string>{d.file("A/TRFIXTURE.h5")});
  EXPECT_TRUE(data::tree_has_files(d.path.string(), ".h5"));
  // A folder whose only .h5 file is in its cache folder (a KKBox folder, say) has none.
  std::filesystem::create_directories(d.path / "kkbox" / ".musicrec-cache");
  test::write_text(d.file("kkbox/.musicrec-cache/cf.h5"), "a cache");
  EXPECT_FALSE(data::tree_has_files(d.file("kkbox"), ".h5"));
  MsdScanReport rep;
  auto tracks = scan_msd_tree(d.path.string(), rep);
  EXPECT_EQ(rep.files, 1);
  EXPECT_EQ(rep.bad, 0);
  ASSERT_EQ(tracks.size(), 1u);
  EXPECT_EQ(tracks[0].track_id, "TRFIXTURE000");
}

TEST(MsdFixture, BrokenFilesAreErrorsNamingFileAndDataset) {
  test::TempDir d;
  Fixture nan;
  nan.nan_timbre = true;
  write_fixture(d.file("nan.h5"), nan);
  add_arrays(d.file("nan.h5"), nan);
  EXPECT_NE(expect_error(d.file("nan.h5")).find("segments_timbre holds a non-finite value"), std::string::npos);

  Fixture shape;
  shape.pitch_cols = 11;
  write_fixture(d.file("shape.h5"), shape);
  add_arrays(d.file("shape.h5"), shape);
  EXPECT_NE(expect_error(d.file("shape.h5")).find("segments_pitches has shape [3, 11], expected (N, 12)"), std::string::npos);

  Fixture range;
  range.rows = 2;
  range.idx = {0, 7};
  write_fixture(d.file("range.h5"), range);
  add_arrays(d.file("range.h5"), range);
  EXPECT_NE(expect_error(d.file("range.h5")).find("outside the 3 segments"), std::string::npos);

  Fixture missing;
  missing.drop_analysis_table = true;
  write_fixture(d.file("missing.h5"), missing);
  EXPECT_NE(expect_error(d.file("missing.h5")).find("dataset /analysis/songs missing"), std::string::npos);

  test::write_text(d.file("text.h5"), "hello");
  EXPECT_NE(expect_error(d.file("text.h5")).find("not an HDF5 file"), std::string::npos);
  EXPECT_THROW(read_msd_file(d.file("absent.h5")), Error);
}

// A header may claim any extent: a chunked dataset of 10^12 rows with nothing written is a file of a
// few kilobytes. Found by fuzz_msd (a forged extent made the table reader allocate 1 TB); each reader
// now compares the claim with the bytes stored before allocating (check_claimed_size).
void write_forged_extent(const std::string& path, bool compound) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t rows = compound ? hsize_t(1) << 40 : hsize_t(1) << 30, chunk = 16;
  hid_t sp = H5Screate_simple(1, &rows, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 1, &chunk);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t s32 = H5Tcopy(H5T_C_S1);
  H5Tset_size(s32, 32);
  hid_t t = H5Tcreate(H5T_COMPOUND, 128);
  H5Tinsert(t, "song_id", 0, s32);
  H5Tinsert(t, "artist_name", 32, s32);
  H5Tinsert(t, "title", 64, s32);
  H5Tinsert(t, "release", 96, s32);
  hid_t ds = H5Dcreate2(f, compound ? "/metadata/songs" : "/values", compound ? t : H5T_NATIVE_DOUBLE, sp, lcpl, dcpl,
                        H5P_DEFAULT);
  if (!compound) {  // one chunk written, the rest of the extent only claimed
    std::vector<double> v(16, 1.0);
    hsize_t start = 0, count = 16;
    hid_t ms = H5Screate_simple(1, &count, nullptr);
    H5Sselect_hyperslab(sp, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, sp, H5P_DEFAULT, v.data());
    H5Sclose(ms);
  }
  for (hid_t id : {ds}) H5Dclose(id);
  H5Tclose(t);
  H5Tclose(s32);
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
}

TEST(MsdFixture, ForgedExtentsAreRefusedBeforeAllocating) {
  test::TempDir d;
  write_forged_extent(d.file("table.h5"), true);
  EXPECT_LT(std::filesystem::file_size(d.file("table.h5")), 100000u);
  const std::string table = expect_error(d.file("table.h5"));
  EXPECT_NE(table.find("/metadata/songs has no stored data"), std::string::npos) << table;
  write_forged_extent(d.file("array.h5"), false);
  try {
    Hdf5File::open(d.file("array.h5")).read("values");
    ADD_FAILURE() << "a 2^30-element claim backed by one chunk was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("claims 1073741824 elements, more than its 128 stored bytes"), std::string::npos)
        << e.what();
  }
}

TEST(Msd, PathLayout) {
  EXPECT_EQ(msd_track_path("data", "TRAAAFP128F931B4E3"), "data/A/A/A/TRAAAFP128F931B4E3.h5");
  EXPECT_EQ(msd_track_path("d", "TRABCDE"), "d/A/B/C/TRABCDE.h5");
  EXPECT_THROW(msd_track_path("d", "TR"), Error);
}

}  // namespace
}  // namespace musicrec::data
