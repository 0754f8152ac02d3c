#!/usr/bin/env bash
# Stop the cluster started by tests/pipeline/slurm/start_slurm.sh DIR: end each daemon it started, by the
# pid file in DIR (slurmd, slurmctld, then munged if it was started there), and remove the link
# /etc/slurm/slurm.conf -> DIR/slurm.conf if it made it. DIR is kept (logs).
set -uo pipefail

DIR=${1:?usage: stop_slurm.sh DIR}
[[ -f $DIR/started ]] || { echo "stop_slurm.sh: $DIR was not made by start_slurm.sh" >&2; exit 1; }

status=0
for daemon in slurmd slurmctld munged; do
    grep -qx "$daemon" "$DIR/started" || continue
    pidfile=$DIR/$daemon.pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        echo "$daemon: not running"
        continue
    fi
    kill "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" && echo "$daemon ($pid): killed" || status=1
    else
        echo "$daemon ($pid): stopped"
    fi
done
if grep -qx system_conf "$DIR/started" && [[ $(readlink /etc/slurm/slurm.conf) == "$DIR/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf && echo "/etc/slurm/slurm.conf: link removed"
fi
exit $status
