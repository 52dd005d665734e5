#!/usr/bin/env bash
# Benchmark the peer (kailash-nexus) hello-world handler workflow on loopback.
#
# Usage: bench/peer.sh [PORT=18100] [DUR=$BENCH_DURATION or 20] [CONCS="16 64"]
# Installs kailash-nexus (PEER_SPEC, default kailash-nexus) into bench/.peer-venv (never a
# project dependency), starts ../shared/peers/kailash-nexus/hello_nexus.py in handler mode
# with durability off (HTTP on PORT, MCP on PORT+1), waits for /health, runs the peer's
# bench.sh with a unique body per request, prints every line prefixed "peer ", stops it.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PORT=${1:-18100}
DUR=${2:-${BENCH_DURATION:-20}}
CONCS=${3:-${BENCH_CONCS:-"16 64"}}
MCP_PORT=$((PORT + 1))
VENV=$BENCH_DIR/.peer-venv
PEER_SPEC=${PEER_SPEC:-kailash-nexus}
BODY='{"inputs":{"name":"u{{n}}"}}'
URL="http://127.0.0.1:$PORT/workflows/hello/execute"
LOG=$BENCH_DIR/peer.log

versions() { "$VENV/bin/python" -c 'import importlib.metadata as m; print("kailash-nexus=" + m.version("kailash-nexus"), "kailash=" + m.version("kailash"))' 2>/dev/null; }
if ! ver=$(versions); then
  echo "peer installing $PEER_SPEC into ${VENV#"$REPO_DIR"/}" >&2
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -qq --disable-pip-version-check "$PEER_SPEC" >&2
  ver=$(versions)
fi
echo "peer $ver"

port_free "$PORT" || { echo "port $PORT is busy" >&2; exit 1; }
port_free "$MCP_PORT" || { echo "port $MCP_PORT (MCP) is busy" >&2; exit 1; }
ensure_wrk

PGID=
cleanup() { [[ -n "$PGID" ]] && echo "peer stop_s=$(stop_group "$PGID" 10)"; PGID=; }
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(now)
start_group "$LOG" "$VENV/bin/python" "$PEER_DIR/hello_nexus.py" \
  --mode handler --no-durability --port "$PORT" --mcp-port "$MCP_PORT"
PGID=$STARTED_PGID
deadline=$(( $(date +%s) + ${PEER_HEALTH_TIMEOUT:-120} ))
until curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health"; do
  kill -0 "$STARTED_PID" 2>/dev/null || { echo "peer died; tail of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1; }
  (( $(date +%s) < deadline )) || { echo "peer not healthy in time; tail of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1; }
  sleep 0.05
done
echo "peer healthy_s=$(elapsed "$t0") rss_mib_idle=$(pg_rss_mib "$PGID")"

# One request by hand, so a broken endpoint shows up before the load does.
sample=$(curl -s --max-time 10 -w ' http=%{http_code}' -XPOST "$URL" \
  -H 'content-type: application/json' -d "${BODY//\{\{n\}\}/0}")
echo "peer sample=${sample:0:300}"
[[ "$sample" == *" http=200" ]] || { echo "peer sample request failed" >&2; exit 1; }

"$PEER_DIR/bench.sh" "$URL" "$BODY" "$DUR" "$CONCS" | sed -u 's/^/peer /'
echo "peer rss_mib_after=$(pg_rss_mib "$PGID")"
