#!/usr/bin/env bash
# Session 15's runs on the CPU, which wrote the files beside this one (the commands: bench/peer/cpu_session.sh,
# the same for sessions 14 and 15; the parity work folder was /tmp/peer-session15).
cd "$(dirname "$0")/../../.." && bash bench/peer/cpu_session.sh bench/results/2026-11-27-cpu-dev-session15
