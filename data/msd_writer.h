// Writes MSD per-track HDF5 files in the published layout (../shared/DATA.md §1, MSongsDB
// hdf5_utils.py): groups /metadata, /analysis, /musicbrainz, each with a one-row compound table `songs`
// whose members are in alphabetical order at packed offsets (itemsizes 5320, 220 and 8, as observed in
// real files), and every array of create_all_arrays, all chunked, gzip level 1 + shuffle, extendable on
// axis 0; root attributes PYTABLES_FORMAT_VERSION = "2.0" and TITLE = "H5 Song File". Fields the
// generator does not model are written as the real files hold them when unknown (0, "" or NaN).
#pragma once
#include <string>

#include "data/msd.h"

namespace musicrec::data {

struct MsdWriteExtras {
  std::string artist_id, audio_md5, artist_mbid;
  std::vector<std::string> artist_terms, similar_artists;
  std::vector<double> artist_terms_freq, artist_terms_weight;
  double song_hotttnesss = 0, artist_familiarity = 0, artist_hotttnesss = 0;
};

void write_msd_track_file(const std::string& path, const MsdTrack& t, const MsdWriteExtras& extras = {});

}  // namespace musicrec::data
