# A private single-node Slurm cluster (munged + slurmctld + slurmd on this machine), for the test suite.
# Source it, then:
#   slurm_local_install            # Debian: slurmctld slurmd slurm-client munge (apt-get, if missing)
#   slurm_local_start DIR          # everything (keys, config, state, spool, logs, sockets) under DIR
#   ... sbatch / squeue / scontrol (SLURM_CONF is exported) ...
#   slurm_local_stop               # stops the daemons it started (by pid) and waits for them
# Runs as root without systemd and without cgroups (proctrack/linuxproc, task/none), on free ports, so it
# does not touch a Slurm or munge already configured on the machine. Nothing is written outside DIR.
# Failures are loud: slurm_local_start returns non-zero after printing the daemons' logs.

slurm_local_install() {
  local need=""
  for c in munged slurmctld slurmd sbatch; do command -v "$c" >/dev/null 2>&1 || need=1; done
  [ -z "$need" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_local: Slurm/munge are not installed and this is not root: apt-get install slurmctld slurmd slurm-client munge" >&2
    return 1
  fi
  echo "== installing Slurm and munge (Debian: slurmctld slurmd slurm-client munge)"
  # Keep the packages' init scripts from starting system-wide daemons (no systemd here): a policy-rc.d that
  # denies, only while installing, only if the machine has none.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=1
  fi
  local rc=0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null || rc=$?
  [ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

_slurm_local_free_port() { # a TCP port nobody listens on (two consecutive ones)
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/$((p + 1))) 2>/dev/null; then
      echo $p
      return 0
    fi
  done
  return 1
}

_slurm_local_logs() {
  local f
  for f in "$SLURM_LOCAL_DIR"/log/*; do
    [ -f "$f" ] || continue
    echo "----- $f (last 30 lines)" >&2
    tail -n 30 "$f" >&2
  done
}

slurm_local_start() {
  SLURM_LOCAL_DIR=$1
  local d=$SLURM_LOCAL_DIR
  mkdir -p "$d"/{etc,munge,state,spool,log,run}
  chmod 700 "$d" "$d"/munge
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$d/munge/munge.key"
  munged --force --key-file="$d/munge/munge.key" --socket="$d/munge/munge.socket" --pid-file="$d/munge/munged.pid" \
    --log-file="$d/log/munged.log" --seed-file="$d/munge/munged.seed" || { _slurm_local_logs; return 1; }
  local port host cpus
  port=$(_slurm_local_free_port) || { echo "slurm_local: no free port" >&2; return 1; }
  host=$(hostname -s 2>/dev/null || cut -d. -f1 /proc/sys/kernel/hostname)
  cpus=$(nproc)
  [ "$cpus" -lt 4 ] && cpus=4 # jobs here take 1 CPU; 4 slots let a 3-task array run at once on a 2-core machine
  cat >"$d/etc/slurm.conf" <<EOF
ClusterName=flamingo-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge/munge.socket
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
# schedule often (defaults: 60 s main loop, 30 s backfill): a job whose dependency just ended starts at once
SchedulerParameters=sched_interval=2,bf_interval=1
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$d/etc/slurm.conf"
  slurmctld -f "$SLURM_CONF" -i || { _slurm_local_logs; return 1; }
  slurmd -f "$SLURM_CONF" -N localhost || { _slurm_local_logs; return 1; }
  local state=""
  for _ in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n1)
    case "$state" in idle*) echo "== Slurm up: $(sinfo -V), node localhost $state, controller port $port, under $d"; return 0 ;; esac
    sleep 1
  done
  echo "slurm_local: the node did not become idle within 60 s (state: '${state:-none}')" >&2
  sinfo -N -l >&2 || true
  _slurm_local_logs
  return 1
}

_slurm_local_kill() { # $1: pid file
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

slurm_local_stop() {
  [ -n "${SLURM_LOCAL_DIR:-}" ] || return 0
  local d=$SLURM_LOCAL_DIR p f pids=""
  if [ -n "${SLURM_CONF:-}" ] && [ -f "$d/run/slurmctld.pid" ]; then
    scancel --quiet --user=root 2>/dev/null || true
    # job steps end with their jobs: give slurmstepd a moment before the daemons go
    for _ in $(seq 1 25); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  # slurmstepd processes of this cluster (they hold files under DIR open), found by pid, never by name alone
  local steps="" pd
  for pd in /proc/[0-9]*; do # (no pgrep: procps is not on every minimal Debian)
    [ "$(cat "$pd/comm" 2>/dev/null)" = slurmstepd ] || continue
    ls -l "$pd/fd" 2>/dev/null | grep -q -- "$d" && steps="$steps ${pd#/proc/}"
  done
  for f in "$d/run/slurmd.pid" "$d/run/slurmctld.pid" "$d/munge/munged.pid"; do
    [ -f "$f" ] && pids="$pids $(cat "$f" 2>/dev/null)"
    _slurm_local_kill "$f"
  done
  for p in $steps; do kill -9 "$p" 2>/dev/null || true; done
  local left=""
  for p in $pids $steps; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  unset SLURM_LOCAL_DIR
  if [ -n "$left" ]; then
    echo "slurm_local: processes still running after stop:$left" >&2
    return 1
  fi
  return 0
}
