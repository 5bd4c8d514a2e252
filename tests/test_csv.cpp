// The streaming CSV reader on hand-made files: quoting, escapes, CRLF, BOM, empty and padding rows,
// and every kind of malformed line (skipped and reported, or an error in strict mode).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <cmath>

#include "data/csv.h"
#include "data/csv_writer.h"
#include "kernels/error.h"
#include "tests/test_files.h"

namespace musicrec::data {
namespace {

std::vector<std::vector<std::string>> read_all(const std::string& path, CsvReader& r) {
  (void)path;
  std::vector<std::vector<std::string>> out;
  std::vector<std::string_view> f;
  while (r.next(f)) out.emplace_back(f.begin(), f.end());
  return out;
}

TEST(Csv, QuotingEscapesCrlfBomAndEmptyFields) {
  test::TempDir d;
  test::write_text(d.file("a.csv"),
                   "\xEF\xBB\xBF" "a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n,,\r\n\"\",\"\",z\r\n");
  CsvReader r(d.file("a.csv"), {"a", "b", "c"});
  auto rows = read_all(d.file("a.csv"), r);
  ASSERT_EQ(rows.size(), 2u);  // the all-empty row is padding
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"", "", "z"}));
  EXPECT_EQ(r.stats().blank, 1);
  EXPECT_EQ(r.stats().malformed, 0);
  EXPECT_EQ(r.header()[0], "a");
}

TEST(Csv, UnclosedQuoteSkipsOnlyItsLineAndReadingResumes) {
  // The song_extra_info.csv trap: a quote that never closes must not swallow the lines after it.
  test::TempDir d;
  std::string text = "id,name,isrc\n1,ok,A\n2,\"Love mode feat.PE'Z & VERBAL(m-flo),\n";
  for (int i = 3; i < 10; ++i) text += std::to_string(i) + ",name " + std::to_string(i) + ",X\n";
  test::write_text(d.file("e.csv"), text);
  CsvReader r(d.file("e.csv"), {"id", "name"});
  auto rows = read_all(d.file("e.csv"), r);
  EXPECT_EQ(rows.size(), 8u);
  EXPECT_EQ(r.stats().malformed, 1);
  ASSERT_EQ(r.stats().first_issues.size(), 1u);
  EXPECT_EQ(r.stats().first_issues[0].line, 3);
  EXPECT_NE(r.issues_summary().find("line 3: quote opened and never closed"), std::string::npos) << r.issues_summary();
}

TEST(Csv, WrongFieldCountsAndTextAfterQuotesAreSkippedAndCounted) {
  test::TempDir d;
  test::write_text(d.file("m.csv"), "a,b\n1,2\n1,2,3\n1\n\"x\"y,2\n5,6");  // no final newline either
  CsvReader r(d.file("m.csv"), {"a", "b"});
  auto rows = read_all(d.file("m.csv"), r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"5", "6"}));
  EXPECT_EQ(r.stats().malformed, 3);
  EXPECT_NE(r.issues_summary().find("line 3: 3 fields, header has 2"), std::string::npos) << r.issues_summary();
  EXPECT_NE(r.issues_summary().find("line 5: text after a closing quote"), std::string::npos) << r.issues_summary();
}

TEST(Csv, StrictModeMakesTheFirstBadLineAnErrorNamingFileAndLine) {
  test::TempDir d;
  test::write_text(d.file("s.csv"), "a,b\n1,2\n1,2,3\n");
  CsvOptions o;
  o.strict = true;
  CsvReader r(d.file("s.csv"), {"a"}, o);
  std::vector<std::string_view> f;
  EXPECT_TRUE(r.next(f));
  try {
    r.next(f);
    FAIL() << "strict mode accepted a bad line";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("s.csv: line 3: 3 fields"), std::string::npos) << m;
  }
}

