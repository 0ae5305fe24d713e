#!/usr/bin/env bash
# A private one-node Slurm (Debian's slurm-wlm + munge) for the tests, run as root.
#
#   tests/slurm/start_slurm.sh install      # apt-get slurm-wlm and munge if missing
#   tests/slurm/start_slurm.sh start DIR    # write DIR/slurm.conf, start munged, slurmctld, slurmd
#   tests/slurm/start_slurm.sh stop DIR     # stop the three daemons started for DIR
#
# `start` prints `export SLURM_CONF=DIR/slurm.conf` on its last line: the client
# commands (sbatch, squeue, scontrol, srun) find the instance through it. The
# instance has its own ports, its own munge daemon and key (DIR/munge), and its
# own state, spool, pid and log paths under DIR, so it does not disturb (or
# depend on) a system Slurm. Environment: SLURM_TEST_CPUS (default 4, may exceed
# the cores: SlurmdParameters=config_overrides), SLURMCTLD_PORT and SLURMD_PORT
# (default: free ports), SLURM_TEST_FIRST_JOB_ID (default: random, so that job ids
# differ between instances; see FirstJobId in slurm.conf.in).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SBIN=/usr/sbin

die() { echo "start_slurm.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are not installed, and installing them needs root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start() {
    local dir=$1 host cpus ctld_port slurmd_port first_job_id
    [ "$(id -u)" = 0 ] || die "the test Slurm runs its daemons as root"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    host="$(hostname -s)"
    cpus="${SLURM_TEST_CPUS:-4}"
    ctld_port="${SLURMCTLD_PORT:-$(free_port)}"
    slurmd_port="${SLURMD_PORT:-$(free_port)}"
    [ "$ctld_port" != "$slurmd_port" ] || slurmd_port="$(free_port)"
    first_job_id="${SLURM_TEST_FIRST_JOB_ID:-$(( (RANDOM * 32768 + RANDOM) % 60000000 + 1000 ))}"
    mkdir -p "$dir"/{state,spool,run,log,munge}
    chmod 700 "$dir/munge"
    : > "$dir/plugstack.conf"

    # munge: a private daemon on a private socket with a private key. The system
    # key /etc/munge/munge.key is created if missing (Debian's munge expects it),
    # but this instance does not use it, nor a system munged.
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chmod 400 /etc/munge/munge.key
    fi
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    "$SBIN/munged" --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" \
        || die "munged did not start: $(tail -n 5 "$dir/munge/munged.log" 2>/dev/null)"

    sed -e "s|@DIR@|$dir|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" \
        -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" -e "s|@FIRST_JOB_ID@|$first_job_id|g" \
        "$HERE/slurm.conf.in" > "$dir/slurm.conf"
    export SLURM_CONF="$dir/slurm.conf"

    "$SBIN/slurmctld" -f "$SLURM_CONF" -i \
        || die "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null)"
    "$SBIN/slurmd" -f "$SLURM_CONF" \
        || die "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"

    local state=""
    for _ in $(seq 1 120); do
        state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
        case "$state" in idle) break ;; esac
        sleep 0.5
    done
    if [ "$state" != idle ]; then
        echo "--- slurmctld.log" >&2; tail -n 20 "$dir/log/slurmctld.log" >&2 || true
        echo "--- slurmd.log" >&2; tail -n 20 "$dir/log/slurmd.log" >&2 || true
        stop "$dir"
        die "node $host is '$state', not idle, after 60 s"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop_pidfile() {
    local pidfile=$1 pid
    [ -s "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# Processes of this instance's jobs, and its client commands (srun, sbatch --wait, ...):
# their environment names this instance's slurm.conf.
instance_pids() {
    local conf="SLURM_CONF=$1/slurm.conf" environ pid comm
    for environ in /proc/[0-9]*/environ; do
        pid="${environ#/proc/}"; pid="${pid%/environ}"
        [ "$pid" != $$ ] || continue
        grep -qzxF "$conf" "$environ" 2>/dev/null || continue
        comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
        if grep -qz '^SLURM_JOB_ID=' "$environ" 2>/dev/null; then
            echo "$pid"
        else
            case "$comm" in srun|sbatch|salloc|squeue|scontrol|scancel|sinfo|sacct) echo "$pid" ;; esac
        fi
    done
}

stop() {
    local dir pids
    dir="$(cd "$1" 2>/dev/null && pwd)" || return 0
    # Cancel the jobs first and give srun time to hear of it: an srun whose
    # controller is gone waits for ever.
    if [ -s "$dir/slurm.conf" ] && [ -s "$dir/run/slurmctld.pid" ]; then
        export SLURM_CONF="$dir/slurm.conf"
        scancel --full --quiet --user=root 2>/dev/null || true
        for _ in $(seq 1 40); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.25
        done
        unset SLURM_CONF
    fi
    stop_pidfile "$dir/run/slurmd.pid"
    stop_pidfile "$dir/run/slurmctld.pid"
    stop_pidfile "$dir/munge/munged.pid"
    pids="$(instance_pids "$dir")"
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
}

case "${1:-}" in
    install) install ;;
    start) [ $# = 2 ] || die "usage: $0 start DIR"; install; start "$2" ;;
    stop) [ $# = 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
