#!/usr/bin/env bash
# Durable-graph benchmarks, each figure beside its baseline in the same run, medians of ROUNDS rounds. Needs wrk,
# jq and sqlite3 (read-only looks at the store while the service runs).
#   (1) nodes: what each persisted node costs. Intents from bench/policies: text/respond (1 model node) and
#       chain/five (5 model nodes in sequence), both on one zero-latency simulated model, one service instance.
#       Sync /v1/act p50/p99 at SYNC_CONNECTIONS connections (timed per request, bench/wrk/gateway.lua) and the
#       full lifecycle rate (async submits for DURATION s at CONNECTIONS connections, then until the diag counters
#       show every accepted job ended; jobs/s over the whole span), 1 node vs 5 nodes, alternating which goes first.
#   (2) restart: JOBS async jobs held running (a simulated model answering after HOLD_MS, deadline JOB_DEADLINE_MS,
#       RESTART_WORKERS workers), the service killed with SIGKILL once diag shows all of them running, then started
#       again on the same SQLite file: time from the new process's start to /health/ready answering 200 and to diag
#       showing all JOBS running again.
# Results: bench/results/graph-<UTC timestamp>.md
#
#   bench/graph.sh                           # both scenarios, 3 rounds, 10 s runs
#   ROUNDS=5 DURATION=15 bench/graph.sh
#   SCENARIOS=restart JOBS=2000 RESTART_WORKERS=2100 bench/graph.sh
#   REV=HEAD bench/graph.sh                  # build Orchestrator from a commit (git archive), not the work tree
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
SYNC_CONNECTIONS=${SYNC_CONNECTIONS:-8}
WARMUP=${WARMUP:-8}
SCENARIOS=${SCENARIOS:-"nodes restart"}
JOBS=${JOBS:-1000}
RESTART_WORKERS=${RESTART_WORKERS:-1100}
HOLD_MS=${HOLD_MS:-600000}
JOB_DEADLINE_MS=${JOB_DEADLINE_MS:-3600000}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5093}
POLICIES=$PWD/bench/policies
KIND=graph
. bench/lib.sh
REPORT="$RESULTS/graph-$STAMP.md"
# the restart scenario's processes hold a thousand jobs; a graceful stop would only wait for them
CLEANUP_SIGNAL=KILL
need wrk jq sqlite3 curl
[ -f "$POLICIES/text-respond.json" ] && [ -f "$POLICIES/chain-five.json" ] || { echo "bench/policies is incomplete" >&2; exit 1; }

build_orchestrator "$OUT/graph-orchestrator"

# launch <name> <log> [extra env assignments...]: starts Orchestrator on $WORK/<name>.db (kept if it exists); ORCH_PID
launch() {
  local name=$1 log=$2; shift 2
  orchestrator_env "$WORK/$name.db"
  env "${ORCH_ENV[@]}" \
    Orchestrator__Workflow__PoliciesPath="$POLICIES" \
    Serilog__MinimumLevel__Override__Orchestrator.Jobs.JobWorkers=Information \
    "$@" dotnet "$OUT/graph-orchestrator/Orchestrator.dll" >>"$WORK/$log.log" 2>&1 &
  ORCH_PID=$!
  pids+=("$ORCH_PID")
}
# start_orchestrator <name> [extra env assignments...]: a fresh store, waits until ready
start_orchestrator() {
  local name=$1; shift
  rm -f "$WORK"/$name.db*
  launch "$name" "orchestrator-$name" "$@"
  wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"
}
# stop_orchestrator [note]: SIGTERM, then SIGKILL after 30 s; a status other than 0/143 is noted
stop_orchestrator() {
  kill "$ORCH_PID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$ORCH_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$ORCH_PID" 2>/dev/null; then
    NOTES+=("Orchestrator pid $ORCH_PID ${1:-} did not stop within 30 s of SIGTERM; killed")
    kill -9 "$ORCH_PID" 2>/dev/null || true
  fi
  wait "$ORCH_PID" 2>/dev/null && true
  local rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 143 ] || NOTES+=("Orchestrator pid $ORCH_PID ${1:-} exited with status $rc when stopped")
}

SECTIONS=()
body() { echo "{\"intent\":\"$1\",\"input\":\"hello bench\",\"mode\":\"$2\"}"; }

