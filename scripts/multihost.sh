#!/usr/bin/env bash
# Rehearses a cluster on one machine: each "host" is a network namespace joined to the others by a bridge on a
# private test subnet, and `mpirun` starts one daemon (and its ranks) in each through an rsh agent that enters the
# namespace named by the host. MPI then runs over TCP only, as between real hosts.
#
#   scripts/multihost.sh test BINDIR    the multi-host stage of `./x test` (BINDIR: where the debug examples are;
#                                       the test binaries are found with `cargo test --no-run -p celer-examples`)
#   scripts/multihost.sh faults BINDIR  only the fault cases of the stage (a partition, a rank killed)
#   scripts/multihost.sh up [HOSTS]     creates HOSTS namespaces (default 3) and leaves them for manual runs
#   scripts/multihost.sh mpirun HOSTS ARGS...   runs `mpirun ARGS...` with one rank slot on each of HOSTS hosts
#   scripts/multihost.sh down           removes every namespace, link and process the script made
#
# Needs root (network namespaces) and iproute2; `test` prints why and exits 0 without running when it cannot create
# namespaces. Everything it creates is removed on every exit path (EXIT, INT, TERM traps).
#
# A partition (one host's link cut mid-run) must end the job by itself: every rank that still runs reports what it
# misses (celer's stall detection, CELER_STALL_TIMEOUT) and calls MPI_Abort; mpirun and the daemons notice the
# unreachable host through TCP keepalive on their control connections (the OOB_KEEPALIVE settings below) and end
# the job, and the cut-off host's daemon ends its ranks when it loses mpirun. The bound asserted here is
# PARTITION_BOUND seconds from the cut.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=cmh                  # namespace, bridge and veth names start with this (interface names <= 15 chars)
SUBNET=10.213.7             # the test subnet: host i at .1i (host 0: the head node, where mpirun runs)
BRIDGE="${PREFIX}-br"
STATE="${TMPDIR:-/tmp}/celer-multihost"
AGENT="$ROOT/scripts/netns-agent.sh"   # enters the host's namespace, and watches its link as ssh would
HOSTFILE="$STATE/hosts"
STALL_TIMEOUT=3             # CELER_STALL_TIMEOUT for the partition case (below the keepalive's ~8 s)
PARTITION_BOUND=25          # seconds from the cut within which the whole job must have ended
DEATH_BOUND=15              # seconds from a rank's SIGKILL within which the whole job must have ended
RUN_LIMIT=120               # no single run may take longer (a hang fails the stage instead of blocking CI)

# Control connections: TCP keepalive after 5 s idle, then 3 probes 1 s apart, so mpirun sees a cut link in ~8 s
# (after celer's stall detection has named what is missing) instead of the default 300 + 9 x 20 s.
OOB_KEEPALIVE=(--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3)

say() { echo "multihost: $*" >&2; }

host_name() { echo "${PREFIX}-h$1"; }

down() {
    local ns pids
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}-h" || true); do
        pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    local i
    for i in 0 1 2 3 4 5 6 7 8; do ip link del "${PREFIX}-v$i" 2>/dev/null || true; done
    rm -rf "$STATE"
}

up() {
    local hosts="${1:-3}" i ns
    down
    mkdir -p "$STATE"
    ip link add "$BRIDGE" type bridge
    ip link set "$BRIDGE" up
    : >"$HOSTFILE"
    # Host 0 is the head node where mpirun runs (no ranks); hosts 1..HOSTS run one rank each.
    for i in $(seq 0 "$hosts"); do
        ns="$(host_name "$i")"
        ip netns add "$ns"
        ip link add "${PREFIX}-v$i" type veth peer name eth0 netns "$ns"
        ip link set "${PREFIX}-v$i" master "$BRIDGE" up
        ip -n "$ns" addr add "$SUBNET.1$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        [ "$i" -eq 0 ] || echo "$ns slots=1" >>"$HOSTFILE"
    done
    # The head node gives up on an unanswered TCP connection after ~6 s of retransmissions (the default, 15 tries,
    # is ~15 minutes): mpirun, which waits for every daemon to acknowledge an abort, then sees the cut-off host's
    # daemon as lost and ends. This is a setting of the head node's network namespace only.
    ip netns exec "$(host_name 0)" sysctl -q -w net.ipv4.tcp_retries2=4
}

