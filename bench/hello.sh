#!/usr/bin/env bash
# `make bench`: hello-world execution benchmark, Nexus vs the kailash-nexus peer (loopback only).
#
# Usage: bench/hello.sh
# Env:   BENCH_DURATION=20        seconds per concurrency level
#        BENCH_CONCS="16 64"      concurrency levels
#        BENCH_PORT=18000         first port tried for NEXUS_PORT (next free one is used)
#        BENCH_PEER_PORT=18100    first port tried for the peer (it needs PORT and PORT+1)
#        BENCH_HEALTH_TIMEOUT=120 seconds to wait for Nexus /health
#        BENCH_DATA_DIR=          NEXUS_DATA_DIR to use (default: fresh temp dir, removed at the end)
#        BENCH_API_KEY=           API key to use instead of $NEXUS_DATA_DIR/credentials.json
#        BENCH_STRICT=1           exit 3 when a level fails or the persistence check does not hold
#        BENCH_TOOL=py            force loadgen.py instead of wrk
#        BENCH_DATABASE_URL=, BENCH_REDIS_URL=  default: a fresh nexus_bench database and Redis db 7
# Everything else is inherited by `nexus up` and the CLI.
# Output: raw lines in bench/last-hello.log, summary in bench/last-hello.txt (both git-ignored).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

DUR=${BENCH_DURATION:-20}
CONCS=${BENCH_CONCS:-"16 64"}
NEXUS=${NEXUS_BIN:-$REPO_DIR/.venv/bin/nexus}
WF=hello-world
BODY='{"inputs":{"name":"u{{n}}"}}'
RAW=$BENCH_DIR/last-hello.log
OUT=$BENCH_DIR/last-hello.txt
NEXUS_LOG=$BENCH_DIR/nexus-up.log

[[ -x "$NEXUS" ]] || { echo "$NEXUS not found (install the project into .venv first)" >&2; exit 2; }

# exec_count: executions of $WF recorded so far (GET .../executions/?workflow=...&limit=1 -> count).
exec_count() {
  curl -sf --max-time 10 -H "$AUTH" "$BASE/api/v1/executions/?workflow=$WF&limit=1" \
    | "$PY" -c 'import json, sys; print(int(json.load(sys.stdin)["count"]))'
}
# settled_count: exec_count once it stops moving (asynchronous writers), at most ~15 s.
settled_count() {
  local a b i
  a=$(exec_count) || return 1
  for i in $(seq 1 15); do
    sleep 1
    b=$(exec_count) || return 1
    [[ "$b" == "$a" ]] && break
    a=$b
  done
  echo "$a"
}
sum_requests() { grep -o 'requests=[0-9]*' "$@" | awk -F= '{s += $2} END {print s + 0}'; }

# load URL: bench.sh at each concurrency (lines to stdout); every load-generator run, warm-up
# included, is also appended to $TAP so the warm-up's requests can be counted.
load() {
  local url=$1 c
  if [[ "${BENCH_TOOL:-wrk}" == wrk ]]; then
    # bench.sh discards its 2 s warm-up result; a pass-through `wrk` records every RESULT line.
    printf '#!/usr/bin/env bash\nset -o pipefail\n%q "$@" | tee -a %q\n' "$(command -v wrk)" "$TAP" >"$WORK/bin/wrk"
    chmod +x "$WORK/bin/wrk"
    PATH="$WORK/bin:$PATH" "$PEER_DIR/bench.sh" "$url" "$BODY" "$DUR" "$CONCS" "$AUTH"
  else
    # bench.sh's loadgen branch word-splits header values ("Bearer <key>" breaks its warm-up),
    # so run loadgen.py the same way it does: 2 s warm-up at the first level, then each level.
    python3 "$PEER_DIR/loadgen.py" --url "$url" --body "$BODY" --duration 2 \
      --concurrency "${CONCS%% *}" --header "$AUTH" >>"$TAP"
    for c in $CONCS; do
      python3 "$PEER_DIR/loadgen.py" --url "$url" --body "$BODY" --duration "$DUR" \
        --concurrency "$c" --header "$AUTH" | tee -a "$TAP"
    done
  fi
}

