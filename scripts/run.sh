#!/usr/bin/env bash
# Sets up, builds and runs the main job. Until the recommendation pipeline lands (the demo), the main
# job is `musicrec info` and a small training smoke run on the best device present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build/bin/musicrec info
build/bin/musicrec smoke --device auto
