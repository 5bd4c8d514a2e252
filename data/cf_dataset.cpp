// Encoding of KKBox data for the CF model, and its HDF5 cache (see cf_dataset.h).
#include "data/cf_dataset.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/core.h>

#include "data/kkbox.h"
#include "engine/file_seal.h"
#include "engine/hdf5_file.h"
#include "kernels/error.h"

namespace musicrec::data {

const std::vector<std::string>& cf_feature_names() {
  static const std::vector<std::string> names = {"member", "song", "source_system_tab", "source_screen_name",
                                                 "source_type", "genre", "artist", "language", "city", "gender",
                                                 "registered_via", "age_bucket"};
  return names;
}

std::vector<int64_t> CfDataset::rows_of(Part p) const {
  std::vector<int64_t> r;
  for (int64_t i = 0; i < int64_t(part.size()); ++i)
    if (part[size_t(i)] == int8_t(p)) r.push_back(i);
  return r;
}

namespace {

constexpr int64_t kCacheVersion = 1;

int32_t age_bucket(int32_t age) {
  if (age < 0) return 0;
  const int edges[] = {18, 25, 30, 35, 45, 55};
  int32_t b = 1;
  for (int e : edges)
    if (age >= e) ++b;
  return b;  // 1..7
}

// The raw code of feature f for interaction row r (-1 = no value), before encoding.
struct RawFeatures {
  const KkboxData& d;
  const KkboxInteractions& x;
  int32_t get(int f, int64_t r) const {
    const size_t i = size_t(r);
    const int32_t m = x.member[i], s = x.song[i];
    switch (f) {
      case 0: return m;
      case 1: return s;
      case 2: return x.system_tab[i];
      case 3: return x.screen_name[i];
      case 4: return x.source_type[i];
      case 5: return d.song_genre[size_t(s)];
      case 6: return d.song_artist[size_t(s)];
      case 7: return d.song_language[size_t(s)];
      case 8: return d.member_city[size_t(m)];
      case 9: return d.member_gender[size_t(m)];
      case 10: return d.member_via[size_t(m)];
      default: return d.member_age[size_t(m)] < 0 ? -1 : age_bucket(d.member_age[size_t(m)]);
    }
  }
};

struct Standardiser {
  double mean = 0, std = 1;
  float apply(float v) const { return std::isnan(v) ? 0.f : float((double(v) - mean) / std); }
};

// Raw numeric features: song length in minutes, membership length in years.
void raw_numeric(const KkboxData& d, const KkboxInteractions& x, int64_t r, float out[2]) {
  out[0] = d.song_length_ms[size_t(x.song[size_t(r)])] / 60000.f;
  out[1] = d.member_days[size_t(x.member[size_t(r)])] / 365.25f;
}

CfRows encode_rows(const KkboxData& d, const KkboxInteractions& x, const std::vector<std::vector<int32_t>>& maps,
                   const Standardiser* st, bool labels) {
  RawFeatures raw{d, x};
  CfRows out;
  out.rows = x.size();
  out.cat.resize(size_t(out.rows * kCfCategorical));
  out.num.resize(size_t(out.rows * kCfNumeric));
  for (int64_t r = 0; r < out.rows; ++r) {
    for (int f = 0; f < kCfCategorical; ++f) {
      int32_t code = raw.get(f, r);
      const auto& map = maps[size_t(f)];
      out.cat[size_t(r * kCfCategorical + f)] = code >= 0 && size_t(code) < map.size() ? map[size_t(code)] : 0;
    }
    float v[2];
    raw_numeric(d, x, r, v);
    for (int k = 0; k < kCfNumeric; ++k) out.num[size_t(r * kCfNumeric + k)] = st[k].apply(v[k]);
  }
  if (labels) {
    out.label.resize(size_t(out.rows));
    for (int64_t r = 0; r < out.rows; ++r) out.label[size_t(r)] = float(x.target[size_t(r)]);
  } else {
    out.id = x.id;
  }
  return out;
}

std::string fingerprint(const std::string& dir) {
  std::string fp;
  for (const char* name : {"train.csv", "test.csv", "members.csv", "songs.csv"}) {
    struct stat st {};
    std::string p = dir + "/" + name;
    if (::stat(p.c_str(), &st) == 0)
      fp += fmt::format("{}:{}:{}.{};", name, int64_t(st.st_size), int64_t(st.st_mtim.tv_sec), int64_t(st.st_mtim.tv_nsec));
  }
  return fp;
}

std::string cache_path(const std::string& dir, const CfLoadOptions& o) {
  std::string cdir = o.cache_dir.empty() ? dir + "/.musicrec-cache" : o.cache_dir;
  return cdir + fmt::format("/cf-{}-{}.h5", split_name(o.split), o.split_seed);
}

Tensor i32_tensor(const std::vector<int32_t>& v, Shape s) { return Tensor::from_vector(v, s); }
Tensor f32_tensor(const std::vector<float>& v, Shape s) { return Tensor::from_vector(v, s); }

void write_rows(Hdf5File& f, const std::string& g, const CfRows& r) {
  f.write(g + "/cat", i32_tensor(r.cat, {r.rows, kCfCategorical}));
  f.write(g + "/num", f32_tensor(r.num, {r.rows, kCfNumeric}));
  if (!r.label.empty()) f.write(g + "/label", f32_tensor(r.label, {r.rows}));
  if (!r.id.empty()) {
    std::vector<int32_t> ids(r.id.begin(), r.id.end());
    f.write(g + "/id", i32_tensor(ids, {r.rows}));
  }
}

CfRows read_rows(const Hdf5File& f, const std::string& g) {
  CfRows r;
  Tensor cat = f.read(g + "/cat");
  MR_CHECK(cat.dim() == 2 && cat.size(1) == kCfCategorical && cat.dtype() == DType::I32,
           f.path() + ": " + g + "/cat has the wrong shape");
  r.rows = cat.size(0);
  r.cat = cat.to_vector<int32_t>();
  r.num = f.read(g + "/num").to_vector<float>();
  MR_CHECK(int64_t(r.num.size()) == r.rows * kCfNumeric, f.path() + ": " + g + "/num has the wrong shape");
  if (f.has(g + "/label")) r.label = f.read(g + "/label").to_vector<float>();
  if (f.has(g + "/id")) {
    auto ids = f.read(g + "/id").to_vector<int32_t>();
    r.id.assign(ids.begin(), ids.end());
  }
  return r;
}

// A cache is a file like any other: its codes index embedding tables, so every one is checked
// against the cardinalities it came with before the model can read a row out of bounds.
void check_rows(const std::string& path, const char* group, const CfRows& r, const std::vector<int64_t>& card) {
  for (int64_t i = 0; i < r.rows; ++i)
    for (int c = 0; c < kCfCategorical; ++c) {
      const int32_t v = r.cat[size_t(i * kCfCategorical + c)];
      MR_CHECK(v >= 0 && v < card[size_t(c)], path + ": " + group + "/cat row " + std::to_string(i) + " holds code " +
                                                   std::to_string(v) + " for " + cf_feature_names()[size_t(c)] +
                                                   ", outside 0.." + std::to_string(card[size_t(c)] - 1));
    }
  for (size_t i = 0; i < r.num.size(); ++i)
    MR_CHECK(std::isfinite(r.num[i]), path + ": " + group + "/num holds a non-finite value at element " + std::to_string(i));
  for (size_t i = 0; i < r.label.size(); ++i)
    MR_CHECK(r.label[i] == 0.0f || r.label[i] == 1.0f, path + ": " + group + "/label element " + std::to_string(i) + " is not 0 or 1");
  MR_CHECK(r.label.empty() || int64_t(r.label.size()) == r.rows, path + ": " + group + "/label has the wrong length");
  MR_CHECK(r.id.empty() || int64_t(r.id.size()) == r.rows, path + ": " + group + "/id has the wrong length");
}

void check_cache_contents(const std::string& path, const CfDataset& ds, const std::vector<int32_t>& part) {
  MR_CHECK(int64_t(ds.part.size()) == ds.train_csv.rows && int64_t(ds.cardinality.size()) == kCfCategorical,
           path + ": inconsistent cache");
  for (int64_t c : ds.cardinality) MR_CHECK(c >= 1 && c <= (int64_t(1) << 30), path + ": a cardinality is out of range");
  for (size_t i = 0; i < part.size(); ++i)
    MR_CHECK(part[i] >= 0 && part[i] <= 2, path + ": part element " + std::to_string(i) + " is not a split part");
  check_rows(path, "train_csv", ds.train_csv, ds.cardinality);
  check_rows(path, "test_csv", ds.test_csv, ds.cardinality);
  MR_CHECK(int64_t(ds.member_ids.size()) == ds.cardinality[kCfMember] && int64_t(ds.song_ids.size()) == ds.cardinality[kCfSong],
           path + ": member_ids and song_ids do not match the member and song cardinalities");
}

}  // namespace

void save_cf_cache(const std::string& path, const std::string& fp, const CfDataset& ds) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  Hdf5File f = Hdf5File::create_sealed(path);  // read in-process: the seal keeps damage from libhdf5
  f.set_attr("format", std::string("musicrec-cf-cache"));
  f.set_attr("version", kCacheVersion);
  f.set_attr("fingerprint", fp);
  f.set_attr("source_report", ds.source_report);
  f.set_attr("parse_seconds", ds.parse_seconds);
  std::vector<int32_t> card(ds.cardinality.begin(), ds.cardinality.end());
  f.write("cardinality", i32_tensor(card, {int64_t(card.size())}));
  std::vector<int32_t> part(ds.part.begin(), ds.part.end());
  f.write("part", i32_tensor(part, {int64_t(part.size())}));
  write_rows(f, "train_csv", ds.train_csv);
  write_rows(f, "test_csv", ds.test_csv);
  f.write_strings("member_ids", ds.member_ids);
  f.write_strings("song_ids", ds.song_ids);
  f.commit();
}