PASSED=0
FAILED=0
pass() {
    PASSED=$((PASSED + 1))
    say "ok: $*"
}
fail() {
    FAILED=$((FAILED + 1))
    say "FAILED: $*"
}

# check NAME HOSTS ARGS...: a run that must succeed.
check() {
    local name="$1" hosts="$2" log rc=0
    shift 2
    log="$STATE/$name.log"
    say "$name: $hosts hosts: $*"
    timeout -k 5 "$RUN_LIMIT" "$0" mpirun "$hosts" "$@" >"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" -eq 0 ]; then
        grep -h -E 'verified|agree|passed' "$log" | head -n 2 >&2 || true
        pass "$name"
    else
        tail -n 30 "$log" >&2
        fail "$name: exit status $rc"
    fi
}

# leftovers NS: prints the processes still alive in namespace NS.
leftovers() { ip netns pids "$1" 2>/dev/null | xargs -r ps -o pid=,comm= -p 2>/dev/null || true; }

# A long run in which something happens to host 2 at AT seconds (ACTION: cut or kill); the job must end by itself
# within BOUND seconds of it, non-zero, with every part of EXPECTED ('+'-separated) in its output, and leave no
# process on the hosts.
disrupted() {
    local name="$1" action="$2" at="$3" bound="$4" expected="$5"
    shift 5
    local log="$STATE/$name.log" pid rc=0 t_event t_end part ns victim
    say "$name: 2 hosts, $action host 2 after ${at}s: $*"
    up 2
    timeout -k 5 "$RUN_LIMIT" "$0" mpirun 2 "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    sleep "$at"
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 30 "$log" >&2
        fail "$name: the run ended before the $action"
        return
    fi
    ns="$(host_name 2)"
    case "$action" in
        cut) ip link set "${PREFIX}-v2" down ;;
        kill)
            victim="$(leftovers "$ns" | awk '$2 != "orted" && $2 != "sh" {print $1}' | head -n 1)"
            [ -n "$victim" ] || {
                fail "$name: no rank process found on host 2"
                return
            }
            kill -9 "$victim"
            ;;
    esac
    t_event=$SECONDS
    wait "$pid" || rc=$?
    t_end=$((SECONDS - t_event))
    # The cut-off host's processes must end by themselves too (its daemon loses mpirun); give them the same bound.
    while [ -n "$(leftovers "$ns")" ] && [ $((SECONDS - t_event)) -le "$bound" ]; do sleep 1; done
    local left
    left="$(leftovers "$ns")"
    local ok=1
    # (RUN_LIMIT is far above the bound, so a run that meets the bound was not ended by `timeout`.)
    [ "$rc" -ne 0 ] || ok=0
    [ "$t_end" -le "$bound" ] || ok=0
    [ -z "$left" ] || ok=0
    IFS='+' read -ra parts <<<"$expected"
    for part in "${parts[@]}"; do grep -qF -- "${part//\~/ }" "$log" || ok=0; done
    if [ "$ok" -eq 1 ]; then
        grep -h -F -- "${parts[0]//\~/ }" "$log" | head -n 2 >&2
        pass "$name: ended ${t_end}s after the $action (bound ${bound}s), exit status $rc"
    else
        tail -n 40 "$log" >&2
        [ -z "$left" ] || say "left running on $ns: $left"
        fail "$name: exit status $rc after ${t_end}s (bound ${bound}s), expected a non-zero end naming '$expected'"
    fi
}

