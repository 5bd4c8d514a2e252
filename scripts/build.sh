#!/usr/bin/env bash
# Sets up (Debian packages) and builds musicrec into build/ (CUDA when the toolkit is found) or, with
# --cpu-only, into build-cpu/ with -DMUSICREC_CUDA=OFF. Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=build
args=()
if [[ "${1:-}" == "--cpu-only" ]]; then
  dir=build-cpu
  args+=(-DMUSICREC_CUDA=OFF)
  shift
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${args[@]}" "$@" >/dev/null
cmake --build "$dir" -j "${MUSICREC_JOBS:-2}"
echo "build: $dir/bin/musicrec"
