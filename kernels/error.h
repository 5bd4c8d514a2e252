// The one exception type of musicrec and the checks every layer builds on.
// A failed check names the statement or call, the file and line, and the library's own message,
// so an error read in a log points at its cause without a debugger.
#pragma once
#include <stdexcept>
#include <string>

namespace musicrec {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds "<what> at <file>:<line>: <detail>" and throws. Kept out of line so the check macros
// stay small at every call site.
[[noreturn]] void throw_error(const char* what, const char* file, int line, const std::string& detail);

}  // namespace musicrec

// Checks a condition that depends on the caller (shapes, dtypes, sizes); `msg` is a std::string
// expression built only when the check fails.
#define MR_CHECK(cond, msg)                                                   \
  do {                                                                        \
    if (!(cond)) ::musicrec::throw_error(#cond, __FILE__, __LINE__, (msg));   \
  } while (0)
