// MSD track-file writer (see msd_writer.h).
#include "data/msd_writer.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/hdf5_file.h"
#include "kernels/error.h"

namespace musicrec::data {
namespace {

// A compound member: name and type. Strings are fixed-length, NUL-padded (PyTables StringCol).
struct Member {
  const char* name;
  char kind;  // 's' string, 'i' int32, 'd' float64
  size_t size;
};

// Builds the file type (packed, alphabetical as PyTables stores it) and fills one row.
class Row {
 public:
  explicit Row(std::vector<Member> members) : members_(std::move(members)) {
    std::sort(members_.begin(), members_.end(), [](const Member& a, const Member& b) { return std::strcmp(a.name, b.name) < 0; });
    size_t off = 0;
    for (auto& m : members_) {
      offsets_.push_back(off);
      off += m.kind == 's' ? m.size : (m.kind == 'i' ? 4 : 8);
    }
    bytes_.assign(off, 0);
  }
  size_t size() const { return bytes_.size(); }
  void set(const char* name, double v) { put(name, &v, 8, 'd'); }
  void set(const char* name, int32_t v) { put(name, &v, 4, 'i'); }
  void set(const char* name, const std::string& v) {
    size_t i = index(name);
    MR_CHECK(members_[i].kind == 's', std::string("msd writer: ") + name + " is not a string");
    std::memset(&bytes_[offsets_[i]], 0, members_[i].size);
    std::memcpy(&bytes_[offsets_[i]], v.data(), std::min(v.size(), members_[i].size));
  }
  hid_t make_type() const {
    hid_t t = H5Tcreate(H5T_COMPOUND, bytes_.size());
    for (size_t i = 0; i < members_.size(); ++i) {
      hid_t mt;
      if (members_[i].kind == 's') {
        mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, members_[i].size);
        H5Tset_strpad(mt, H5T_STR_NULLPAD);
      } else {
        mt = H5Tcopy(members_[i].kind == 'i' ? H5T_STD_I32LE : H5T_IEEE_F64LE);
      }
      H5Tinsert(t, members_[i].name, offsets_[i], mt);
      H5Tclose(mt);
    }
    return t;
  }
  const void* data() const { return bytes_.data(); }

 private:
  size_t index(const char* name) const {
    for (size_t i = 0; i < members_.size(); ++i)
      if (std::strcmp(members_[i].name, name) == 0) return i;
    MR_CHECK(false, std::string("msd writer: no member ") + name);
    return 0;
  }
  void put(const char* name, const void* v, size_t n, char kind) {
    size_t i = index(name);
    MR_CHECK(members_[i].kind == kind, std::string("msd writer: wrong type for ") + name);
    std::memcpy(&bytes_[offsets_[i]], v, n);
  }
  std::vector<Member> members_;
  std::vector<size_t> offsets_;
  std::vector<char> bytes_;
};

// Chunked, gzip 1 + shuffle, unlimited along axis 0: as tables.Filters(complevel=1, complib='zlib').
hid_t filtered_dcpl(int rank, const hsize_t* chunk) {
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, rank, chunk);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 1);
  return dcpl;
}

void write_table(hid_t file, const std::string& name, const Row& row) {
  H5Handle type(row.make_type(), H5Tclose);
  hsize_t dims[1] = {1}, maxd[1] = {H5S_UNLIMITED};
  H5Handle space(H5Screate_simple(1, dims, maxd), H5Sclose);
  hsize_t chunk[1] = {std::max<hsize_t>(1, 16384 / row.size())};
  H5Handle dcpl(filtered_dcpl(1, chunk), H5Pclose);
  H5Handle ds(H5Dcreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok() && H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, row.data()) >= 0,
           "msd writer: cannot write /" + name);
}

void write_array(hid_t file, const std::string& name, hid_t file_type, hid_t mem_type, const void* data, hsize_t n,
                 hsize_t cols, size_t elem) {
  const int rank = cols ? 2 : 1;
  hsize_t dims[2] = {n, cols}, maxd[2] = {H5S_UNLIMITED, cols};
  hsize_t chunk[2] = {std::max<hsize_t>(1, (cols ? 8192 / (cols * elem) : 8192 / elem)), cols};
  H5Handle space(H5Screate_simple(rank, dims, maxd), H5Sclose);
  H5Handle dcpl(filtered_dcpl(rank, chunk), H5Pclose);
  H5Handle ds(H5Dcreate2(file, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok(), "msd writer: cannot create /" + name);
  if (n > 0) MR_CHECK(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "msd writer: cannot write /" + name);
}

void write_f64(hid_t f, const std::string& name, const std::vector<double>& v, hsize_t cols = 0) {
  write_array(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), cols ? v.size() / cols : v.size(), cols, 8);
}

