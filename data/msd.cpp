// MSD HDF5 reader (see msd.h).
#include "data/msd.h"

#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "data/file_scan.h"
#include "engine/hdf5_file.h"
#include "engine/isolated.h"
#include "kernels/error.h"

namespace musicrec::data {
namespace {


// One field of a compound table, read for every row by name. HDF5 matches memory and file members by
// name, so declaration order in the file does not matter.
enum class Kind { F64, I32, Str };
struct Field {
  const char* name;
  Kind kind;
};

struct TableRows {
  int64_t rows = 0;
  std::vector<std::vector<double>> f64;
  std::vector<std::vector<int32_t>> i32;
  std::vector<std::vector<std::string>> str;
};

// Reads the named fields of every row in one H5Dread: a memory compound type holds just those fields,
// and HDF5 converts the file's rows into it. The transfer's conversion buffers are sized to the read:
// by default libhdf5 allocates 1 MB for converted rows and zeroes another 1 MB for the background of
// every read of a compound, which for a one-row track file was nearly all of a read's cost (15 such
// reads per file made an in-process scan of 2,000 files spend 10 s in the kernel's page faults).
TableRows read_table(hid_t file, const std::string& path, const std::string& ds_name, const std::vector<Field>& fields) {
  H5Handle ds(H5Dopen2(file, ds_name.c_str(), H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok(), path + ": dataset /" + ds_name + " missing (not an MSD file?)");
  H5Handle ftype(H5Dget_type(ds.get()), H5Tclose);
  MR_CHECK(H5Tget_class(ftype.get()) == H5T_COMPOUND, path + ": /" + ds_name + " is not a compound table");
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  MR_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, path + ": /" + ds_name + " is not a 1-D table");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  const size_t file_row = H5Tget_size(ftype.get());
  check_claimed_size(ds.get(), n, file_row, path + ": /" + ds_name);

  // The memory row: each field at its offset, strings at the file's width (NUL-padded, not terminated).
  std::vector<size_t> offset(fields.size()), width(fields.size());
  size_t row = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    const Field& f = fields[i];
    const std::string what = path + ": /" + ds_name + "." + f.name;
    const int idx = H5Tget_member_index(ftype.get(), f.name);
    MR_CHECK(idx >= 0, path + ": /" + ds_name + " has no field '" + f.name + "'");
    H5Handle member_type(H5Tget_member_type(ftype.get(), unsigned(idx)), H5Tclose);
    // libhdf5 trusts the file's member layout: a member reaching past its row makes its conversion read
    // past the row (past the conversion buffer for the last row), so such a table is refused here.
    const size_t member_end = H5Tget_member_offset(ftype.get(), unsigned(idx)) + H5Tget_size(member_type.get());
    MR_CHECK(member_type.ok() && member_end <= file_row,
             what + " reaches byte " + std::to_string(member_end) + " of rows of " + std::to_string(file_row) + " bytes");
    if (f.kind == Kind::Str) {
      MR_CHECK(H5Tget_class(member_type.get()) == H5T_STRING, what + " is not a string");
      width[i] = H5Tget_size(member_type.get());
      MR_CHECK(width[i] > 0 && width[i] <= file_row, what + " has a string width of " + std::to_string(width[i]) +
                                                         " bytes in rows of " + std::to_string(file_row));
    } else {
      const H5T_class_t cls = H5Tget_class(member_type.get());
      MR_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER, what + " is not numeric");
      width[i] = f.kind == Kind::F64 ? 8 : 4;
    }
    offset[i] = row;
    row += width[i];
  }
  H5Handle mtype(H5Tcreate(H5T_COMPOUND, row), H5Tclose);
  MR_CHECK(mtype.ok(), path + ": /" + ds_name + ": cannot make a memory type of " + std::to_string(row) + " bytes");
  for (size_t i = 0; i < fields.size(); ++i) {
    hid_t field_type = fields[i].kind == Kind::F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT32;
    H5Handle str_type(H5Tcopy(H5T_C_S1), H5Tclose);  // H5Tinsert copies it
    if (fields[i].kind == Kind::Str) {
      H5Tset_size(str_type.get(), width[i]);
      H5Tset_strpad(str_type.get(), H5T_STR_NULLPAD);
      field_type = str_type.get();
    }
    MR_CHECK(H5Tinsert(mtype.get(), fields[i].name, offset[i], field_type) >= 0,
             path + ": /" + ds_name + "." + fields[i].name + " cannot be converted");
  }

  // Conversion happens in passes of as many rows as the buffer holds: at least one row of the wider
  // type, at most libhdf5's default 1 MB (what a 10,000-row aggregate file uses).
  const size_t wider = std::max(file_row, row);
  constexpr size_t kDefaultBuffer = size_t(1) << 20;
  const size_t buffer = std::max(wider, std::min(kDefaultBuffer, wider * size_t(n)));
  H5Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  MR_CHECK(dxpl.ok() && H5Pset_buffer(dxpl.get(), buffer, nullptr, nullptr) >= 0,
           path + ": /" + ds_name + ": cannot set a conversion buffer of " + std::to_string(buffer) + " bytes");
  std::vector<char> buf(row * n + 1, 0);
  MR_CHECK(n == 0 || H5Dread(ds.get(), mtype.get(), H5S_ALL, H5S_ALL, dxpl.get(), buf.data()) >= 0,
           path + ": /" + ds_name + " cannot be read (truncated or corrupted?)");

