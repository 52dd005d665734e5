# Shared helpers for bench/*.sh (sourced, not executed). Loopback only.
# shellcheck shell=bash
shopt -s inherit_errexit  # failures inside $(...) abort it too
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# The peer's scripts live beside the repo: <repo>/../shared/peers/kailash-nexus
PEER_DIR=${PEER_DIR:-$REPO_DIR/../shared/peers/kailash-nexus}
[[ -x "$PEER_DIR/bench.sh" ]] || { echo "peer scripts not found in $PEER_DIR" >&2; exit 2; }
PEER_DIR=$(cd "$PEER_DIR" && pwd)
if [[ -x "$REPO_DIR/.venv/bin/python" ]]; then PY=$REPO_DIR/.venv/bin/python; else PY=$(command -v python3); fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

# port_free PORT: nothing listens on PORT (checked on all interfaces: the peer binds 0.0.0.0).
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError: sys.exit(1)
PY
}

# free_port START [SPAN=1]: first port >= START with START..START+SPAN-1 all free.
free_port() {
  local p=$1 span=${2:-1} i ok
  for _ in $(seq 1 200); do
    ok=1
    for ((i = 0; i < span; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    (( ok )) && { echo "$p"; return 0; }
    p=$((p + span))
  done
  echo "no free port from $1" >&2; return 1
}

# ensure_wrk: install wrk when missing and root; else bench.sh falls back to loadgen.py.
ensure_wrk() {
  [[ "${BENCH_TOOL:-wrk}" == wrk ]] || return 0
  command -v wrk >/dev/null 2>&1 && return 0
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing wrk (apt-get)" >&2
    apt-get install -y -q wrk >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } || true
  fi
  if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk unavailable; using loadgen.py (numbers are not comparable with wrk runs)" >&2
    export BENCH_TOOL=py
  fi
}

# pg_rss_mib PGID: summed RSS (MiB) of the processes in a process group.
pg_rss_mib() {
  ps -e -o pgid=,rss= | awk -v g="$1" '$1==g{s+=$2} END{printf "%.1f", s/1024}'
}

# pg_alive PGID: some process of the group is still running (zombies not counted: an
# unreaped child of ours would keep `kill -0` succeeding).
pg_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1==g && $2 !~ /^Z/ {n++} END {exit n ? 0 : 1}'
}

# stop_group PGID [GRACE_S=15]: SIGTERM the group, wait, then SIGKILL. Prints seconds taken.
stop_group() {
  local g=$1 grace=${2:-15} t0 i
  pg_alive "$g" || { echo 0.00; return 0; }
  t0=$(now)
  kill -TERM -- "-$g" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    pg_alive "$g" || break
    sleep 0.05
  done
  if pg_alive "$g"; then
    echo "process group $g still alive after ${grace}s; SIGKILL" >&2
    kill -KILL -- "-$g" 2>/dev/null || true
    sleep 0.2
  fi
  elapsed "$t0"
}

# start_group LOG CMD...: start CMD in its own session/process group; sets STARTED_PID and STARTED_PGID.
start_group() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  STARTED_PID=$!
  # A fresh background child of a non-interactive shell is not a group leader, so setsid
  # does not fork: the child's pid becomes its session and process-group id.
  STARTED_PGID=$STARTED_PID
}
