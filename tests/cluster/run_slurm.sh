#!/usr/bin/env bash
# Cluster test: the .test/ scenario on a real single-node SLURM on localhost.
#
# Stands up munge, slurmctld and slurmd from Debian's packages (installed if missing) with
# their key, configuration, state and logs in a temporary directory; runs the workflow with
# `--profile workflow/profiles/slurm`; checks that every job went through SLURM (the job ids
# in the Snakemake log, each COMPLETED in squeue's history and started and completed in
# slurmctld's log); runs the same scenario locally and compares results/summary.tsv,
# failed.tsv and flags.tsv byte for byte. The daemons are stopped by their pids on exit,
# whatever happened.
#
# There is no accounting database, so the plugin polls job status with squeue
# (`--slurm-status-command squeue`; MinJobAge=3600 keeps finished jobs in squeue's history,
# for the plugin and for the checks) and submits without an account (`--slurm-no-account`).
#
# Usage (as root): bash tests/cluster/run_slurm.sh
#   needs the package with its cluster extra in .venv: .venv/bin/pip install -e '.[cluster]'
#   RUN_TIMEOUT=seconds per Snakemake run (default 600; then SIGINT, SIGKILL 60 s later)
#   KEEP=1 keeps the temporary directory; VENV=path to another virtual environment
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$REPO/.venv}
SNAKEMAKE=$VENV/bin/snakemake
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
TABLES=(summary.tsv failed.tsv flags.tsv)
SLURM_FLAGS=(
  --slurm-status-command squeue
  --slurm-init-seconds-before-status-checks 2
  --slurm-no-account
  --slurm-keep-successful-logs
)

say() { printf '[run_slurm %4ss] %s\n' "$SECONDS" "$*"; }
fail() {
  say "FAIL: $*"
  exit 1
}

[[ $EUID -eq 0 ]] || fail "run as root (the test starts munged, slurmctld and slurmd)"
[[ -x $SNAKEMAKE ]] || fail "no $SNAKEMAKE: python3 -m venv .venv && .venv/bin/pip install -e '.[cluster]'"
"$VENV/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
  fail "snakemake-executor-plugin-slurm missing: $VENV/bin/pip install -e '.[cluster]'"

missing=0
for cmd in munged mungekey slurmctld slurmd sbatch squeue sinfo scancel; do
  command -v "$cmd" >/dev/null || missing=1
done
if ((missing)); then
  say "installing Debian's SLURM and munge packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
say "$(slurmctld -V), $(munged -V | cut -d' ' -f1), plugin $("$VENV/bin/python" -c \
  'from importlib.metadata import version; print(version("snakemake-executor-plugin-slurm"))')"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cikflow-slurm.XXXXXX")
chmod 711 "$TMP" # the munge user reaches its own subdirectory
export SLURM_CONF=$TMP/slurm/slurm.conf
DAEMONS=() # "pid name pidfile", in start order; stopped in reverse order
SMK_PID=0  # the Snakemake run in progress

stop_pid() {
  local pid=$1 name=$2 i
  ((pid > 0)) && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "$name (pid $pid) still running 10 s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_snakemake() { # SIGINT (Snakemake cancels its jobs and stops), SIGKILL 60 s later
  local i
  ((SMK_PID > 0)) && kill -0 "$SMK_PID" 2>/dev/null || return 0
  kill -INT "$SMK_PID" 2>/dev/null
  for ((i = 0; i < 240; i++)); do
    kill -0 "$SMK_PID" 2>/dev/null || return 0
    sleep 0.25
  done
  say "snakemake (pid $SMK_PID) still running 60 s after SIGINT: SIGKILL"
  kill -KILL "$SMK_PID" 2>/dev/null
}

