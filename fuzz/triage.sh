#!/usr/bin/env bash
# Classifies one libFuzzer report (the log of a run that stopped on a finding) as "libhdf5" or
# "musicrec": libhdf5 when the first frame outside the sanitizers, libFuzzer and libc is in
# libhdf5, and, for a bad memory access, the memory involved was also allocated by libhdf5 (HDF5
# writing past a buffer we sized is our bug). Anything unclear counts as ours.
# Usage: fuzz/triage.sh LOG
set -euo pipefail
log=$1
first_frame() {  # stdin: a stack; prints the first frame that is not plumbing
  grep -E '^ +#[0-9]+ ' | grep -vE ' in (__interceptor_|__asan|__sanitizer|__lsan|__ubsan|fuzzer::|malloc|calloc|realloc|free|operator new)|\(/lib/x86_64-linux-gnu/libc\.so|<unknown module>' | head -1
}
where() { if grep -q 'libhdf5' <<<"$1"; then echo libhdf5; else echo musicrec; fi; }
report=$(sed -n '/==ERROR\|ERROR: libFuzzer\|runtime error/,$p' "$log")
[[ -n "$report" ]] || { echo musicrec; exit 0; }
crash=$(where "$(first_frame <<<"$report")")
alloc_stack=$(sed -n '/allocated by thread/,/^$/p' <<<"$report")
if [[ "$crash" == libhdf5 && -n "$alloc_stack" ]]; then crash=$(where "$(first_frame <<<"$alloc_stack")"); fi
echo "$crash"