TEST(Csv, MissingFileColumnAndEmptyFileAreClearErrors) {
  test::TempDir d;
  EXPECT_THROW(CsvReader(d.file("none.csv"), {}), Error);
  test::write_text(d.file("h.csv"), "msno,song_id\n");
  try {
    CsvReader r(d.file("h.csv"), {"msno", "target", "song_id", "source_type"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing columns target, source_type"), std::string::npos) << e.what();
  }
  test::write_text(d.file("empty.csv"), "");
  EXPECT_THROW(CsvReader(d.file("empty.csv"), {}), Error);
  EXPECT_THROW(CsvReader(d.path.string(), {}), Error);  // a directory
}

TEST(Csv, OverlongLineIsSkippedWithoutBufferingIt) {
  test::TempDir d;
  std::string big(3000, 'x');
  test::write_text(d.file("l.csv"), "a,b\n1,2\n" + big + "," + big + "\n3,4\n");
  CsvOptions o;
  o.max_line_bytes = 1000;
  CsvReader r(d.file("l.csv"), {"a"}, o);
  auto rows = read_all(d.file("l.csv"), r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], "3");
  EXPECT_EQ(r.stats().malformed, 1);
}

// A 2 GB line (a sparse file: a hole of 2^31 zero bytes between two good rows) is skipped as malformed
// while the reader's memory stays bounded by its 4 MB chunk, and the row after it is read.
TEST(Csv, TwoGigabyteLineIsSkippedInBoundedMemory) {
  test::TempDir d;
  const std::string path = d.file("huge.csv");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fputs("a,b\n1,2\n", f);
    std::fseek(f, long(1) << 31, SEEK_CUR);
    std::fputs("\n3,4\n", f);
    std::fclose(f);
  }
  // Reset the peak resident size where the kernel allows it, so the bound below is this read's.
  const bool peak_reset = bool(std::ofstream("/proc/self/clear_refs") << "5");
  CsvReader r(path, {"a", "b"});
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string_view> f;
  while (r.next(f)) rows.push_back({std::string(f[0]), std::string(f[1])});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][0], "3");
  EXPECT_EQ(r.stats().malformed, 1);
  EXPECT_NE(r.issues_summary().find("longer than"), std::string::npos) << r.issues_summary();
  if (peak_reset) {
    std::ifstream status("/proc/self/status");
    std::string line;
    int64_t hwm_kb = -1, rss_kb = -1;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) == 0) hwm_kb = std::stoll(line.substr(6));
      if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stoll(line.substr(6));
    }
    EXPECT_LT(hwm_kb - rss_kb, 256 * 1024) << "the read's peak was " << hwm_kb << " kB against " << rss_kb << " kB now";
  }
}

// Field bytes are passed through as they are: KKBox ids and names are opaque, and a byte that is not
// UTF-8 (or a lone 0xA0) is neither an error nor rewritten.
TEST(Csv, BytesThatAreNotUtf8PassThroughUnchanged) {
  test::TempDir d;
  test::write_text(d.file("b.csv"), "a,b\n\xff\xfe,x\xa0y\n");
  CsvReader r(d.file("b.csv"), {"a", "b"});
  auto rows = read_all(d.file("b.csv"), r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "\xff\xfe");
  EXPECT_EQ(rows[0][1], "x\xa0y");
}

// A reader whose constructor throws (here: a required column missing) closes its file. Found by
// fuzz_csv: each rejected header leaked a descriptor until fopen failed with "Too many open files".
TEST(Csv, RejectedHeadersCloseTheirFiles) {
  test::TempDir d;
  test::write_text(d.file("h.csv"), "a,b\n1,2\n");
  auto open_files = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{});
  };
  const auto before = open_files();
  for (int i = 0; i < 200; ++i) EXPECT_THROW(CsvReader(d.file("h.csv"), {"c"}), Error);
  EXPECT_EQ(open_files(), before);
}

TEST(Csv, LinesAcrossChunkBoundariesReadIntact) {
  test::TempDir d;
  std::string text = "k,v\n";
  for (int i = 0; i < 300000; ++i) text += std::to_string(i) + ",\"v" + std::to_string(i) + "\"\n";  // > 4 MiB
  test::write_text(d.file("big.csv"), text);
  CsvReader r(d.file("big.csv"), {"k", "v"});
  std::vector<std::string_view> f;
  int64_t n = 0;
  while (r.next(f)) {
    ASSERT_EQ(f[0], std::to_string(n));
    ASSERT_EQ(f[1], "v" + std::to_string(n));
    ++n;
  }
  EXPECT_EQ(n, 300000);
}

TEST(CsvWriter, QuotesWhatNeedsQuotingAndRoundTrips) {
  test::TempDir d;
  {
    CsvWriter w(d.file("w.csv"), {"a", "b"});
    w.field("x, \"y\"").field(int64_t(7));
    w.end_row();
    w.close();
  }
  CsvReader r(d.file("w.csv"), {"a", "b"});
  std::vector<std::string_view> f;
  ASSERT_TRUE(r.next(f));
  EXPECT_EQ(f[0], "x, \"y\"");
  EXPECT_EQ(f[1], "7");
}

TEST(CsvWriter, NotClosedLeavesNoFile) {
  test::TempDir d;
  {
    CsvWriter w(d.file("w.csv"), {"a"});
    w.field("1");
    w.end_row();
  }
  EXPECT_FALSE(std::filesystem::exists(d.file("w.csv")));
  EXPECT_TRUE(std::filesystem::is_empty(d.path));
}

}  // namespace
}  // namespace musicrec::data
