#!/usr/bin/env bash
# Runs the tests of the pure-Rust crates (alloc, graph, scheduler's graph generation) under valgrind's memcheck:
# any invalid access or definite leak fails. Property tests run 16 cases each here (valgrind is ~50x slower).
# The one "possibly lost" block valgrind mentions is the standard library's handle of the test harness thread.
#
#   scripts/valgrind_graphs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "install valgrind (apt-get install valgrind)" >&2; exit 1; }
bins="$(cargo test -p celer-alloc -p celer-graph -p celer-scheduler --no-run 2>&1 |
    grep -o 'target/debug/deps/[a-z_]*-[0-9a-f]*' | grep -v '/celer_scheduler-')"
status=0
for b in $bins; do
    if PROPTEST_CASES=16 valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        "$b" >/tmp/valgrind_"$(basename "$b")".txt 2>&1; then
        echo "clean: $b"
    else
        echo "FAILED: $b (see /tmp/valgrind_$(basename "$b").txt)"
        status=1
    fi
done
exit "$status"
