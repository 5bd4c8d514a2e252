#!/usr/bin/env bash
# One CPU session's benchmark runs into OUTDIR (bench/results/<date>-cpu-dev-<session>): the quick
# benchmark table, loss parity against PyTorch, and the same-run speed comparison (CF at 256 / 1024 /
# 4096, the pair CNN at 256 / 1024, and at 4096 with 3 steps per repeat (PyTorch eager takes ~7 s a
# step there), also PyTorch with pooling last, the pair head over 141k songs, what an op costs beside
# its arithmetic (run_peer.sh ops), exact KDE of 20,000 scores: at the issue's 127k, PyTorch's exact KDE takes ~100 s a call here, 20 minutes for its 12
# calls), then ours again, and the ratio table. About 9 minutes on the 2-core VM.
#   bash bench/peer/cpu_session.sh OUTDIR
# PYTHON: a Python with torch and h5py (default /tmp/torchenv/bin/python, see the README).
set -uo pipefail
D=$(realpath "${1:?usage: cpu_session.sh OUTDIR}")
cd "$(dirname "$0")/../.."
mkdir -p "$D"
PY=${PYTHON:-/tmp/torchenv/bin/python}
P=build/bin/musicrec_peer
# run_peer.sh would take build-gpu/bin (the GPU bundle, reference BLAS) where it exists: name ours.
export MUSICREC_PEER_BIN=$P
build/bin/musicrec bench --quick --out $D/bench-quick.md > /dev/null
PYTHON=$PY bash bench/peer/run_peer.sh parity cpu "$(mktemp -d)" > $D/parity.txt 2>/dev/null
ours() {
  for b in 256 1024 4096; do $P speed --model cf --batch $b --device cpu --steps 20 --repeats 5; done
  for b in 256 1024; do $P speed --model pairs --batch $b --device cpu --steps 10 --repeats 3; done
  $P speed --model pairs --batch 4096 --device cpu --steps 3 --repeats 3
}
ours > $D/ours.jsonl
$PY bench/peer/peer.py speed --model cf --batch 256,1024,4096 --device cpu --mode eager --steps 20 --repeats 5 > $D/eager.jsonl
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode eager --steps 10 --repeats 3 >> $D/eager.jsonl
$PY bench/peer/peer.py speed --model pairs --batch 4096 --device cpu --mode eager --steps 3 --repeats 3 >> $D/eager.jsonl
$PY bench/peer/peer.py speed --model cf --batch 256,1024,4096 --device cpu --mode compile --steps 20 --repeats 5 > $D/compile.jsonl 2>/dev/null
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode compile --steps 10 --repeats 3 >> $D/compile.jsonl 2>/dev/null
$PY bench/peer/peer.py speed --model pairs --batch 4096 --device cpu --mode compile --steps 3 --repeats 3 >> $D/compile.jsonl 2>/dev/null
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode eager --pool-last --steps 10 --repeats 3 > $D/eager-pool-last.jsonl
MUSICREC_PEER_STEPS=3 MUSICREC_PEER_REPEATS=3 PYTHON=$PY bash bench/peer/run_peer.sh infer cpu > $D/infer.jsonl 2>/dev/null
MUSICREC_PEER_KDE_N=20000 PYTHON=$PY bash bench/peer/run_peer.sh kde cpu > $D/kde.jsonl 2>/dev/null
PYTHON=$PY bash bench/peer/run_peer.sh ops cpu > $D/ops.jsonl 2>/dev/null
ours > $D/ours-again.jsonl
$PY bench/peer/peer.py table $D/ours.jsonl $D/eager.jsonl $D/compile.jsonl $D/eager-pool-last.jsonl $D/infer.jsonl $D/kde.jsonl $D/ops.jsonl > $D/table.md
echo "cpu_session: results in $D"
