#!/usr/bin/env bash
# Sets up, builds and runs every test: the CUDA build (GPU tests skip with their reason where there is
# no device) and the CPU-only build (-DMUSICREC_CUDA=OFF), which must pass on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/build.sh --cpu-only
echo "== tests: CUDA build (build/) =="
ctest --test-dir build --output-on-failure -j 2
echo "== tests: CPU-only build (build-cpu/) =="
ctest --test-dir build-cpu --output-on-failure -j 2