bool load_cf_cache(const std::string& path, const std::string& fp, CfDataset& ds) {
  if (!has_seal(path)) return false;  // missing, or an older musicrec's cache: rebuilt, and sealed
  Hdf5File f = Hdf5File::open_sealed(path);
  if (!f.has_attr("format") || f.attr_str("format") != "musicrec-cf-cache" || f.attr_i64("version") != kCacheVersion ||
      f.attr_str("fingerprint") != fp)
    return false;
  auto card = f.read("cardinality").to_vector<int32_t>();
  ds.cardinality.assign(card.begin(), card.end());
  auto part = f.read("part").to_vector<int32_t>();
  ds.part.assign(part.begin(), part.end());
  ds.train_csv = read_rows(f, "train_csv");
  ds.test_csv = read_rows(f, "test_csv");
  ds.member_ids = f.read_strings("member_ids");
  ds.song_ids = f.read_strings("song_ids");
  ds.source_report = f.attr_str("source_report");
  ds.parse_seconds = f.attr_f64("parse_seconds");
  check_cache_contents(path, ds, part);
  return true;
}


CfDataset encode_cf(const KkboxData& d, SplitKind split, uint64_t split_seed) {
  auto t0 = std::chrono::steady_clock::now();
  CfDataset ds;
  ds.split = split;
  ds.split_seed = split_seed;
  const int64_t n = d.train.size();
  ds.part.resize(size_t(n));
  for (int64_t r = 0; r < n; ++r) ds.part[size_t(r)] = int8_t(split_part(split, r, n, split_seed));

  // Fit: every raw code seen in a training row gets the next index (1..), in row order.
  RawFeatures raw{d, d.train};
  const int32_t pool_sizes[kCfCategorical] = {d.members.size(), d.songs.size(), d.system_tab.size(),
                                              d.screen_name.size(), d.source_type.size(), d.genre.size(),
                                              d.artist.size(), d.language.size(), d.city.size(), d.gender.size(),
                                              d.registered_via.size(), 8};
  std::vector<std::vector<int32_t>> maps(kCfCategorical);
  ds.cardinality.assign(kCfCategorical, 1);
  for (int f = 0; f < kCfCategorical; ++f) maps[size_t(f)].assign(size_t(pool_sizes[f]), 0);
  double sum[2] = {0, 0}, sq[2] = {0, 0};
  int64_t cnt[2] = {0, 0};
  for (int64_t r = 0; r < n; ++r) {
    if (ds.part[size_t(r)] != int8_t(Part::Train)) continue;
    for (int f = 0; f < kCfCategorical; ++f) {
      int32_t code = raw.get(f, r);
      if (code < 0) continue;
      int32_t& slot = maps[size_t(f)][size_t(code)];
      if (slot == 0) slot = int32_t(ds.cardinality[size_t(f)]++);
    }
    float v[2];
    raw_numeric(d, d.train, r, v);
    for (int k = 0; k < 2; ++k)
      if (!std::isnan(v[k])) {
        sum[k] += v[k];
        sq[k] += double(v[k]) * v[k];
        ++cnt[k];
      }
  }
  Standardiser st[2];
  for (int k = 0; k < 2; ++k)
    if (cnt[k] > 1) {
      st[k].mean = sum[k] / double(cnt[k]);
      st[k].std = std::sqrt(std::max(1e-12, sq[k] / double(cnt[k]) - st[k].mean * st[k].mean));
    }
  ds.train_csv = encode_rows(d, d.train, maps, st, true);
  ds.test_csv = encode_rows(d, d.test, maps, st, false);
  // Index -> id for members and songs (recommendations and predictions name them).
  ds.member_ids.assign(size_t(ds.cardinality[kCfMember]), "");
  for (int32_t c = 0; c < d.members.size(); ++c)
    if (maps[kCfMember][size_t(c)] > 0) ds.member_ids[size_t(maps[kCfMember][size_t(c)])] = d.members.str(c);
  ds.song_ids.assign(size_t(ds.cardinality[kCfSong]), "");
  for (int32_t c = 0; c < d.songs.size(); ++c)
    if (maps[kCfSong][size_t(c)] > 0) ds.song_ids[size_t(maps[kCfSong][size_t(c)])] = d.songs.str(c);
  for (auto& rep : d.reports)
    ds.source_report += fmt::format("{}: {} records{}\n", rep.file, rep.records, rep.issues.empty() ? "" : ", " + rep.issues);
  ds.parse_seconds = d.parse_seconds;
  ds.encode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ds;
}

CfDataset load_cf_dataset(const std::string& dir, const CfLoadOptions& o) {
  const std::string fp = fingerprint(dir);
  const std::string cpath = cache_path(dir, o);
  if (o.use_cache) {
    CfDataset ds;
    ds.split = o.split;
    ds.split_seed = o.split_seed;
    try {
      if (load_cf_cache(cpath, fp, ds)) {
        ds.from_cache = true;
        return ds;
      }
    } catch (const Error& e) {
      fmt::print(stderr, "warning: ignoring unreadable cache ({})\n", e.what());
    }
  }
  KkboxReadOptions ro;
  ro.strict = o.strict;
  KkboxData d = read_kkbox(dir, ro);
  CfDataset ds = encode_cf(d, o.split, o.split_seed);
  if (o.use_cache) {
    try {
      save_cf_cache(cpath, fp, ds);
    } catch (const std::exception& e) {
      fmt::print(stderr, "warning: could not write the dataset cache {} ({}); continuing without it\n", cpath, e.what());
    }
  }
  return ds;
}

}  // namespace musicrec::data
