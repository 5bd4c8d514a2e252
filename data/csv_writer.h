// Writes CSV the way the KKBox files are written (RFC-4180: a field with a comma, quote or newline is
// quoted and its quotes doubled), buffered, into a temporary file renamed into place on close(), so an
// interrupted write never leaves a half-written file under the final name.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace musicrec::data {

class CsvWriter {
 public:
  CsvWriter(const std::string& path, const std::vector<std::string>& header);
  ~CsvWriter();  // without close(): the temporary is removed
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  CsvWriter& field(std::string_view v);
  CsvWriter& field(int64_t v);
  CsvWriter& field_float(double v, int precision = 6);
  void end_row();
  void close();

 private:
  void put(std::string_view s);
  void flush();
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  std::string buf_;
  bool first_in_row_ = true;
};

}  // namespace musicrec::data
