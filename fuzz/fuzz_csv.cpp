// Fuzz target: the CSV reader (data/csv.h) in lenient and strict mode, with a small line limit
// sometimes so the over-long-line path is reached. Byte 0 picks the options; the rest is the file.
#include "data/csv.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  musicrec::data::CsvOptions o;
  o.strict = data[0] & 1;
  if (data[0] & 2) o.max_line_bytes = 64;
  const std::string path = musicrec::fuzz::write_input("input.csv", data + 1, size - 1);
  MR_FUZZ_EXPECT_CLEAN_ERRORS({
    musicrec::data::CsvReader r(path, (data[0] & 4) ? std::vector<std::string>{"msno", "song_id"} : std::vector<std::string>{});
    std::vector<std::string_view> fields;
    while (r.next(fields))
      if (!fields.empty() && fields[0].size() == 3) r.reject("a three-byte first field");
    (void)r.issues_summary();
  });
  return 0;
}
