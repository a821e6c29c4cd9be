#!/usr/bin/env bash
# The GPU study of docs/PERFORMANCE.md: METG sweeps, GPU efficiency and scaling runs on one machine.
#
#   scripts/gpu_study.sh BIN_DIR OUT_DIR GPUS PART...
#
# BIN_DIR holds release builds of the examples metg, gpu_efficiency, wave_sim, nbody, matmul, overhead
# (cargo build --release --example NAME) and, for the verify part, of the e2e_diff test (cargo test --release
# --no-run --test e2e_diff); OUT_DIR receives one text file per run (and metg's SVG/summary);
# GPUS is how many GPUs (= ranks) to scale to; PART is any of: metg efficiency scaling overlap overhead nbody verify
# peer.
# Ranks are started with `mpirun --bind-to none`: OpenMPI's default binds each rank of a small job to one core,
# which its runtime, application and driver threads would then share.
# Environment of the metg part: CUDA_METG=PATH adds the backends cuda and cuda_graph, measured by that program
# (metg's --cuda-bin protocol); METG_ARGS adds arguments to the metg sweeps, after the script's own (metg takes an
# option's last value), e.g. "--patterns stencil_1d,trivial" (not to the 2-rank stencil with core binding);
# METG_LIMIT is the time limit of one metg run in seconds (default 540; every other run has 240).
set -u
bin="$1" out="$2" gpus="$3"
shift 3
mkdir -p "$out"
mpi=(mpirun --bind-to none)
ranks_list() { local r=1; while [ "$r" -le "$gpus" ]; do echo "$r"; r=$((r * 2)); done; }
run() { # run NAME CMD...: runs CMD with a time limit (LIMIT, default 240 s), output to OUT/NAME.txt and a line on stdout
    local name="$1"
    shift
    local t0=$SECONDS
    timeout -k 5 "${LIMIT:-240}" "$@" >"$out/$name.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - t0)) s"
}
nvidia-smi -L >"$out/gpus.txt" 2>&1
for part in "$@"; do
    case "$part" in
    metg)
        # 3 repetitions, backends in rotated order, each after a warm-up (examples/metg.rs says how it measures).
        metg_common=(--reps 3)
        [ -n "${CUDA_METG:-}" ] && metg_common+=(--cuda-bin "$CUDA_METG")
        # shellcheck disable=SC2206 # METG_ARGS are words
        metg_args=("${metg_common[@]}" ${METG_ARGS:-})
        LIMIT="${METG_LIMIT:-540}" run metg_r1 "$bin/metg" --ranks 1 --cpu-ranks 16 --mpirun "${mpi[*]}" \
            --out-dir "$out/metg_r1" "${metg_args[@]}"
        for r in $(ranks_list); do
            [ "$r" -gt 1 ] || continue
            LIMIT="${METG_LIMIT:-540}" run "metg_r$r" "$bin/metg" --ranks "$r" --backends celer,vulkan \
                --mpirun "${mpi[*]}" --out-dir "$out/metg_r$r" "${metg_args[@]}"
        done
        # The same 2-rank stencil with OpenMPI's default core binding, to show what binding costs.
        LIMIT="${METG_LIMIT:-540}" run metg_r2_bound "$bin/metg" --ranks 2 --backends celer,vulkan \
            --patterns stencil_1d --out-dir "$out/metg_r2_bound" "${metg_common[@]}"
        ;;
    efficiency)
        run gpu_efficiency "$bin/gpu_efficiency"
        ;;
    scaling)
        for r in $(ranks_list); do
            # Weak: 8192² cells per GPU; strong: 16384² in all.
            s=$(awk -v r="$r" 'BEGIN { printf "%d", 8192 * sqrt(r) }')
            # 500 untimed warm-up steps: device timestamps showed GPUs that wait between steps (halo exchanges) run
            # kernels up to 2.7x slower for the first 100-200 ms under load, until their clocks come up.
            run "wave_weak_r$r" "${mpi[@]}" -n "$r" "$bin/wave_sim" --size "$s" --warmup 500 --steps 300 --no-verify \
                --no-picture
            run "wave_strong_r$r" "${mpi[@]}" -n "$r" "$bin/wave_sim" --size 16384 --warmup 500 --steps 300 \
                --no-verify --no-picture
            run "matmul_r$r" "${mpi[@]}" -n "$r" "$bin/matmul" --size 8192 --no-verify
            # 262144 bodies: with fewer, a quarter of the bodies is too few threads to fill an H200.
            run "nbody_r$r" "${mpi[@]}" -n "$r" "$bin/nbody" --bodies 262144 --steps 5 --no-verify --no-energy
        done
        ;;
    overlap)
        # wave_sim weak and strong scaling with CELER_OVERLAP on and off, and the 2-rank stencil METG both ways.
        for r in $(ranks_list); do
            s=$(awk -v r="$r" 'BEGIN { printf "%d", 8192 * sqrt(r) }')
            for ov in on off; do
                run "overlap_weak_r${r}_$ov" "${mpi[@]}" -x CELER_OVERLAP="$ov" -n "$r" "$bin/wave_sim" --size "$s" \
                    --warmup 500 --steps 300 --no-verify --no-picture
                run "overlap_strong_r${r}_$ov" "${mpi[@]}" -x CELER_OVERLAP="$ov" -n "$r" "$bin/wave_sim" --size 16384 \
                    --warmup 500 --steps 300 --no-verify --no-picture
            done
        done
        for ov in on off; do
            CELER_OVERLAP=$ov run "overlap_metg_r2_$ov" "$bin/metg" --ranks 2 --backends celer,vulkan \
                --patterns stencil_1d --mpirun "${mpi[*]} -x CELER_OVERLAP" --out-dir "$out/overlap_metg_r2_$ov"
        done
        ;;
    nbody)
        # Strong (262 144 bodies in all) and weak (131 072·√R bodies: the same pair interactions per GPU) scaling,
        # after 3 untimed steps (compilation, clock ramp).
        for r in $(ranks_list); do
            w=$(awk -v r="$r" 'BEGIN { printf "%d", int(131072 * sqrt(r) / 1024) * 1024 }')
            run "nbody_strong_r$r" "${mpi[@]}" -n "$r" "$bin/nbody" --bodies 262144 --warmup 3 --steps 20 --no-verify \
                --no-energy
            run "nbody_weak_r$r" "${mpi[@]}" -n "$r" "$bin/nbody" --bodies "$w" --warmup 3 --steps 20 --no-verify \
                --no-energy
        done
        ;;
    verify)
        # Results checked on the GPUs, several devices per rank included: random programs bit-identical on every
        # layout (R ranks, or RxD: R ranks of D devices each), and examples against their serial references.
        layouts=1
        for r in $(ranks_list); do [ "$r" -gt 1 ] && layouts="$layouts,$r,1x$r"; done
        [ "$gpus" -ge 4 ] && layouts="$layouts,2x2"
        run diff_gpu "$bin/e2e_diff" --programs 60 --ranks "$layouts"
        for d in 2 "$gpus"; do
            [ "$d" -le "$gpus" ] || continue
            run "wave_verify_1x$d" "${mpi[@]}" -x CELER_DEVICES="$d" -n 1 "$bin/wave_sim" --size 2048 --steps 100 \
                --no-picture
            run "nbody_verify_1x$d" "${mpi[@]}" -x CELER_DEVICES="$d" -n 1 "$bin/nbody" --bodies 4096 --steps 10
            run "matmul_verify_1x$d" "${mpi[@]}" -x CELER_DEVICES="$d" -n 1 "$bin/matmul" --size 1024
        done
        if [ "$gpus" -ge 4 ]; then
            run wave_verify_2x2 "${mpi[@]}" -x CELER_DEVICES=2 -n 2 "$bin/wave_sim" --size 2048 --steps 100 --no-picture
        fi
        ;;
    overhead)
        run overhead_r1 "$bin/overhead"
        run overhead_r2 "${mpi[@]}" -n 2 "$bin/overhead"
        ;;
    peer)
        # Two devices of a rank on one GPU (one Vulkan device, a queue each) exchanging halos by GPU copies
        # (CELER_PEER_COPIES, the default): results first (the e2e_heat test asserts the copies were taken; random
        # programs bit for bit against one rank; wave_sim against its serial reference), then the cost against the
        # host path and one device, alternating, three rounds. Needs BIN_DIR/e2e_heat (cargo test --release --no-run
        # --test e2e_heat) and e2e_diff besides wave_sim and overhead.
        run peer_heat_1x2 "${mpi[@]}" -n 1 "$bin/e2e_heat" --devices 2
        run peer_heat_2x2 "${mpi[@]}" -n 2 "$bin/e2e_heat" --devices 2
        run peer_diff "$bin/e2e_diff" --programs 60 --ranks 1x2,2x2
        run peer_wave_1x2 "${mpi[@]}" -x CELER_DEVICES=2 -n 1 "$bin/wave_sim" --size 2048 --steps 100 --no-picture
        for round in 1 2 3; do
            run "peer_overhead_off_$round" env CELER_DEVICES=2 CELER_PEER_COPIES=off "$bin/overhead"
            run "peer_overhead_on_$round" env CELER_DEVICES=2 "$bin/overhead"
            run "peer_overhead_one_$round" env CELER_DEVICES=1 "$bin/overhead"
        done
        ;;
    *) echo "unknown part $part" >&2 ;;
    esac
done
