#!/usr/bin/env bash
# Builds the hand-written CUDA + MPI baseline (baselines/cuda/metg.cu) with nvcc and OpenMPI, on a machine with an
# NVIDIA GPU (CI has none and never runs this):
#
#   scripts/cuda_baseline.sh [OUT]      # default OUT: target/cuda/metg_cuda
#
# Then: `metg --cuda-bin OUT ...` adds its `cuda` and `cuda_graph` backends to the METG sweep, and
# `OUT --chain 2000` runs the chain of examples/overhead.rs. The GPU architecture is the build machine's own
# (-arch=native); set CUDA_ARCH (e.g. sm_90) to choose another.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$ROOT/target/cuda/metg_cuda}"
mkdir -p "$(dirname "$out")"
command -v nvcc >/dev/null || { echo "cuda_baseline: nvcc not found (CUDA toolkit)" >&2; exit 1; }
# MPI's flags: -I/-L/-l from the wrapper compiler where there is one, else OpenMPI's usual Debian/Ubuntu paths.
flags=()
if command -v mpicxx >/dev/null; then
    for f in $(mpicxx --showme:compile) $(mpicxx --showme:link); do
        case "$f" in -I* | -L* | -l*) flags+=("$f") ;; esac
    done
else
    for d in /usr/lib/x86_64-linux-gnu/openmpi /usr/lib64/openmpi /usr/local; do
        if [ -f "$d/include/mpi.h" ]; then
            flags+=("-I$d/include" "-L$d/lib" "-lmpi")
            break
        fi
    done
fi
[ ${#flags[@]} -gt 0 ] || { echo "cuda_baseline: no MPI found (mpicxx or OpenMPI's headers)" >&2; exit 1; }
arch="${CUDA_ARCH:-native}"
set -x
nvcc -O3 -std=c++17 -arch="$arch" -Xcompiler -pthread -o "$out" "$ROOT/baselines/cuda/metg.cu" "${flags[@]}"