main() {
  cd "$REPO_DIR"
  ensure_wrk
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/nexus-bench.XXXXXX")
  mkdir -p "$WORK/bin"
  TAP=$WORK/tap
  : >"$TAP"
  local data=${BENCH_DATA_DIR:-$WORK/data}
  mkdir -p "$data"
  PGID=
  cleanup() {
    if [[ -n "$PGID" ]]; then echo "nexus stop_s=$(stop_group "$PGID" 15)"; PGID=; fi
    rm -rf "$WORK"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  export NEXUS_PORT NEXUS_DATA_DIR=$data
  # A database and Redis database of the benchmark's own, fresh each run, so the first start creates
  # the credentials this script reads and no other installation's worker takes its runs.
  export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexus_bench}
  export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/7}
  if [[ -z "${BENCH_DATABASE_URL:-}" ]]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS nexus_bench WITH (FORCE)" >/dev/null
  fi
  [[ -n "${BENCH_REDIS_URL:-}" ]] || redis-cli -n 7 flushdb >/dev/null
  NEXUS_PORT=$(free_port "${BENCH_PORT:-18000}")
  BASE=http://127.0.0.1:$NEXUS_PORT
  echo "run date=$(date -u +%Y-%m-%dT%H:%M:%SZ) dur_s=$DUR concs=${CONCS// /,} cpus=$(nproc)" \
    "rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)"

  # (a) start Nexus in its own process group and wait for a healthy /health
  local t0 deadline resp
  t0=$(now)
  start_group "$NEXUS_LOG" "$NEXUS" up
  PGID=$STARTED_PGID
  echo "nexus: nexus up pid $STARTED_PID on port $NEXUS_PORT, data $data, log ${NEXUS_LOG#"$REPO_DIR"/}"
  deadline=$(($(date +%s) + ${BENCH_HEALTH_TIMEOUT:-120}))
  while :; do
    resp=$(curl -s --max-time 2 -w '\n%{http_code}' "$BASE/health" || true)
    if [[ "${resp##*$'\n'}" == 200 ]] && grep -Eq '"healthy"[[:space:]]*:[[:space:]]*true' <<<"$resp"; then
      break
    fi
    kill -0 "$STARTED_PID" 2>/dev/null || { echo "nexus up exited; tail of $NEXUS_LOG:" >&2; tail -30 "$NEXUS_LOG" >&2; return 1; }
    (($(date +%s) < deadline)) || { echo "nexus not healthy after ${BENCH_HEALTH_TIMEOUT:-120}s; last /health: ${resp//$'\n'/ }" >&2; tail -30 "$NEXUS_LOG" >&2; return 1; }
    sleep 0.2
  done
  echo "nexus healthy_s=$(elapsed "$t0") rss_mib_idle=$(pg_rss_mib "$PGID")"

  local key=${BENCH_API_KEY:-} creds=$data/credentials.json i
  if [[ -z "$key" ]]; then
    for i in $(seq 1 50); do [[ -s "$creds" ]] && break; sleep 0.2; done
    key=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_key"])' "$creds" 2>/dev/null) \
      || { echo "no api_key in $creds (set BENCH_API_KEY to use an existing key)" >&2; return 1; }
  fi
  AUTH="Authorization: Bearer $key"

  # (b) create (tolerating "already exists" on reruns) and deploy the workflow with the CLI
  local out
  if ! out=$("$NEXUS" create workflow "$WF" --template=basic --json 2>&1); then
    grep -qi 'already exists' <<<"$out" || { echo "nexus create workflow failed: $out" >&2; return 1; }
  fi
  echo "nexus: create: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"
  out=$("$NEXUS" deploy "$WF" --json 2>&1) || { echo "nexus deploy failed: $out" >&2; return 1; }
  echo "nexus: deploy: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"

  # one request by hand, so a broken endpoint shows up before the load does
  local url=$BASE/api/v1/workflows/$WF/execute/ sample
  sample=$(curl -s --max-time 30 -w ' http=%{http_code}' -XPOST "$url" -H "$AUTH" \
    -H 'content-type: application/json' -d "${BODY//\{\{n\}\}/0}")
  echo "nexus: sample: ${sample:0:300}"
  [[ "$sample" =~ \ http=2[0-9][0-9]$ ]] || { echo "nexus sample request failed" >&2; return 1; }

  # (c) load, (d) persistence check
  local before after reported warmup delta=NA
  before=$(settled_count) || { echo "nexus: cannot read the executions count" >&2; before=; }
  load "$url" | tee "$WORK/levels" | sed -u 's/^/nexus /'
  after=$(settled_count) || { echo "nexus: cannot read the executions count" >&2; after=; }
  [[ -n "$before" && -n "$after" ]] && delta=$((after - before))
  reported=$(sum_requests "$WORK/levels")
  warmup=$(($(sum_requests "$TAP") - reported))
  echo "nexus rss_mib_after=$(pg_rss_mib "$PGID")"
  echo "nexus persisted_runs=$delta requests=$reported warmup_requests=$warmup"

  # (e) stop Nexus
  echo "nexus stop_s=$(stop_group "$PGID" 15)"
  PGID=
  port_free "$NEXUS_PORT" || echo "nexus: warning: port $NEXUS_PORT still in use after stop (a process outside the group?)"

  # (f) the peer on another free port, same duration and levels
  "$BENCH_DIR/peer.sh" "$(free_port "${BENCH_PEER_PORT:-18100}" 2)" "$DUR" "$CONCS"
}

main 2>&1 | tee -i "$RAW"
# (g) summary table
strict=
[[ "${BENCH_STRICT:-0}" == 1 ]] && strict=--strict
"$PY" "$BENCH_DIR/summarize.py" $strict "$RAW" | tee "$OUT"
