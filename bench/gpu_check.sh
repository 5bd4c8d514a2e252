#!/usr/bin/env bash
# Run THERE, on a lent GPU machine, after bench/gpu_bundle.sh here (see ../shared/GPU.md): one call that
# prints the card, runs every test with the CUDA ones included, compute-sanitizer memcheck over the
# CUDA tests, a profiled training smoke run on the GPU and a sync-checked one, and writes
# $OUT/summary.md (a short table, printed last) plus the full logs. Budget: well under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
BIN=$ROOT/build-gpu/bin
[[ -x $BIN/musicrec_tests ]] || { echo "gpu_check: no bundle; run bench/gpu_bundle.sh first and carry build-gpu/bin and build-gpu/lib"; exit 2; }

echo "== card =="
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/card.txt"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

# cuBLAS and cuDNN: the toolkit's if present, else those in PyTorch's nvidia/* pip packages.
libdirs=""
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  dir=""
  for base in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [[ -e $base/$lib ]] && dir=$base && break; done
  if [[ -z $dir ]]; then
    site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
    found=$(find "$site/nvidia" -name "$lib" 2>/dev/null | head -1)
    [[ -n $found ]] && dir=$(dirname "$found")
  fi
  [[ -n $dir ]] && libdirs="$libdirs:$dir"
  echo "$lib: ${dir:-NOT FOUND}"
done
export LD_LIBRARY_PATH="$ROOT/build-gpu/lib$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MUSICREC_BIN=$BIN/musicrec

step() {  # step NAME TIMEOUT CMD...: runs, logs to $OUT/NAME.log, records status and seconds
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name|$rc|$((SECONDS - t0))" >>"$OUT/steps.txt"
  echo "== $name: exit $rc in $((SECONDS - t0)) s =="
  tail -n 15 "$OUT/$name.log"
}
: >"$OUT/steps.txt"

step info 60 "$BIN/musicrec" info
step tests 240 "$BIN/musicrec_tests" --gtest_output="json:$OUT/tests.json"
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
step memcheck 240 "$SANITIZER" --tool memcheck --error-exitcode 9 "$BIN/musicrec_tests" \
  --gtest_filter='CudaParity.*:Tensor.Cuda*:CachingAllocator.Cuda*'
step smoke_profile 120 env MUSICREC_PROFILE=1 "$BIN/musicrec" smoke --device cuda --steps 300
step smoke_sync_check 120 env MUSICREC_SYNC_CHECK=1 "$BIN/musicrec" smoke --device cuda --steps 50

# CF baseline training benchmark on synth defaults (1M rows): GPU at two batch sizes, and the same run
# on this machine's CPU for the ratio.
KK=$(mktemp -d)
step cf_synth 120 "$BIN/musicrec" synth kkbox --out "$KK/data"
step cf_gpu_b512 180 "$BIN/musicrec" train cf --data "$KK/data" --run "$KK/run512" --device cuda --epochs 2 --batch 512
step cf_gpu_b4096 120 "$BIN/musicrec" train cf --data "$KK/data" --run "$KK/run4096" --device cuda --epochs 2 --batch 4096 --lr 4e-3
# Pair-CNN training benchmark on synth msd defaults (2,000 songs): class weights, then KDE weights
# (the KDE op runs on the GPU over the training pairs' scores).
MS=$(mktemp -d)
step pairs_synth 120 "$BIN/musicrec" synth msd --out "$MS/msd"
step pairs_gpu_class 240 "$BIN/musicrec" train pairs --msd "$MS/msd/data" --lastfm "$MS/msd" --run "$MS/run-class" --device cuda --epochs 2 --batch 512
step pairs_gpu_kde 180 "$BIN/musicrec" train pairs --msd "$MS/msd/data" --lastfm "$MS/msd" --run "$MS/run-kde" --device cuda --epochs 1 --batch 512 --weights kde
# Recommendation speed over a generated 141k-song catalogue: the one-time tower pass and the time per
# listener (catalogue head, and the old pair-head path as its baseline).
step recommend_bench 240 env MUSICREC_BENCH_DEVICE=cuda "$BIN/musicrec_bench_recommend" --benchmark_min_time=1
# The main job end to end on the GPU.
step demo 300 "$BIN/musicrec" demo --out "$MS/demo" --device cuda
step cf_cpu_b512 180 "$BIN/musicrec" train cf --data "$KK/data" --run "$KK/runcpu" --device cpu --epochs 1 --batch 512

python3 - "$OUT" "$card" <<'PY' | tee "$OUT/summary.md"
import json, sys, os, datetime
out, card = sys.argv[1], sys.argv[2]
print(f"# GPU check, {datetime.date.today()}, {card}\n")
print("| step | exit | seconds | detail |\n| --- | --- | --- | --- |")
tests = {}
try:
    j = json.load(open(os.path.join(out, "tests.json")))
    for s in j["testsuites"]:
        for t in s["testsuite"]:
            tests[f'{s["name"]}.{t["name"]}'] = ("FAILED" if t.get("failures") else
                                                 "SKIPPED" if t.get("result") == "SKIPPED" else "OK")
except Exception as e:
    tests = {"(no tests.json)": str(e)}
for line in open(os.path.join(out, "steps.txt")):
    name, rc, secs = line.strip().split("|")
    detail = ""
    if name == "tests":
        vals = list(tests.values())
        detail = f'{vals.count("OK")} passed, {vals.count("FAILED")} failed, {vals.count("SKIPPED")} skipped'
    elif name == "memcheck":
        log = open(os.path.join(out, "memcheck.log")).read()
        detail = next((l.strip() for l in log.splitlines() if "ERROR SUMMARY" in l), "no summary line")
    elif (name.startswith("cf_") and name != "cf_synth") or (name.startswith("pairs_") and name != "pairs_synth"):
        log = open(os.path.join(out, name + ".log")).read().splitlines()
        ep = [l for l in log if l.startswith("epoch")]
        te = [l for l in log if l.startswith("test") or l.startswith("balanced test")]
        sps = ep[-1].split("|")[-1].strip() if ep else "no epoch line"
        detail = sps + ("; " + te[-1].split(":", 1)[1].split("[")[0].strip() if te else "")
    elif name == "recommend_bench":
        log = open(os.path.join(out, name + ".log")).read().splitlines()
        detail = "; ".join(" ".join(l.split()[:3]) for l in log if l.startswith("BM_"))[:200]
    elif name == "demo":
        log = open(os.path.join(out, name + ".log")).read().splitlines()
        detail = "; ".join(l.strip() for l in log if l.startswith("precision@20") or l.startswith("demo finished"))[:200]
    elif name.startswith("smoke"):
        log = open(os.path.join(out, name + ".log")).read().splitlines()
        detail = "; ".join(l.strip() for l in log if "loss" in l or "passed" in l)[:160]
    print(f"| {name} | {rc} | {secs} | {detail} |")
failed = [k for k, v in tests.items() if v == "FAILED"]
if failed:
    print("\nFailed tests: " + ", ".join(failed))
PY
