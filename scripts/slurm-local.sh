#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the Slurm launcher's tests and for trying
# `--launcher slurm` on a laptop: `up` installs slurm-wlm and munge when missing (Debian/Ubuntu),
# writes /etc/slurm/slurm.conf for this host (all its CPUs, one partition `debug`), starts munged,
# slurmctld and slurmd as root and waits until the node takes jobs; `down` cancels every job and
# stops the daemons. Needs root. No accounting storage (so no sacct): follow jobs with squeue.
set -euo pipefail
action="${1:-up}"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

up() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
  fi
  if timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm: already up ($(sinfo -h -o '%P %D %T %C'))"
    return
  fi
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  start_munged
  cat > /etc/slurm/slurm.conf <<CONF
# Written by nas-host's scripts/slurm-local.sh: a single-node cluster.
ClusterName=nas-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=5
MinJobAge=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  # Each Slurm command is bounded: with authentication broken, sinfo waits out its message
  # timeouts (about a minute) instead of failing.
  for i in $(seq 60); do
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle|mixed|allocated) echo "slurm: up ($(sinfo -h -o '%P %D nodes, %C CPUs A/I/O/T'))"; return ;;
      down*|drain*) timeout 5 scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    # A slurmd that could not register (started before munged or slurmctld) does not retry soon.
    if [ "$i" = 15 ]; then
      pkill -9 -x slurmd 2>/dev/null || true
      sleep 1
      slurmd
    fi
    sleep 1
  done
  echo "slurm did not come up; see /var/log/slurm/" >&2
  tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log /var/log/munge/munged.log >&2 || true
  exit 1
}

# munged is judged by a round trip, not by its socket file: a machine restored from a snapshot
# (as CI machines are) keeps /run/munge/munge.socket.2 with no munged behind it, and every Slurm
# daemon then fails to authenticate.
munge_works() { timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

start_munged() {
  if munge_works; then return; fi
  pkill -x munged 2>/dev/null || true
  sleep 0.5
  pkill -9 -x munged 2>/dev/null || true
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
  # --force: munged refuses to start when a parent of its log or key directory is group-writable,
  # which some container images have; the key itself stays 0400 and owned by munge.
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 20); do
    if munge_works; then return; fi
    sleep 0.5
  done
  echo "munged did not start; see /var/log/munge/munged.log" >&2
  tail -n 20 /var/log/munge/munged.log >&2 || true
  exit 1
}

down() {
  if command -v scancel >/dev/null && pgrep -x slurmctld >/dev/null; then
    scancel --full --user="$(id -un)" 2>/dev/null || true
    scontrol shutdown 2>/dev/null || true
  fi
  for daemon in slurmd slurmctld; do pkill -x "$daemon" 2>/dev/null || true; done
  sleep 1
  for daemon in slurmd slurmctld; do pkill -9 -x "$daemon" 2>/dev/null || true; done
  echo "slurm: down"
}

case "$action" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
