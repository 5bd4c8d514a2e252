// Telling a sanitizer report caused by libhdf5 from one caused by our code (fuzz/README.md, "libhdf5").
// Used by the isolated fuzz targets on each reader child's report (fuzz/isolated_fuzzing.h).
#pragma once
#include <string>

namespace musicrec::fuzz {

enum class Culprit { kLibhdf5, kOurs };

// libhdf5 when the first frame of the report that is either in libhdf5 or in C++ source is libhdf5's
// and, for a bad memory access, the memory involved was not allocated by our code (an address to the
// left of our block is another block's overflow) nor on a stack frame of ours. HDF5 writing past a
// buffer or variable we sized is our bug; a stale pointer into memory libFuzzer freed is libhdf5's. In
// a reader child (the report runs through engine/isolated.cpp's child_main), memory freed or allocated before
// the fork is never the reader's: libhdf5 reaching it is libhdf5's. Anything unclear, a report without
// a deciding frame included, is ours.
Culprit classify_report(const std::string& log);

// A short name for a report, to count and keep reports of the same kind together: what the sanitizer
// found and the function of its deciding frame, e.g. "SEGV in H5C_protect" or "heap-buffer-overflow in
// __interceptor_memcpy < H5D__compact_readvv" (a runtime frame names the caller that decides).
std::string report_signature(const std::string& log);

// Whether the text holds a sanitizer or libFuzzer report at all.
bool has_report(const std::string& log);
// Whether its report has a frame that decides (in libhdf5, or C++ source): "<empty stack>" has none.
bool has_deciding_frame(const std::string& log);

}  // namespace musicrec::fuzz
