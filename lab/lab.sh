#!/usr/bin/env bash
# Run the local lab: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) started by kwokctl from the tools that
# lab/build-tools.sh built, two fake GPU nodes managed by kwok, and the lab
# simulators (lab/simulators/run.py) in the background.
#
#   lab/lab.sh up       start the lab (no-op when it already runs)
#   lab/lab.sh down     stop every process the lab started and remove its state
#   lab/lab.sh status   say what runs (exit 0 running, 1 degraded, 3 not running)
#
# State lives in $LLMD_LAB_DIR (default <repo>/.lab). Labs with different
# LLMD_LAB_DIRs run side by side: each gets its own cluster name and ports.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
lab_dir=${LLMD_LAB_DIR:-$repo/.lab}
mkdir -p "$(dirname "$lab_dir")"
lab_dir=$(cd "$(dirname "$lab_dir")" && pwd)/$(basename "$lab_dir")

# shellcheck source=versions.env
. "$here/versions.env"

python=${LLMD_LAB_PYTHON:-$repo/.venv/bin/python}
tools=$(bash "$here/build-tools.sh" --print-bin)
# The cluster name is derived from the lab directory, so two labs never share one.
cluster=llmd-$(printf '%s' "$lab_dir" | sha256sum | cut -c1-8)

kwok_dir=$lab_dir/kwok
cluster_dir=$kwok_dir/clusters/$cluster
kubeconfig=$lab_dir/kubeconfig
marker=$lab_dir/.llmd-lab
supervisor_pid_file=$lab_dir/pids/simulators.pid
supervisor_log=$lab_dir/logs/simulators.log
sim_pid_dir=$lab_dir/pids/sims
nodes=(lab-gpu-0 lab-gpu-1)
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)

export KWOK_WORKDIR=$kwok_dir
export KWOK_RUNTIME=binary
export KWOK_KUBE_VERSION=$KUBE_VERSION
export KWOK_ETCD_VERSION=${ETCD_VERSION#v}
export KWOK_KUBE_APISERVER_BINARY=$tools/kube-apiserver
export KWOK_KUBE_CONTROLLER_MANAGER_BINARY=$tools/kube-controller-manager
export KWOK_KUBE_SCHEDULER_BINARY=$tools/kube-scheduler
export KWOK_ETCD_BINARY=$tools/etcd
export KWOK_CONTROLLER_BINARY=$tools/kwok
export KWOK_KUBECTL_BINARY=$tools/kubectl
export PATH=$tools:$PATH

say() { printf '%s\n' "lab: $*"; }
die() { printf '%s\n' "lab: ERROR: $*" >&2; exit 1; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_from() { [[ -f "$1" ]] && tr -dc '0-9' <"$1"; }

# A pid counts as ours only while its command line names the lab directory:
# pid files outlive their processes and pids get reused.
pid_is_ours() {
  local pid=$1 arg
  pid_alive "$pid" || return 1
  while IFS= read -r -d '' arg; do
    [[ "$arg" == "$lab_dir" || "$arg" == *"$lab_dir/"* ]] && return 0
  done 2>/dev/null <"/proc/$pid/cmdline"
  return 1
}

# Every process whose command line names the lab directory.
lab_processes() {
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ "$p" != "$$" && "$p" != "$BASHPID" ]] && pid_is_ours "$p" && echo "$p"
  done
  return 0
}

kube() { kubectl --kubeconfig "$kubeconfig" "$@"; }

# Run a command (in a subshell) without the ports lock descriptor: the
# components kwokctl starts would otherwise hold the lock for as long as they run.
ports_lock=
without_ports_lock() (
  [[ -z "$ports_lock" ]] || eval "exec $ports_lock>&-"
  exec "$@"
)

component_running() { pid_is_ours "$(pid_from "$cluster_dir/pids/$1.pid")"; }

cluster_running() {
  local c
  for c in "${components[@]}"; do component_running "$c" || return 1; done
}

supervisor_running() { pid_is_ours "$(pid_from "$supervisor_pid_file")"; }

# True when a simulator module changed after the supervisor started (it wrote
# its pid file then): the running supervisor has old code loaded.
supervisor_stale() {
  [[ -n "$(find "$here/simulators" -name '*.py' -newer "$supervisor_pid_file" -print -quit)" ]]
}

# wait_for <what> <seconds> <command...>: poll once a second, say what it waits for.
wait_for() {
  local what=$1 limit=$2 waited=0; shift 2
  until "$@" >/dev/null 2>&1; do
    if (( waited >= limit )); then
      return 1
    fi
    (( waited % 10 == 0 )) && say "waiting for $what (${waited}s)"
    sleep 1
    waited=$((waited + 1))
  done
}

