#!/usr/bin/env bash
# Run HERE (no GPU needed): builds the self-contained bundle that bench/gpu_check.sh runs on a lent
# GPU machine, which has nvcc, Python with PyTorch (whose pip packages carry cuBLAS and cuDNN) but none
# of our Debian libraries. The bundle is build-gpu/bin (sm_90 code, static cudart, static reference
# BLAS) plus build-gpu/lib (every other shared library the binaries need except libc's own and the
# CUDA libraries the machine provides). Pass both folders in the device tool's `carry`.
# The engine is built as shared libraries there so its device code (about 30 MB) travels once, not once
# per program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DMUSICREC_BLAS=netlib -DMUSICREC_BENCH=ON -DBUILD_SHARED_LIBS=ON >/dev/null
cmake --build build-gpu -j "${MUSICREC_JOBS:-2}" --target musicrec musicrec_tests musicrec_bench_recommend
rm -rf build-gpu/lib && mkdir -p build-gpu/lib
# libc and friends come from the target machine; cuBLAS/cuDNN from its PyTorch packages.
skip='^(libc|libm|libdl|libpthread|librt|ld-linux.*|libcuda|libcublas|libcublasLt|libcudnn.*)\.so'
for bin in build-gpu/bin/musicrec build-gpu/bin/musicrec_tests build-gpu/bin/musicrec_bench_recommend; do
  ldd "$bin" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if [[ ! "$name" =~ $skip ]]; then cp -Lu "$path" "build-gpu/lib/$name"; fi
  done
done
strip --strip-debug build-gpu/lib/*.so* 2>/dev/null || true
du -sh build-gpu/bin build-gpu/lib
total=$(du -sbc build-gpu/bin build-gpu/lib | tail -1 | cut -f1)
if (( total > 60 * 1024 * 1024 )); then
  echo "gpu_bundle: bundle is $((total / 1048576)) MiB, over the device tool's 64 MiB carry limit" >&2
  exit 1
fi
echo "gpu_bundle: ready; run with carry [\"build-gpu/bin\", \"build-gpu/lib\"] and command: bash bench/gpu_check.sh"
