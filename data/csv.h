// A streaming reader of comma-separated files as the KKBox data publishes them: RFC-4180 quoting
// with "" escapes inside a line, UTF-8 with an optional BOM, LF or CRLF line ends.
//
// Real files break the RFC in one known way (../shared/DATA.md): a quote that never closes
// (song_extra_info.csv line 24470). A reader that lets a quoted field run on over newlines swallows
// the next 148 lines into one record. No KKBox field legitimately contains a newline, so here a quote
// still open at the end of its line makes that one line malformed, and reading resumes on the next.
// A malformed line (unclosed quote, text after a closing quote, wrong number of fields, a line over
// the length limit) is skipped and counted; the report names how many and the first few line numbers.
// In strict mode the first one is an error naming the file and line.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace musicrec::data {

struct CsvOptions {
  bool strict = false;
  size_t max_line_bytes = size_t(1) << 20;  // longer lines are malformed (and never buffered whole)
};

struct CsvIssue {
  int64_t line;
  std::string reason;
};

struct CsvStats {
  int64_t records = 0;    // good records returned
  int64_t malformed = 0;  // lines skipped
  int64_t blank = 0;      // records whose fields are all empty (padding rows), skipped
  std::vector<CsvIssue> first_issues;  // up to 5
  int64_t bytes = 0;
};

class CsvReader {
 public:
  // Opens `path` and reads its header. `required` columns must all be present (one error naming the
  // missing ones); other columns are allowed and ignored by callers.
  CsvReader(const std::string& path, const std::vector<std::string>& required, CsvOptions options = {});
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Next good record; false at the end. Views stay valid until the next call.
  bool next(std::vector<std::string_view>& fields);
  // Rejects the record just returned for a bad value (a field the caller could not parse): counted
  // and reported like a malformed line, or an error in strict mode.
  void reject(const std::string& why);
  // Index of a header column (checked at construction for required ones).
  size_t column(const std::string& name) const;
  const std::vector<std::string>& header() const { return header_; }
  int64_t line() const { return line_; }  // physical line of the last record returned
  const CsvStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }
  // "N malformed lines skipped (first at lines a (reason), b (reason), ...)" or "" when clean.
  std::string issues_summary() const;

 private:
  bool read_line(std::string_view& line);  // false at EOF
  bool split(std::string_view line, std::vector<std::string_view>& fields, std::string& why);
  void malformed(const std::string& why);

  std::string path_;
  CsvOptions opt_;
  // Owned through a unique_ptr so a constructor that throws (a missing column, an empty file) still
  // closes it: found by fuzz_csv, which ran out of file descriptors after 227,000 rejected headers.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
  std::FILE* f_ = nullptr;  // file_.get()
  static constexpr size_t kChunk = size_t(4) << 20;
  size_t chunk_ = kChunk;  // bytes per read (smaller for small files)
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  int64_t line_ = 0;
  std::vector<std::string> header_;
  std::string scratch_;  // unescaped quoted fields of the current record
  CsvStats stats_;
};

}  // namespace musicrec::data
