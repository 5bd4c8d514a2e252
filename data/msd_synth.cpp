// MSD + Last.fm + Spotify generator with planted styles (see msd_synth.h).
#include "data/msd_synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "data/msd_writer.h"
#include "data/pairs.h"
#include "engine/json_files.h"
#include "engine/metrics.h"
#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::data {
namespace {

constexpr int kDim = 4;
enum Stream : uint64_t { kCentroid = 100, kSongStyle, kSongNoise, kMatA, kMatB, kSegment, kSegNoise, kDuration,
                         kCandidate, kScoreNoise, kSplit, kNames, kIds, kListener };

struct G {
  uint64_t seed;
  double u(uint64_t s, uint64_t i) const { return double(rng::uniform(seed, s, i)) - 0.5e-7; }
  double n(uint64_t s, uint64_t i) const { return double(rng::normal(seed, s, i)); }
  uint32_t w(uint64_t s, uint64_t i, int k) const { return rng::philox_block(seed, s, i)[k]; }
};

std::string track_id(const G& g, int64_t i) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s = "TR";
  for (int k = 0; k < 16; ++k) s += a[g.w(kIds, uint64_t(i) * 4 + uint64_t(k / 4), k % 4) % 36];
  return s;
}

std::string words(const G& g, uint64_t i, int n) {
  static const char* syl[] = {"la", "mor", "ve", "dan", "ko", "ri", "sun", "ta", "mi", "bel", "no", "ray", "zu", "fe", "gal", "o"};
  std::string s;
  for (int k = 0; k < n; ++k) {
    if (k) s += ' ';
    std::string wd = std::string(syl[g.w(kNames, i * 8 + uint64_t(k), 0) % 16]) + syl[g.w(kNames, i * 8 + uint64_t(k), 1) % 16];
    wd[0] = char(std::toupper(wd[0]));
    s += wd;
  }
  return s;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double mean_score(const std::array<double, kDim>& a, const std::array<double, kDim>& b) {
  double c = 0;
  for (int k = 0; k < kDim; ++k) c += a[size_t(k)] * b[size_t(k)];
  return sigmoid(8.0 * (c - 0.55));
}
constexpr double kScoreNoiseSd = 0.08;
double true_probability(double mu) { return 0.5 * std::erfc(-(mu - 0.5) / kScoreNoiseSd / std::sqrt(2.0)); }

std::string lastfm_path(const std::string& root, const std::string& id) {
  return root + "/" + id.substr(2, 1) + "/" + id.substr(3, 1) + "/" + id.substr(4, 1) + "/" + id + ".json";
}

}  // namespace

