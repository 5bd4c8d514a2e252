#!/usr/bin/env bash
# Fuzzes every reader (fuzz/README.md): builds the libFuzzer targets with clang, ASan and UBSan into
# build-fuzz/, writes seed corpora (small generated files, plus ../shared/real-samples when present),
# then runs each target for a number of executions or seconds and prints one line per target.
#
#   scripts/fuzz.sh                      every target, 1,000,000 executions each, 2 at a time
#   scripts/fuzz.sh --seconds 60         every target for 60 s
#   scripts/fuzz.sh --runs 10000 msd csv some targets, 10,000 executions each
#   scripts/fuzz.sh --replay             build, then run every seed through its target once (CI)
#
# Corpora grow across runs in build-fuzz/corpus/<target>/; a finding is saved under
# build-fuzz/crashes/<target>/ and its log under build-fuzz/logs/, and the script exits 1.
# Reproduce one with: build-fuzz/bin/musicrec_fuzz_<target> build-fuzz/crashes/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=1000000 SECONDS_EACH=0 JOBS=${MUSICREC_JOBS:-2} TARGETS=() REPLAY=0
while (($#)); do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECONDS_EACH=$2; RUNS=0; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --replay) REPLAY=1; shift ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
ALL=(csv kkbox msd lastfm_json lastfm_db spotify checkpoint song_images cf_cache)
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t' (targets: ${ALL[*]})" >&2; exit 2; }
done

if [[ "${MUSICREC_SKIP_SETUP:-0}" != 1 ]]; then bash scripts/setup.sh; fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUSICREC_CUDA=OFF \
  -DMUSICREC_FUZZ=ON -DMUSICREC_TESTS=OFF -DMUSICREC_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "${MUSICREC_JOBS:-2}"

B=build-fuzz
rm -rf "$B/seeds"
REAL=../shared/real-samples
ASAN_OPTIONS=detect_leaks=0 "$B/bin/musicrec_fuzz_seeds" "$B/seeds" "$([[ -d $REAL ]] && echo "$REAL")"
mkdir -p "$B/logs"
# allocator_may_return_null: a C library's malloc (libhdf5, SQLite) of an absurd size returns NULL, as on a
# real system, and the library reports an error; C++ allocations (ours) still abort. malloc_limit_mb:
# no input here is over a few MB, so a single allocation of 128 MB is a size field trusted unchecked.
# quarantine_size_mb: a smaller quarantine of freed memory keeps the resident size of long runs down.
# fast_unwind_on_fatal=0: a fatal signal (a reader child's watchdog landing in libhdf5 or in the
# sanitizer's own code, neither built with frame pointers) gets a full stack, so the triage can decide.
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:detect_stack_use_after_return=1:quarantine_size_mb=64:fast_unwind_on_fatal=0
export LSAN_OPTIONS=suppressions=$PWD/fuzz/lsan_hdf5.supp
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The isolated targets' reader children report unsymbolised; the parent symbolises their frames through
# one llvm-symbolizer kept for the run (fuzz/symbolize.h), instead of each dying child starting one.
# max_allocation_size_mb: an allocation over 128 MB is refused before it is made, where -malloc_limit_mb
# reports it only after: the sanitizer has by then written the shadow of the whole block (1/8 of its
# size: 128 MB of page faults for a 1 GB malloc). libhdf5 trusts sizes in damaged headers and asks for
# such blocks in one input of ~10 (H5C_protect); that was half of the msd target's time. libhdf5 now
# gets NULL and refuses the file; our C++ code gets a sanitizer report (out of memory), a finding.
ISOLATED_ASAN_OPTIONS=$ASAN_OPTIONS:symbolize=0:max_allocation_size_mb=128
export ISOLATED_ASAN_OPTIONS

# Targets that read HDF5 go through Debian's libhdf5 1.10.8, which is not memory-safe on corrupted files
# (fuzz/README.md). They read in a reader child as the program reads untrusted HDF5
# (fuzz/isolated_fuzzing.h): the harness keeps the first few reports of each kind the child makes inside
# the library under crashes/<target>/libhdf5/, counts them all and goes on; a report in our code stops
# the target.
ISOLATED_TARGETS=" msd checkpoint song_images cf_cache "

if ((REPLAY)); then  # deterministic: each seed once, no mutation; any finding fails
  echo "== fuzz targets: replaying the seed corpora =="
  for t in "${TARGETS[@]}"; do
    options=$ASAN_OPTIONS
    [[ "$ISOLATED_TARGETS" == *" $t "* ]] && options=$ISOLATED_ASAN_OPTIONS
    ASAN_OPTIONS=$options "$B/bin/musicrec_fuzz_$t" -runs=0 "$B/seeds/$t" >"$B/logs/$t-replay.log" 2>&1 || {
      echo "$t: a seed failed (log: $B/logs/$t-replay.log)"; tail -20 "$B/logs/$t-replay.log"; exit 1; }
    echo "$t: $(ls "$B/seeds/$t" | wc -l) seeds ok"
  done
  # The isolated targets' harness must be able to fail: a fault or a loop of ours in the reader child
  # stops the run with the child's report, symbolised in the parent (the frame in fuzz_selftest.cpp
  # must be named); a clean read does not (fuzz/fuzz_selftest.cpp).
  mkdir -p "$B/selftest"
  for input in fine overflow allocate loop; do
    printf '%s' "$input" >"$B/selftest/$input"
    rc=0
    ASAN_OPTIONS=$ISOLATED_ASAN_OPTIONS "$B/bin/musicrec_fuzz_selftest" -runs=0 -artifact_prefix="$B/selftest/found-" \
      "$B/selftest/$input" >"$B/logs/selftest-$input.log" 2>&1 || rc=$?
    caught=0
    grep -q "the reader child's report, in our code" "$B/logs/selftest-$input.log" &&
      grep -q "in (anonymous namespace)::child_reads.*fuzz/fuzz_selftest.cpp:[0-9]" "$B/logs/selftest-$input.log" && caught=1
    expected=1
    if [[ $input == fine ]]; then ((rc == 0 && !caught)) || expected=0; else ((rc != 0 && caught)) || expected=0; fi
    if ((!expected)); then
      echo "isolated fuzzing self-test: '$input' gave exit $rc (log: $B/logs/selftest-$input.log)"; exit 1
    fi
  done
  rm -f "$B"/selftest/found-*  # the inputs the two findings wrote
  echo "isolated fuzzing self-test: a heap overflow, a 2 GB allocation and a loop in the reader child are findings, a clean read is not"
  exit 0
fi

run_one() {
  local t=$1 start=$(date +%s) execs=0 library=0 rc result=ok timeout=3
  mkdir -p "$B/corpus/$t" "$B/crashes/$t"
  # A child's watchdog reports a loop after 0.1 s of CPU and its report takes a moment; libFuzzer waits longer.
  local options=$ASAN_OPTIONS
  if [[ "$ISOLATED_TARGETS" == *" $t "* ]]; then timeout=25 options=$ISOLATED_ASAN_OPTIONS; mkdir -p "$B/crashes/$t/libhdf5"; fi
  while :; do
    local elapsed=$(( $(date +%s) - start )) limit
    if ((RUNS > 0)); then ((execs < RUNS)) || break; limit=(-runs=$((RUNS - execs)));
    else ((elapsed < SECONDS_EACH)) || break; limit=(-max_total_time=$((SECONDS_EACH - elapsed))); fi
    rc=0
    MUSICREC_FUZZ_LIBRARY_DIR="$B/crashes/$t/libhdf5" ASAN_OPTIONS=$options \
    "$B/bin/musicrec_fuzz_$t" "$B/corpus/$t" "$B/seeds/$t" "${limit[@]}" -malloc_limit_mb=128 -rss_limit_mb=3072 \
      -timeout=$timeout -print_final_stats=1 -artifact_prefix="$B/crashes/$t/" >"$B/logs/$t.log" 2>&1 || rc=$?
    # The parent's own statistics are the last ones printed (a reader child may print its copy's).
    local n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$B/logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)
    execs=$((execs + ${n:-0}))
    library=$((library + $(grep -c '^libhdf5 finding' "$B/logs/$t.log" || true)))
    ((rc == 0)) && continue
    result="FOUND A PROBLEM (exit $rc): $(grep -m1 -E 'ERROR|runtime error|terminate called|deadly signal' "$B/logs/$t.log" | cut -c1-150)"
    # An isolated target's own frames were not symbolised: replay the input with them symbolised.
    local unit=$(grep -o 'Test unit written to [^ ]*' "$B/logs/$t.log" | tail -1 | cut -d' ' -f5)
    if [[ "$ISOLATED_TARGETS" == *" $t "* && -n "$unit" && -f "$unit" ]]; then
      "$B/bin/musicrec_fuzz_$t" -timeout=$timeout "$unit" >"$B/logs/$t-finding-symbolised.log" 2>&1 || true
      result+=" (symbolised replay: $B/logs/$t-finding-symbolised.log)"
    fi
    break
  done
  local secs=$(( $(date +%s) - start ))
  local corpus=$(ls "$B/corpus/$t" | wc -l)
  local lib=""
  ((library == 0)) || lib=" ($library reports inside libhdf5, kept in $B/crashes/$t/libhdf5/)"
  printf '%-12s %10s executions %6s s %7s exec/s  corpus %5s  %s%s\n' "$t" "$execs" "$secs" "$(( execs / (secs > 0 ? secs : 1) ))" "$corpus" "$result" "$lib"
}
export -f run_one
export B RUNS SECONDS_EACH ISOLATED_TARGETS
echo "== fuzzing: ${TARGETS[*]} ($( ((RUNS > 0)) && echo "$RUNS executions" || echo "$SECONDS_EACH s") each, $JOBS at a time) =="
printf '%s\n' "${TARGETS[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}' | tee "$B/logs/summary.txt"
! grep -q "FOUND A PROBLEM" "$B/logs/summary.txt"
