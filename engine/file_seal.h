// Sealed files: musicrec's own caches carry a CRC-32 of their bytes in a 512-byte header, checked before
// any parser sees them.
//
// Debian's libhdf5 1.10.8 is not memory-safe on damaged files (fuzz/README.md). Files from elsewhere
// (MSD trees, checkpoints one is given) are read in a child process (engine/isolated.h); musicrec's
// own caches (song images, the KKBox dataset) are read in-process, because they can be gigabytes. What
// can happen to a cache is damage (a bad disk, a copy cut short, an editor): the seal turns any damaged
// byte into a clear error, and the cache is rebuilt, before libhdf5 parses it. A CRC is not a signature:
// a file crafted to crash libhdf5 can carry a valid one, so a cache file from somebody else is no safer
// than any HDF5 file from somebody else (docs/bad-inputs.md).
//
// The header is the HDF5 user block (H5Pset_userblock), which libhdf5 and h5py skip, in text:
// "musicrec sealed file\nbytes N\ncrc32 XXXXXXXX\n" then NULs up to 512 bytes; the CRC covers the N
// bytes after it, which are the rest of the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace musicrec {

constexpr size_t kSealBytes = 512;

// Writes the header over the first kSealBytes of `path` (left free for it) for the bytes after them.
void seal_file(const std::string& path);

// Writes `path` as kSealBytes of header and then `data`, sealed: a sealed file whose content is given
// (the fuzz targets seal the fuzzer's bytes this way; HDF5 finds its superblock after a user block
// prepended like this, as with h5jam).
void write_sealed(const std::string& path, const void* data, size_t n);

// Whether `path` begins with a seal header (not whether its bytes match it).
bool has_seal(const std::string& path);

// Throws an Error naming the file when it has no seal, or its bytes do not match it.
void check_seal(const std::string& path);

// CRC-32 (zlib's) of `n` bytes, continuing `crc`.
uint32_t crc32_of(const void* data, size_t n, uint32_t crc = 0);

}  // namespace musicrec
