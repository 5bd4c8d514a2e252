// Out-of-line builder of musicrec::Error messages (see error.h).
#include "kernels/error.h"

#include <cstring>

namespace musicrec {

[[noreturn]] void throw_error(const char* what, const char* file, int line, const std::string& detail) {
  // Report the path from the repository root rather than the build machine's absolute path.
  const char* short_file = file;
  for (const char* dir : {"/kernels/", "/engine/", "/models/", "/data/", "/apps/", "/tests/", "/bench/"}) {
    if (const char* p = std::strstr(file, dir)) { short_file = p + 1; break; }
  }
  throw Error(detail + " [" + what + " at " + short_file + ":" + std::to_string(line) + "]");
}

}  // namespace musicrec
