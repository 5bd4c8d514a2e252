// KKBox-format generator with a planted model (see kkbox_synth.h).
#include "data/kkbox_synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/csv_writer.h"
#include "data/split.h"
#include "engine/metrics.h"
#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::data {
namespace {

// Philox streams, one per purpose, so changing one draw never shifts another.
enum Stream : uint64_t {
  kMemberLatent = 10, kMemberBias, kSongLatent, kSongBias, kGenreEffect, kSongGenre, kSongArtist, kSongLang,
  kSongLength, kMemberAttr, kRowMember, kRowSong, kRowContext, kRowLabel, kIds, kNames, kMultiGenre
};

struct Rng {
  uint64_t seed;
  double u(uint64_t stream, uint64_t i) const { return double(rng::uniform(seed, stream, i)) - 0.5e-7; }
  double n(uint64_t stream, uint64_t i) const { return double(rng::normal(seed, stream, i)); }
  uint32_t word(uint64_t stream, uint64_t i, int k) const { return rng::philox_block(seed, stream, i)[k]; }
};

class Zipf {
 public:
  Zipf(int64_t n, double s) : cdf_(size_t(n)) {
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) cdf_[size_t(i)] = acc += 1.0 / std::pow(double(i + 1), s);
  }
  // A draw among the first `limit` items, u in [0, 1).
  int64_t draw(double u, int64_t limit) const {
    double total = cdf_[size_t(limit - 1)];
    return std::min<int64_t>(limit - 1, std::upper_bound(cdf_.begin(), cdf_.begin() + limit, u * total) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

std::string base64_id(const Rng& r, uint64_t stream, uint64_t i) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char bytes[33] = {0};
  for (int w = 0; w < 8; ++w) {
    uint32_t v = r.word(stream, i * 2 + uint64_t(w / 4), w % 4);
    for (int b = 0; b < 4; ++b) bytes[w * 4 + b] = static_cast<unsigned char>(v >> (8 * b));
  }
  std::string s;
  for (int g = 0; g < 11; ++g) {  // 32 bytes -> 44 characters, the last one '='
    uint32_t v = (uint32_t(bytes[3 * g]) << 16) | (uint32_t(bytes[3 * g + 1]) << 8) | (3 * g + 2 < 32 ? bytes[3 * g + 2] : 0);
    s += a[(v >> 18) & 63];
    s += a[(v >> 12) & 63];
    s += a[(v >> 6) & 63];
    s += g == 10 ? '=' : a[v & 63];
  }
  return s;
}

std::string name(const Rng& r, uint64_t i, int words) {
  static const char* syl[] = {"ka", "ri", "to", "mi", "an", "lo", "sen", "da", "vi", "ne", "ro", "yu", "ha", "ji", "mo", "el"};
  std::string s;
  for (int w = 0; w < words; ++w) {
    if (w) s += r.u(kNames, i * 8 + uint64_t(w)) < 0.05 ? "\xC2\xA0" : " ";  // a few U+00A0, as in the real files
    int len = 2 + int(r.word(kNames, i * 8 + uint64_t(w), 1) % 2);
    for (int k = 0; k < len; ++k) {
      std::string part = syl[r.word(kNames, i * 8 + uint64_t(w), 2 + k % 2) >> (k * 4) & 15];
      if (k == 0) part[0] = char(std::toupper(part[0]));
      s += part;
    }
  }
  return s;
}

struct Context {
  const char *tab, *screen, *type;
  double weight, effect;
};
// Real value sets of the three context columns, as consistent triples.
const Context kContexts[] = {
    {"my library", "Local playlist more", "local-library", 0.30, 1.0},
    {"my library", "Local playlist more", "local-playlist", 0.15, 0.8},
    {"discover", "Online playlist more", "online-playlist", 0.10, -0.3},
    {"radio", "Radio", "radio", 0.06, -1.2},
    {"search", "Search", "song", 0.04, 0.2},
    {"discover", "Discover Feature", "online-playlist", 0.05, -0.4},
    {"listen with", "Others profile more", "listen-with", 0.03, -0.9},
    {"explore", "Explore", "top-hits-for-artist", 0.03, -0.5},
    {"discover", "Album more", "album", 0.04, 0.0},
    {"discover", "Discover Chart", "online-playlist", 0.04, -0.5},
    {"my library", "My library", "local-library", 0.03, 0.9},
    {"search", "Artist more", "top-hits-for-artist", 0.03, -0.2},
    {"discover", "Discover Genre", "song-based-playlist", 0.02, -0.6},
    {"search", "Search Trends", "song-based-playlist", 0.01, -0.3},
    {"notification", "", "online-playlist", 0.005, -0.2},
    {"settings", "", "local-library", 0.002, 0.0},
    {"null", "Unknown", "local-library", 0.003, 0.3},
    {"", "", "", 0.01, 0.0},
    {"my library", "My library_Search", "local-library", 0.005, 0.5},
    {"discover", "Discover New", "artist", 0.002, -0.1},
};
const char* kGenres[] = {"465", "458", "921", "1609", "2022", "958", "2122", "1259", "786", "359",
                         "444", "437", "726", "139", "1011", "947", "1152", "388", "1955", "2130"};
const char* kLanguages[] = {"52", "-1", "3", "17", "31", "24", "10", "59", "45", "38"};
const double kLanguageWeights[] = {0.42, 0.19, 0.19, 0.08, 0.05, 0.03, 0.03, 0.004, 0.003, 0.001};
const int kCities[] = {1, 13, 5, 4, 15, 22, 6, 14, 12, 9, 8, 11, 18, 10, 21, 3, 17, 7, 16, 20, 19};
const int kVia[] = {4, 7, 9, 3, 13};

template <size_t N> int64_t pick_weighted(const double (&w)[N], double u) {
  double total = 0;
  for (double x : w) total += x;
  double acc = 0;
  for (size_t i = 0; i < N; ++i)
    if ((acc += w[i]) >= u * total) return int64_t(i);
  return int64_t(N - 1);
}

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    MR_CHECK(f.good(), path + ": cannot create");
    f << j.dump(2) << "\n";
    MR_CHECK(f.good(), path + ": write failed");
  }
  MR_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path + ": cannot rename into place");
}

}  // namespace

