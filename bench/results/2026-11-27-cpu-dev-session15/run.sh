#!/usr/bin/env bash
# Session 15's runs on the CPU: the quick benchmark table, loss parity against PyTorch, and the same-run
# speed comparison (the commands of session 14).
set -uo pipefail
cd "$(dirname "$0")/../../.."
D=bench/results/2026-11-27-cpu-dev-session15
PY=/tmp/torchenv/bin/python
P=build/bin/musicrec_peer
# run_peer.sh prefers build-gpu/bin (the GPU bundle, reference BLAS) when it exists: name ours.
export MUSICREC_PEER_BIN=$P
build/bin/musicrec bench --quick --out $D/bench-quick.md > /dev/null
PYTHON=$PY bash bench/peer/run_peer.sh parity cpu /tmp/peer-session15 > $D/parity.txt 2>/dev/null
ours() {
  for b in 256 1024 4096; do $P speed --model cf --batch $b --device cpu --steps 20 --repeats 5; done
  for b in 256 1024; do $P speed --model pairs --batch $b --device cpu --steps 10 --repeats 3; done
}
ours > $D/ours.jsonl
$PY bench/peer/peer.py speed --model cf --batch 256,1024,4096 --device cpu --mode eager --steps 20 --repeats 5 > $D/eager.jsonl
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode eager --steps 10 --repeats 3 >> $D/eager.jsonl
$PY bench/peer/peer.py speed --model cf --batch 256,1024,4096 --device cpu --mode compile --steps 20 --repeats 5 > $D/compile.jsonl 2>/dev/null
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode compile --steps 10 --repeats 3 >> $D/compile.jsonl 2>/dev/null
$PY bench/peer/peer.py speed --model pairs --batch 256,1024 --device cpu --mode eager --pool-last --steps 10 --repeats 3 > $D/eager-pool-last.jsonl
MUSICREC_PEER_STEPS=3 MUSICREC_PEER_REPEATS=3 PYTHON=$PY bash bench/peer/run_peer.sh infer cpu > $D/infer.jsonl 2>/dev/null
MUSICREC_PEER_KDE_N=20000 PYTHON=$PY bash bench/peer/run_peer.sh kde cpu > $D/kde.jsonl 2>/dev/null
ours > $D/ours-again.jsonl
$PY bench/peer/peer.py table $D/ours.jsonl $D/eager.jsonl $D/compile.jsonl $D/eager-pool-last.jsonl $D/infer.jsonl $D/kde.jsonl > $D/table.md
echo done
