#!/usr/bin/env bash
# Session 17's second run on the CPU (at dc70f09: also dropout's four elements per Philox block), which
# wrote the files beside this one: bench/peer/cpu_session.sh, the same commands as session17/run.sh.
cd "$(dirname "$0")/../../.." && bash bench/peer/cpu_session.sh bench/results/2026-11-27-cpu-dev-session17b