# ---------------------------------------------------------------------------------------------------------
# lifecycle <label> <intent> <round>: async submits for DURATION s at CONNECTIONS, then until every accepted job
# ended; X[label.rate] = accepted jobs / whole span, X[label.nodes] = model nodes succeeded per completed job
lifecycle() {
  local label=$1 intent=$2 r=$3 d0 d1 a0 c0 n0 f0 t0 t1 line ok=0
  d0=$(diag); a0=$(jq '.counters["jobs.accepted"] // 0' <<<"$d0"); c0=$(jq '.counters["jobs.completed"] // 0' <<<"$d0")
  n0=$(jq '.counters["nodes.model.succeeded"] // 0' <<<"$d0"); f0=$(jq '[.counters | to_entries[] | select(.key | test("^jobs[.](failed|canceled)")) | .value] | add // 0' <<<"$d0")
  t0=$(now_ms)
  line=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$(body "$intent" async)"); check "$label round $r" "$line"
  for _ in $(seq 1 3000); do
    d1=$(diag)
    # every job accepted so far has ended (completed, failed or canceled) and nothing is queued or running
    if jq -e --argjson a0 "$a0" --argjson c0 "$c0" --argjson f0 "$f0" \
      '(.counters["jobs.accepted"] // 0) - $a0 == ((.counters["jobs.completed"] // 0) - $c0) + (([.counters | to_entries[] | select(.key | test("^jobs[.](failed|canceled)")) | .value] | add // 0) - $f0)
       and .queue.held == 0 and .queue.running == 0' <<<"$d1" >/dev/null; then ok=1; break; fi
    sleep 0.05
  done
  t1=$(now_ms)
  [ "$ok" = 1 ] || NOTES+=("$label round $r: jobs still unfinished 150 s after the submits ended")
  local accepted completed failed nodes
  accepted=$(( $(jq '.counters["jobs.accepted"] // 0' <<<"$d1") - a0 ))
  completed=$(( $(jq '.counters["jobs.completed"] // 0' <<<"$d1") - c0 ))
  failed=$(( $(jq '[.counters | to_entries[] | select(.key | test("^jobs[.](failed|canceled)")) | .value] | add // 0' <<<"$d1") - f0 ))
  nodes=$(( $(jq '.counters["nodes.model.succeeded"] // 0' <<<"$d1") - n0 ))
  [ "$failed" = 0 ] || NOTES+=("$label round $r: $failed jobs failed or were canceled")
  X[$label.rate,$r]=$(awk -v n="$accepted" -v ms=$((t1 - t0)) 'BEGIN{printf "%.1f", n*1000/ms}')
  X[$label.span,$r]="$accepted/$((t1 - t0))ms"
  X[$label.nodes,$r]=$(awk -v n="$nodes" -v c="$completed" 'BEGIN{printf "%.2f", (c ? n/c : 0)}')
  X[$label.submit,$r]=$(field rps "$line")
  echo "  $label: $accepted jobs accepted ($(field rps "$line") req/s), $completed completed, $failed failed in $((t1 - t0)) ms = ${X[$label.rate,$r]} jobs/s; ${X[$label.nodes,$r]} nodes/job" >&2
}

