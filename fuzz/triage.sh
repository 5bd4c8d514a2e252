#!/usr/bin/env bash
# Classifies one libFuzzer report (the log of a run that stopped on a finding) as "libhdf5" or
# "musicrec": libhdf5 when the first frame that is either in libhdf5 or in C++ source is libhdf5's,
# and, for a bad memory access, the memory involved was also allocated by libhdf5 (HDF5 writing past
# a buffer we sized is our bug). Anything unclear (a report without such a frame) counts as ours.
# Usage: fuzz/triage.sh LOG
set -euo pipefail
log=$1
first_frame() {  # stdin: a stack; prints the first frame that is libhdf5's or has a C++ source location
  # Sanitizer interceptors (strdup, memcpy, ...) and libFuzzer live in the fuzz binary without a source
  # file of ours, and libc frames name .c files: all are skipped, so the frame that decides is the
  # first one in libhdf5 or in C++ code (ours, or the standard library inlined into ours).
  grep -E '^ +#[0-9]+ ' | grep -E 'libhdf5|\.(cpp|cc|h|hpp):[0-9]' | grep -vE ' in fuzzer::' | head -1
}
where() { if grep -q 'libhdf5' <<<"$1"; then echo libhdf5; else echo musicrec; fi; }
report=$(sed -n '/==ERROR\|ERROR: libFuzzer\|runtime error/,$p' "$log")
[[ -n "$report" ]] || { echo musicrec; exit 0; }
crash=$(where "$(first_frame <<<"$report")")
alloc_stack=$(sed -n '/allocated by thread/,/^$/p' <<<"$report")
if [[ "$crash" == libhdf5 && -n "$alloc_stack" ]]; then crash=$(where "$(first_frame <<<"$alloc_stack")"); fi
echo "$crash"
