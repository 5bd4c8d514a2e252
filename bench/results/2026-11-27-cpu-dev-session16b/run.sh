#!/usr/bin/env bash
# Session 16's second run on the CPU (after the flattened direct kernels), which wrote the files beside
# this one: bench/peer/cpu_session.sh, the same commands as session16/run.sh.
cd "$(dirname "$0")/../../.." && bash bench/peer/cpu_session.sh bench/results/2026-11-27-cpu-dev-session16b
