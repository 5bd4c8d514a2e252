#!/usr/bin/env bash
# Runs the PyTorch peer comparison (bench/peer/README.md) on one device; prints JSON lines.
#   bash bench/peer/run_peer.sh parity  DEVICE WORKDIR   50-step loss parity of both models
#   bash bench/peer/run_peer.sh ours    DEVICE           our training samples/s at 256, 1024, 4096
#   bash bench/peer/run_peer.sh eager   DEVICE           PyTorch eager, the same sizes
#   bash bench/peer/run_peer.sh compile DEVICE           torch.compile (reduce-overhead), the same sizes
#   bash bench/peer/run_peer.sh infer   DEVICE           one seed against a 141k-song catalogue, pair head
#   bash bench/peer/run_peer.sh kde     DEVICE           exact KDE weights of 127k scores (both sides)
#   bash bench/peer/run_peer.sh ops     DEVICE           what an op costs beside its arithmetic (both sides)
#   bash bench/peer/run_peer.sh warm    DEVICE           compiles what compile and infer time, timing nothing
#                                                        worth keeping: fills torch.compile's on-disk caches
# DEVICE is cuda or cpu. MUSICREC_PEER_BIN: musicrec_peer (default: build-gpu/bin, then build/bin; on
# the CPU build/bin, then build-cpu/bin, then build-gpu/bin);
# PYTHON: the Python with torch and h5py (default python3); MUSICREC_PEER_BATCHES: "256 1024 4096";
# MUSICREC_PEER_MODELS: the models "ours" times ("cf pairs"); MUSICREC_PEER_STEPS /
# MUSICREC_PEER_REPEATS: timed steps per repeat and repeats (50 and 5; a CPU run of the pair CNN at
# 4096 takes minutes per repeat, so fewer there); MUSICREC_PEER_CATALOGUE (141000)
# and MUSICREC_PEER_KDE_N (127000; exact KDE is O(n^2): use ~20000 on a CPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?mode: parity, ours, eager, compile, warm, infer, kde or ops}
device=${2:?device: cuda or cpu}
PY=${PYTHON:-python3}
BATCHES=${MUSICREC_PEER_BATCHES:-256 1024 4096}
STEPS=${MUSICREC_PEER_STEPS:-50}
REPEATS=${MUSICREC_PEER_REPEATS:-5}
peer_bin=${MUSICREC_PEER_BIN:-}
if [[ -z $peer_bin ]]; then
  # The GPU bundle (build-gpu) first on a GPU; on the CPU it comes last, since its BLAS is the reference
  # one (a session 14 CPU run that took it timed the pair head 15 % slow).
  candidates=(build-gpu/bin/musicrec_peer build/bin/musicrec_peer build-cpu/bin/musicrec_peer)
  [[ $device == cpu ]] && candidates=(build/bin/musicrec_peer build-cpu/bin/musicrec_peer build-gpu/bin/musicrec_peer)
  for b in "${candidates[@]}"; do
    [[ -x $b ]] && peer_bin=$b && break
  done
fi
[[ -n $peer_bin || $mode == eager || $mode == compile || $mode == warm ]] || { echo "run_peer: no musicrec_peer built (scripts/build.sh)" >&2; exit 2; }
case $mode in
  parity)
    work=${3:?parity needs a work folder}
    for m in cf pairs; do
      "$peer_bin" parity --model "$m" --device "$device" --steps 50 --batch 256 --out "$work/$m"
      "$PY" bench/peer/peer.py parity "$work/$m" --device "$device"
    done ;;
  ours)
    for m in ${MUSICREC_PEER_MODELS:-cf pairs}; do
      for b in $BATCHES; do "$peer_bin" speed --model "$m" --batch "$b" --device "$device" --steps "$STEPS" --repeats "$REPEATS"; done
    done ;;
  eager | compile)
    for m in pairs cf; do
      "$PY" bench/peer/peer.py speed --model "$m" --batch "${BATCHES// /,}" --device "$device" --mode "$mode" \
        --steps "$STEPS" --repeats "$REPEATS"
    done ;;
  warm)
    # torch.compile keeps what it compiled on disk (Inductor's FX-graph and AOTAutograd caches, Triton's
    # kernels) and a later process with the same graphs, shapes and settings loads it: the GPU check runs
    # this beside its correctness steps, so the timed compile step pays a warm start, not the compilation
    # (the pair CNN at 256 on the CPU, session 22: warm-up 14.0 s cold, 1.8 s warm). The same batch
    # sizes in the same order as compile's, so the same graphs (and dynamic-shape recompiles) are hit.
    for m in pairs cf; do
      "$PY" bench/peer/peer.py speed --model "$m" --batch "${BATCHES// /,}" --device "$device" --mode compile \
        --steps 1 --repeats 1
    done
    "$PY" bench/peer/peer.py infer --device "$device" --n "${MUSICREC_PEER_CATALOGUE:-141000}" --mode compile \
      --steps 1 --repeats 1 ;;
  infer)
    n=${MUSICREC_PEER_CATALOGUE:-141000}
    "$peer_bin" infer --device "$device" --n "$n" --steps "$STEPS" --repeats "$REPEATS"
    "$PY" bench/peer/peer.py infer --device "$device" --n "$n" --mode compile --steps "$STEPS" --repeats "$REPEATS" ;;
  kde)
    n=${MUSICREC_PEER_KDE_N:-127000}
    # The exact sums on both sides: the GPU's tiled kernel, the CPU's float64 loop.
    method=exact
    [[ $device == cuda* ]] && method=tiled
    "$peer_bin" kde --device "$device" --n "$n" --method "$method" --steps 3 --repeats 3
    "$PY" bench/peer/peer.py kde --device "$device" --n "$n" --steps 3 --repeats 3 ;;
  ops)
    # 100 ops a step (50 x add and ReLU on 256 elements) and their backward: 200 steps a repeat.
    "$peer_bin" ops --device "$device" --n 256 --steps 200 --repeats "$REPEATS"
    "$PY" bench/peer/peer.py ops --device "$device" --n 256 --steps 200 --repeats "$REPEATS" ;;
  *) echo "run_peer: unknown mode $mode" >&2; exit 2 ;;
esac