nodes_ready() {
  local n
  for n in "${nodes[@]}"; do
    [[ "$(kube get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]] || return 1
  done
}

default_service_account() { kube -n default get serviceaccount default; }

check_tools() {
  local t missing=()
  for t in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl llm-d-inference-sim; do
    [[ -x "$tools/$t" ]] || missing+=("$t")
  done
  (( ${#missing[@]} == 0 )) ||
    die "lab tools missing in $tools: ${missing[*]} (run: make lab-tools)"
  for t in helm helmfile; do
    [[ -x "$tools/$t" ]] || say "note: $t is not built yet ($tools/$t); the lab runs without it (run: make lab-tools)"
  done
  "$python" -c 'import kubernetes' 2>/dev/null ||
    die "$python cannot import the kubernetes client (run: make setup, or set LLMD_LAB_PYTHON)"
}

write_env() {
  cat >"$lab_dir/env" <<EOF
# Written by lab/lab.sh up: \`source\` it to use this lab.
export LLMD_LAB_DIR='$lab_dir'
export KUBECONFIG='$kubeconfig'
# The lab's stand-in for the helm-diff plugin (helmfile apply/diff need it).
export HELM_PLUGINS='$repo/lab/helm-plugins'
case ":\$PATH:" in
  *':$tools:'*) ;;
  *) export PATH='$tools':"\$PATH" ;;
esac
EOF
}

start_cluster() {
  say "starting cluster $cluster (kwokctl, binary runtime, 127.0.0.1 only)"
  # kwokctl picks free ports when it creates a cluster; one lab at a time does
  # that, so two labs coming up together cannot pick the same ports.
  local lock=${TMPDIR:-/tmp}/llmd-lab-ports.lock
  exec {ports_lock}>"$lock"
  flock -w 300 "$ports_lock" || die "another lab has held $lock for 5 minutes; is a 'lab.sh up' stuck?"
  if ! without_ports_lock kwokctl --config "$here/kwok/kwokctl.yaml" create cluster \
      --name "$cluster" \
      --kubeconfig "$kubeconfig" \
      --enable-crds PortForward,ClusterPortForward,Logs,ClusterLogs \
      --wait 2m >>"$lab_dir/logs/kwokctl.log" 2>&1; then
    tail -n 5 "$lab_dir/logs/kwokctl.log" >&2
    die "kwokctl create cluster failed (log: $lab_dir/logs/kwokctl.log; component logs: $cluster_dir/logs/)"
  fi
  exec {ports_lock}>&-
  ports_lock=
  local c
  for c in "${components[@]}"; do
    component_running "$c" || die "$c is not running after kwokctl create (log: $cluster_dir/logs/$c.log)"
  done
  wait_for "kube-apiserver /version" 60 kube get --raw /version ||
    die "kube-apiserver does not answer (log: $cluster_dir/logs/kube-apiserver.log)"
  wait_for "the default service account (kube-controller-manager)" 60 default_service_account ||
    die "no default service account after 60s (log: $cluster_dir/logs/kube-controller-manager.log)"
}

register_nodes() {
  say "registering fake GPU nodes: ${nodes[*]}"
  kube apply -f "$here/kwok/nodes.yaml" >/dev/null ||
    die "could not create the fake GPU nodes from $here/kwok/nodes.yaml"
  wait_for "nodes Ready (kwok-controller)" 60 nodes_ready ||
    die "nodes ${nodes[*]} not Ready after 60s (log: $cluster_dir/logs/kwok-controller.log)"
}

start_supervisor() {
  say "starting the lab simulators (lab/simulators/run.py)"
  mkdir -p "$sim_pid_dir"
  rm -f "$supervisor_pid_file"
  # setsid: a Ctrl-C meant for `make lab-up` must not reach the supervisor. The
  # supervisor writes its own pid file (setsid may fork, so $! is not its pid).
  setsid nohup "$python" "$here/simulators/run.py" --lab-dir "$lab_dir" --bin-dir "$tools" \
    --pid-file "$supervisor_pid_file" </dev/null >>"$supervisor_log" 2>&1 &
  if ! wait_for "the simulators supervisor" 30 supervisor_running; then
    tail -n 20 "$supervisor_log" >&2
    die "the simulators supervisor did not start (log: $supervisor_log)"
  fi
}

cmd_up() {
  local t0=$SECONDS
  if [[ -f "$marker" ]] && cluster_running && supervisor_running && ! supervisor_stale; then
    say "already running in $lab_dir (cluster $cluster); nothing to do"
    say "use it with: source $lab_dir/env"
    return 0
  fi
  check_tools
  mkdir -p "$lab_dir/logs" "$lab_dir/pids" "$kwok_dir"
  touch "$marker"
  # Several components (and kubectl port-forward) need this on PATH.
  cluster_running || start_cluster
  register_nodes
  write_env
  if supervisor_running && supervisor_stale; then
    say "lab/simulators changed since the supervisor started: restarting it"
    stop_pid "$(pid_from "$supervisor_pid_file")" "simulators supervisor"
  fi
  supervisor_running || start_supervisor
  local api
  api=$(kube config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  say "up in $((SECONDS - t0))s: cluster $cluster at $api, nodes ${nodes[*]}"
  say "use it with: source $lab_dir/env"
}

# Stop one process we started: TERM, then KILL after a grace period.
stop_pid() {
  local pid=$1 what=$2 i
  pid_is_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  say "$what (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || say "$what (pid $pid) exited meanwhile"
}

cmd_down() {
  if [[ ! -d "$lab_dir" ]]; then
    say "no lab in $lab_dir; nothing to stop"
    return 0
  fi
  [[ -f "$marker" ]] ||
    die "$lab_dir has no $(basename "$marker") marker, so it was not made by lab.sh up; refusing to touch it"
  say "stopping the lab in $lab_dir"
  stop_pid "$(pid_from "$supervisor_pid_file")" "simulators supervisor"
  # The supervisor stops its simulators on SIGTERM; these are leftovers of a
  # supervisor that died without doing so.
  local f
  for f in "$sim_pid_dir"/*.pid; do
    [[ -f "$f" ]] || continue
    stop_pid "$(pid_from "$f")" "simulator $(basename "$f" .pid)"
  done
  if [[ -d "$cluster_dir" ]]; then
    kwokctl delete cluster --name "$cluster" --kubeconfig "$kubeconfig" >>"$lab_dir/logs/kwokctl.log" 2>&1 ||
      say "kwokctl delete cluster failed (log: $lab_dir/logs/kwokctl.log); stopping the components by pid"
    local c
    for c in "${components[@]}"; do
      stop_pid "$(pid_from "$cluster_dir/pids/$c.pid")" "$c"
    done
  fi
  local left
  left=$(lab_processes)
  if [[ -n "$left" ]]; then
    ps -o pid=,args= -p "$(paste -sd, - <<<"$left")" >&2
    die "processes still name $lab_dir (listed above; not started by lab.sh, so left alone); state kept"
  fi
  rm -rf "$lab_dir"
  say "down: every lab process stopped, $lab_dir removed"
}

listening_ports() {
  ss -Hltnp 2>/dev/null | awk -v pid="pid=$1," 'index($0, pid) { print $4 }' | paste -sd' ' -
}

cmd_status() {
  if [[ ! -f "$marker" ]]; then
    say "not running (no lab in $lab_dir)"
    return 3
  fi
  local state=0 c pid
  say "lab dir $lab_dir, cluster $cluster, tools $tools"
  for c in "${components[@]}"; do
    pid=$(pid_from "$cluster_dir/pids/$c.pid" || true)
    if component_running "$c"; then
      printf '  %-24s running  pid %-7s listening %s\n' "$c" "$pid" "$(listening_ports "$pid")"
    else
      printf '  %-24s STOPPED\n' "$c"
      state=1
    fi
  done
  if cluster_running && kube get --raw /version >/dev/null 2>&1; then
    kube get nodes -o jsonpath='{range .items[*]}{"  node "}{.metadata.name}{"  Ready="}{.status.conditions[?(@.type=="Ready")].status}{"  nvidia.com/gpu="}{.status.allocatable.nvidia\.com/gpu}{"  pods="}{.status.allocatable.pods}{"\n"}{end}' ||
      state=1
    nodes_ready || { say "nodes not Ready"; state=1; }
  else
    say "kube-apiserver does not answer"
    state=1
  fi
  pid=$(pid_from "$supervisor_pid_file" || true)
  if supervisor_running; then
    printf '  %-24s running  pid %s (log %s)\n' "simulators supervisor" "$pid" "$supervisor_log"
    if supervisor_stale; then
      say "lab/simulators changed since the supervisor started (lab/lab.sh up restarts it)"
      state=1
    fi
  else
    printf '  %-24s STOPPED  (log %s)\n' "simulators supervisor" "$supervisor_log"
    state=1
  fi
  "$python" "$here/simulators/run.py" --lab-dir "$lab_dir" --status || state=1
  (( state == 0 )) && say "running; use it with: source $lab_dir/env"
  (( state == 0 )) || say "DEGRADED: see the lines above (lab/lab.sh up restarts what is missing)"
  return "$state"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status   (LLMD_LAB_DIR=${LLMD_LAB_DIR:-<repo>/.lab})" >&2; exit 2 ;;
esac
