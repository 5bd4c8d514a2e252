// Reader of the KKBox (WSDM Cup 2018) files: train.csv, test.csv, members.csv, songs.csv and, where
// present, song_extra_info.csv (formats and traps in ../shared/DATA.md).
//
// The result keeps every categorical value as a code into a per-column StringPool ("raw codes"), with
// the side information of members and songs joined onto the member and song codes that the
// interactions use. Turning raw codes into model indices (fitted on a training split only) is
// kkbox_encode.h's job. Values are normalised on the way in: U+00A0 becomes a space, surrounding
// spaces are trimmed, and the literal "null" counts as empty (missing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/csv.h"
#include "data/string_pool.h"

namespace musicrec::data {

struct KkboxReadOptions {
  bool strict = false;         // first malformed line is an error
  bool read_test = true;       // test.csv (needed for predict)
  bool read_extra = false;     // song_extra_info.csv (names; not a model feature)
};

struct KkboxInteractions {
  std::vector<int32_t> member, song, system_tab, screen_name, source_type;
  std::vector<int8_t> target;  // train.csv only (0/1)
  std::vector<int64_t> id;     // test.csv only
  int64_t size() const { return static_cast<int64_t>(member.size()); }
};

struct KkboxFileReport {
  std::string file;
  int64_t records = 0, malformed = 0, bytes = 0;
  std::string issues;  // CsvReader::issues_summary()
};

struct KkboxData {
  StringPool members, songs;                          // msno, song_id
  StringPool system_tab, screen_name, source_type;    // interaction context
  StringPool genre, artist, language, city, gender, registered_via;
  KkboxInteractions train, test;
  // Side information per member code / song code; -1 (or NaN for numbers) where members.csv or
  // songs.csv has no row for that id. Categorical entries are codes into the pools above.
  std::vector<int32_t> member_city, member_gender, member_via, member_age;  // age in years, -1 unknown
  std::vector<float> member_days;                                          // membership length in days
  std::vector<int32_t> song_genre, song_artist, song_language;
  std::vector<float> song_length_ms;
  // song_extra_info.csv, when read: song code -> name (empty when absent).
  std::vector<std::string> song_name;
  std::vector<KkboxFileReport> reports;
  double parse_seconds = 0;
};

KkboxData read_kkbox(const std::string& dir, const KkboxReadOptions& options = {});

// "null" and empty are missing; U+00A0 -> ' '; trimmed. Returns a view into `scratch` or `s`.
std::string_view normalise_value(std::string_view s, std::string& scratch);
// Days between two YYYYMMDD dates (b - a); NaN when either is not a valid date.
float days_between(int64_t yyyymmdd_a, int64_t yyyymmdd_b);
// Age from members.csv's bd: -1 when outside 1..100 (the real file has -43..1051 and many zeros).
int32_t plausible_age(int64_t bd);

}  // namespace musicrec::data
