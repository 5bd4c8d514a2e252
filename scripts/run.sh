#!/usr/bin/env bash
# Sets up, builds and runs the main job. Until the recommendation pipeline lands (the demo), the main
# job is `musicrec info`, a small training smoke run and the CF baseline on generated KKBox-format data,
# on the best device present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build/bin/musicrec info
build/bin/musicrec smoke --device auto
out=${MUSICREC_OUT:-build/demo}
build/bin/musicrec synth kkbox --out "$out/kkbox"
build/bin/musicrec train cf --data "$out/kkbox" --run "$out/cf-run"
build/bin/musicrec predict cf --run "$out/cf-run" --data "$out/kkbox" --out "$out/cf-submission.csv"
