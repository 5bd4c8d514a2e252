#!/usr/bin/env bash
# Run THERE, on a lent GPU machine, after bench/gpu_bundle.sh here (see ../shared/GPU.md). One call that
#   1. prints the card and finds cuBLAS / cuDNN (the toolkit's or PyTorch's pip packages);
#   2. checks correctness, side by side (16 cores): every test with the CUDA ones included (four shards),
#      compute-sanitizer memcheck over the CUDA tests, a sync-checked smoke run, the 50-step parity
#      with PyTorch and the demo end to end; beside them torch.compile compiles what step 3 times, so
#      that step 3 loads it from the caches;
#   3. measures, one job at a time: training samples/s at 256 / 1024 / 4096 against PyTorch eager and
#      torch.compile (and the pair CNN with cuDNN's convolutions at 1024, and with every hand-written
#      kernel), the pair head over a 141k-song catalogue, exact KDE weights of 127k scores, what an
#      op costs beside its arithmetic (a chain of small ops, launches included), both models'
#      training on generated data with --profile and --trace (KDE weights computed on the GPU; the
#      timelines go into logs.tar.gz, the summary gives the GPU's busy share of the steps), the 141k-song
#      recommendation benchmark, and last `musicrec bench --quick --gpu-only` (the GPU kernels against
#      the GPU's ceilings); the summary ends with the pending choices those rows settle.
# Every step has its own time limit and the whole run a budget (MUSICREC_GPU_BUDGET_S, default 450 s):
# a step that would not fit is skipped and says so, so the summary always comes back.
# $OUT gets at most 8 files (the device tool's limit): summary.md (printed last), bench.md, peer.md and
# logs.tar.gz with every log.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-out}
BUDGET=${MUSICREC_GPU_BUDGET_S:-450}
mkdir -p "$OUT"
LOGS=$(mktemp -d /tmp/gpu-check-XXXX)
BIN=$ROOT/build-gpu/bin
if [[ ! -x $BIN/musicrec_tests && -f build-gpu/bundle.tar.xz ]]; then
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' build-gpu/bundle.tar.xz build-gpu
fi
[[ -x $BIN/musicrec_tests ]] || { echo "gpu_check: no bundle; run bench/gpu_bundle.sh first and carry build-gpu/bundle.tar.xz"; exit 2; }

echo "== card =="
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$LOGS/card.txt"
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

# cuBLAS and cuDNN: the toolkit's if present, else those in PyTorch's nvidia/* pip packages.
for lib in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
  dir=""
  for base in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [[ -e $base/$lib ]] && dir=$base && break; done
  if [[ -z $dir ]]; then
    site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null)
    found=$(find "$site/nvidia" -name "$lib" 2>/dev/null | head -1)
    [[ -n $found ]] && dir=$(dirname "$found")
  fi
  echo "$lib: ${dir:-NOT FOUND}"
done | tee -a "$LOGS/card.txt"
# The loop ran in a pipeline's subshell: its findings are read back from the card file.
libdirs=$(awk -F': ' '$2 != "NOT FOUND" {printf ":%s", $2}' <(grep '^lib' "$LOGS/card.txt" | sort -u))
export LD_LIBRARY_PATH="$ROOT/build-gpu/lib$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MUSICREC_BIN=$BIN/musicrec MUSICREC_PEER_BIN=$BIN/musicrec_peer PYTHONUNBUFFERED=1

: >"$LOGS/steps.txt"
# MUSICREC_GPU_STEPS=REGEX runs only the steps whose whole name it matches (extended regex; e.g.
# 'pairs_gpu_kde|peer_speed_compile|bench'), for a second, shorter call on the same lease when a
# full run skipped its tail: a step whose input another step makes brings that step along.
ONLY=${MUSICREC_GPU_STEPS:-}
selected() { [[ -z $ONLY || $1 =~ ^($ONLY)$ ]]; }
if [[ -n $ONLY ]]; then
  selected pairs_gpu_kde && ONLY="$ONLY|pairs_synth"
  selected cf_gpu_b4096 && ONLY="$ONLY|cf_synth"
  (selected peer_speed_compile || selected peer_infer) && ONLY="$ONLY|compile_warm"
  echo "== only the steps matching ^($ONLY)\$ =="
fi
# step NAME LIMIT CMD...: runs with its output in $LOGS/NAME.log, records exit status and seconds. The
# limit is cut to what is left of the budget; with under 15 s left the step is skipped (exit "skipped").
# A step MUSICREC_GPU_STEPS leaves out does not run and is not listed.
step() {
  local name=$1 limit=$2
  shift 2
  selected "$name" || return 0
  local left=$((BUDGET - SECONDS))
  if ((left < 15)); then
    echo "$name|skipped|0" >>"$LOGS/steps.txt"
    echo "== $name: skipped (budget spent) =="
    return
  fi
  ((limit > left)) && limit=$left
  local t0=$SECONDS
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  echo "$name|$rc|$((SECONDS - t0))" >>"$LOGS/steps.txt"
  echo "== $name: exit $rc in $((SECONDS - t0)) s =="
  tail -n 8 "$LOGS/$name.log"
}

step info 30 "$BIN/musicrec" info

# ---- 2. correctness, side by side ----
# Everything here is checked for its answer, not timed, so it shares the card and the 16 cores: the test
# binary in four shards (GoogleTest's sharding; ~150 s in one process), memcheck, a sync-checked smoke
# run, the 50-step parity with PyTorch, the demo end to end, and the synthetic data the timed steps use.
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
for shard in 0 1 2 3; do
  step "tests$shard" 200 env GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$shard "$BIN/musicrec_tests" \
    --gtest_output="json:$LOGS/tests$shard.json" &