void write_strings(hid_t f, const std::string& name, const std::vector<std::string>& v, size_t width) {
  std::vector<char> buf(v.size() * width + 1, 0);
  for (size_t i = 0; i < v.size(); ++i) std::memcpy(&buf[i * width], v[i].data(), std::min(width, v[i].size()));
  H5Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), width);
  H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
  write_array(f, name, t.get(), t.get(), buf.data(), v.size(), 0, width);
}

void set_root_string_attr(hid_t f, const char* name, const std::string& v) {
  H5Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), std::max<size_t>(1, v.size()));
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle a(H5Acreate2(f, name, t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(a.get(), t.get(), v.c_str());
}

}  // namespace

void write_msd_track_file(const std::string& path, const MsdTrack& t, const MsdWriteExtras& x) {
  MR_CHECK(t.pitches.size() == 12 * t.segments_start.size() && t.timbre.size() == t.pitches.size(),
           "msd writer: track " + t.track_id + " has inconsistent segment arrays");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    H5Handle f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    MR_CHECK(f.ok(), path + ": cannot create");
    set_root_string_attr(f.get(), "PYTABLES_FORMAT_VERSION", "2.0");
    set_root_string_attr(f.get(), "TITLE", "H5 Song File");
    for (const char* g : {"/metadata", "/analysis", "/musicbrainz"}) H5Gclose(H5Gcreate2(f.get(), g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    const double nan = std::nan("");
    Row meta({{"analyzer_version", 's', 32}, {"artist_7digitalid", 'i', 0}, {"artist_familiarity", 'd', 0},
              {"artist_hotttnesss", 'd', 0}, {"artist_id", 's', 32}, {"artist_latitude", 'd', 0},
              {"artist_location", 's', 1024}, {"artist_longitude", 'd', 0}, {"artist_mbid", 's', 40},
              {"artist_name", 's', 1024}, {"artist_playmeid", 'i', 0}, {"genre", 's', 1024},
              {"idx_artist_terms", 'i', 0}, {"idx_similar_artists", 'i', 0}, {"release", 's', 1024},
              {"release_7digitalid", 'i', 0}, {"song_hotttnesss", 'd', 0}, {"song_id", 's', 32}, {"title", 's', 1024},
              {"track_7digitalid", 'i', 0}});
    MR_CHECK(meta.size() == 5320, "msd writer: metadata row is not 5320 bytes");
    meta.set("artist_familiarity", x.artist_familiarity);
    meta.set("artist_hotttnesss", x.artist_hotttnesss);
    meta.set("artist_id", x.artist_id);
    meta.set("artist_latitude", nan);
    meta.set("artist_longitude", nan);
    meta.set("artist_mbid", x.artist_mbid);
    meta.set("artist_name", t.artist_name);
    meta.set("release", t.release);
    meta.set("song_hotttnesss", x.song_hotttnesss);
    meta.set("song_id", t.song_id);
    meta.set("title", t.title);
    write_table(f.get(), "/metadata/songs", meta);

    Row ana({{"analysis_sample_rate", 'i', 0}, {"audio_md5", 's', 32}, {"danceability", 'd', 0}, {"duration", 'd', 0},
             {"end_of_fade_in", 'd', 0}, {"energy", 'd', 0}, {"idx_bars_confidence", 'i', 0}, {"idx_bars_start", 'i', 0},
             {"idx_beats_confidence", 'i', 0}, {"idx_beats_start", 'i', 0}, {"idx_sections_confidence", 'i', 0},
             {"idx_sections_start", 'i', 0}, {"idx_segments_confidence", 'i', 0}, {"idx_segments_loudness_max", 'i', 0},
             {"idx_segments_loudness_max_time", 'i', 0}, {"idx_segments_loudness_start", 'i', 0},
             {"idx_segments_pitches", 'i', 0}, {"idx_segments_start", 'i', 0}, {"idx_segments_timbre", 'i', 0},
             {"idx_tatums_confidence", 'i', 0}, {"idx_tatums_start", 'i', 0}, {"key", 'i', 0}, {"key_confidence", 'd', 0},
             {"loudness", 'd', 0}, {"mode", 'i', 0}, {"mode_confidence", 'd', 0}, {"start_of_fade_out", 'd', 0},
             {"tempo", 'd', 0}, {"time_signature", 'i', 0}, {"time_signature_confidence", 'd', 0}, {"track_id", 's', 32}});
    MR_CHECK(ana.size() == 220, "msd writer: analysis row is not 220 bytes");
    ana.set("analysis_sample_rate", int32_t(22050));
    ana.set("audio_md5", x.audio_md5);
    ana.set("duration", t.duration);
    ana.set("key", t.key);
    ana.set("key_confidence", 0.5);
    ana.set("loudness", t.loudness);
    ana.set("mode", t.mode);
    ana.set("mode_confidence", 0.5);
    ana.set("start_of_fade_out", t.duration);
    ana.set("tempo", t.tempo);
    ana.set("time_signature", t.time_signature);
    ana.set("time_signature_confidence", 0.5);
    ana.set("track_id", t.track_id);
    write_table(f.get(), "/analysis/songs", ana);

    Row mb({{"idx_artist_mbtags", 'i', 0}, {"year", 'i', 0}});
    mb.set("year", t.year);
    write_table(f.get(), "/musicbrainz/songs", mb);

    // Arrays (create_all_arrays). Segment-level ones carry the analysis; beats, bars, tatums and
    // sections follow the tempo; loudness and confidence arrays are plausible constants.
    const size_t n = t.segments_start.size();
    write_f64(f.get(), "/analysis/segments_start", t.segments_start);
    write_f64(f.get(), "/analysis/segments_confidence", std::vector<double>(n, 0.5));
    write_f64(f.get(), "/analysis/segments_loudness_max", std::vector<double>(n, t.loudness + 5));
    write_f64(f.get(), "/analysis/segments_loudness_max_time", std::vector<double>(n, 0.05));
    write_f64(f.get(), "/analysis/segments_loudness_start", std::vector<double>(n, t.loudness - 10));
    write_f64(f.get(), "/analysis/segments_pitches", t.pitches, 12);
    write_f64(f.get(), "/analysis/segments_timbre", t.timbre, 12);
    std::vector<double> beats, bars, tatums, sections;
    const double beat = t.tempo > 0 ? 60.0 / t.tempo : 0.5;
    for (double s = 0; s < t.duration; s += beat) beats.push_back(s);
    for (size_t i = 0; i < beats.size(); i += 4) bars.push_back(beats[i]);
    for (double s = 0; s < t.duration; s += beat / 2) tatums.push_back(s);
    for (double s = 0; s < t.duration; s += 30.0) sections.push_back(s);
    write_f64(f.get(), "/analysis/beats_start", beats);
    write_f64(f.get(), "/analysis/beats_confidence", std::vector<double>(beats.size(), 0.5));
    write_f64(f.get(), "/analysis/bars_start", bars);
    write_f64(f.get(), "/analysis/bars_confidence", std::vector<double>(bars.size(), 0.5));
    write_f64(f.get(), "/analysis/tatums_start", tatums);
    write_f64(f.get(), "/analysis/tatums_confidence", std::vector<double>(tatums.size(), 0.5));
    write_f64(f.get(), "/analysis/sections_start", sections);
    write_f64(f.get(), "/analysis/sections_confidence", std::vector<double>(sections.size(), 0.5));
    write_strings(f.get(), "/metadata/similar_artists", x.similar_artists, 20);
    write_strings(f.get(), "/metadata/artist_terms", x.artist_terms, 256);
    write_f64(f.get(), "/metadata/artist_terms_freq", x.artist_terms_freq);
    write_f64(f.get(), "/metadata/artist_terms_weight", x.artist_terms_weight);
    write_strings(f.get(), "/musicbrainz/artist_mbtags", {}, 256);
    write_array(f.get(), "/musicbrainz/artist_mbtags_count", H5T_STD_I32LE, H5T_NATIVE_INT32, nullptr, 0, 0, 4);
    MR_CHECK(H5Fflush(f.get(), H5F_SCOPE_GLOBAL) >= 0, path + ": flush failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    MR_CHECK(false, path + ": cannot rename into place");
  }
}

}  // namespace musicrec::data
