#!/usr/bin/env bash
# Mutation testing of celer's pure cores with cargo-mutants: which changes to the code do the tests fail to notice?
#
#   scripts/mutants.sh [-j JOBS] [-t SECS] [-F REGEX] [--doc] [--list] TARGET... [-- CARGO_TEST_ARGS...]
#
# TARGET is a source file (graph/src/geometry.rs) or a package (celer-graph). Each target runs on its own, mutating
# only that file (or package) and running only the tests of the package it belongs to: `cargo test -p PACKAGE
# --tests` (unit and integration tests; --doc adds the doctests, which build slowly). Options:
#   -j JOBS   builds and test runs in parallel (default 1: the build machine is shared)
#   -t SECS   timeout of one mutant's test run (default 60); a run past it counts as caught (the tests did not pass)
#   -F REGEX  only mutants whose name matches (e.g. 'in Region::absorb'); may be repeated
#   --list    only list the mutants (with their names, for the equivalence list below), run nothing
#   -- ARGS   cargo test arguments instead of --tests, e.g. `-- --lib -- overlap::` to run only a module's unit tests
#             where the package's whole suite is slow (celer-scheduler's takes minutes)
# Every build runs under `nice -n 10` without debug info, in target/mutants (or $CARGO_TARGET_DIR), where the
# dependencies stay built between runs. That directory is the script's own: its celer crates may be built from the
# last mutant of a run, with newer times than your sources, so a build of your checkout there can look fresh and be
# stale (touch the sources, or build elsewhere). Results go to out/mutants/NAME/mutants.out (missed.txt, caught.txt, a diff and a log per mutant).
#
# For each target the script prints the counts and the score: caught / (caught + missed), timeouts counted as caught,
# unviable mutants (which do not compile) left out. Mutants marked equivalent are never run; the score printed is
# therefore the score without them, and the line also gives the raw score that counts them as missed.
#
# Marking a mutant as equivalent (it cannot change observable behaviour: a fast path whose slow path gives the same
# result, a merge threshold that only changes when work is done, ...): add ONE line to `exclude_re` in
# .cargo/mutants.toml, a regex matched against the name `--list` prints, with the reason in a comment on that line:
#     'graph/src/geometry\.rs:\d+:\d+: replace match guard n <= 8 with false in Region::from_scratch',  # fast path
# Leave the line and column out of the regex (\d+ as above) unless two mutants differ only there. The code stays
# free of #[mutants::skip] attributes. The script warns about entries that no longer match any mutant.
# See docs/MUTANTS.md for the scores recorded per file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

jobs=1 timeout=60 doc=0 list=0
res=() targets=() custom_test_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    -j) jobs="$2" && shift 2 ;;
    -t) timeout="$2" && shift 2 ;;
    -F) res+=(--re "$2") && shift 2 ;;
    --doc) doc=1 && shift ;;
    --list) list=1 && shift ;;
    --) shift && custom_test_args=("$@") && break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' && exit 0 ;;
    -*) echo "mutants.sh: unknown option $1" >&2 && exit 2 ;;
    *) targets+=("$1") && shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || {
    echo "usage: scripts/mutants.sh [-j JOBS] [-t SECS] [-F REGEX] [--doc] [--list] TARGET... [-- ARGS] (--help: more)" >&2
    exit 2
}
command -v cargo-mutants >/dev/null || {
    echo "mutants.sh: cargo-mutants is missing: cargo install cargo-mutants --locked" >&2
    exit 1
}

# The package of a workspace member directory, from its Cargo.toml.
package_of() {
    sed -n 's/^name *= *"\(.*\)"/\1/p' "$1/Cargo.toml" | head -n 1
}

# Entries of .cargo/mutants.toml's exclude_re that match no mutant of the workspace any more (code changed under them).
check_config() {
    cargo mutants --list --workspace --no-config 2>/dev/null | python3 -c '
import re, sys, tomllib
names = sys.stdin.read().splitlines()
for r in tomllib.load(open(".cargo/mutants.toml", "rb")).get("exclude_re", []):
    if not any(re.search(r, n) for n in names):
        print(f"mutants.sh: warning: exclude_re entry matches no mutant any more: {r}", file=sys.stderr)
'
}

# shellcheck source=.ci/env.sh
. .ci/env.sh
# A separate target directory (CARGO_TARGET_DIR, if set, wins), so that its dependencies stay built between runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/mutants}" CARGO_PROFILE_DEV_DEBUG=0
test_args=(--tests)
[ "$doc" = 1 ] && test_args=()
[ ${#custom_test_args[@]} -gt 0 ] && test_args=("${custom_test_args[@]}")
[ -f .cargo/mutants.toml ] && [ "$list" = 0 ] && check_config
for t in "${targets[@]}"; do
    if [ -f "$t" ]; then
        pkg="$(package_of "${t%%/src/*}")"
        sel=(-p "$pkg" -f "$t")
        name="$(echo "${t%.rs}" | tr '/' '_')"
    else
        pkg="$t"
        sel=(-p "$pkg")
        name="$t"
    fi
    if [ "$list" = 1 ]; then
        cargo mutants --list "${sel[@]}" "${res[@]}"
        continue
    fi
    # Equivalent mutants: listed without the config, left out with it.
    all="$(cargo mutants --list --no-config "${sel[@]}" "${res[@]}" | wc -l)"
    kept="$(cargo mutants --list "${sel[@]}" "${res[@]}" | wc -l)"
    out="out/mutants/$name"
    mkdir -p "$out"
    echo "==> $t: $kept mutants ($((all - kept)) marked equivalent), tests of $pkg" >&2
    # cargo-mutants exits non-zero when it finds missed mutants; the summary below says what it found.
    nice -n 10 cargo mutants "${sel[@]}" "${res[@]}" --test-workspace=false -j "$jobs" --timeout "$timeout" \
        --build-timeout 600 --output "$out" --no-shuffle --colors never -- "${test_args[@]}" || true
    python3 - "$out/mutants.out/outcomes.json" "$t" "$((all - kept))" <<'EOF'
import json, sys
path, target, equivalent = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(path))
counts = {"CaughtMutant": 0, "MissedMutant": 0, "Timeout": 0, "Unviable": 0}
missed = []
for o in data["outcomes"]:
    s = o["scenario"]
    if s == "Baseline" or "Mutant" not in s:
        continue
    counts[o["summary"]] = counts.get(o["summary"], 0) + 1
    if o["summary"] == "MissedMutant":
        m = s["Mutant"]
        missed.append(m.get("name", str(m)))
caught, miss, tout, unv = (counts[k] for k in ("CaughtMutant", "MissedMutant", "Timeout", "Unviable"))
den = caught + tout + miss
score = 100.0 * (caught + tout) / den if den else 100.0
raw = 100.0 * (caught + tout) / (den + equivalent) if den + equivalent else 100.0
print(f"{target}: caught {caught}, timeout {tout}, missed {miss}, unviable {unv}, equivalent {equivalent}: "
      f"score {score:.1f} % ({caught + tout}/{den}), counting equivalents as missed {raw:.1f} %")
for m in missed:
    print(f"  missed: {m}")
EOF
done
