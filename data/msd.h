// Reader of Million Song Dataset HDF5 files exactly as published (../shared/DATA.md §1): PyTables files
// with groups /metadata, /analysis, /musicbrainz, each holding a one-row (track file) or many-row
// (aggregate or summary file) compound table `songs`, plus gzip-compressed arrays. Compound members are
// read by name, not position (PyTables stores them alphabetically). In an aggregate file, song i's
// segments are rows idx_segments_start[i] .. idx_segments_start[i+1] of the concatenated arrays.
//
// Bad input (not HDF5, a missing table or array, wrong shapes, NaN or infinite values, index ranges
// outside the arrays) is an error naming the file and the dataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace musicrec {
class IsolatedWorker;
}

namespace musicrec::data {

struct MsdTrack {
  std::string track_id, song_id, artist_name, title, release;
  double duration = 0, tempo = 0, loudness = 0;
  int32_t key = -1, mode = -1, time_signature = 0, year = 0;
  bool has_analysis = false;            // false for summary files (tables only)
  std::vector<double> segments_start;   // N
  std::vector<double> pitches, timbre;  // N x 12, row-major
  int64_t segments() const { return int64_t(segments_start.size()); }
  int64_t segments_before(double seconds) const;
};

std::vector<MsdTrack> read_msd_file(const std::string& path);
// The same, read in a child process (engine/isolated.h) unless MUSICREC_HDF5_IN_PROCESS=1, so that a
// damaged file that crashes or hangs libhdf5 is an error naming it. Tree scans and `inspect` use this.
std::vector<MsdTrack> read_msd_file_isolated(const std::string& path);
// The reader child's worker read_msd_file_isolated uses on this thread (a fuzz target makes its fork
// server early: fuzz/isolated_fuzzing.h).
IsolatedWorker& msd_reader_of_this_thread();
// The one track of a per-track file (an error if the file holds several).
MsdTrack read_msd_track(const std::string& path);

// data/<A>/<B>/<C>/<track id>.h5 (MatlabSrc/msd_pathname.m).
std::string msd_track_path(const std::string& root, const std::string& track_id);

struct MsdScanReport {
  int64_t files = 0, tracks = 0, bad = 0;
  std::vector<std::string> first_errors;  // up to 5, "path: what"
};
// Every *.h5 under `root` (any depth), read on `threads` threads, each file in a child process (see
// read_msd_file_isolated); bad files are reported and skipped.
// Results are in path order whatever the thread count.
std::vector<MsdTrack> scan_msd_tree(const std::string& root, MsdScanReport& report, int threads = 2);

}  // namespace musicrec::data