scenario_nodes() {
  echo "(1) per-node persistence: text/respond (1 node) vs chain/five (5 nodes)" >&2
  local sim="Orchestrator__Models__0__Id=sim Orchestrator__Models__0__Provider=simulated Orchestrator__Models__0__LatencyMs=0"
  # shellcheck disable=SC2086
  start_orchestrator nodes $sim Orchestrator__Queue__Capacity=10000000
  local one5 sample1 sample5
  sample1=$(curl -s -H "X-Api-Key: $KEY" -H 'content-type: application/json' -d "$(body text/respond sync)" "$ACT")
  sample5=$(curl -s -H "X-Api-Key: $KEY" -H 'content-type: application/json' -d "$(body chain/five sync)" "$ACT")
  local job5; job5=$(jq -r '.jobId' <<<"$sample5")
  local graph5; graph5=$(curl -s -H "X-Api-Key: $KEY" "http://127.0.0.1:$ORCH_PORT/v1/jobs/$job5/graph" |
    jq -c '{status, nodes: [.nodes[] | "\(.id):\(.status)"], edges: [.edges[] | "\(.from)->\(.to)"]}')
  echo "  sample chain/five: $(jq -c '{status, path: .output.path, text: .output.text}' <<<"$sample5")" >&2
  echo "  warming up..." >&2
  for intent in text/respond chain/five; do
    latrun "$SYNC_CONNECTIONS" "$WARMUP" "$ACT" "$(body $intent sync)" >/dev/null
    wrkrun "$CONNECTIONS" 4 "$ACT" "$(body $intent async)" >/dev/null; drain_jobs
  done
  for r in $(seq 1 "$ROUNDS"); do
    local order="1 5"; [ $((r % 2)) = 0 ] && order="5 1"
    echo " round $r (order: $order)" >&2
    for k in $order; do
      local intent=text/respond; [ "$k" = 5 ] && intent=chain/five
      R[sync$k,$r]=$(latrun "$SYNC_CONNECTIONS" "$DURATION" "$ACT" "$(body $intent sync)"); check "sync $k-node round $r" "${R[sync$k,$r]}"
      drain_jobs
      echo "  sync $k-node: p50 $(ms "$(field p50_us "${R[sync$k,$r]}")") p99 $(ms "$(field p99_us "${R[sync$k,$r]}")") ($(field rps "${R[sync$k,$r]}") req/s)" >&2
    done
    for k in $order; do
      local intent=text/respond; [ "$k" = 5 ] && intent=chain/five
      lifecycle "life$k" "$intent" "$r"
    done
  done
  local view; view=$(diag | jq -r '"queueMs p50 \(.latency.queueMs.p50Ms) / p99 \(.latency.queueMs.p99Ms), runMs p50 \(.latency.runMs.p50Ms) / p99 \(.latency.runMs.p99Ms) over \(.latency.runMs.count) jobs (both intents, warm-up included)"')
  local counters; counters=$(diag | jq -c '.counters')
  stop_orchestrator "(nodes)"
  local lw; lw=$(logsum orchestrator-nodes)

  local a50 a99 b50 b99 ar br
  a50=$(med sync1 p50_us); a99=$(med sync1 p99_us); b50=$(med sync5 p50_us); b99=$(med sync5 p99_us)
  ar=$(xmed life1.rate); br=$(xmed life5.rate)
  local per50 per99 perjob
  per50=$(awk -v a="$a50" -v b="$b50" 'BEGIN{printf "%.3f ms", (b-a)/4/1000}')
  per99=$(awk -v a="$a99" -v b="$b99" 'BEGIN{printf "%.3f ms", (b-a)/4/1000}')
  # capacity cost: 1/rate is the service time per job at saturation; the extra per node is (1/r5 - 1/r1)/4
  perjob=$(awk -v a="$ar" -v b="$br" 'BEGIN{printf "%.3f ms", (1000/b - 1000/a)/4}')
  local perround=()
  for r in $(seq 1 "$ROUNDS"); do
    perround+=("$(awk -v a="$(field p50_us "${R[sync1,$r]}")" -v b="$(field p50_us "${R[sync5,$r]}")" 'BEGIN{printf "%.3f", (b-a)/4/1000}')")
  done
  SECTIONS+=("$(cat <<EOF
### (1) Per-node persistence: 1 model node vs 5 model nodes in sequence

Intents from bench/policies: \`text/respond\` (1 model node) and \`chain/five\` (nodes n1..n5, each a \`model\` node fed the
previous node's answer), one simulated model \`sim\` with LatencyMs=0, one service instance for both; default
Orchestrator:Queue:Workers ($(( 2 * $(nproc) )) here). Sync: wrk -t$SYNC_CONNECTIONS -c$SYNC_CONNECTIONS for ${DURATION} s. Lifecycle: async submits for
${DURATION} s at $CONNECTIONS connections (wrk -t2), then until diag shows every accepted job ended; jobs/s = accepted jobs over
the whole span (first submit to last completion, polled every 50 ms). Rounds alternate which intent goes first.

| figure | 1 node (text/respond) | 5 nodes (chain/five) | 5 nodes vs 1 | per extra node ((5 - 1) / 4) |
|---|---|---|---|---|
| sync p50, $SYNC_CONNECTIONS conn | $(ms "$a50") | $(ms "$b50") | $(diffms "$b50" "$a50") | $per50 |
| sync p99, $SYNC_CONNECTIONS conn | $(ms "$a99") | $(ms "$b99") | $(diffms "$b99" "$a99") | $per99 |
| sync req/s, $SYNC_CONNECTIONS conn | $(med sync1 rps) | $(med sync5 rps) | $(awk -v a="$(med sync1 rps)" -v b="$(med sync5 rps)" 'BEGIN{printf "%.2fx", b/a}') | - |
| full lifecycle, $CONNECTIONS conn (jobs/s) | $ar | $br | $(awk -v a="$ar" -v b="$br" 'BEGIN{printf "%.2fx", b/a}') | $perjob of service time |
| async acceptance during the lifecycle run (req/s) | $(xmed life1.submit) | $(xmed life5.submit) | $(awk -v a="$(xmed life1.submit)" -v b="$(xmed life5.submit)" 'BEGIN{printf "%.2fx", b/a}') | - |
| model nodes succeeded per completed job (diag counters) | $(xmed life1.nodes) | $(xmed life5.nodes) | - | - |

Per-node overhead at p50 per round: $(printf '%s ' "${perround[@]}")ms. "Service time" per extra node is (1000/jobs/s at 5 nodes -
1000/jobs/s at 1 node) / 4: the capacity, in ms of the whole saturated machine, that each extra node takes.

Sample chain/five answer: \`$(jq -c '{status, path: .output.path, text: .output.text, model: .output.model}' <<<"$sample5")\`; its graph:
\`$graph5\`. Sample text/respond answer: \`$(jq -c '{status, path: .output.path, text: .output.text}' <<<"$sample1")\`.

Raw sync p50/p99 us per round: 1 node $(raw sync1 p50_us) / $(raw sync1 p99_us); 5 nodes $(raw sync5 p50_us) / $(raw sync5 p99_us).
wrk-p99 us: 1 node $(raw sync1 wrk_p99_us); 5 nodes $(raw sync5 wrk_p99_us). Sync req/s: 1 node $(raw sync1 rps); 5 nodes $(raw sync5 rps).
Lifecycle jobs/s: 1 node $(xraw life1.rate) (jobs/span $(xraw life1.span)); 5 nodes $(xraw life5.rate) (jobs/span $(xraw life5.span)).
Nodes per job: 1 node $(xraw life1.nodes); 5 nodes $(xraw life5.nodes). Service's own figures at the end: $view.
Counters at the end (tenant bench): \`$counters\`. Orchestrator warning/error log lines: $lw.
EOF
)")
}

# ---------------------------------------------------------------------------------------------------------
# poll_ready: until /health/ready answers 200 (sets t_ready) or the process is gone (bounded: 60 s)
# and t_up, the first answer of any status (the host is listening; 503 while the workers are not running yet)
poll_ready() {
  t_ready=""; t_up=""
  for _ in $(seq 1 2000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ORCH_PORT/health/ready" || true)
    now=$(now_ms)
    [ "$code" != 000 ] && [ -z "$t_up" ] && t_up=$now
    [ "$code" = 200 ] && { t_ready=$now; return 0; }
    kill -0 "$ORCH_PID" 2>/dev/null || return 0
    [ $((now - $1)) -lt 60000 ] || return 0
    sleep 0.02
  done
}
store_count() { sqlite3 -readonly "$WORK/restart.db" "$1" 2>/dev/null || echo "?"; }

scenario_restart() {
  echo "(2) restart with $JOBS jobs in flight" >&2
  local env=(Orchestrator__Models__0__Id=hold Orchestrator__Models__0__Provider=simulated Orchestrator__Models__0__LatencyMs="$HOLD_MS"
    Orchestrator__Models__0__Timeout=01:00:00 Orchestrator__Models__0__MaxConcurrency=$((RESTART_WORKERS + 100))
    Orchestrator__Queue__Workers="$RESTART_WORKERS" Orchestrator__Queue__Capacity=100000)
  local submit; submit=$(printf '{"intent":"text/respond","input":"hold","mode":"async","deadlineMs":%d}' "$JOB_DEADLINE_MS")
  for r in $(seq 1 "$ROUNDS"); do
    echo " round $r" >&2
    rm -f "$WORK"/restart.db*
    local log="orchestrator-restart-$r"
    # the baseline: the same configuration started on a fresh store (schema created by the migrations), no jobs
    local t0 t_ready="" t_run="" code now
    t0=$(now_ms)
    launch restart "$log" "${env[@]}"; local first=$ORCH_PID
    poll_ready "$t0"
    [ -n "$t_ready" ] || { NOTES+=("restart round $r: the first start never got ready"); stop_orchestrator "(restart round $r)"; continue; }
    X[fresh,$r]=$((t_ready - t0)); X[freshup,$r]=$((t_up - t0))
    # JOBS async acts, 32 at a time; each answer's status code on its own line
    local codes; codes=$(curl -s --no-progress-meter -Z --parallel-max 32 -o /dev/null -w '%{http_code}\n' -X POST \
      -H "X-Api-Key: $KEY" -H 'content-type: application/json' -d "$submit" "$ACT?n=[1-$JOBS]" 2>/dev/null | sort | uniq -c | awk '{printf "%s%d x %s", (NR>1?", ":""), $1, $2}')
    X[submit,$r]=$codes
    [ "$codes" = "$JOBS x 202" ] || NOTES+=("restart round $r: submits answered $codes")
    local running=0 t_sub; t_sub=$(now_ms)
    for _ in $(seq 1 1200); do running=$(diag | jq '.queue.running'); [ "$running" -ge "$JOBS" ] && break; sleep 0.05; done
    X[before,$r]="$running running after $(( $(now_ms) - t_sub )) ms"
    [ "$running" -ge "$JOBS" ] || { NOTES+=("restart round $r: only $running of $JOBS running before the kill"); }
    # the claims land in the store through the group-commit writer, a moment after diag counts the job running
    local stored=0
    for _ in $(seq 1 200); do stored=$(store_count "select count(*) from Jobs where Status='running' and Attempts=1"); [ "$stored" = "$JOBS" ] && break; sleep 0.05; done
    X[stored,$r]=$stored
    [ "$stored" = "$JOBS" ] || NOTES+=("restart round $r: $stored of $JOBS rows 'running' in the store before the kill")

    kill -9 "$first"; wait "$first" 2>/dev/null || true
    # Its store is left as the crash left it: the WAL and shm files are not touched before the restart.
    t_ready=""
    t0=$(now_ms)
    launch restart "$log" "${env[@]}"
    poll_ready "$t0"
    if [ -z "$t_ready" ]; then NOTES+=("restart round $r: /health/ready never answered 200 (last $code)"); stop_orchestrator "(restart round $r)"; continue; fi
    for _ in $(seq 1 1200); do
      running=$(diag | jq '.queue.running'); now=$(now_ms)
      [ "$running" -ge "$JOBS" ] && { t_run=$now; break; }
      sleep 0.02
    done
    [ -n "$t_run" ] || NOTES+=("restart round $r: only $running of $JOBS running 60 s after the restart")
    # and until the store shows every job claimed again by the new process (attempt 2)
    local t_claim="" reclaimed=0
    for _ in $(seq 1 600); do
      reclaimed=$(store_count "select count(*) from Jobs where Status='running' and Attempts=2"); now=$(now_ms)
      [ "$reclaimed" = "$JOBS" ] && { t_claim=$now; break; }
      sleep 0.05
    done
    [ -n "$t_claim" ] || NOTES+=("restart round $r: $reclaimed of $JOBS rows claimed again (attempts 2) in the store after 30 s")
    X[up,$r]=$((t_up - t0)); X[ready,$r]=$((t_ready - t0)); X[running,$r]=$(( ${t_run:-$t0} - t0 )); X[claimed,$r]=$(( ${t_claim:-$t0} - t0 ))
    local d; d=$(diag)
    X[after,$r]=$(jq -c '{queue: {held: .queue.held, running: .queue.running, workers: .queue.workers}, counters}' <<<"$d")
    if [ "$r" = "$ROUNDS" ]; then
      # one job as the API shows it after the restart: its attempts and its node's attempts
      local id; id=$(store_count "select Id from Jobs order by Id limit 1")
      X[samplejob]=$(curl -s -H "X-Api-Key: $KEY" "http://127.0.0.1:$ORCH_PORT/v1/jobs/$id" | jq -c '{jobId, status, attempts}' 2>/dev/null || echo "?")
      X[samplegraph]=$(curl -s -H "X-Api-Key: $KEY" "http://127.0.0.1:$ORCH_PORT/v1/jobs/$id/graph" | jq -c '{status, currentNode, nodes: [.nodes[] | {id, status, attempts}]}' 2>/dev/null || echo "?")
    fi
    X[recovered,$r]=$(grep -oE 'Recovered [0-9]+ unfinished jobs from the store \([0-9]+ were running\)' "$WORK/$log.log" | tail -1 || echo "no recovery log line")
    echo "  ready after ${X[ready,$r]} ms, $JOBS running after ${X[running,$r]} ms, claimed in the store after ${X[claimed,$r]} ms; ${X[recovered,$r]}" >&2
    stop_orchestrator "(restart round $r)"
    X[logs,$r]=$(logsum "$log")
  done

  SECTIONS+=("$(cat <<EOF
### (2) Restart with $JOBS jobs in flight: SIGKILL, start again on the same SQLite file

$JOBS async \`text/respond\` jobs (deadlineMs $JOB_DEADLINE_MS) on a simulated model answering after $HOLD_MS ms (Timeout 01:00:00,
MaxConcurrency $((RESTART_WORKERS + 100))), Orchestrator:Queue:Workers=$RESTART_WORKERS, Capacity=100000, a fresh store per round. Once
diag showed all $JOBS running (and the store had all $JOBS rows \`running\`, attempt 1), the process was killed with SIGKILL and
started again on the same files. Times are from just before the new process was launched (\`date +%s%3N\`) to the first poll that
saw the condition (polls every ~20 ms plus a curl each, so each figure is late by up to ~30 ms):

| from the new process's start to | median | raw (ms) |
|---|---|---|
| baseline: the same configuration's first start, on a fresh store (no jobs), to \`/health/ready\` answering 200 | $(secs "$(xmed fresh)") | $(xraw fresh) |
| baseline: first answer of any status on the fresh start | $(secs "$(xmed freshup)") | $(xraw freshup) |
| restart: first answer of any status (the host listens; 503 until the workers run) | $(secs "$(xmed up)") | $(xraw up) |
| (a) \`/health/ready\` answering 200 | $(secs "$(xmed ready)") | $(xraw ready) |
| (b) diag \`queue.running\` = $JOBS | $(secs "$(xmed running)") | $(xraw running) |
| (c) the store showing all $JOBS rows \`running\` with attempts = 2 (the new claims committed; sqlite3, read-only) | $(secs "$(xmed claimed)") | $(xraw claimed) |

"Running" in (b) is the service's own count of jobs a worker has taken and is running (\`RunningJobs\`): at start the workers load
every job left \`accepted\` or \`running\`, queue them again, then the restarted workers dequeue and run them (each run registers
before its claim, a guarded write \`running\` -> \`running\` with attempts + 1, is committed through the group-commit writer); (c) is
when all those claims were in the store. Readiness (a) requires that recovery finished and the worker loops were started.
The model call itself starts over (the simulated model waits its $HOLD_MS ms again); the job's \`attempts\` shows the second run.

Per round: submits $(for r in $(seq 1 "$ROUNDS"); do echo -n "r$r: ${X[submit,$r]}; "; done)before the kill $(for r in $(seq 1 "$ROUNDS"); do echo -n "r$r: ${X[before,$r]}, ${X[stored,$r]} rows running in the store; "; done)
Recovery log lines: $(for r in $(seq 1 "$ROUNDS"); do echo -n "r$r: \"${X[recovered,$r]}\"; "; done)
One job after the restart (round $ROUNDS): \`${X[samplejob]}\`, its graph \`${X[samplegraph]}\`.
Diag after the restart (round $ROUNDS): \`${X[after,$ROUNDS]}\`.
Orchestrator warning/error log lines per round (both processes): $(for r in $(seq 1 "$ROUNDS"); do echo -n "r$r: ${X[logs,$r]}; "; done)
EOF
)")
}

START=$(date +%s)
for s in $SCENARIOS; do
  case $s in
    nodes) scenario_nodes ;;
    restart) scenario_restart ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done
TOOK=$(( $(date +%s) - START ))

{
  echo "## Graph run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS SYNC_CONNECTIONS=$SYNC_CONNECTIONS WARMUP=$WARMUP SCENARIOS=\"$SCENARIOS\" JOBS=$JOBS RESTART_WORKERS=$RESTART_WORKERS HOLD_MS=$HOLD_MS${REV:+ REV=$REV} bench/graph.sh\`"
  echo "(medians of $ROUNDS rounds; Orchestrator built from the $BUILT_FROM; $(dotnet --version) SDK; policies from bench/policies;"
  echo "wrk, curl and Orchestrator share the $(nproc) cores; scenarios took ${TOOK} s). Latencies are client side, timed per request by"
  echo "bench/wrk/gateway.lua (wrk -tN -cN), not wrk's coordinated-omission-corrected histogram (listed as wrk-p99 in the raw numbers)."
  echo
  for s in "${SECTIONS[@]}"; do echo "$s"; echo; done
  if [ "${#NOTES[@]}" -gt 0 ]; then
    echo "Problems:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo
  fi
  echo "Logs of this run: $LOGS/"
} | tee "$REPORT"
