#!/usr/bin/env bash
# Sandbox benchmark: what bubblewrap adds to one process/run call. Two instances of the same build run side by side,
# one with the sandbox (the default) and one with Orchestrator:Effects:Sandbox:Enabled=false; sync agent/run acts,
# each making one process/run call, alternate between them, CALLS per program per instance, after WARMUP each.
# Programs: /bin/true, and a 10 ms program (sleep 0.01). The figure is the effect node's own duration (its startedAt
# to completedAt in the job graph: the intent commit, the spawn, the run, the result), so the model turns and HTTP are
# not in it; the act's client-side time (curl time_total) is shown beside it. Zero-latency simulated model.
# Needs curl, jq, python3 and bubblewrap. Results: bench/results/sandbox-<UTC timestamp>.md
#
#   bench/sandbox.sh
#   CALLS=300 bench/sandbox.sh
#   REV=HEAD bench/sandbox.sh                  # build Orchestrator from a commit (git archive), not the work tree
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-200}
WARMUP=${WARMUP:-20}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5195}
PLAIN_PORT=${PLAIN_PORT:-5196}
ROUNDS=1
KIND=sandbox
. bench/lib.sh
REPORT="$RESULTS/sandbox-$STAMP.md"
need curl jq python3 bwrap

build_orchestrator "$OUT/sandbox-orchestrator"
# The sandbox runs as nobody when this runs as root: the workspace root must be reachable by it.
chmod 0755 "$WORK"

# start <port> <name> <sandbox enabled>
start() {
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health/live")" != "000" ]; then
    echo "port $1 is taken by another process; set ORCH_PORT / PLAIN_PORT" >&2; exit 1
  fi
  ORCH_PORT=$1 orchestrator_env "$WORK/$2.db"
  env "${ORCH_ENV[@]}" ASPNETCORE_URLS="http://127.0.0.1:$1" Orchestrator__Effects__WorkspaceRoot="$WORK/$2-workspaces" \
    Orchestrator__Effects__Sandbox__Enabled="$3" \
    Orchestrator__Effects__ProcessAllowList__0=/bin/true Orchestrator__Effects__ProcessAllowList__1=sleep \
    Orchestrator__Models__0__Id=sim Orchestrator__Models__0__Provider=simulated Orchestrator__Models__0__LatencyMs=0 \
    dotnet "$OUT/sandbox-orchestrator/Orchestrator.dll" >>"$WORK/$2.log" 2>&1 &
  pids+=("$!")
  wait_ready "http://127.0.0.1:$1/health/ready"
}
start "$ORCH_PORT" sandboxed true
start "$PLAIN_PORT" plain false
curl -fs "http://127.0.0.1:$ORCH_PORT/health/ready" | jq -c '.checks.sandbox' >&2

# call <port> <argv JSON>: one sync act with one process/run call; prints "<effect node ms> <act ms>"
call() {
  local body out job
  body=$(jq -cn --arg argv "$2" '{intent:"agent/run", input:("Run it.\n/call process_run {\"argv\":" + $argv + "}")}')
  out=$(curl -s -w '\n%{time_total}' -H "X-Api-Key: $KEY" -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$1/v1/act")
  job=$(head -n 1 <<<"$out" | jq -r '.jobId')
  [ "$(head -n 1 <<<"$out" | jq -r '.status')" = completed ] || { echo "act failed on :$1: $(head -n 1 <<<"$out")" >&2; exit 1; }
  curl -fs -H "X-Api-Key: $KEY" "http://127.0.0.1:$1/v1/jobs/$job/graph" | python3 -c '
import json, sys
from datetime import datetime
node = next(n for n in json.load(sys.stdin)["nodes"] if n["kind"] == "effect")
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
print("%.3f %.3f" % ((t(node["completedAt"]) - t(node["startedAt"])).total_seconds() * 1000, float(sys.argv[1]) * 1000))' "$(tail -n 1 <<<"$out")"
}
med() { sort -n | awk '{a[NR]=$1} END {i=int((NR-1)*0.5)+1; printf "%.2f", a[i]}'; }
p90() { sort -n | awk '{a[NR]=$1} END {i=int((NR-1)*0.9)+1; printf "%.2f", a[i]}'; }

{
  echo "# Sandbox benchmark $STAMP"
  echo
  echo "Built from: $BUILT_FROM. Machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); bubblewrap $(bwrap --version | cut -d' ' -f2); running as $(id -un). CALLS=$CALLS WARMUP=$WARMUP, load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| program | effect p50 sandboxed | effect p50 plain | added at p50 | effect p90 sandboxed | effect p90 plain | act p50 sandboxed | act p50 plain |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$REPORT"

for program in '["/bin/true"]' '["sleep","0.01"]'; do
  for _ in $(seq 1 "$WARMUP"); do call "$ORCH_PORT" "$program" >/dev/null; call "$PLAIN_PORT" "$program" >/dev/null; done
  : >"$WORK/on.txt"; : >"$WORK/off.txt"
  for _ in $(seq 1 "$CALLS"); do
    call "$ORCH_PORT" "$program" >>"$WORK/on.txt"
    call "$PLAIN_PORT" "$program" >>"$WORK/off.txt"
  done
  on=$(cut -d' ' -f1 "$WORK/on.txt" | med); off=$(cut -d' ' -f1 "$WORK/off.txt" | med)
  printf '| `%s` | %s ms | %s ms | %.2f ms | %s ms | %s ms | %s ms | %s ms |\n' "$(jq -r 'join(" ")' <<<"$program")" "$on" "$off" \
    "$(echo "$on - $off" | bc -l 2>/dev/null || python3 -c "print($on - $off)")" \
    "$(cut -d' ' -f1 "$WORK/on.txt" | p90)" "$(cut -d' ' -f1 "$WORK/off.txt" | p90)" \
    "$(cut -d' ' -f2 "$WORK/on.txt" | med)" "$(cut -d' ' -f2 "$WORK/off.txt" | med)" >>"$REPORT"
done

{
  echo
  echo "Effect: the process/run node's startedAt to completedAt in the job graph, alternating sandboxed and plain calls."
  echo "Act: client side, curl time_total, one request at a time. Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
} >>"$REPORT"
cat "$REPORT"
