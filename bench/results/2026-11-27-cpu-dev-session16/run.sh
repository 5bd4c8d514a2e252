#!/usr/bin/env bash
# Session 16's run on the CPU, which wrote the files beside this one (bench/peer/cpu_session.sh, now with
# the pair CNN at batch 4096 too).
cd "$(dirname "$0")/../../.." && bash bench/peer/cpu_session.sh bench/results/2026-11-27-cpu-dev-session16
