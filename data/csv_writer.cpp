// Buffered, atomically renamed CSV writer (see csv_writer.h).
#include "data/csv_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/error.h"

namespace musicrec::data {

CsvWriter::CsvWriter(const std::string& path, const std::vector<std::string>& header)
    : path_(path), tmp_(path + ".tmp-" + std::to_string(::getpid())) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  MR_CHECK(f_ != nullptr, path + ": cannot create (" + std::strerror(errno) + ")");
  for (auto& h : header) field(h);
  end_row();
}

CsvWriter::~CsvWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void CsvWriter::put(std::string_view s) {
  buf_.append(s);
  if (buf_.size() > (size_t(1) << 20)) flush();
}

void CsvWriter::flush() {
  if (buf_.empty()) return;
  MR_CHECK(std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size(),
           path_ + ": write failed (" + std::strerror(errno) + "; disk full?)");
  buf_.clear();
}

CsvWriter& CsvWriter::field(std::string_view v) {
  if (!first_in_row_) put(",");
  first_in_row_ = false;
  if (v.find_first_of(",\"\n\r") == std::string_view::npos) {
    put(v);
    return *this;
  }
  std::string q = "\"";
  for (char c : v) {
    if (c == '"') q += '"';
    q += c;
  }
  q += '"';
  put(q);
  return *this;
}

CsvWriter& CsvWriter::field(int64_t v) { return field(std::string_view(std::to_string(v))); }

CsvWriter& CsvWriter::field_float(double v, int precision) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", precision, v);
  return field(std::string_view(b));
}

void CsvWriter::end_row() {
  put("\n");
  first_in_row_ = true;
}

void CsvWriter::close() {
  flush();
  bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok) {
    std::remove(tmp_.c_str());
    MR_CHECK(false, path_ + ": write failed (disk full?)");
  }
  MR_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, path_ + ": cannot rename the finished file into place");
}

}  // namespace musicrec::data