  TableRows t;
  t.rows = int64_t(n);
  for (size_t i = 0; i < fields.size(); ++i) {
    const char* column = buf.data() + offset[i];
    if (fields[i].kind == Kind::F64) {
      std::vector<double> v(n);
      for (hsize_t r = 0; r < n; ++r) std::memcpy(&v[r], column + r * row, 8);
      t.f64.push_back(std::move(v));
    } else if (fields[i].kind == Kind::I32) {
      std::vector<int32_t> v(n);
      for (hsize_t r = 0; r < n; ++r) std::memcpy(&v[r], column + r * row, 4);
      t.i32.push_back(std::move(v));
    } else {
      std::vector<std::string> v;
      v.reserve(n);
      for (hsize_t r = 0; r < n; ++r) {
        const char* s = column + r * row;
        v.emplace_back(s, strnlen(s, width[i]));
      }
      t.str.push_back(std::move(v));
    }
  }
  return t;
}

std::vector<double> read_array(const Hdf5File& f, const std::string& name, int64_t cols) {
  MR_CHECK(f.has(name), f.path() + ": dataset /" + name + " missing");
  Tensor t = f.read(name);
  MR_CHECK(t.dtype() == DType::F64, f.path() + ": /" + name + " is not float64");
  if (cols == 1) MR_CHECK(t.dim() == 1, f.path() + ": /" + name + " has shape " + shape_str(t.shape()) + ", expected (N,)");
  else
    MR_CHECK(t.dim() == 2 && t.size(1) == cols, f.path() + ": /" + name + " has shape " + shape_str(t.shape()) +
                                                    ", expected (N, " + std::to_string(cols) + ")");
  std::vector<double> v = t.to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i)
    MR_CHECK(std::isfinite(v[i]), f.path() + ": /" + name + " holds a non-finite value at element " + std::to_string(i));
  return v;
}

}  // namespace

int64_t MsdTrack::segments_before(double seconds) const {
  return int64_t(std::lower_bound(segments_start.begin(), segments_start.end(), seconds) - segments_start.begin());
}

std::vector<MsdTrack> read_msd_file(const std::string& path) {
  Hdf5File f = Hdf5File::open(path);
  const hid_t id = f.id();
  TableRows meta = read_table(id, path, "metadata/songs",
                              {{"song_id", Kind::Str}, {"artist_name", Kind::Str}, {"title", Kind::Str}, {"release", Kind::Str}});
  TableRows ana = read_table(id, path, "analysis/songs",
                             {{"track_id", Kind::Str}, {"duration", Kind::F64}, {"tempo", Kind::F64}, {"loudness", Kind::F64},
                              {"key", Kind::I32}, {"mode", Kind::I32}, {"time_signature", Kind::I32},
                              {"idx_segments_start", Kind::I32}, {"idx_segments_pitches", Kind::I32},
                              {"idx_segments_timbre", Kind::I32}});
  TableRows mb = read_table(id, path, "musicbrainz/songs", {{"year", Kind::I32}});
  MR_CHECK(meta.rows == ana.rows && ana.rows == mb.rows,
           path + ": the metadata, analysis and musicbrainz tables have " + std::to_string(meta.rows) + ", " +
               std::to_string(ana.rows) + " and " + std::to_string(mb.rows) + " rows");
  const int64_t n = ana.rows;
  std::vector<MsdTrack> tracks(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    MsdTrack& t = tracks[size_t(i)];
    t.song_id = meta.str[0][size_t(i)];
    t.artist_name = meta.str[1][size_t(i)];
    t.title = meta.str[2][size_t(i)];
    t.release = meta.str[3][size_t(i)];
    t.track_id = ana.str[0][size_t(i)];
    t.duration = ana.f64[0][size_t(i)];
    t.tempo = ana.f64[1][size_t(i)];
    t.loudness = ana.f64[2][size_t(i)];
    t.key = ana.i32[0][size_t(i)];
    t.mode = ana.i32[1][size_t(i)];
    t.time_signature = ana.i32[2][size_t(i)];
    t.year = mb.i32[0][size_t(i)];
    MR_CHECK(std::isfinite(t.duration) && t.duration >= 0, path + ": track " + t.track_id + " has duration " +
                                                               std::to_string(t.duration));
  }
  // Summary files carry the tables only: no arrays.
  if (!f.has("analysis/segments_start")) return tracks;
  std::vector<double> start = read_array(f, "analysis/segments_start", 1);
  std::vector<double> pitches = read_array(f, "analysis/segments_pitches", 12);
  std::vector<double> timbre = read_array(f, "analysis/segments_timbre", 12);
  const int64_t N = int64_t(start.size());
  MR_CHECK(int64_t(pitches.size()) == 12 * N && int64_t(timbre.size()) == 12 * N,
           path + ": " + std::to_string(N) + " segment starts but " + std::to_string(pitches.size() / 12) +
               " pitch rows and " + std::to_string(timbre.size() / 12) + " timbre rows");
  for (int64_t i = 0; i < n; ++i) {
    MsdTrack& t = tracks[size_t(i)];
    // Row i owns [idx[i], idx[i+1]) and the last row [idx[i], N) (hdf5_getters.py).
    const int64_t a = ana.i32[3][size_t(i)], b = i + 1 < n ? ana.i32[3][size_t(i + 1)] : N;
    MR_CHECK(a >= 0 && a <= b && b <= N, path + ": track " + t.track_id + " has segment range [" + std::to_string(a) +
                                             ", " + std::to_string(b) + ") outside the " + std::to_string(N) +
                                             " segments");
    MR_CHECK(ana.i32[4][size_t(i)] == a && ana.i32[5][size_t(i)] == a,
             path + ": track " + t.track_id + " has inconsistent idx_segments_* values");
    t.segments_start.assign(start.begin() + a, start.begin() + b);
    t.pitches.assign(pitches.begin() + 12 * a, pitches.begin() + 12 * b);
    t.timbre.assign(timbre.begin() + 12 * a, timbre.begin() + 12 * b);
    t.has_analysis = true;
  }
  return tracks;
}

