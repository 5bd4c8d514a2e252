#!/usr/bin/env bash
# Sets up, builds and runs the main job: `musicrec demo`, the whole pipeline on generated data (KKBox-
# and MSD-format data, the CF baseline, the pair CNN, playlists for the generated listeners and their
# precision@20), on the best device present. 3 to 5 minutes on a 2-core CPU. Output folder:
# $MUSICREC_OUT (default build/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build/bin/musicrec info
build/bin/musicrec demo --out "${MUSICREC_OUT:-build/demo}" "$@"
