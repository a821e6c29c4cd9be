#!/usr/bin/env bash
# `./x test`'s MPI entries on a machine with a GPU and no Rust toolchain: build here, run there.
#
#   scripts/gpu_suite.sh pack DIR               # here: release builds of every binary that x's MPI_TESTS and
#                                               # MPI_FAIL_TESTS name, packed into DIR/bins.tar.xz with the list
#   scripts/gpu_suite.sh run DIR [SKIP [ONLY]]  # there: unpack DIR/bins.tar.xz and run the entries
#
# SKIP and ONLY are extended regular expressions (bash's =~) matched against an entry's text; an entry runs when it
# does not match SKIP and does match ONLY (empty: no filter). Each run prints "==> ENTRY", the first line naming the
# expected failure, or FAILED with the output; the last line is "N passed, N failed", as `./x test` prints it.
# GPU_SUITE_PART=ok runs only MPI_TESTS, =fail only MPI_FAIL_TESTS (default: both); GPU_SUITE_FAIL_LIMIT replaces
# x's FAIL_LIMIT (seconds within which an expected failure must end the job). The run part needs mpirun and a
# Vulkan driver (on the NVIDIA machine, Debian's libvulkan1 and libglvnd0 unpacked first: NVIDIA's ICD needs
# libglvnd's libGLdispatch), nothing else.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
verb="${1:-}" dir="${2:-}"
[ -n "$verb" ] && [ -n "$dir" ] || {
    sed -n '2,14p' "$0" >&2
    exit 2
}

# x's two arrays, read from its source (x itself runs its verb when sourced).
# shellcheck disable=SC1090
. <(sed -n '/^MPI_TESTS=(/,/^)/p; /^MPI_FAIL_TESTS=(/,/^)/p; /^FAIL_LIMIT=/p; /^MPI_TIMEOUT=/p' x)
# An expected failure must end the job within FAIL_LIMIT seconds, x's own unless GPU_SUITE_FAIL_LIMIT is set: on the
# NVIDIA machine a job whose kernel never ends (e2e_errors --case spin) reports its stall at 2 s but takes about 12 s
# to end, the driver tearing the running kernel down.
FAIL_LIMIT="${GPU_SUITE_FAIL_LIMIT:-$FAIL_LIMIT}"

# Where an entry's binary lies in the pack.
bin_of() { echo "$dir/bin/$2-$3"; }

case "$verb" in
pack)
    . .ci/env.sh
    mkdir -p "$dir/bin"
    json="$(mktemp)"
    cargo build --release --workspace --examples --message-format=json-render-diagnostics >"$json" || exit 1
    cargo test --release --workspace --no-run --message-format=json-render-diagnostics >>"$json" || exit 1
    for entry in "${MPI_TESTS[@]}" "${MPI_FAIL_TESTS[@]}"; do
        read -r _ pkg kind target _ <<<"$entry"
        [ -f "$(bin_of "$pkg" "$kind" "$target")" ] && continue
        case "$kind" in test) want='"test":true' ;; *) want='"test":false' ;; esac
        exe="$(grep '"reason":"compiler-artifact"' "$json" | grep -F "\"name\":\"$target\"" | grep -F "$want" |
            sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
        [ -n "$exe" ] || {
            echo "gpu_suite: no $kind executable named $target" >&2
            exit 1
        }
        cp "$exe" "$(bin_of "$pkg" "$kind" "$target")"
    done
    # Programs a self-launching entry or the study may want beside the suite's own.
    for extra in metg overhead gpu_efficiency; do
        exe="$(grep '"reason":"compiler-artifact"' "$json" | grep -F "\"name\":\"$extra\"" | grep -F '"test":false' |
            sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
        [ -n "$exe" ] && cp "$exe" "$dir/bin/$extra"
    done
    rm -f "$json"
    # Without their debug information (1.3 GB → 0.2 GB): the archive must fit the GPU machine's 64 MiB tree.
    strip "$dir"/bin/* || exit 1
    git rev-parse --short HEAD >"$dir/bin/COMMIT"
    tar -C "$dir" -cJf "$dir/bins.tar.xz" bin && rm -rf "$dir/bin"
    echo "gpu_suite: $(du -h "$dir/bins.tar.xz" | cut -f1) in $dir/bins.tar.xz, commit $(git rev-parse --short HEAD)"
    ;;
run)
    skip="${3:-}" only="${4:-}"
    tar -C "$dir" -xJf "$dir/bins.tar.xz" || exit 1
    echo "gpu_suite: binaries of commit $(cat "$dir/bin/COMMIT")"
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    mpirun=(mpirun --bind-to none)
    pick() { [[ -z "$skip" || ! "$1" =~ $skip ]] && [[ -z "$only" || "$1" =~ $only ]]; }
    passed=0 failed=0
    part="${GPU_SUITE_PART:-both}"
    for entry in "${MPI_TESTS[@]}"; do
        [ "$part" != fail ] || break
        pick "$entry" || continue
        read -r ranks pkg kind target args <<<"$entry"
        exe="$(bin_of "$pkg" "$kind" "$target")"
        echo "==> $entry"
        rc=0
        if [ "$ranks" = self ]; then
            # shellcheck disable=SC2086 # ARGS are words
            timeout -k 10 "$MPI_TIMEOUT" "$exe" $args >/tmp/gpu_suite.log 2>&1 || rc=$?
        else
            # shellcheck disable=SC2086 # ARGS are words
            timeout -k 10 "$MPI_TIMEOUT" "${mpirun[@]}" -n "$ranks" "$exe" $args >/tmp/gpu_suite.log 2>&1 || rc=$?
        fi
        if [ "$rc" -eq 0 ]; then
            passed=$((passed + 1))
        else
            tail -n 40 /tmp/gpu_suite.log
            echo "FAILED: $entry: exit status $rc"
            failed=$((failed + 1))
        fi
    done
    for entry in "${MPI_FAIL_TESTS[@]}"; do
        [ "$part" != ok ] || break
        pick "$entry" || continue
        read -r ranks pkg kind target expected args <<<"$entry"
        exe="$(bin_of "$pkg" "$kind" "$target")"
        echo "==> $entry"
        rc=0 t0=$SECONDS
        # shellcheck disable=SC2086 # ARGS are words
        timeout -k 10 "$MPI_TIMEOUT" "${mpirun[@]}" -n "$ranks" "$exe" $args >/tmp/gpu_suite.log 2>&1 || rc=$?
        took=$((SECONDS - t0)) found=1
        IFS='+' read -ra parts <<<"$expected"
        for want in "${parts[@]}"; do
            if [ "${want:0:1}" = '!' ]; then
                want="${want:1}"
                ! grep -qF -- "${want//\~/ }" /tmp/gpu_suite.log || found=0
            else
                grep -qF -- "${want//\~/ }" /tmp/gpu_suite.log || found=0
            fi
        done
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "$found" -eq 1 ] &&
            [ "$took" -le "$FAIL_LIMIT" ]; then
            grep -F -- "${parts[0]//\~/ }" /tmp/gpu_suite.log | head -n 1
            passed=$((passed + 1))
        else
            tail -n 30 /tmp/gpu_suite.log
            echo "FAILED: $entry: exit status $rc after $took s, expected a quick failure naming '$expected'"
            failed=$((failed + 1))
        fi
    done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    ;;
*)
    echo "gpu_suite: unknown verb $verb (pack or run)" >&2
    exit 2
    ;;
esac
