#!/usr/bin/env bash
# What the network costs: 2 ranks on one host (shared memory) against 2 "hosts" (network namespaces, MPI over TCP
# only, scripts/multihost.sh), alternated in one run, REPS times (default 3): an MPI ping-pong (the floor), wave_sim
# (512², 200 steps) with and without CELER_OVERLAP, and overhead's 1D stencil of tiny steps (also on 1 rank).
# Needs root; release builds of the examples (cargo build --release -p celer-examples --examples, and
# cargo build --release -p celer-exec --example mpi_pingpong).
#   scripts/tcp_vs_shm.sh [REPS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. .ci/env.sh
reps="${1:-3}"
bin=target/release/examples
wave="$bin/wave_sim --size 512 --steps 200 --no-picture"
tiny="$bin/overhead --tasks 2000 --reps 1"
trap 'scripts/multihost.sh down' EXIT
scripts/multihost.sh up 2 >/dev/null
shm() { timeout 300 mpirun -n 2 "$@" 2>&1; }
tcp() { timeout 300 scripts/multihost.sh mpirun 2 -n 2 "$@" 2>&1; }
for rep in $(seq 1 "$reps"); do
    echo "rep $rep ping-pong  shm: $(shm "$bin/mpi_pingpong" 2000 | grep -o 'median.*')"
    echo "rep $rep ping-pong  tcp: $(tcp "$bin/mpi_pingpong" 300 | grep -o 'median.*')"
    for ov in on off; do
        echo "rep $rep wave_sim overlap=$ov shm: $(CELER_OVERLAP=$ov shm -x CELER_OVERLAP $wave | grep -o '[0-9.]* µs per step')"
        echo "rep $rep wave_sim overlap=$ov tcp: $(CELER_OVERLAP=$ov tcp -x CELER_OVERLAP $wave | grep -o '[0-9.]* µs per step')"
    done
    echo "rep $rep tiny steps 1 rank: $(timeout 300 mpirun -n 1 $tiny 2>&1 | grep 'stencil of tiny' | grep -o '[0-9.]* µs per task')"
    echo "rep $rep tiny steps shm:    $(shm $tiny | grep 'stencil of tiny' | grep -o '[0-9.]* µs per task')"
    echo "rep $rep tiny steps tcp:    $(tcp $tiny | grep 'stencil of tiny' | grep -o '[0-9.]* µs per task')"
done
