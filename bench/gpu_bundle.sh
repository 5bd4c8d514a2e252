#!/usr/bin/env bash
# Run HERE (no GPU needed): builds the self-contained bundle that bench/gpu_check.sh runs on a lent
# GPU machine, which has nvcc, Python with PyTorch (whose pip packages carry cuBLAS and cuDNN) but none
# of our Debian libraries. The bundle is build-gpu/bin (sm_90 code, static cudart, static reference
# BLAS) plus build-gpu/lib (every other shared library the binaries need except libc's own and the
# CUDA libraries the machine provides), packed into build-gpu/bundle.tar.xz: pass that in the device
# tool's `carry`.
# The engine is built as shared libraries there so its device code (about 30 MB) travels once, not once
# per program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DMUSICREC_BLAS=netlib -DMUSICREC_BENCH=ON -DBUILD_SHARED_LIBS=ON >/dev/null
cmake --build build-gpu -j "${MUSICREC_JOBS:-2}" --target musicrec musicrec_tests musicrec_bench musicrec_bench_recommend musicrec_bench_gpu musicrec_peer
rm -rf build-gpu/lib && mkdir -p build-gpu/lib
# libc and friends come from the target machine; cuBLAS/cuDNN from its PyTorch packages.
skip='^(libc|libm|libdl|libpthread|librt|ld-linux.*|libcuda|libcublas|libcublasLt|libcudnn.*)\.so'
for bin in build-gpu/bin/musicrec build-gpu/bin/musicrec_tests build-gpu/bin/musicrec_bench build-gpu/bin/musicrec_bench_recommend build-gpu/bin/musicrec_bench_gpu build-gpu/bin/musicrec_peer; do
  ldd "$bin" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if [[ ! "$name" =~ $skip ]]; then cp -Lu "$path" "build-gpu/lib/$name"; fi
  done
done
strip --strip-debug build-gpu/lib/*.so* 2>/dev/null || true
du -sh build-gpu/bin build-gpu/lib
# The libraries are ~60 MiB (the sm_90 device code alone ~30 MiB), at the device tool's 64 MiB carry limit
# with the working tree; compressed they are ~12 MiB. gpu_check.sh unpacks the archive when it finds one.
tar -cf - -C build-gpu bin lib | xz -T"${MUSICREC_JOBS:-2}" -6 >build-gpu/bundle.tar.xz.tmp
mv build-gpu/bundle.tar.xz.tmp build-gpu/bundle.tar.xz
size=$(stat -c %s build-gpu/bundle.tar.xz)
if (( size > 48 * 1024 * 1024 )); then
  echo "gpu_bundle: build-gpu/bundle.tar.xz is $((size / 1048576)) MiB, too close to the device tool's 64 MiB carry limit" >&2
  exit 1
fi
echo "gpu_bundle: ready ($((size / 1048576)) MiB); run with carry [\"build-gpu/bundle.tar.xz\"] and command: bash bench/gpu_check.sh"