# The e2e_diff worker on HOSTS hosts must give the digests of one rank on one host.
diff_check() {
    local hosts="$1" exe="$2" programs="$3" seed="$4" rc=0
    local base="$STATE/diff-1.txt" out="$STATE/diff-$hosts.txt"
    [ -f "$base" ] || timeout -k 5 "$RUN_LIMIT" mpirun -n 1 "$exe" --worker --programs "$programs" --seed "$seed" \
        --out "$base" >"$STATE/diff-1.log" 2>&1 </dev/null || {
        tail -n 20 "$STATE/diff-1.log" >&2
        fail "e2e_diff on one rank"
        return
    }
    check "e2e_diff-$hosts" "$hosts" -n "$hosts" "$exe" --worker --programs "$programs" --seed "$seed" --out "$out"
    if [ -f "$out" ] && cmp -s "$base" "$out"; then
        pass "e2e_diff: $programs random programs give the same digests on $hosts hosts as on one rank"
    else
        diff "$base" "$out" >&2 || true
        fail "e2e_diff: digests on $hosts hosts differ from one rank's"
    fi
}

test_exe() {
    # The end-to-end tests are the root package's (celer-examples), not the library's.
    cargo test --no-run -p celer-examples --test "$1" --message-format=json 2>/dev/null |
        grep '"reason":"compiler-artifact"' | grep -F "\"name\":\"$1\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}

stage() {
    local bin="$1"
    if [ "$(id -u)" -ne 0 ]; then
        say "skipped: network namespaces need root"
        return 0
    fi
    if ! command -v ip >/dev/null 2>&1 || ! ip netns add "${PREFIX}-probe" 2>/dev/null; then
        say "skipped: cannot create network namespaces here (iproute2 missing, or no CAP_SYS_ADMIN)"
        return 0
    fi
    ip netns del "${PREFIX}-probe"
    local heat_test diff_test reduce_test
    heat_test="$(test_exe e2e_heat)"
    reduce_test="$(test_exe e2e_reduce)"
    diff_test="$(test_exe e2e_diff)"
    up 3
    check heat-2 2 -n 2 "$bin/heat"
    check wave_sim-2 2 -n 2 "$bin/wave_sim"
    check nbody-2 2 -n 2 "$bin/nbody"
    check matmul-2 2 -n 2 "$bin/matmul"
    check e2e_heat-2 2 -n 2 "$heat_test"
    check heat-3 3 -n 3 "$bin/heat"
    check wave_sim-3 3 -n 3 "$bin/wave_sim"
    check e2e_reduce-3 3 -n 3 "$reduce_test"
    diff_check 2 "$diff_test" 12 7001
    diff_check 3 "$diff_test" 12 7001
    faults "$bin"
    down
    echo "multihost: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# The fault cases alone (also the end of `stage`).
faults() {
    local bin="$1"
    # A partition: host 2's link goes down mid-run. Rank 0 names what it misses from rank 1.
    CELER_STALL_TIMEOUT=$STALL_TIMEOUT disrupted partition cut 4 "$PARTITION_BOUND" \
        "stalled:+from~rank~1" -x CELER_STALL_TIMEOUT -n 2 "$bin/soak" --tasks 1000000000
    # A rank killed on another host: mpirun names it and ends the job everywhere.
    disrupted rank-death kill 4 "$DEATH_BOUND" "process~rank~1" -n 2 "$bin/soak" --tasks 1000000000
}

verb="${1:-}"
[ "$#" -gt 0 ] && shift
case "$verb" in
    test)
        trap down EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        stage "${1:?usage: scripts/multihost.sh test BINDIR}"
        ;;
    faults)
        trap down EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        faults "${1:?usage: scripts/multihost.sh faults BINDIR}"
        echo "multihost: $PASSED passed, $FAILED failed"
        [ "$FAILED" -eq 0 ]
        ;;
    up) up "${1:-3}" ;;
    down) down ;;
    mpirun)
        [ -f "$HOSTFILE" ] || up 3
        hosts="${1:?usage: scripts/multihost.sh mpirun HOSTS ARGS...}"
        shift
        export MULTIHOST_SERVER="$SUBNET.10" MULTIHOST_STATE="$STATE" TMPDIR="$STATE/tmp-$(host_name 0)"
        mkdir -p "$TMPDIR"
        exec ip netns exec "$(host_name 0)" mpirun --hostfile "$HOSTFILE" --host "$(seq -f "$(host_name %g)" 1 "$hosts" | paste -sd,)" \
            --mca plm_rsh_agent "$AGENT" --mca routed direct \
            --mca btl self,tcp --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24" \
            "${OOB_KEEPALIVE[@]}" "$@"
        ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
