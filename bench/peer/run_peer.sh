#!/usr/bin/env bash
# Runs the PyTorch peer comparison (bench/peer/README.md) on one device; prints JSON lines.
#   bash bench/peer/run_peer.sh parity  DEVICE WORKDIR   50-step loss parity of both models
#   bash bench/peer/run_peer.sh ours    DEVICE           our training samples/s at 256, 1024, 4096
#   bash bench/peer/run_peer.sh eager   DEVICE           PyTorch eager, the same sizes
#   bash bench/peer/run_peer.sh compile DEVICE           torch.compile (reduce-overhead), the same sizes
# DEVICE is cuda or cpu. MUSICREC_PEER_BIN: musicrec_peer (default: build-gpu/bin, then build/bin);
# PYTHON: the Python with torch and h5py (default python3); MUSICREC_PEER_BATCHES: "256 1024 4096".
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?mode: parity, ours, eager or compile}
device=${2:?device: cuda or cpu}
PY=${PYTHON:-python3}
BATCHES=${MUSICREC_PEER_BATCHES:-256 1024 4096}
peer_bin=${MUSICREC_PEER_BIN:-}
if [[ -z $peer_bin ]]; then
  for b in build-gpu/bin/musicrec_peer build/bin/musicrec_peer build-cpu/bin/musicrec_peer; do
    [[ -x $b ]] && peer_bin=$b && break
  done
fi
[[ -n $peer_bin || $mode == eager || $mode == compile ]] || { echo "run_peer: no musicrec_peer built (scripts/build.sh)" >&2; exit 2; }
case $mode in
  parity)
    work=${3:?parity needs a work folder}
    for m in cf pairs; do
      "$peer_bin" parity --model "$m" --device "$device" --steps 50 --batch 256 --out "$work/$m"
      "$PY" bench/peer/peer.py parity "$work/$m" --device "$device"
    done ;;
  ours)
    for m in cf pairs; do
      for b in $BATCHES; do "$peer_bin" speed --model "$m" --batch "$b" --device "$device"; done
    done ;;
  eager | compile)
    for m in pairs cf; do
      "$PY" bench/peer/peer.py speed --model "$m" --batch "${BATCHES// /,}" --device "$device" --mode "$mode"
    done ;;
  *) echo "run_peer: unknown mode $mode" >&2; exit 2 ;;
esac