KkboxSynthSummary synthesize_kkbox(const std::string& dir, const KkboxSynthOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  MR_CHECK(o.members >= 2 && o.songs >= 2 && o.rows >= 10, "synth kkbox: need at least 2 members, 2 songs, 10 rows");
  MR_CHECK(o.members < (1LL << 31) && o.songs < (1LL << 31), "synth kkbox: too many members or songs");
  std::filesystem::create_directories(dir);
  const Rng r{o.seed};
  const int K = o.latent_dim;
  const double latent_scale = 1.0 / std::pow(double(K), 0.25);  // <u, v> has unit variance
  const double interaction = 1.2, intercept = -0.35;
  const int64_t n_genres = int64_t(sizeof(kGenres) / sizeof(kGenres[0]));
  const int64_t n_artists = std::max<int64_t>(1, o.songs / 6);
  const int64_t test_rows = std::max<int64_t>(1, o.rows / 3), all_rows = o.rows + test_rows;

  // --- songs ---
  Zipf genre_zipf(n_genres, 1.1), artist_zipf(n_artists, 0.9);
  std::vector<int32_t> song_genre(size_t(o.songs));
  std::vector<float> song_bias(size_t(o.songs));
  for (int64_t s = 0; s < o.songs; ++s) {
    song_genre[size_t(s)] = int32_t(genre_zipf.draw(r.u(kSongGenre, uint64_t(s)), n_genres));
    song_bias[size_t(s)] = float(0.6 * r.n(kSongBias, uint64_t(s)));
  }
  std::vector<double> genre_effect(static_cast<size_t>(n_genres));
  for (int64_t g = 0; g < n_genres; ++g) genre_effect[size_t(g)] = 0.4 * r.n(kGenreEffect, uint64_t(g));
  const int64_t catalogue = o.songs + o.songs / 4;  // songs.csv also lists songs nobody played
  {
    CsvWriter songs(dir + "/songs.csv", {"song_id", "song_length", "genre_ids", "artist_name", "composer", "lyricist", "language"});
    CsvWriter extra(dir + "/song_extra_info.csv", {"song_id", "name", "isrc"});
    for (int64_t s = 0; s < catalogue; ++s) {
      std::string id = base64_id(r, kIds, uint64_t(2 * s + 1));
      int64_t g = s < o.songs ? song_genre[size_t(s)] : genre_zipf.draw(r.u(kSongGenre, uint64_t(s)), n_genres);
      double mg = r.u(kMultiGenre, uint64_t(s));
      std::string genres = mg < 0.02 ? "" : kGenres[g];
      if (mg > 0.9) genres += std::string("|") + kGenres[(g + 3) % n_genres];
      int64_t artist = artist_zipf.draw(r.u(kSongArtist, uint64_t(s)), n_artists);
      std::string artist_name = name(r, uint64_t(1000000 + artist), 1 + int(artist % 3));
      std::string composer = name(r, uint64_t(5000000 + s), 2);
      if (s % 7 == 0) composer += "| " + name(r, uint64_t(6000000 + s), 2);
      if (s % 97 == 0) composer = "Evan \"" + name(r, uint64_t(7000000 + s), 1) + "\" Bogart";  // quotes, as in the real file
      songs.field(id)
          .field(int64_t(150000 + 200000 * r.u(kSongLength, uint64_t(s))))
          .field(genres)
          .field(artist_name)
          .field(composer)
          .field(s % 3 == 0 ? std::string() : name(r, uint64_t(8000000 + s), 2))
          .field(kLanguages[pick_weighted(kLanguageWeights, r.u(kSongLang, uint64_t(s)))]);
      songs.end_row();
      extra.field(id).field(name(r, uint64_t(9000000 + s), 2));
      extra.field(s % 11 == 0 ? std::string() : "TW" + std::to_string(100000000 + s));
      extra.end_row();
    }
    songs.close();
    extra.close();
  }

  // --- members ---
  {
    CsvWriter members(dir + "/members.csv",
                      {"msno", "city", "bd", "gender", "registered_via", "registration_init_time", "expiration_date"});
    for (int64_t m = 0; m < o.members; ++m) {
      auto u = [&](int k) { return r.u(kMemberAttr, uint64_t(m * 8 + k)); };
      int64_t bd = u(1) < 0.4 ? 0 : int64_t(15 + 40 * u(2));
      if (u(3) < 0.003) bd = u(4) < 0.5 ? -43 : 1051;  // the outliers of the real file
      double gu = u(5);
      int64_t reg_year = 2004 + int64_t(13 * u(6));
      members.field(base64_id(r, kIds, uint64_t(2 * m)))
          .field(int64_t(u(0) < 0.55 ? 1 : kCities[1 + int64_t(u(7) * 20) % 20]))
          .field(bd)
          .field(gu < 0.57 ? "" : (gu < 0.79 ? "male" : "female"))
          .field(int64_t(kVia[int64_t(u(4) * 5) % 5]))
          .field(reg_year * 10000 + (1 + int64_t(u(6) * 1000) % 12) * 100 + 1 + int64_t(u(2) * 1000) % 28)
          .field(int64_t(20170000 + (1 + int64_t(u(7) * 1000) % 12) * 100 + 1 + int64_t(u(5) * 1000) % 28));
      members.end_row();
    }
    members.close();
  }

  // --- interactions, in time order ---
  const int64_t n_ctx = int64_t(sizeof(kContexts) / sizeof(kContexts[0]));
  double ctx_total = 0;
  for (auto& c : kContexts) ctx_total += c.weight;
  Zipf member_zipf(o.members, 0.8), song_zipf(o.songs, 1.0);
  auto latent_dot = [&](int64_t m, int64_t s) {
    double d = 0;
    for (int k = 0; k < K; ++k)
      d += r.n(kMemberLatent, uint64_t(m * K + k)) * r.n(kSongLatent, uint64_t(s * K + k));
    return d * latent_scale * latent_scale;
  };
  std::vector<float> prob(size_t(o.rows)), label(size_t(o.rows));
  int64_t positives = 0;
  {
    CsvWriter train(dir + "/train.csv", {"msno", "song_id", "source_system_tab", "source_screen_name", "source_type", "target"});
    CsvWriter test(dir + "/test.csv", {"id", "msno", "song_id", "source_system_tab", "source_screen_name", "source_type"});
    for (int64_t t = 0; t < all_rows; ++t) {
      int64_t m = member_zipf.draw(r.u(kRowMember, uint64_t(t)), o.members);
      int64_t released = std::max<int64_t>(1, int64_t(double(o.songs) * (0.4 + 0.6 * double(t + 1) / double(all_rows))));
      int64_t s = song_zipf.draw(r.u(kRowSong, uint64_t(t)), std::min(released, o.songs));
      double cu = r.u(kRowContext, uint64_t(t)) * ctx_total, acc = 0;
      int64_t c = 0;
      for (; c < n_ctx - 1; ++c)
        if ((acc += kContexts[c].weight) >= cu) break;
      double logit = intercept + 0.6 * r.n(kMemberBias, uint64_t(m)) + song_bias[size_t(s)] +
                     interaction * latent_dot(m, s) + kContexts[c].effect + genre_effect[size_t(song_genre[size_t(s)])];
      double p = 1.0 / (1.0 + std::exp(-logit));
      CsvWriter& w = t < o.rows ? train : test;
      if (t >= o.rows) w.field(t - o.rows);
      w.field(base64_id(r, kIds, uint64_t(2 * m)))
          .field(base64_id(r, kIds, uint64_t(2 * s + 1)))
          .field(kContexts[c].tab)
          .field(kContexts[c].screen)
          .field(kContexts[c].type);
      if (t < o.rows) {
        int y = r.u(kRowLabel, uint64_t(t)) < p ? 1 : 0;
        w.field(int64_t(y));
        prob[size_t(t)] = float(p);
        label[size_t(t)] = float(y);
        positives += y;
      }
      w.end_row();
    }
    train.close();
    test.close();
  }

  // --- the ceiling on each part of each split ---
  nlohmann::json by_split;
  KkboxSynthSummary summary;
  for (SplitKind kind : {SplitKind::Random, SplitKind::Time}) {
    std::vector<float> pp[3], ll[3];
    for (int64_t i = 0; i < o.rows; ++i) {
      int part = int(split_part(kind, i, o.rows, o.split_seed));
      pp[part].push_back(prob[size_t(i)]);
      ll[part].push_back(label[size_t(i)]);
    }
    nlohmann::json j;
    const char* names[3] = {"train", "validation", "test"};
    for (int part = 0; part < 3; ++part) {
      if (pp[part].empty()) continue;
      j[std::string(names[part]) + "_auc"] = metrics::roc_auc(pp[part], ll[part]);
      j[std::string(names[part]) + "_accuracy"] = metrics::accuracy(pp[part], ll[part]);
      j[std::string(names[part]) + "_log_loss"] = metrics::log_loss(pp[part], ll[part]);
    }
    by_split[split_name(kind)] = j;
  }
  summary.test_auc = by_split["random"].value("test_auc", 0.5);
  summary.test_accuracy = by_split["random"].value("test_accuracy", 0.0);
  summary.positive_rate = double(positives) / double(o.rows);
  nlohmann::json truth;
  truth["ceiling"] = by_split["random"];
  truth["ceiling_by_split"] = by_split;
  truth["split_seed"] = o.split_seed;
  truth["positive_rate"] = summary.positive_rate;
  truth["generator"] = {{"members", o.members}, {"songs", o.songs}, {"rows", o.rows}, {"test_rows", test_rows},
                        {"seed", o.seed}, {"latent_dim", K}, {"interaction", interaction},
                        {"model", "P(target=1) = sigmoid(c + b_member + b_song + a <u_member, v_song> + e_context + e_genre)"}};
  write_json_atomic(dir + "/truth.json", truth);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace musicrec::data
