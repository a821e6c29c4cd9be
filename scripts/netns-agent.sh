#!/bin/bash
# The rsh agent of scripts/multihost.sh: mpirun calls it as `netns-agent.sh HOST COMMAND...`, as it would call
# ssh, and it runs COMMAND (mpirun's daemon) inside the network namespace HOST.
#
# Like ssh with ServerAliveInterval/ServerAliveCountMax, it watches the connection while the daemon runs: once a
# second it opens a TCP connection from inside HOST to mpirun's host ($MULTIHOST_SERVER, port 9, where a refusal is
# an answer), and after 3 checks in a row without an answer it ends everything in HOST and exits 255, which tells
# mpirun that the host is lost. When the agent itself is ended (mpirun ends its agents when the job ends) it takes
# the host's processes with it, as a dropped ssh connection does, so no daemon outlives the job.
host="$1"
shift
end_host() {
    ip netns pids "$host" | xargs -r kill -TERM 2>/dev/null
    sleep 1
    ip netns pids "$host" | xargs -r kill -KILL 2>/dev/null
}
trap 'end_host; exit 255' TERM INT HUP
# Every host has its own temporary directory, as separate machines would: the daemons keep their session
# directories there, named after the host name, which the namespaces share. The daemon dies with the agent even
# when the agent is killed outright (SIGKILL: no trap runs).
tmp="${MULTIHOST_STATE:?}/tmp-$host"
mkdir -p "$tmp"
ip netns exec "$host" env TMPDIR="$tmp" setpriv --pdeathsig KILL /bin/sh -c "$*" &
daemon=$!
misses=0
while kill -0 "$daemon" 2>/dev/null; do
    sleep 1 &
    wait $!
    answer="$(timeout 1 ip netns exec "$host" bash -c "exec 3<>/dev/tcp/${MULTIHOST_SERVER:?}/9" 2>&1)" && answer=refused
    case "$answer" in
        *refused*) misses=0 ;;
        *) misses=$((misses + 1)) ;;
    esac
    if [ "$misses" -ge 3 ]; then
        echo "netns-agent: $host lost its connection to mpirun's host; ending its processes" >&2
        end_host
        exit 255
    fi
done
wait "$daemon"