MsdTrack read_msd_track(const std::string& path) {
  std::vector<MsdTrack> t = read_msd_file(path);
  MR_CHECK(t.size() == 1, path + ": a track file holds one song, this one holds " + std::to_string(t.size()));
  return std::move(t[0]);
}

std::string msd_track_path(const std::string& root, const std::string& id) {
  MR_CHECK(id.size() >= 5, "'" + id + "' is not an MSD track id");
  return root + "/" + id.substr(2, 1) + "/" + id.substr(3, 1) + "/" + id.substr(4, 1) + "/" + id + ".h5";
}

namespace {
void pack_track(ByteWriter& w, const MsdTrack& t) {
  for (const std::string* s : {&t.track_id, &t.song_id, &t.artist_name, &t.title, &t.release}) w.str(*s);
  for (double v : {t.duration, t.tempo, t.loudness}) w.f64(v);
  for (int32_t v : {t.key, t.mode, t.time_signature, t.year}) w.u64(uint64_t(int64_t(v)));
  w.u64(t.has_analysis ? 1 : 0);
  w.f64s(t.segments_start);
  w.f64s(t.pitches);
  w.f64s(t.timbre);
}
MsdTrack unpack_track(ByteReader& r) {
  MsdTrack t;
  for (std::string* s : {&t.track_id, &t.song_id, &t.artist_name, &t.title, &t.release}) *s = r.str();
  for (double* v : {&t.duration, &t.tempo, &t.loudness}) *v = r.f64();
  for (int32_t* v : {&t.key, &t.mode, &t.time_signature, &t.year}) *v = int32_t(int64_t(r.u64()));
  t.has_analysis = r.u64() != 0;
  t.segments_start = r.f64s();
  t.pitches = r.f64s();
  t.timbre = r.f64s();
  return t;
}
}  // namespace

IsolatedWorker& msd_reader_of_this_thread() {
  // One reader process per thread, serving every file that thread reads until one is refused; the
  // next one then comes from a fork server made at the thread's first file, since by then a scan may
  // hold gigabytes of tracks and forking them for each refused file would cost ~45 ms per GB.
  thread_local IsolatedWorker worker([](const std::string& p) {
    ByteWriter w;
    const std::vector<MsdTrack> tracks = read_msd_file(p);
    w.u64(tracks.size());
    for (const MsdTrack& t : tracks) pack_track(w, t);
    return w.take();
  }, ChildSource::kForkServer);
  return worker;
}

std::vector<MsdTrack> read_msd_file_isolated(const std::string& path) {
  if (!isolate_untrusted_readers()) return read_msd_file(path);
  const std::string bytes = msd_reader_of_this_thread().call(path, path, IsolationOptions{isolation_timeout_for(path)});
  ByteReader r(bytes, path);
  std::vector<MsdTrack> tracks(r.count(5 * 8));  // a track takes at least its five string lengths
  for (MsdTrack& t : tracks) t = unpack_track(r);
  MR_CHECK(r.done(), path + ": the reader process sent more than the tracks it announced");
  return tracks;
}

std::vector<MsdTrack> scan_msd_tree(const std::string& root, MsdScanReport& report, int threads) {
  auto read = [](const std::string& path) {
    try {
      return read_msd_file_isolated(path);
    } catch (...) {
      clear_hdf5_errors();  // see hdf5_file.h: the worker thread's error stack would leak
      throw;
    }
  };
  ScanResult<std::vector<MsdTrack>> r = scan_tree<std::vector<MsdTrack>>(root, ".h5", read, threads);
  report = MsdScanReport{};
  report.files = r.files;
  report.bad = r.bad;
  report.first_errors = r.first_errors;
  std::vector<MsdTrack> out;
  for (auto& file_tracks : r.items)
    for (auto& t : file_tracks) out.push_back(std::move(t));
  report.tracks = int64_t(out.size());
  return out;
}

}  // namespace musicrec::data
