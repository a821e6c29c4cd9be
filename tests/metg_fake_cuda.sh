#!/usr/bin/env bash
# A test double of the external program that `examples/metg --cuda-bin PATH` runs (the protocol is in metg.rs's
# documentation): it measures nothing, it only answers the protocol, so that the driver's side of it is tested
# without a GPU. Its "seconds" are made up (1 µs per step plus 1 ns per iteration and step); never use it as a
# benchmark. Writes FILE on rank 0 only, as the real program must.
set -euo pipefail
out="" variant="" patterns="" ppr="" threads="" imax="" imin="" budget="" maxsteps="" radix=""
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out="$2" ;;
    --variant) variant="$2" ;;
    --patterns) patterns="$2" ;;
    --points-per-rank) ppr="$2" ;;
    --threads) threads="$2" ;;
    --iters-max) imax="$2" ;;
    --iters-min) imin="$2" ;;
    --budget) budget="$2" ;;
    --max-steps) maxsteps="$2" ;;
    --radix) radix="$2" ;;
    *) echo "metg_fake_cuda: unknown argument $1" >&2 && exit 2 ;;
    esac
    shift 2
done
for v in out variant patterns ppr threads imax imin budget maxsteps radix; do
    [ -n "${!v}" ] || { echo "metg_fake_cuda: missing argument for $v" >&2 && exit 2; }
done
case "$variant" in
stream) backend=cuda ;;
graph) backend=cuda_graph ;;
*) echo "metg_fake_cuda: unknown variant $variant" >&2 && exit 2 ;;
esac
ranks="${OMPI_COMM_WORLD_SIZE:-1}"
[ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ] || exit 0
awk -v backend="$backend" -v patterns="$patterns" -v ranks="$ranks" -v ppr="$ppr" -v threads="$threads" \
    -v imax="$imax" -v imin="$imin" -v budget="$budget" -v maxsteps="$maxsteps" 'BEGIN {
    n = split(patterns, list, ",")
    width = ranks * ppr
    if (imin < 1) imin = 1
    for (k = 1; k <= n; k++) {
        for (iters = imax; iters >= imin; iters = int(iters / 2)) {
            steps = int(budget / iters)
            if (steps < 16) steps = 16
            if (steps > maxsteps) steps = maxsteps
            seconds = steps * (1e-6 + iters * 1e-9)
            printf "%s %s %d %d %d %d %.9f %.6e\n", backend, list[k], ranks, width, iters, steps, seconds, \
                iters * 16 * width * threads * steps
            if (iters == 1) break
        }
    }
}' >"$out"
