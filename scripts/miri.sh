#!/usr/bin/env bash
# Runs the tests of the pure-Rust crates (celer-alloc: the horizon arena; celer-graph: geometry, region maps, the
# task graph and its node store) under Miri, which reports undefined behaviour in their unsafe code (Stacked
# Borrows aliasing, use after free, uninitialised reads) and leaks. Property tests run PROPTEST_CASES cases each
# (default 4: Miri is ~1000x slower than native code); tests too slow for Miri are #[cfg_attr(miri, ignore)] or
# shrink under cfg!(miri). The first run builds Miri's sysroot (`cargo +nightly miri setup`).
#
#   scripts/miri.sh            # all of it
#   scripts/miri.sh FILTER     # only tests whose name contains FILTER
#
# Needs the nightly toolchain with the miri and rust-src components:
#   rustup component add --toolchain nightly miri rust-src
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
# Without isolation: proptest reads PROPTEST_CASES, the working directory and its regressions files.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
start=$SECONDS
cargo +nightly miri setup >/dev/null
status=0
cargo +nightly miri test --no-fail-fast -p celer-alloc -p celer-graph -- "$@" 2>&1 | tee /tmp/miri.log || status=1
echo "miri.sh: $(grep -o '[0-9]* passed' /tmp/miri.log | awk '{s+=$1} END {print s}') tests passed under Miri" \
    "in $((SECONDS - start)) s (log: /tmp/miri.log)"
exit "$status"
