// Shared plumbing of the fuzz targets (fuzz/README.md): the readers take file paths, as the program
// does, so each input is written to a file in a private temporary folder (tmpfs where there is one)
// and the reader is called on that path. Only musicrec::Error is an accepted outcome for bad input:
// any other exception escapes the target and libFuzzer reports it as a crash, as it does for
// sanitizer reports, aborts and allocations over -malloc_limit_mb.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace musicrec::fuzz {

// The private folder of this process, created on first use and removed at exit.
const std::string& scratch_dir();
// Writes bytes to scratch_dir()/name (replacing it) and returns the path.
std::string write_input(const std::string& name, const uint8_t* data, size_t size);

}  // namespace musicrec::fuzz

// Runs `body`; a musicrec::Error (a clear message for bad input) is the expected way to fail.
#define MR_FUZZ_EXPECT_CLEAN_ERRORS(body)        \
  try {                                          \
    body;                                        \
  } catch (const ::musicrec::Error&) {           \
  }
