#!/usr/bin/env bash
# Longer differential testing than ./x test runs: N random programs (default 1000) from seed S (default 1000) on
# 1, 2 and 3 ranks; appends the count and the outcome to out/diff_soak.log.
#
#   scripts/diff_soak.sh [N] [S]
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/env.sh
n="${1:-1000}" seed="${2:-1000}"
json="$(cargo test --no-run --test e2e_diff --message-format=json 2>/dev/null)"
exe="$(printf '%s\n' "$json" | grep '"name":"e2e_diff"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
mkdir -p out
start=$SECONDS
if "$exe" --programs "$n" --seed "$seed" --ranks 1,2,3; then
    echo "$(date -u +%FT%TZ) $n programs from seed $seed on 1,2,3 ranks: all agree ($((SECONDS - start)) s)" | tee -a out/diff_soak.log
else
    echo "$(date -u +%FT%TZ) $n programs from seed $seed: FAILED (see above)" | tee -a out/diff_soak.log
    exit 1
fi
