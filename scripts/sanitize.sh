#!/usr/bin/env bash
# Builds the CPU-only engine with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs
# every test there (the tests that start the `musicrec` program run the sanitized one too). Called by
# .ci/run after the normal test command. Leak checking is on; a finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUSICREC_CUDA=OFF -DMUSICREC_SANITIZE=ON \
  -DMUSICREC_BENCH=OFF >/dev/null
cmake --build build-asan -j "${MUSICREC_JOBS:-2}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== tests: sanitizer build (build-asan/, ASan + UBSan) =="
ctest --test-dir build-asan --output-on-failure -j 2 --timeout 900
