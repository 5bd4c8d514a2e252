// KKBox reader (see kkbox.h). Two threads: one reads the interactions (train.csv, test.csv), the other
// the side tables (members.csv, songs.csv, song_extra_info.csv) into maps; the side information is
// then joined onto the member and song codes the interactions use.
#include "data/kkbox.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <unordered_map>

#include "kernels/error.h"

namespace musicrec::data {

std::string_view normalise_value(std::string_view s, std::string& scratch) {
  if (s.find("\xC2\xA0") != std::string_view::npos) {
    scratch.assign(s);
    size_t pos;
    while ((pos = scratch.find("\xC2\xA0")) != std::string::npos) scratch.replace(pos, 2, " ");
    s = scratch;
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s == "null") return std::string_view();
  return s;
}

namespace {

bool parse_int(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {  // days since 1970-01-01 (H. Hinnant's algorithm)
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool valid_date(int64_t v, int64_t& days) {
  int64_t y = v / 10000, m = v / 100 % 100, d = v % 100;
  if (y < 1900 || y > 2100 || m < 1 || m > 12 || d < 1 || d > 31) return false;
  days = days_from_civil(y, m, d);
  return true;
}

struct MemberRow {
  std::string city, gender, via;
  int32_t age;
  float days;
};
struct SongRow {
  std::string genre, artist, language;
  float length_ms;
};
struct SideTables {
  std::unordered_map<std::string, MemberRow> members;
  std::unordered_map<std::string, SongRow> songs;
  std::unordered_map<std::string, std::string> names;
  std::vector<KkboxFileReport> reports;
};

KkboxFileReport report_of(const CsvReader& r) {
  return {r.path(), r.stats().records, r.stats().malformed, r.stats().bytes, r.issues_summary()};
}

void read_interactions(const std::string& path, bool is_test, const CsvOptions& copt, KkboxData& d,
                       KkboxInteractions& out, std::vector<KkboxFileReport>& reports) {
  std::vector<std::string> cols = {"msno", "song_id", "source_system_tab", "source_screen_name", "source_type"};
  cols.push_back(is_test ? "id" : "target");
  CsvReader r(path, cols, copt);
  const size_t c_m = r.column("msno"), c_s = r.column("song_id"), c_st = r.column("source_system_tab"),
               c_sn = r.column("source_screen_name"), c_ty = r.column("source_type"),
               c_last = r.column(is_test ? "id" : "target");
  std::vector<std::string_view> f;
  std::string scratch;
  while (r.next(f)) {
    int64_t last;
    if (!parse_int(f[c_last], last) || (!is_test && last != 0 && last != 1)) {
      r.reject(is_test ? "id is not an integer" : "target is not 0 or 1");
      continue;
    }
    if (f[c_m].empty() || f[c_s].empty()) {
      r.reject("empty msno or song_id");
      continue;
    }
    out.member.push_back(d.members.intern(f[c_m]));
    out.song.push_back(d.songs.intern(f[c_s]));
    out.system_tab.push_back(d.system_tab.intern(normalise_value(f[c_st], scratch)));
    out.screen_name.push_back(d.screen_name.intern(normalise_value(f[c_sn], scratch)));
    out.source_type.push_back(d.source_type.intern(normalise_value(f[c_ty], scratch)));
    if (is_test) out.id.push_back(last);
    else out.target.push_back(static_cast<int8_t>(last));
  }
  reports.push_back(report_of(r));
}

void read_side_tables(const std::string& dir, const KkboxReadOptions& opt, const CsvOptions& copt, SideTables& t) {
  std::vector<std::string_view> f;
  std::string scratch;
  {
    CsvReader r(dir + "/members.csv",
                {"msno", "city", "bd", "gender", "registered_via", "registration_init_time", "expiration_date"}, copt);
    const size_t c_m = r.column("msno"), c_c = r.column("city"), c_bd = r.column("bd"), c_g = r.column("gender"),
                 c_v = r.column("registered_via"), c_r = r.column("registration_init_time"),
                 c_e = r.column("expiration_date");
    while (r.next(f)) {
      int64_t bd = 0, reg = 0, exp = 0;
      if (!f[c_bd].empty() && !parse_int(f[c_bd], bd)) {
        r.reject("bd is not an integer");
        continue;
      }
      float days = NAN;
      if (parse_int(f[c_r], reg) && parse_int(f[c_e], exp)) days = days_between(reg, exp);
      MemberRow row{std::string(normalise_value(f[c_c], scratch)), std::string(normalise_value(f[c_g], scratch)),
                    std::string(normalise_value(f[c_v], scratch)), plausible_age(bd), days};
      t.members.insert_or_assign(std::string(f[c_m]), std::move(row));
    }
    t.reports.push_back(report_of(r));
  }
  {
    CsvReader r(dir + "/songs.csv", {"song_id", "song_length", "genre_ids", "artist_name", "language"}, copt);
    const size_t c_s = r.column("song_id"), c_l = r.column("song_length"), c_g = r.column("genre_ids"),
                 c_a = r.column("artist_name"), c_lang = r.column("language");
    t.songs.reserve(1 << 16);
    while (r.next(f)) {
      int64_t len = 0;
      float length = NAN;
      if (!f[c_l].empty()) {
        if (!parse_int(f[c_l], len) || len < 0) {
          r.reject("song_length is not a non-negative integer");
          continue;
        }
        length = float(len);
      }
      std::string_view genres = f[c_g];
      std::string_view first = genres.substr(0, genres.find('|'));
      SongRow row{std::string(normalise_value(first, scratch)), std::string(normalise_value(f[c_a], scratch)),
                  std::string(normalise_value(f[c_lang], scratch)), length};
      t.songs.insert_or_assign(std::string(f[c_s]), std::move(row));
    }
    t.reports.push_back(report_of(r));
  }
  const std::string extra = dir + "/song_extra_info.csv";
  if (opt.read_extra && std::filesystem::exists(extra)) {
    CsvReader r(extra, {"song_id", "name"}, copt);
    const size_t c_s = r.column("song_id"), c_n = r.column("name");
    while (r.next(f)) t.names.insert_or_assign(std::string(f[c_s]), std::string(normalise_value(f[c_n], scratch)));
    t.reports.push_back(report_of(r));
  }
}

}  // namespace

float days_between(int64_t a, int64_t b) {
  int64_t da, db;
  if (!valid_date(a, da) || !valid_date(b, db)) return NAN;
  return float(db - da);
}

int32_t plausible_age(int64_t bd) { return bd >= 1 && bd <= 100 ? int32_t(bd) : -1; }

KkboxData read_kkbox(const std::string& dir, const KkboxReadOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  MR_CHECK(std::filesystem::is_directory(dir), dir + ": not a directory (expected the KKBox data folder)");
  for (const char* name : {"train.csv", "members.csv", "songs.csv"})
    MR_CHECK(std::filesystem::exists(dir + "/" + name), dir + "/" + name + ": missing (a KKBox folder needs "
                                                                           "train.csv, members.csv and songs.csv)");
  CsvOptions copt;
  copt.strict = opt.strict;
  KkboxData d;
  SideTables side;
  // Side tables on a second thread; interactions here. They touch disjoint pools.
  auto side_done = std::async(std::launch::async, [&] { read_side_tables(dir, opt, copt, side); });
  std::vector<KkboxFileReport> reports;
  try {
    read_interactions(dir + "/train.csv", false, copt, d, d.train, reports);
    if (opt.read_test && std::filesystem::exists(dir + "/test.csv"))
      read_interactions(dir + "/test.csv", true, copt, d, d.test, reports);
  } catch (...) {
    side_done.wait();
    throw;
  }
  side_done.get();  // rethrows the side thread's error, if any

  const size_t nm = size_t(d.members.size()), ns = size_t(d.songs.size());
  d.member_city.assign(nm, -1);
  d.member_gender.assign(nm, -1);
  d.member_via.assign(nm, -1);
  d.member_age.assign(nm, -1);
  d.member_days.assign(nm, NAN);
  for (size_t m = 0; m < nm; ++m) {
    auto it = side.members.find(d.members.str(int32_t(m)));
    if (it == side.members.end()) continue;
    d.member_city[m] = d.city.intern(it->second.city);
    d.member_gender[m] = d.gender.intern(it->second.gender);
    d.member_via[m] = d.registered_via.intern(it->second.via);
    d.member_age[m] = it->second.age;
    d.member_days[m] = it->second.days;
  }
  d.song_genre.assign(ns, -1);
  d.song_artist.assign(ns, -1);
  d.song_language.assign(ns, -1);
  d.song_length_ms.assign(ns, NAN);
  if (opt.read_extra) d.song_name.assign(ns, "");
  for (size_t s = 0; s < ns; ++s) {
    const std::string& id = d.songs.str(int32_t(s));
    auto it = side.songs.find(id);
    if (it != side.songs.end()) {
      d.song_genre[s] = d.genre.intern(it->second.genre);
      d.song_artist[s] = d.artist.intern(it->second.artist);
      d.song_language[s] = d.language.intern(it->second.language);
      d.song_length_ms[s] = it->second.length_ms;
    }
    if (opt.read_extra) {
      auto n = side.names.find(id);
      if (n != side.names.end()) d.song_name[s] = n->second;
    }
  }
  reports.insert(reports.end(), side.reports.begin(), side.reports.end());
  d.reports = std::move(reports);
  d.parse_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return d;
}

}  // namespace musicrec::data
