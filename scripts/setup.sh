#!/usr/bin/env bash
# Installs the Debian packages musicrec builds against, only where one is missing.
# Run as root (CI and the development machines are); prints what it installs.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libhdf5-dev        # checkpoints and (later) MSD track files
  zlib1g-dev         # CRC-32 of musicrec's sealed cache files
  libfmt-dev         # formatting of messages and tables
  libopenblas-dev    # CPU matrix products (cblas)
  libblas-dev        # reference BLAS, linked statically into the GPU-machine bundle
  librandom123-dev   # Philox counter-based generator, host and device
  nlohmann-json3-dev # JSON output of `musicrec info` and later readers
  libcli11-dev       # command-line parsing
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev   # CPU benchmarks
  libsqlite3-dev     # Last.fm lastfm_similars.db
  gnuplot-nox        # musicrec report: the plots (pngcairo)
  clang libclang-rt-dev  # scripts/fuzz.sh: clang with libFuzzer and the sanitizers' runtimes
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present"
fi

# h5py lets a test confirm that checkpoints open in Python, as a PyTorch user would read them. It is
# optional: without it that one test skips, so a failure here only warns.
if command -v python3 >/dev/null && ! python3 -c "import h5py" 2>/dev/null; then
  echo "setup: installing h5py for python3 (optional)"
  python3 -m pip install -q h5py 2>/dev/null || echo "setup: could not install h5py; the h5py test will skip"
fi
