// Streaming CSV reader (see csv.h).
#include "data/csv.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "kernels/error.h"

namespace musicrec::data {



CsvReader::CsvReader(const std::string& path, const std::vector<std::string>& required, CsvOptions options)
    : path_(path), opt_(options) {
  file_.reset(std::fopen(path.c_str(), "rb"));
  f_ = file_.get();
  MR_CHECK(f_ != nullptr, path + ": cannot open (" + std::strerror(errno) + ")");
  // Reads go in chunks of 4 MB, or of the whole file when it is smaller: a small file (most inputs in
  // tests, a listener's files) then costs no 4 MB zero-filled buffer per reader.
  struct stat st {};
  if (::fstat(::fileno(f_), &st) == 0 && S_ISREG(st.st_mode) && uint64_t(st.st_size) < kChunk)
    chunk_ = std::max<size_t>(size_t(st.st_size) + 1, 4096);
  buf_.resize(chunk_);
  std::string_view line;
  MR_CHECK(read_line(line), path + ": empty file, expected a header line");
  if (line.size() >= 3 && std::memcmp(line.data(), "\xEF\xBB\xBF", 3) == 0) line.remove_prefix(3);
  std::vector<std::string_view> fields;
  std::string why;
  MR_CHECK(split(line, fields, why), path + ": line 1: unreadable header (" + why + ")");
  for (auto f : fields) header_.emplace_back(f);
  std::vector<std::string> missing;
  for (const auto& r : required)
    if (std::find(header_.begin(), header_.end(), r) == header_.end()) missing.push_back(r);
  if (!missing.empty()) {
    std::string m;
    for (auto& s : missing) m += (m.empty() ? "" : ", ") + s;
    MR_CHECK(false, path + ": missing column" + (missing.size() > 1 ? "s " : " ") + m);
  }
}

CsvReader::~CsvReader() = default;

size_t CsvReader::column(const std::string& name) const {
  auto it = std::find(header_.begin(), header_.end(), name);
  MR_CHECK(it != header_.end(), path_ + ": no column '" + name + "'");
  return static_cast<size_t>(it - header_.begin());
}

bool CsvReader::read_line(std::string_view& line) {
  for (;;) {
    const char* start = buf_.data() + begin_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    if (nl || (eof_ && end_ > begin_)) {
      size_t len = nl ? size_t(nl - start) : end_ - begin_;
      begin_ += len + (nl ? 1 : 0);
      ++line_;
      stats_.bytes += int64_t(len + (nl ? 1 : 0));
      if (len > opt_.max_line_bytes) {  // whole in the buffer, but still over the limit
        malformed("line longer than " + std::to_string(opt_.max_line_bytes) + " bytes");
        continue;
      }
      if (len > 0 && start[len - 1] == '\r') --len;
      line = std::string_view(start, len);
      return true;
    }
    if (eof_) return false;
    // Keep the partial line, refill behind it; a line longer than the limit is skipped in place.
    size_t partial = end_ - begin_;
    if (partial >= opt_.max_line_bytes) {
      ++line_;
      malformed("line longer than " + std::to_string(opt_.max_line_bytes) + " bytes");
      --line_;  // the rest of this line is consumed below without counting a new line
      // Discard until the next newline.
      for (;;) {
        size_t got = std::fread(buf_.data(), 1, buf_.size(), f_);
        stats_.bytes += int64_t(got);
        if (got == 0) {
          eof_ = true;
          begin_ = end_ = 0;
          ++line_;
          break;
        }
        const char* n2 = static_cast<const char*>(std::memchr(buf_.data(), '\n', got));
        if (n2) {
          begin_ = size_t(n2 - buf_.data()) + 1;
          end_ = got;
          stats_.bytes -= int64_t(end_ - begin_);
          ++line_;
          break;
        }
      }
      continue;
    }
    std::memmove(buf_.data(), buf_.data() + begin_, partial);
    begin_ = 0;
    end_ = partial;
    if (buf_.size() < partial + chunk_) buf_.resize(partial + chunk_);
    size_t got = std::fread(buf_.data() + end_, 1, buf_.size() - end_, f_);
    MR_CHECK(!std::ferror(f_), path_ + ": read error near line " + std::to_string(line_ + 1));
    if (got == 0) eof_ = true;
    end_ += got;
  }
}

bool CsvReader::split(std::string_view line, std::vector<std::string_view>& fields, std::string& why) {
  fields.clear();
  if (std::memchr(line.data(), '"', line.size()) == nullptr) {  // fast path: no quoting
    size_t start = 0;
    for (;;) {
      size_t comma = line.find(',', start);
      if (comma == std::string_view::npos) {
        fields.push_back(line.substr(start));
        return true;
      }
      fields.push_back(line.substr(start, comma - start));
      start = comma + 1;
    }
  }
  // Quoted fields are unescaped into scratch_, reserved so views into it stay valid.
  scratch_.clear();
  scratch_.reserve(line.size());
  size_t i = 0;
  for (;;) {
    if (i < line.size() && line[i] == '"') {
      size_t start = scratch_.size();
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            scratch_.push_back('"');
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        scratch_.push_back(line[i++]);
      }
      if (!closed) {
        why = "quote opened and never closed on this line";
        return false;
      }
      fields.push_back(std::string_view(scratch_.data() + start, scratch_.size() - start));
      if (i == line.size()) return true;
      if (line[i] != ',') {
        why = "text after a closing quote";
        return false;
      }
      ++i;
      if (i == line.size()) {
        fields.push_back(std::string_view());
        return true;
      }
    } else {
      size_t comma = line.find(',', i);
      if (comma == std::string_view::npos) {
        fields.push_back(line.substr(i));
        return true;
      }
      fields.push_back(line.substr(i, comma - i));
      i = comma + 1;
      if (i == line.size()) {
        fields.push_back(std::string_view());
        return true;
      }
    }
  }
}

void CsvReader::malformed(const std::string& why) {
  MR_CHECK(!opt_.strict, path_ + ": line " + std::to_string(line_) + ": " + why);
  ++stats_.malformed;
  if (stats_.first_issues.size() < 5) stats_.first_issues.push_back({line_, why});
}

bool CsvReader::next(std::vector<std::string_view>& fields) {
  std::string_view line;
  std::string why;
  while (read_line(line)) {
    if (line.empty()) continue;  // blank lines (a trailing newline) are not records
    if (!split(line, fields, why)) {
      malformed(why);
      continue;
    }
    if (fields.size() != header_.size()) {
      malformed(std::to_string(fields.size()) + " fields, header has " + std::to_string(header_.size()));
      continue;
    }
    bool all_empty = true;
    for (auto f : fields) all_empty = all_empty && f.empty();
    if (all_empty) {
      ++stats_.blank;
      continue;
    }
    ++stats_.records;
    return true;
  }
  return false;
}

void CsvReader::reject(const std::string& why) {
  --stats_.records;
  malformed(why);
}

std::string CsvReader::issues_summary() const {
  if (stats_.malformed == 0) return "";
  std::string s = std::to_string(stats_.malformed) + " malformed line" + (stats_.malformed > 1 ? "s" : "") +
                  " skipped (first at ";
  for (size_t i = 0; i < stats_.first_issues.size(); ++i)
    s += (i ? ", " : "") + std::string("line ") + std::to_string(stats_.first_issues[i].line) + ": " +
         stats_.first_issues[i].reason;
  return s + ")";
}

}  // namespace musicrec::data