cleanup() {
  local rc=$? i pid name pidfile
  trap - EXIT INT TERM
  set +e
  stop_snakemake # when interrupted during a run
  if ((rc != 0)); then
    for f in "$TMP"/slurm/slurmctld.log "$TMP"/slurm/slurmd.log "$TMP"/munge/munged.log; do
      [[ -s $f ]] && { say "--- last lines of $f"; tail -n 15 "$f"; }
    done
  fi
  if [[ ${#DAEMONS[@]} -ge 2 ]]; then # slurmctld is up: cancel what is left of our jobs
    scancel --quiet --user "$(id -un)" 2>/dev/null
    for i in $(seq 30); do
      [[ -z $(squeue -h -t pending,running,completing 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    read -r pid name pidfile <<<"${DAEMONS[i]}"
    [[ -s $pidfile ]] && stop_pid "$(<"$pidfile")" "$name" # the pid it wrote
    stop_pid "$pid" "$name"                                 # the pid it was started with
  done
  if [[ ${KEEP:-0} == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
  say "daemons stopped; exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name pidfile command...: the daemon in its own session; $! is the daemon itself
  local name=$1 pidfile=$2
  shift 2
  setsid "$@" >"${pidfile%.pid}.out" 2>&1 </dev/null &
  DAEMONS+=("$! $name $pidfile")
  say "started $name (pid $!)"
}

wait_for() { # seconds description command...
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  fail "$what not ready after $seconds s"
}

# --- munge: a fresh key and a private socket --------------------------------------------
MUNGE=$TMP/munge
install -d -o munge -g munge -m 711 "$MUNGE" # munged wants its socket dir executable by all
mungekey --create --keyfile="$MUNGE/munge.key"
chown munge:munge "$MUNGE/munge.key"
chmod 600 "$MUNGE/munge.key"
start munged "$MUNGE/munged.pid" setpriv --reuid=munge --regid=munge --init-groups \
  munged --foreground --socket="$MUNGE/munge.socket" --key-file="$MUNGE/munge.key" \
  --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed"
wait_for 20 munged bash -c "munge -S '$MUNGE/munge.socket' -n | unmunge -S '$MUNGE/munge.socket'"

# --- slurm.conf: one node (this machine), one partition, free ports ----------------------
SLURM=$TMP/slurm
mkdir -p "$SLURM/state" "$SLURM/spool"
read -r CTLD_PORT SLURMD_PORT < <("$VENV/bin/python" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
NODE_LINE=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=… RealMemory=<MB>
NODE=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$NODE_LINE")
MEMORY=$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$NODE_LINE")
MEMORY=$((MEMORY > 3072 ? MEMORY - 1024 : MEMORY / 2)) # leave room for the daemons
NODE_LINE=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$MEMORY/" <<<"$NODE_LINE")
cat >"$SLURM_CONF" <<EOF
ClusterName=cikflowtest
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE/munge.socket
StateSaveLocation=$SLURM/state
SlurmdSpoolDir=$SLURM/spool
SlurmctldPidFile=$SLURM/slurmctld.pid
SlurmdPidFile=$SLURM/slurmd.pid
SlurmctldLogFile=$SLURM/slurmctld.log
SlurmdLogFile=$SLURM/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=cikflow Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
say "slurm.conf: node $NODE, $MEMORY MB, ports $CTLD_PORT/$SLURMD_PORT"
# Inside a job, the plugin's job step calls srun with every SLURM_* variable removed, so
# SLURM_CONF would not reach it (a real cluster's slurm.conf sits at the default path): an
# srun first on PATH points it at this cluster's configuration.
mkdir -p "$TMP/bin"
printf '#!/bin/sh\nSLURM_CONF=%q exec %q "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$TMP/bin/srun"
chmod 755 "$TMP/bin/srun"
export PATH=$TMP/bin:$PATH

start slurmctld "$SLURM/slurmctld.pid" slurmctld -D -c -f "$SLURM_CONF"
wait_for 30 slurmctld scontrol ping
start slurmd "$SLURM/slurmd.pid" slurmd -D -f "$SLURM_CONF" -N "$NODE"
wait_for 60 "node $NODE idle" bash -c "sinfo -h -N -n '$NODE' -o %t | grep -qx idle"
say "node: $(sinfo -h -N -o '%N %t cpus=%c mem=%m partition=%P')"

# --- the .test/ scenario, laid out as tests/test_workflow.py does ------------------------
scenario() { # root: <root>/config/<repo's config subfolders>, <root>/scenario/{config,bad}
  local root=$1 dir
  mkdir -p "$root/config" "$root/scenario"
  for dir in "$REPO"/config/*/; do cp -r "$dir" "$root/config/"; done
  cp -r "$REPO/.test/config" "$REPO/.test/bad" "$root/scenario/"
}

run_snakemake() { # log workdir args...: bounded by RUN_TIMEOUT
  local log=$1 work=$2 rc=0 deadline=$((SECONDS + RUN_TIMEOUT))
  shift 2
  (cd "$work" && exec env --default-signal=INT "$SNAKEMAKE" -s "$REPO/Snakefile" "$@") \
    >"$log" 2>&1 &
  SMK_PID=$!
  while kill -0 "$SMK_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
  if kill -0 "$SMK_PID" 2>/dev/null; then
    say "snakemake still running after $RUN_TIMEOUT s: stopping it"
    stop_snakemake
    wait "$SMK_PID" || true
    fail "snakemake timed out after $RUN_TIMEOUT s ($log)"
  fi
  wait "$SMK_PID" || rc=$?
  SMK_PID=0
  if ((rc != 0)); then
    tail -n 40 "$log"
    fail "snakemake exited $rc ($log)"
  fi
}

scenario "$TMP/cluster"
scenario "$TMP/local"

start_slurm=$SECONDS
say "workflow through SLURM: --profile workflow/profiles/slurm ${SLURM_FLAGS[*]}"
run_snakemake "$TMP/cluster.log" "$TMP/cluster/scenario" \
  --profile "$REPO/workflow/profiles/slurm" "${SLURM_FLAGS[@]}"
slurm_seconds=$((SECONDS - start_slurm))
say "SLURM run finished in $slurm_seconds s"

# --- did the jobs really go through SLURM? -----------------------------------------------
SMK_LOGS=("$TMP"/cluster/scenario/.snakemake/log/*.snakemake.log) # one run: one log
SMK_LOG=${SMK_LOGS[-1]}
mapfile -t JOBIDS < <(grep -oP 'has been submitted with SLURM jobid \K[0-9]+' "$SMK_LOG" | sort -n)
((${#JOBIDS[@]} > 0)) || fail "no SLURM job id in the Snakemake log $SMK_LOG"
[[ $(printf '%s\n' "${JOBIDS[@]}" | sort -u | wc -l) -eq ${#JOBIDS[@]} ]] ||
  fail "a SLURM job id appears twice in $SMK_LOG"
local_rules=$(grep -oP '^localrule \K\w+' "$SMK_LOG" | { grep -vx all || true; } | sort -u | tr '\n' ' ')
[[ -z $local_rules ]] || fail "rules run outside SLURM: $local_rules"
HISTORY=$(squeue -h -t all -o '%i %T %k')
for id in "${JOBIDS[@]}"; do
  state=$(awk -v id="$id" '$1 == id {print $2}' <<<"$HISTORY")
  [[ $state == COMPLETED ]] || fail "SLURM job $id is '${state:-not in squeue}', not COMPLETED"
  grep -Eq "(sched: Allocate|backfill: _start_job: Started) JobId=$id " "$SLURM/slurmctld.log" ||
    fail "slurmctld log has no start of job $id"
  grep -q "_job_complete: JobId=$id done" "$SLURM/slurmctld.log" ||
    fail "slurmctld log has no completion of job $id"
done
say "SLURM job ids (${#JOBIDS[@]} jobs, each in the Snakemake log, COMPLETED in squeue," \
  "started and completed in slurmctld's log): ${JOBIDS[*]}"
printf '%s\n' "$HISTORY" | sort -n | awk '{printf "  job %-4s %-10s %s\n", $1, $2, $3}'

# --- the same scenario locally, and the tables compared ----------------------------------
start_local=$SECONDS
say "the same scenario locally: --profile workflow/profiles/default --cores 2"
run_snakemake "$TMP/local.log" "$TMP/local/scenario" \
  --profile "$REPO/workflow/profiles/default" --cores 2
local_seconds=$((SECONDS - start_local))
say "local run finished in $local_seconds s"
# the terminal shows a line per stage; Snakemake's own log file keeps every job
LOCAL_LOGS=("$TMP"/local/scenario/.snakemake/log/*.snakemake.log)
local_jobs=$(grep -oP 'Finished jobid: \d+ \(Rule: \K\w+' "${LOCAL_LOGS[-1]}" | grep -cvx all || true)
((local_jobs == ${#JOBIDS[@]})) ||
  fail "the local run ran $local_jobs jobs, SLURM ran ${#JOBIDS[@]}"

for table in "${TABLES[@]}"; do
  cluster=$TMP/cluster/scenario/results/$table
  local_=$TMP/local/scenario/results/$table
  [[ -s $cluster && -s $local_ ]] || fail "results/$table missing"
  cmp -s "$cluster" "$local_" || {
    diff "$cluster" "$local_" | head -n 20
    fail "results/$table differs between the SLURM and the local run"
  }
  say "results/$table identical ($(wc -l <"$cluster") lines, sha256 $(sha256sum "$cluster" | cut -c1-16))"
done
# every other result file, for information (a FlowJo workspace holds its date and paths)
same=0 differ=()
while IFS= read -r -d '' file; do
  if cmp -s "$file" "$TMP/local/scenario/results/${file#"$TMP"/cluster/scenario/results/}"; then
    same=$((same + 1))
  else
    differ+=("${file#"$TMP"/cluster/scenario/}")
  fi
done < <(find "$TMP/cluster/scenario/results" -type f -print0 | sort -z)
say "all result files: $same identical, ${#differ[@]} not: ${differ[*]:-none}"
say "PASS: ${#JOBIDS[@]} jobs through SLURM, tables identical to the local run" \
  "(SLURM run $slurm_seconds s, local run $local_seconds s, $SECONDS s in all)"
