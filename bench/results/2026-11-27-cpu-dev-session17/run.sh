#!/usr/bin/env bash
# Session 17's run on the CPU (at 0fe236f: vectorised Adam, the radix-sorted embedding backward, the
# exact KDE in vectors of doubles), which wrote the files beside this one.
cd "$(dirname "$0")/../../.." && bash bench/peer/cpu_session.sh bench/results/2026-11-27-cpu-dev-session17
