// The pair CNN's input: one song as a 1 x H x W image (40 x 120 by default) of its chroma and timbre
// over the first S seconds (60 by default), built from MSD segments.
//
// Time: column c covers [c S/W, (c+1) S/W). Segment k lasts from its start to the next segment's
// start (the last one to the song's duration). A column's value is the mean of the segments that
// overlap it, each weighted by the length of the overlap. Where no segment overlaps a column (a song
// shorter than S seconds, or a gap before the first segment) the column is silence: 0 in every row.
//
// Rows: the top H/2 rows are the 12 chroma bins (pitch classes C..B, values 0..1 as the Echo Nest
// gives them), the bottom H - H/2 rows the 12 timbre coefficients, standardised with per-coefficient
// means and standard deviations of the training songs (so 0 = the training mean, which is also what
// silence reads as). Within each half of h rows, row r shows feature floor(12 r / h): each feature fills
// floor(h/12) or ceil(h/12) adjacent rows, in order, so a 5-row kernel spans 3 or 4 neighbouring
// features. With H = 40 each half has 20 rows: 8 features get 2 rows and 4 get 1 (row_feature()).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "data/msd.h"

namespace musicrec::data {

struct ImageOptions {
  int64_t height = 40, width = 120;
  double seconds = 60.0;
};

struct TimbreStats {
  std::array<double, 12> mean{}, stddev{};
};

// Which of the 12 features row r of a half of h rows shows.
int row_feature(int64_t r, int64_t h);

// Per-coefficient timbre statistics over the segments in the first `seconds` of the given songs
// (duration-weighted, as the image averages them).
TimbreStats fit_timbre_stats(const std::vector<const MsdTrack*>& songs, double seconds);

// Writes the H x W image of `t` into out (row-major).
void build_song_image(const MsdTrack& t, const ImageOptions& opt, const TimbreStats& stats, float* out);

}  // namespace musicrec::data
