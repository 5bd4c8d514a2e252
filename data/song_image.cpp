// Song images from MSD segments (see song_image.h).
#include "data/song_image.h"

#include <algorithm>
#include <cmath>

#include "kernels/error.h"

namespace musicrec::data {

int row_feature(int64_t r, int64_t h) { return int((12 * r) / h); }

namespace {
// Calls f(segment, overlap seconds, column) for every overlap of a segment with a column.
template <typename F> void for_each_overlap(const MsdTrack& t, const ImageOptions& o, F&& f) {
  const int64_t n = t.segments();
  const double col = o.seconds / double(o.width);
  for (int64_t k = 0; k < n; ++k) {
    const double a = t.segments_start[size_t(k)];
    const double b = std::min(k + 1 < n ? t.segments_start[size_t(k + 1)] : t.duration, o.seconds);
    if (a >= o.seconds) break;
    if (b <= a) continue;
    int64_t c0 = std::max<int64_t>(0, int64_t(std::floor(a / col)));
    int64_t c1 = std::min<int64_t>(o.width - 1, int64_t(std::ceil(b / col)) - 1);
    for (int64_t c = c0; c <= c1; ++c) {
      double lo = std::max(a, double(c) * col), hi = std::min(b, double(c + 1) * col);
      if (hi > lo) f(k, hi - lo, c);
    }
  }
}
}  // namespace

TimbreStats fit_timbre_stats(const std::vector<const MsdTrack*>& songs, double seconds) {
  std::array<double, 12> sum{}, sq{};
  double weight = 0;
  ImageOptions o;
  o.seconds = seconds;
  o.width = 1;
  for (const MsdTrack* t : songs)
    for_each_overlap(*t, o, [&](int64_t k, double w, int64_t) {
      for (int f = 0; f < 12; ++f) {
        double v = t->timbre[size_t(k * 12 + f)];
        sum[size_t(f)] += w * v;
        sq[size_t(f)] += w * v * v;
      }
      weight += w;
    });
  TimbreStats s;
  for (int f = 0; f < 12; ++f) {
    s.mean[size_t(f)] = weight > 0 ? sum[size_t(f)] / weight : 0.0;
    double var = weight > 0 ? sq[size_t(f)] / weight - s.mean[size_t(f)] * s.mean[size_t(f)] : 1.0;
    s.stddev[size_t(f)] = var > 1e-12 ? std::sqrt(var) : 1.0;
  }
  return s;
}

void build_song_image(const MsdTrack& t, const ImageOptions& o, const TimbreStats& st, float* out) {
  MR_CHECK(o.height >= 2 && o.width >= 1 && o.seconds > 0, "song image: bad size options");
  MR_CHECK(t.has_analysis, "song image: track " + t.track_id + " has no segment analysis");
  const int64_t H = o.height, W = o.width, top = H / 2, bottom = H - top;
  // Per column: weighted sums of the 24 features and the total overlap.
  std::vector<double> acc(size_t(W * 24), 0.0), wsum(size_t(W), 0.0);
  for_each_overlap(t, o, [&](int64_t k, double w, int64_t c) {
    for (int f = 0; f < 12; ++f) {
      acc[size_t(c * 24 + f)] += w * t.pitches[size_t(k * 12 + f)];
      acc[size_t(c * 24 + 12 + f)] += w * (t.timbre[size_t(k * 12 + f)] - st.mean[size_t(f)]) / st.stddev[size_t(f)];
    }
    wsum[size_t(c)] += w;
  });
  for (int64_t r = 0; r < H; ++r) {
    const bool chroma = r < top;
    const int f = chroma ? row_feature(r, top) : 12 + row_feature(r - top, bottom);
    for (int64_t c = 0; c < W; ++c)
      out[r * W + c] = wsum[size_t(c)] > 0 ? float(acc[size_t(c * 24 + f)] / wsum[size_t(c)]) : 0.f;
  }
}

}  // namespace musicrec::data