MsdSynthSummary synthesize_msd(const std::string& dir, const MsdSynthOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  MR_CHECK(o.songs >= 20 && o.styles >= 2 && o.listeners >= 0, "synth msd: need at least 20 songs and 2 styles");
  const G g{o.seed};
  const int64_t N = o.songs;
  // Styles and songs.
  std::vector<std::array<double, kDim>> centroid(static_cast<size_t>(o.styles)), z(static_cast<size_t>(N));
  auto normalise = [](std::array<double, kDim>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    s = std::sqrt(std::max(s, 1e-12));
    for (double& x : v) x /= s;
  };
  for (int64_t s = 0; s < o.styles; ++s) {
    for (int k = 0; k < kDim; ++k) centroid[size_t(s)][size_t(k)] = g.n(kCentroid, uint64_t(s * kDim + k));
    normalise(centroid[size_t(s)]);
  }
  std::vector<int32_t> style(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    style[size_t(i)] = int32_t(g.w(kSongStyle, uint64_t(i), 0) % uint32_t(o.styles));
    for (int k = 0; k < kDim; ++k)
      z[size_t(i)][size_t(k)] = centroid[size_t(style[size_t(i)])][size_t(k)] + 0.35 * g.n(kSongNoise, uint64_t(i * kDim + k));
    normalise(z[size_t(i)]);
  }
  double A[12][kDim], B[12][kDim];
  for (int b = 0; b < 12; ++b)
    for (int k = 0; k < kDim; ++k) {
      A[b][k] = 1.5 * g.n(kMatA, uint64_t(b * kDim + k));
      B[b][k] = 25.0 * g.n(kMatB, uint64_t(b * kDim + k));
    }
  std::vector<std::string> ids(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) ids[size_t(i)] = track_id(g, i);

  // Per song, the mean timbre of the segments in the image's first 60 s (for the feature ceiling below).
  std::vector<std::array<double, 12>> timbre_mean_60s(static_cast<size_t>(N));

  // MSD track files.
  const std::string data_dir = dir + "/data";
  for (int64_t i = 0; i < N; ++i) {
    const auto& zi = z[size_t(i)];
    MsdTrack t;
    t.track_id = ids[size_t(i)];
    t.song_id = "SO" + ids[size_t(i)].substr(2);
    t.artist_name = words(g, uint64_t(1000 + i % (N / 4 + 1)), 2);
    t.title = words(g, uint64_t(500000 + i), 1 + int(i % 3));
    t.release = words(g, uint64_t(900000 + i / 10), 2);
    // 3 % of songs are shorter than the 60 s window (padding is exercised); the rest 70..120 s.
    t.duration = g.u(kDuration, uint64_t(i)) < 0.03 ? 30 + 25 * g.u(kDuration, uint64_t(i + N))
                                                    : 70 + 50 * g.u(kDuration, uint64_t(i + 2 * N));
    t.tempo = 80 + 80 * sigmoid(2 * zi[1]);
    t.loudness = -12 + 6 * zi[2];
    t.time_signature = 4;
    t.year = 1960 + int(g.w(kDuration, uint64_t(i), 3) % 50);
    double profile[12], pmax = 0;
    for (int b = 0; b < 12; ++b) {
      double a = 0;
      for (int k = 0; k < kDim; ++k) a += A[b][k] * zi[size_t(k)];
      profile[b] = std::exp(a);
      pmax = std::max(pmax, profile[b]);
    }
    t.key = int32_t(std::max_element(profile, profile + 12) - profile);
    t.mode = zi[3] > 0 ? 1 : 0;
    double mean_t[12];
    for (int c = 0; c < 12; ++c) {
      double m = 0;
      for (int k = 0; k < kDim; ++k) m += B[c][k] * zi[size_t(k)];
      mean_t[c] = c == 0 ? 42 + 0.3 * m : m;
    }
    uint64_t seg = uint64_t(i) << 20;
    for (double s = 0; s < t.duration; s += 0.2 + 0.15 * g.u(kSegment, seg)) {
      t.segments_start.push_back(s);
      double row[12], rmax = 0;
      for (int b = 0; b < 12; ++b) {
        row[b] = std::max(0.002, profile[b] / pmax * (0.6 + 0.4 * g.u(kSegNoise, seg * 32 + uint64_t(b))) +
                                     0.05 * g.u(kSegNoise, seg * 32 + 12 + uint64_t(b)));
        rmax = std::max(rmax, row[b]);
      }
      for (int b = 0; b < 12; ++b) t.pitches.push_back(row[b] / rmax);  // Echo Nest pitches peak at 1
      for (int c = 0; c < 12; ++c)
        t.timbre.push_back(mean_t[c] + (c == 0 ? 4.0 : 15.0) * g.n(kSegNoise, seg * 32 + 24 + uint64_t(c) % 8 + uint64_t(c / 8) * 1000));
      ++seg;
    }
    t.has_analysis = true;
    int64_t in_window = 0;
    auto& tm = timbre_mean_60s[size_t(i)];
    for (size_t k = 0; k < t.segments_start.size() && t.segments_start[k] < 60.0; ++k, ++in_window)
      for (int c = 0; c < 12; ++c) tm[size_t(c)] += t.timbre[k * 12 + size_t(c)];
    for (double& v : tm) v /= double(std::max<int64_t>(in_window, 1));
    write_msd_track_file(msd_track_path(data_dir, t.track_id), t);
  }

  // Last.fm lists: 10 same-style songs and 30 random ones, scores descending.
  std::vector<std::vector<int32_t>> by_style(size_t(o.styles));
  for (int64_t i = 0; i < N; ++i) by_style[size_t(style[size_t(i)])].push_back(int32_t(i));
  std::vector<LastfmTrack> lf_train, lf_test;
  std::vector<bool> is_test(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    is_test[size_t(i)] = g.u(kSplit, uint64_t(i)) < o.test_fraction;
    LastfmTrack t;
    t.track_id = ids[size_t(i)];
    t.artist = words(g, uint64_t(1000 + i % (N / 4 + 1)), 2);
    t.title = words(g, uint64_t(500000 + i), 1 + int(i % 3));
    t.timestamp = "2011-08-09 18:24:38.890272";
    std::vector<int32_t> cand;
    const auto& same = by_style[size_t(style[size_t(i)])];
    for (int k = 0; k < 10 && !same.empty(); ++k) cand.push_back(same[g.w(kCandidate, uint64_t(i) * 64 + uint64_t(k), 0) % same.size()]);
    for (int k = 0; k < 30; ++k) cand.push_back(int32_t(g.w(kCandidate, uint64_t(i) * 64 + 10 + uint64_t(k), 0) % uint32_t(N)));
    std::sort(cand.begin(), cand.end());
    cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
    for (int32_t j : cand) {
      if (j == i) continue;
      double mu = mean_score(z[size_t(i)], z[size_t(j)]);
      double s = std::clamp(mu + kScoreNoiseSd * g.n(kScoreNoise, uint64_t(i) * 64 + uint64_t(j % 64) + uint64_t(j) * 7919), 0.0, 1.0);
      t.similars.emplace_back(ids[size_t(j)], s);
    }
    std::stable_sort(t.similars.begin(), t.similars.end(), [](auto& a, auto& b) { return a.second > b.second; });
    t.tags = {{words(g, uint64_t(style[size_t(i)]) + 77, 1), int32_t(50 + i % 51)}};
    (is_test[size_t(i)] ? lf_test : lf_train).push_back(t);
    // As the real files: one line, keys in this order, Python's ", " and ": " separators, scores with 17
    // significant digits (an exact 1 prints as 1), tag counts as strings, no trailing newline.
    auto q = [](const std::string& v) { return nlohmann::json(v).dump(); };
    std::string j = "{\"artist\": " + q(t.artist) + ", \"timestamp\": " + q(t.timestamp) + ", \"similars\": [";
    for (size_t k = 0; k < t.similars.size(); ++k) {
      char num[40];
      std::snprintf(num, sizeof num, "%.17g", t.similars[k].second);
      j += (k ? ", [" : "[") + q(t.similars[k].first) + ", " + num + "]";
    }
    j += "], \"tags\": [";
    for (size_t k = 0; k < t.tags.size(); ++k) j += (k ? ", [" : "[") + q(t.tags[k].first) + ", " + q(std::to_string(t.tags[k].second)) + "]";
    j += "], \"track_id\": " + q(t.track_id) + ", \"title\": " + q(t.title) + "}";
    const std::string path = lastfm_path(dir + (is_test[size_t(i)] ? "/lastfm_test" : "/lastfm_train"), t.track_id);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << j;
  }

  // The ceiling on the balanced test pairs the trainer builds with the default options.
  std::unordered_map<std::string, int64_t> catalogue;
  for (int64_t i = 0; i < N; ++i) catalogue[ids[size_t(i)]] = i;
  PairSets pairs = build_pairs(lf_train, lf_test, catalogue, PairOptions{});
  std::vector<float> p, y;
  for (const SongPair& sp : pairs.test) {
    p.push_back(float(true_probability(mean_score(z[size_t(sp.a)], z[size_t(sp.b)]))));
    y.push_back(float(sp.label));
  }
  MsdSynthSummary sum;
  sum.test_pairs = int64_t(p.size());
  sum.test_auc = p.empty() ? 0.5 : metrics::roc_auc(p, y);
  sum.test_accuracy = p.empty() ? 0 : metrics::accuracy(p, y);

  // The feature ceiling: the same scoring with each z replaced by its estimate from what a model sees,
  // the song's mean timbre over the first 60 s (least squares on the generator's own B, timbre 1..11),
  // so the gap between the two ceilings is what the features' noise alone costs.
  std::vector<std::array<double, kDim>> z_hat(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    double ata[kDim][kDim] = {}, atb[kDim] = {};
    for (int c = 1; c < 12; ++c)
      for (int a = 0; a < kDim; ++a) {
        atb[a] += B[c][a] * timbre_mean_60s[size_t(i)][size_t(c)];
        for (int b = 0; b < kDim; ++b) ata[a][b] += B[c][a] * B[c][b];
      }
    // Gaussian elimination on the 4 x 4 normal equations (B's columns are independent draws).
    for (int col = 0; col < kDim; ++col) {
      int piv = col;
      for (int r = col + 1; r < kDim; ++r)
        if (std::abs(ata[r][col]) > std::abs(ata[piv][col])) piv = r;
      std::swap(ata[col], ata[piv]);
      std::swap(atb[col], atb[piv]);
      for (int r = 0; r < kDim; ++r) {
        if (r == col) continue;
        const double f = ata[r][col] / ata[col][col];
        for (int k = col; k < kDim; ++k) ata[r][k] -= f * ata[col][k];
        atb[r] -= f * atb[col];
      }
    }
    for (int a = 0; a < kDim; ++a) z_hat[size_t(i)][size_t(a)] = atb[a] / ata[a][a];
    normalise(z_hat[size_t(i)]);
  }
  std::vector<float> p_hat;
  for (const SongPair& sp : pairs.test) p_hat.push_back(float(true_probability(mean_score(z_hat[size_t(sp.a)], z_hat[size_t(sp.b)]))));
  sum.feature_test_auc = p_hat.empty() ? 0.5 : metrics::roc_auc(p_hat, y);
  sum.feature_test_accuracy = p_hat.empty() ? 0 : metrics::accuracy(p_hat, y);

  // Listeners: Spotify account-data exports (StreamingHistory_music_0.json, the 2024 naming) whose
  // plays lean on one planted favourite style.
  nlohmann::json listeners = nlohmann::json::array();
  for (int64_t l = 0; l < o.listeners; ++l) {
    const int32_t fav = int32_t(g.w(kListener, uint64_t(l), 0) % uint32_t(o.styles));
    const auto& pool = by_style[size_t(fav)];
    nlohmann::ordered_json plays = nlohmann::ordered_json::array();
    for (int k = 0; k < 300 && !pool.empty(); ++k) {
      const bool own = g.u(kListener, uint64_t(l) * 1000 + uint64_t(k)) < 0.8;
      int32_t s = own ? pool[g.w(kListener, uint64_t(l) * 1000 + uint64_t(k), 1) % std::min<size_t>(pool.size(), 12)]
                      : int32_t(g.w(kListener, uint64_t(l) * 1000 + uint64_t(k), 2) % uint32_t(N));
      int minute = k * 7;
      char end[32];
      std::snprintf(end, sizeof end, "2024-%02d-%02d %02d:%02d", 1 + (minute / 40000) % 12, 1 + (minute / 1440) % 28,
                    (minute / 60) % 24, minute % 60);
      plays.push_back(nlohmann::ordered_json{{"endTime", end},
                       {"artistName", words(g, uint64_t(1000 + s % (N / 4 + 1)), 2)},
                       {"trackName", words(g, uint64_t(500000 + s), 1 + int(s % 3))},
                       {"msPlayed", int64_t(g.w(kListener, uint64_t(l) * 1000 + uint64_t(k), 3) % 240000)}});
    }
    const std::string ldir = dir + "/spotify/listener_" + std::to_string(l);
    std::filesystem::create_directories(ldir);
    std::string text = plays.dump(2);
    // Spotify writes `"key" : value`.
    for (size_t pos = 0; (pos = text.find("\": ", pos)) != std::string::npos; pos += 4) text.replace(pos, 3, "\" : ");
    std::ofstream(ldir + "/StreamingHistory_music_0.json") << text;
    listeners.push_back({{"listener", "listener_" + std::to_string(l)}, {"favourite_style", fav}});
  }
  nlohmann::json truth;
  truth["ceiling"] = {{"test_accuracy", sum.test_accuracy}, {"test_auc", sum.test_auc}, {"test_pairs", sum.test_pairs}};
  truth["feature_ceiling"] = {{"test_accuracy", sum.feature_test_accuracy}, {"test_auc", sum.feature_test_auc},
                              {"how", "the ceiling's scoring with z estimated from each song's mean timbre over its first 60 s"}};
  truth["listeners"] = listeners;
  nlohmann::json song_styles = nlohmann::json::object();
  for (int64_t i = 0; i < N; ++i) song_styles[ids[size_t(i)]] = style[size_t(i)];
  truth["song_style"] = song_styles;
  truth["generator"] = {{"songs", N}, {"styles", o.styles}, {"listeners", o.listeners}, {"seed", o.seed},
                        {"score", "clip(sigmoid(8 (z_i . z_j - 0.55)) + N(0, 0.08), 0, 1)"}};
  write_json_file(dir + "/truth.json", truth);
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace musicrec::data
