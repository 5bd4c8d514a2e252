// Sealed files (see file_seal.h).
#include "engine/file_seal.h"

#include <zlib.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kernels/error.h"

namespace musicrec {
namespace {

constexpr char kMagic[] = "musicrec sealed file\n";

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

File open_or_throw(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  MR_CHECK(f != nullptr, path + ": cannot open (" + std::strerror(errno) + ")");
  return f;
}

// The CRC of everything after the header, and how many bytes that is.
std::pair<uint32_t, uint64_t> crc_after_header(FILE* f, const std::string& path) {
  MR_CHECK(std::fseek(f, long(kSealBytes), SEEK_SET) == 0, path + ": shorter than its " + std::to_string(kSealBytes) + "-byte header");
  // Left uninitialised: only the pages fread fills are touched. Zero-filling a 4 MB buffer was most of
  // the cost of opening a small cache in a new reader child (page faults; fuzz_song_images: 17 % of
  // the children's time). 1 MB per read keeps a multi-GB cache at zlib's speed.
  constexpr size_t kChunk = size_t(1) << 20;
  const std::unique_ptr<unsigned char[]> buf(new unsigned char[kChunk]);
  uint32_t crc = 0;
  uint64_t n = 0;
  for (size_t got; (got = std::fread(buf.get(), 1, kChunk, f)) > 0;) {
    crc = crc32_of(buf.get(), got, crc);
    n += got;
  }
  MR_CHECK(!std::ferror(f), path + ": read error (" + std::strerror(errno) + ")");
  return {crc, n};
}

}  // namespace

uint32_t crc32_of(const void* data, size_t n, uint32_t crc) {
  return uint32_t(crc32_z(crc, static_cast<const Bytef*>(data), n));
}

void seal_file(const std::string& path) {
  File f = open_or_throw(path, "r+b");
  const auto [crc, n] = crc_after_header(f.get(), path);
  char header[kSealBytes] = {};
  std::snprintf(header, sizeof header, "%sbytes %" PRIu64 "\ncrc32 %08" PRIx32 "\n", kMagic, n, crc);
  MR_CHECK(std::fseek(f.get(), 0, SEEK_SET) == 0 && std::fwrite(header, 1, sizeof header, f.get()) == sizeof header &&
               std::fflush(f.get()) == 0,
           path + ": cannot write its seal (disk full?)");
}

void write_sealed(const std::string& path, const void* data, size_t n) {
  {
    File f = open_or_throw(path, "wb");
    const char zeros[kSealBytes] = {};
    MR_CHECK(std::fwrite(zeros, 1, sizeof zeros, f.get()) == sizeof zeros &&
                 (n == 0 || std::fwrite(data, 1, n, f.get()) == n) && std::fflush(f.get()) == 0,
             path + ": cannot write (disk full?)");
  }
  seal_file(path);
}

bool has_seal(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  char head[sizeof kMagic - 1];
  return f && std::fread(head, 1, sizeof head, f.get()) == sizeof head && std::memcmp(head, kMagic, sizeof head) == 0;
}

void check_seal(const std::string& path) {
  File f = open_or_throw(path, "rb");
  char header[kSealBytes + 1] = {};
  const size_t got = std::fread(header, 1, kSealBytes, f.get());
  MR_CHECK(got == kSealBytes && std::memcmp(header, kMagic, sizeof kMagic - 1) == 0,
           path + ": not sealed by musicrec (no checksum header: written by an older musicrec, or not a musicrec cache)");
  uint64_t want_n = 0;
  uint32_t want_crc = 0;
  MR_CHECK(std::sscanf(header + sizeof kMagic - 1, "bytes %" SCNu64 "\ncrc32 %" SCNx32, &want_n, &want_crc) == 2,
           path + ": its checksum header is damaged");
  const auto [crc, n] = crc_after_header(f.get(), path);
  MR_CHECK(n == want_n, path + ": damaged: " + std::to_string(want_n) + " bytes were sealed after the header, the file has " +
                            std::to_string(n) + " (cut short or appended to)");
  char hex[2][9];
  std::snprintf(hex[0], sizeof hex[0], "%08" PRIx32, want_crc);
  std::snprintf(hex[1], sizeof hex[1], "%08" PRIx32, crc);
  MR_CHECK(crc == want_crc, path + ": damaged: its bytes' CRC-32 is " + hex[1] + ", sealed as " + hex[0] +
                                " (the file changed after musicrec wrote it)");
}

}  // namespace musicrec
