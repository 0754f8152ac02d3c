#!/usr/bin/env bash
# Start a throw-away single-node SLURM (munged, slurmctld, slurmd) for the tests, as root.
#
#   tests/pipeline/slurm/start_slurm.sh [DIR]   # DIR: an empty folder to use; default: a new temp folder
#
# Nothing is installed here (.ci/run installs slurm-wlm and munge). slurm.conf, state, spool, pid
# and log files live in DIR; SLURM commands find this cluster through SLURM_CONF=DIR/slurm.conf
# (DIR/env sets it) and, while it runs, the symlink /etc/slurm/slurm.conf -> DIR/slurm.conf
# (made only if no slurm.conf is there). The last line printed is DIR; stop the cluster with
# tests/pipeline/slurm/stop_slurm.sh DIR: it ends the daemons started here, by pid file, and removes the link.
set -euo pipefail

fail() { echo "start_slurm.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (slurmd runs jobs as the submitting user)"
for tool in munged munge unmunge slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || fail "'$tool' not found: install slurm-wlm and munge (see .ci/run)"
done

DIR=${1:-$(mktemp -d /tmp/lmmflow-slurm.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
: >"$DIR/started"

HOST=$(hostname)
CPUS=$(nproc)

# --- munge: reuse a running munged; otherwise start one as the munge user ---
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "munged already running; using it"
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge && chown munge:munge /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        [[ -s /run/munge/munged.pid ]] && break
        sleep 0.1
    done
    cp /run/munge/munged.pid "$DIR/munged.pid"
    echo munged >>"$DIR/started"
    munge -n | unmunge >/dev/null || fail "munged does not answer (see /var/log/munge/munged.log)"
fi

cat >"$DIR/slurm.conf" <<CONF
# Throw-away single-node cluster for lmmflow's tests (tests/pipeline/slurm/start_slurm.sh).
ClusterName=lmmflow
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST CPUs=$CPUS RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
echo "export SLURM_CONF=$DIR/slurm.conf" >"$DIR/env"
export SLURM_CONF="$DIR/slurm.conf"

# Inside a job, Snakemake's slurm-jobstep executor runs `srun` with every SLURM_* variable but a
# few removed, SLURM_CONF included, so srun reads the default /etc/slurm/slurm.conf: point that
# at this cluster for as long as it runs. A real configuration there is never replaced.
SYSTEM_CONF=/etc/slurm/slurm.conf
if [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == /tmp/lmmflow-slurm.*/slurm.conf ]]; then
    other=$(dirname "$(readlink "$SYSTEM_CONF")")
    for daemon in slurmctld slurmd; do
        pid=$(cat "$other/$daemon.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            fail "a test cluster is running in $other: stop it first with tests/pipeline/slurm/stop_slurm.sh $other"
        fi
    done
    rm -f "$SYSTEM_CONF"   # left by a test cluster that was not stopped; its daemons are gone
fi
[[ -e $SYSTEM_CONF || -L $SYSTEM_CONF ]] &&
    fail "$SYSTEM_CONF exists: this machine has a SLURM configuration; not starting a test cluster"
mkdir -p /etc/slurm
ln -s "$SLURM_CONF" "$SYSTEM_CONF"
echo system_conf >>"$DIR/started"

slurmctld -f "$SLURM_CONF"
echo slurmctld >>"$DIR/started"
slurmd -f "$SLURM_CONF"
echo slurmd >>"$DIR/started"

for _ in $(seq 60); do
    state=$(sinfo -h -N -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
if [[ $state != idle ]]; then
    echo "node state: '${state}'" >&2
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    "$(dirname "$0")/stop_slurm.sh" "$DIR" >&2 || true
    fail "the node did not become idle within 60 s"
fi
for daemon in slurmctld slurmd; do   # idle, and by the daemons started here
    pid=$(cat "$DIR/$daemon.pid" 2>/dev/null || true)
    if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$DIR/log/$daemon.log" >&2 || true
        "$(dirname "$0")/stop_slurm.sh" "$DIR" >&2 || true
        fail "$daemon did not stay up (see $DIR/log/$daemon.log)"
    fi
done
sinfo
echo "$DIR"