done
step memcheck 200 "$SANITIZER" --tool memcheck --error-exitcode 9 "$BIN/musicrec_tests" \
  --gtest_filter='CudaParity.*:Tensor.Cuda*:CachingAllocator.Cuda*' &
step smoke_sync_check 100 env MUSICREC_SYNC_CHECK=1 "$BIN/musicrec" smoke --device cuda --steps 50 &
PEER=$(mktemp -d) MS=$(mktemp -d) KK=$(mktemp -d)
step peer_parity 100 bash bench/peer/run_peer.sh parity cuda "$PEER" &
step demo 150 "$BIN/musicrec" demo --out "$MS/demo" --device cuda &
step pairs_synth 60 "$BIN/musicrec" synth msd --out "$MS/msd" &
step cf_synth 60 "$BIN/musicrec" synth kkbox --out "$KK/data" &
# torch.compile's compilation is host work (tracing, Inductor, Triton's compiler) of 6-12 s per
# configuration (the H200 of 2026-11-26), ~70 s of the timed steps that the correctness steps' time can
# hold instead: compiled here, it is loaded from the on-disk caches in step 3 (run_peer.sh warm).
step compile_warm 150 bash bench/peer/run_peer.sh warm cuda &
wait

# ---- 3. measurements, one at a time, the most wanted first ----
# Both models with the default settings (the pair CNN's conv 1 in the hand-written kernels), PyTorch
# eager at the same sizes, and the pair CNN with cuDNN's convolutions (MUSICREC_CONV_KERNELS=cudnn, the
# default until 2026-11-28) at one size so every run shows what the choice is worth.
step peer_speed_ours 60 bash bench/peer/run_peer.sh ours cuda
step peer_speed_eager 60 bash bench/peer/run_peer.sh eager cuda
# torch.compile (reduce-overhead) at the same sizes: the peer table's other column. Each configuration
# loads what compile_warm compiled; the limit still holds compiling them all (6-12 s each on the H200
# of 2026-11-26) should that step have failed or been left out.
step peer_speed_compile 100 bash bench/peer/run_peer.sh compile cuda
step cudnn_speed_ours 30 env MUSICREC_CONV_KERNELS=cudnn MUSICREC_PEER_MODELS=pairs MUSICREC_PEER_BATCHES=1024 \
  bash bench/peer/run_peer.sh ours cuda
# And with every hand-written kernel (direct-all: also the 2 x 2 convolution + pooling forward, which the
# H200 of session 24 timed slower than cuDNN's + the pooling kernel), to keep watching that choice.
step direct_all_speed_ours 40 env MUSICREC_CONV_KERNELS=direct-all MUSICREC_PEER_MODELS=pairs bash bench/peer/run_peer.sh ours cuda
step peer_infer 60 bash bench/peer/run_peer.sh infer cuda
step peer_kde 60 bash bench/peer/run_peer.sh kde cuda
# What one op costs beside its arithmetic, launch included (a chain of 100 small ops and its backward):
# the host's share of a small-batch step, against PyTorch eager's.
step peer_ops 30 bash bench/peer/run_peer.sh ops cuda
step pairs_gpu_kde 90 "$BIN/musicrec" train pairs --msd "$MS/msd/data" --lastfm "$MS/msd" --run "$MS/run-kde" --device cuda \
  --epochs 2 --batch 512 --weights kde --tower-output time-mean --profile --trace "$LOGS/pairs_gpu_kde.trace.json"
step cf_gpu_b4096 60 "$BIN/musicrec" train cf --data "$KK/data" --run "$KK/run4096" --device cuda --epochs 1 --batch 4096 --lr 4e-3 \
  --profile --trace "$LOGS/cf_gpu_b4096.trace.json"
timed=$(ls "$LOGS"/peer_speed_*.log "$LOGS"/peer_infer.log "$LOGS"/peer_kde.log "$LOGS"/peer_ops.log 2>/dev/null)
if [[ -n $timed ]]; then
  python3 bench/peer/peer.py table $timed >"$LOGS/peer_table.md" 2>&1
else
  echo "(no peer timings in this run)" >"$LOGS/peer_table.md"
fi
step recommend_bench 60 env MUSICREC_BENCH_DEVICE=cuda "$BIN/musicrec_bench_recommend" --benchmark_min_time=0.2
# Last, with what is left: every kernel against the card's ceilings. It echoes each row as it finishes,
# with the seconds since it began, so a run cut short still reports the rows it finished (and their
# program's own log lands in $LOGS through TMPDIR).
step bench 150 env TMPDIR="$LOGS" "$BIN/musicrec" bench --quick --gpu-only --out "$OUT/bench.md"

# ---- summary ----
# The whole run against the budget and the 8 minutes the check is to fit in (gpu_summary.py reads it).
echo "$SECONDS|$BUDGET" >"$LOGS/run.txt"
{
  echo "# Peer comparison, $(date -u +%F), $card"
  echo
  echo "Parity (50 Adam steps from identical weights and batches, TF32 off on both sides):"
  echo
  grep -h '^{"model"' "$LOGS/peer_parity.log" 2>/dev/null | sed 's/^/    /'
  echo
  echo "Training samples/s (median of 5 repeats of 50 steps; ratio = ours / PyTorch):"
  echo
  cat "$LOGS/peer_table.md"
} >"$OUT/peer.md"
python3 bench/gpu_summary.py "$LOGS" "$card" >"$OUT/summary.md"
cp "$OUT/peer.md" "$OUT/summary.md" "$LOGS/" 2>/dev/null
tar -czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null
echo
cat "$OUT/peer.md"
echo
cat "$OUT/summary.md"
