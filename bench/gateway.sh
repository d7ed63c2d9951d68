#!/usr/bin/env bash
# Gateway benchmarks: sync /v1/act routed to OpenAI-compatible fake model servers (bench/FakeModel), each
# figure beside its baseline in the same run, medians of ROUNDS rounds. Needs wrk and jq.
#   (a) overhead per call: the zero-latency fake server called directly vs through Orchestrator (an `openai`
#       model pointing at it), and Orchestrator with a zero-latency `simulated` model (the act path alone)
#   (b) p99 while one of two models fails every call (HTTP FAIL_STATUS, default 500) and the other answers in FAIL_OK_LATENCY_MS ms,
#       beside that healthy server's own p99, with the failing model preferred (quality-first) and latency-first
#   (c) the tail cut by hedging: two fake servers, TAIL_PCT% of calls TAIL_MS ms, the rest TAIL_BASE_MS ms
#       (independent seeds), hedge=false vs hedge=true, for each TAIL_PCT in TAIL_PCTS
# Results: bench/results/gateway-<UTC timestamp>.md
#
#   bench/gateway.sh                          # all scenarios, 3 rounds, 10 s runs
#   ROUNDS=5 DURATION=15 bench/gateway.sh
#   SCENARIOS="b c" TAIL_PCTS="10" bench/gateway.sh
#   REV=HEAD bench/gateway.sh                 # build Orchestrator from a commit (git archive), not the work tree
#   WORKERS=default bench/gateway.sh          # keep Orchestrator:Queue:Workers at the service's default
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
WARMUP=${WARMUP:-8}
SCENARIOS=${SCENARIOS:-"a b c"}
FAIL_OK_LATENCY_MS=${FAIL_OK_LATENCY_MS:-20}
FAIL_STATUS=${FAIL_STATUS:-500}
TAIL_BASE_MS=${TAIL_BASE_MS:-20}
TAIL_MS=${TAIL_MS:-800}
TAIL_PCTS=${TAIL_PCTS:-"10 3"}
# Jobs run at once. The service's default (2 x processors = 4 here) queues sync acts behind each other as soon as
# more than 4 wait on a model, which would measure the queue rather than the gateway; WORKERS=default keeps it.
WORKERS=${WORKERS:-64}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5092}
FAKE_PORT0=${FAKE_PORT0:-7101}
KIND=gateway
. bench/lib.sh
REPORT="$RESULTS/gateway-$STAMP.md"
DIAG_QUERY=""   # every tenant: the gateway's counters are not per tenant
need wrk jq curl

build_orchestrator "$OUT/gateway-orchestrator"
dotnet publish bench/FakeModel -c Release -o "$OUT/fakemodel" -v q -nologo >/dev/null

# start_fake <name> <port> [--Setting value ...]; FAKE_PID is its pid
start_fake() {
  local name=$1 port=$2; shift 2
  dotnet "$OUT/fakemodel/FakeModel.dll" --Port "$port" --Name "$name" "$@" >"$WORK/fake-$name.log" 2>&1 &
  FAKE_PID=$!; pids+=("$FAKE_PID")
  wait_up "http://127.0.0.1:$port/stats"
}
fake_stat() { curl -fs "http://127.0.0.1:$1/stats" | jq -r ".$2"; }
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# start_orchestrator <name> [extra env assignments...]
start_orchestrator() {
  local name=$1; shift
  rm -f "$WORK"/$name.db*
  orchestrator_env "$WORK/$name.db"
  env "${ORCH_ENV[@]}" Orchestrator__Queue__Capacity=10000000 \
    ${WORKERS_ENV} "$@" dotnet "$OUT/gateway-orchestrator/Orchestrator.dll" >"$WORK/orchestrator-$name.log" 2>&1 &
  ORCH_PID=$!
  pids+=("$ORCH_PID")
  wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"
}
WORKERS_ENV=""; [ "$WORKERS" = default ] || WORKERS_ENV="Orchestrator__Queue__Workers=$WORKERS"
# jobs_done: jobs that ended (completed, failed, canceled) so far
jobs_done() { diag | jq '[.counters | to_entries[] | select(.key | test("^jobs[.](completed|failed|canceled)")) | .value] | add // 0'; }
# run_view: the service's own latency summaries (all jobs since start)
run_view() { diag | jq -r '.latency | "queueMs p50 \(.queueMs.p50Ms) / p99 \(.queueMs.p99Ms), runMs p50 \(.runMs.p50Ms) / p99 \(.runMs.p99Ms) over \(.runMs.count) jobs"'; }
# model <index> <id> openai <port> <quality> | model <index> <id> simulated <latencyMs> <quality>: env assignments
model() {
  local p="Orchestrator__Models__$1__"
  if [ "$3" = openai ]; then
    echo "${p}Id=$2 ${p}Provider=openai ${p}Endpoint=http://127.0.0.1:$4/v1 ${p}Model=fake-$2 ${p}Quality=$5"
  else
    echo "${p}Id=$2 ${p}Provider=simulated ${p}LatencyMs=$4 ${p}Quality=$5"
  fi
}
models_json() { curl -fs -H "X-Api-Key: $KEY" "http://127.0.0.1:$ORCH_PORT/v1/models"; }
# one act answer, condensed to what routing did
sample() {
  curl -s -H "X-Api-Key: $KEY" -H 'content-type: application/json' -d "$1" "http://127.0.0.1:$ORCH_PORT/v1/act" |
    jq -c '{status, model: .output.model, error: .error.code, decision: (.routing[0].decision | {strategy, chosen, hedged,
      candidates: [.candidates[] | select(.rank > 0) | "\(.modelId):\(.status)"],
      attempts: [.attempts[] | "\(.modelId) \(.outcome) \(.latencyMs)ms\(if .hedge then " (hedge)" else "" end)"]})}'
}

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CPU_PIDS=()      # name=pid pairs whose CPU time per request measure() records as X[label.cpu.name,round] (ms)
# measure <label> <url> <body> [connections]: one DURATION run, kept as R[label,round]
measure() {
  local line kv before=()
  for kv in "${CPU_PIDS[@]}"; do before+=("$(cpu_ticks "${kv#*=}")"); done
  line=$(latrun "${4:-$CONNECTIONS}" "$DURATION" "$2" "$3")
  R[$1,$round]=$line
  local i=0
  for kv in "${CPU_PIDS[@]}"; do
    X[$1.cpu.${kv%%=*},$round]=$(awk -v t=$(( $(cpu_ticks "${kv#*=}") - ${before[$i]} )) -v hz="$TCK" -v n="$(field requests "$line")" \
      'BEGIN{printf "%.3f", t * 1000 / hz / n}')
    i=$((i + 1))
  done
  [ "$2" != "$ACT" ] || drain_jobs
  local bad=$(( $(field errors_status "$line") + $(field errors_connect "$line") + $(field errors_timeout "$line") ))
  [ "$bad" = 0 ] || { echo "  warning: $1 round $round: $bad errors ($line)" >&2; NOTES+=("$1 round $round: $line"); }
  echo "  $1: p50 $(ms "$(field p50_us "$line")") p99 $(ms "$(field p99_us "$line")") max $(ms "$(field max_us "$line")") ($(field rps "$line") req/s)" >&2
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
errsum() { local s=0; for r in $(seq 1 "$ROUNDS"); do s=$((s + $(field errors_status "${R[$1,$r]}") + $(field errors_timeout "${R[$1,$r]}"))); done; echo "$s"; }

act() { echo "{\"intent\":\"text/respond\",\"input\":\"hello bench\",\"mode\":\"sync\",\"routing\":{$1}}"; }
SECTIONS=()
SAMPLES=()

# ---------------------------------------------------------------------------------------------------------
scenario_a() {
  echo "(a) overhead per call" >&2
  local port=$FAKE_PORT0
  start_fake zero "$port"; local fake=$FAKE_PID
  # shellcheck disable=SC2046
  start_orchestrator overhead $(model 0 fake openai "$port" 0.5) $(model 1 sim simulated 0 0.5)
  local direct="http://127.0.0.1:$port/v1/chat/completions"
  local chat='{"messages":[{"role":"system","content":"You are a helpful assistant. Answer the user'"'"'s request clearly and briefly."},{"role":"user","content":"hello bench"}],"model":"fake-fake","seed":1234567}'
  local via_fake; via_fake=$(act '"models":["fake"]')
  local via_sim; via_sim=$(act '"models":["sim"]')
  echo "  warming up..." >&2
  latrun "$CONNECTIONS" "$WARMUP" "$direct" "$chat" >/dev/null
  latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$via_fake" >/dev/null
  latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$via_sim" >/dev/null; drain_jobs
  CPU_PIDS=("orch=$ORCH_PID" "fake=$fake")
  for round in $(seq 1 "$ROUNDS"); do
    echo " round $round" >&2
    measure a.direct "$direct" "$chat"
    measure a.openai "$ACT" "$via_fake"
    measure a.sim "$ACT" "$via_sim"
    measure a1.direct "$direct" "$chat" 1
    measure a1.openai "$ACT" "$via_fake" 1
    measure a1.sim "$ACT" "$via_sim" 1
  done
  CPU_PIDS=()
  SAMPLES+=("(a) act -> openai model on the fake server: \`$(sample "$via_fake")\`")
  SAMPLES+=("(a) act -> simulated model: \`$(sample "$via_sim")\`")
  local view; view=$(run_view)
  local lw; lw=$(logsum orchestrator-overhead)
  stop_pid "$ORCH_PID"; stop_pid "$fake"

  local d50 d99 o50 o99 s50 s99 e50 e99 t50 t99 u50 u99
  d50=$(med a.direct p50_us); d99=$(med a.direct p99_us)
  o50=$(med a.openai p50_us); o99=$(med a.openai p99_us)
  s50=$(med a.sim p50_us); s99=$(med a.sim p99_us)
  e50=$(med a1.direct p50_us); e99=$(med a1.direct p99_us)
  t50=$(med a1.openai p50_us); t99=$(med a1.openai p99_us)
  u50=$(med a1.sim p50_us); u99=$(med a1.sim p99_us)
  SECTIONS+=("$(cat <<EOF
### (a) Overhead per call: zero-latency fake server

| path | $CONNECTIONS conn p50 | $CONNECTIONS conn p99 | $CONNECTIONS conn req/s | 1 conn p50 | 1 conn p99 | 1 conn req/s | Orchestrator CPU per request ($CONNECTIONS conn) | fake server CPU per request ($CONNECTIONS conn) |
|---|---|---|---|---|---|---|---|---|
| fake server directly (POST /v1/chat/completions) | $(ms "$d50") | $(ms "$d99") | $(med a.direct rps) | $(ms "$e50") | $(ms "$e99") | $(med a1.direct rps) | - | $(xmed a.direct.cpu.fake) ms |
| /v1/act -> \`simulated\` model, 0 ms (act path, no HTTP to a model) | $(ms "$s50") | $(ms "$s99") | $(med a.sim rps) | $(ms "$u50") | $(ms "$u99") | $(med a1.sim rps) | $(xmed a.sim.cpu.orch) ms | - |
| /v1/act -> \`openai\` model -> the same fake server | $(ms "$o50") | $(ms "$o99") | $(med a.openai rps) | $(ms "$t50") | $(ms "$t99") | $(med a1.openai rps) | $(xmed a.openai.cpu.orch) ms | $(xmed a.openai.cpu.fake) ms |

| difference (medians) | $CONNECTIONS conn p50 | $CONNECTIONS conn p99 | 1 conn p50 | 1 conn p99 |
|---|---|---|---|---|
| act->openai minus direct (everything Orchestrator adds to one call) | $(diffms "$o50" "$d50") ($(ratio "$o50" "$d50")) | $(diffms "$o99" "$d99") ($(ratio "$o99" "$d99")) | $(diffms "$t50" "$e50") ($(ratio "$t50" "$e50")) | $(diffms "$t99" "$e99") ($(ratio "$t99" "$e99")) |
| act->simulated minus direct (act path: admission, store, queue, workflow) | $(diffms "$s50" "$d50") | $(diffms "$s99" "$d99") | $(diffms "$u50" "$e50") | $(diffms "$u99" "$e99") |
| act->openai minus act->simulated (gateway pipeline + OpenAI SDK + HTTP to the model) | $(diffms "$o50" "$s50") | $(diffms "$o99" "$s99") | $(diffms "$t50" "$u50") | $(diffms "$t99" "$u99") |

At $CONNECTIONS connections every path saturates the $(nproc) cores (wrk, Orchestrator and the fake server share them), so its
latencies are mostly queueing for CPU; 1 connection shows the latency a lone call pays. CPU per request is user+system time
of the process during the run (/proc/<pid>/stat) over the requests wrk completed.

Raw at 1 connection, p50/p99 us per round: direct $(raw a1.direct p50_us) / $(raw a1.direct p99_us); simulated $(raw a1.sim p50_us) / $(raw a1.sim p99_us); openai $(raw a1.openai p50_us) / $(raw a1.openai p99_us). CPU ms per request per round: Orchestrator simulated $(xraw a.sim.cpu.orch), openai $(xraw a.openai.cpu.orch); fake server direct $(xraw a.direct.cpu.fake), via Orchestrator $(xraw a.openai.cpu.fake).
Raw at $CONNECTIONS connections, p50/p99 us per round: direct $(raw a.direct p50_us) / $(raw a.direct p99_us); simulated $(raw a.sim p50_us) / $(raw a.sim p99_us); openai $(raw a.openai p50_us) / $(raw a.openai p99_us). Req/s: direct $(raw a.direct rps); simulated $(raw a.sim rps); openai $(raw a.openai rps). wrk-p99 us: direct $(raw a.direct wrk_p99_us); simulated $(raw a.sim wrk_p99_us); openai $(raw a.openai wrk_p99_us). Non-2xx/timeouts: direct $(errsum a.direct), simulated $(errsum a.sim), openai $(errsum a.openai). Orchestrator's own figures at the end: $view. Orchestrator warning/error log lines: $lw.
EOF
)")
}

# ---------------------------------------------------------------------------------------------------------
scenario_b() {
  echo "(b) one model failing every call" >&2
  local okp=$((FAKE_PORT0 + 1)) badp=$((FAKE_PORT0 + 2))
  start_fake ok "$okp" --LatencyMs "$FAIL_OK_LATENCY_MS"; local okpid=$FAKE_PID
  start_fake bad "$badp" --FailPercent 100 --FailStatus "$FAIL_STATUS"; local badpid=$FAKE_PID
  # shellcheck disable=SC2046
  start_orchestrator failing $(model 0 bad openai "$badp" 0.9) $(model 1 good openai "$okp" 0.5)
  local direct="http://127.0.0.1:$okp/v1/chat/completions"
  local chat='{"messages":[{"role":"system","content":"You are a helpful assistant. Answer the user'"'"'s request clearly and briefly."},{"role":"user","content":"hello bench"}],"model":"fake-good","seed":1234567}'
  local quality; quality=$(act '"strategy":"quality-first","models":["bad","good"]')
  local latency; latency=$(act '"strategy":"latency-first","models":["bad","good"]')
  echo "  warming up (the failing model gets quarantined now)..." >&2
  local t0; t0=$(date +%s)
  local w; w=$(latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$quality"); drain_jobs
  local bad_warm; bad_warm=$(fake_stat "$badp" calls)
  local circuit_warm; circuit_warm=$(models_json | jq -r '.items[] | select(.id=="bad") | "\(.status), circuit \(.circuit), \(.calls) calls recorded"')
  latrun "$CONNECTIONS" "$WARMUP" "$direct" "$chat" >/dev/null
  latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$latency" >/dev/null; drain_jobs
  for round in $(seq 1 "$ROUNDS"); do
    echo " round $round" >&2
    measure b.direct "$direct" "$chat"
    local c0 c1 c2 j0 j1 j2
    c0=$(fake_stat "$badp" calls); j0=$(jobs_done)
    measure b.quality "$ACT" "$quality"
    c1=$(fake_stat "$badp" calls); j1=$(jobs_done)
    measure b.latency "$ACT" "$latency"
    c2=$(fake_stat "$badp" calls); j2=$(jobs_done)
    X[b.quality.bad,$round]=$((c1 - c0)); X[b.latency.bad,$round]=$((c2 - c1))
    X[b.quality.jobs,$round]=$((j1 - j0)); X[b.latency.jobs,$round]=$((j2 - j1))
  done
  local elapsed=$(( $(date +%s) - t0 ))
  SAMPLES+=("(b) quality-first, failing model preferred: \`$(sample "$quality")\`")
  SAMPLES+=("(b) latency-first: \`$(sample "$latency")\`")
  local bad_total; bad_total=$(fake_stat "$badp" calls)
  local bad_view; bad_view=$(models_json | jq -r '.items[] | select(.id=="bad") | "status \(.status), circuit \(.circuit), \(.calls) calls / \(.failures) failures recorded"')
  local view; view=$(run_view)
  local events; events=$(diag | jq -r '.gateway.circuitEvents')
  local lw; lw=$(logsum orchestrator-failing)
  stop_pid "$ORCH_PID"; stop_pid "$okpid"; stop_pid "$badpid"

  local d99 q99 l99
  d99=$(med b.direct p99_us); q99=$(med b.quality p99_us); l99=$(med b.latency p99_us)
  SECTIONS+=("$(cat <<EOF
### (b) One of two models fails every call (HTTP $FAIL_STATUS), the other answers in $FAIL_OK_LATENCY_MS ms; $CONNECTIONS connections

Models: \`bad\` (quality 0.9, a fake server answering $FAIL_STATUS to every call) and \`good\` (quality 0.5, a fake server
answering in $FAIL_OK_LATENCY_MS ms). Default gateway settings (2 retries, breaker 50% over >= 5 calls, 30 s break).

| path | p50 | p99 | p99.9 | max | calls reaching the failing server per run |
|---|---|---|---|---|---|
| healthy fake server directly | $(ms "$(med b.direct p50_us)") | $(ms "$d99") | $(ms "$(med b.direct p999_us)") | $(ms "$(med b.direct max_us)") | - |
| /v1/act quality-first [bad, good] (failing model ranked first) | $(ms "$(med b.quality p50_us)") | $(ms "$q99") | $(ms "$(med b.quality p999_us)") | $(ms "$(med b.quality max_us)") | $(xmed b.quality.bad) |
| /v1/act latency-first [bad, good] | $(ms "$(med b.latency p50_us)") | $(ms "$l99") | $(ms "$(med b.latency p999_us)") | $(ms "$(med b.latency max_us)") | $(xmed b.latency.bad) |

p99 through Orchestrator minus the healthy server's own p99: quality-first $(diffms "$q99" "$d99"), latency-first $(diffms "$l99" "$d99").

Quarantine: during the ${WARMUP} s warm-up (first traffic, quality-first) the failing server received $bad_warm calls, after which
\`GET /v1/models\` showed \`bad\`: $circuit_warm. The warm-up run itself: p50 $(ms "$(field p50_us "$w")"), p99 $(ms "$(field p99_us "$w")"), max $(ms "$(field max_us "$w")"), $(field errors_status "$w") non-2xx.
Over the whole scenario (${elapsed} s) the failing server received $bad_total calls in all; at the end \`bad\` showed: $bad_view; circuit transitions counted by the gateway: $events.

Raw p50/p99/p99.9/max us per round: direct $(raw b.direct p50_us) / $(raw b.direct p99_us) / $(raw b.direct p999_us) / $(raw b.direct max_us); quality-first $(raw b.quality p50_us) / $(raw b.quality p99_us) / $(raw b.quality p999_us) / $(raw b.quality max_us); latency-first $(raw b.latency p50_us) / $(raw b.latency p99_us) / $(raw b.latency p999_us) / $(raw b.latency max_us). wrk-p99 us: direct $(raw b.direct wrk_p99_us); quality-first $(raw b.quality wrk_p99_us); latency-first $(raw b.latency wrk_p99_us). Jobs per run: quality-first $(xraw b.quality.jobs), latency-first $(xraw b.latency.jobs). Orchestrator's own figures at the end: $view. Calls reaching the failing server per run: quality-first $(xraw b.quality.bad), latency-first $(xraw b.latency.bad). Non-2xx/timeouts: direct $(errsum b.direct), quality-first $(errsum b.quality), latency-first $(errsum b.latency). Orchestrator warning/error log lines: $lw.
EOF
)")
}

# ---------------------------------------------------------------------------------------------------------
scenario_c() {
  local pct=$1
  echo "(c) hedging, ${pct}% of calls ${TAIL_MS} ms" >&2
  local pa=$((FAKE_PORT0 + 3)) pb=$((FAKE_PORT0 + 4))
  local tail=(--LatencyMs "$TAIL_BASE_MS" --TailPercent "$pct" --TailLatencyMs "$TAIL_MS")
  start_fake "tailA$pct" "$pa" "${tail[@]}" --Seed 11; local fa=$FAKE_PID
  start_fake "tailB$pct" "$pb" "${tail[@]}" --Seed 22; local fb=$FAKE_PID
  # Two pairs of catalog entries on the same two servers, so each policy's health history (and so the hedge
  # delay, the primary's p95) is its own: nh-* serve hedge=false, h-* serve hedge=true.
  # shellcheck disable=SC2046
  start_orchestrator "hedge$pct" $(model 0 nh-a openai "$pa" 0.5) $(model 1 nh-b openai "$pb" 0.5) \
    $(model 2 h-a openai "$pa" 0.5) $(model 3 h-b openai "$pb" 0.5)
  local off; off=$(act '"strategy":"latency-first","models":["nh-a","nh-b"],"hedge":false')
  local on; on=$(act '"strategy":"latency-first","models":["h-a","h-b"],"hedge":true')
  echo "  warming up..." >&2
  latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$off" >/dev/null; drain_jobs
  latrun "$CONNECTIONS" "$WARMUP" "$ACT" "$on" >/dev/null; drain_jobs
  calls() { echo $(( $(fake_stat "$pa" "$1") + $(fake_stat "$pb" "$1") )); }
  for round in $(seq 1 "$ROUNDS"); do
    echo " round $round" >&2
    local k0 k1 k2 a1 a2 j0 j1 j2 n_off n_on
    k0=$(calls calls); j0=$(jobs_done)
    measure "c$pct.off" "$ACT" "$off"
    k1=$(calls calls); a1=$(calls aborted); j1=$(jobs_done)
    measure "c$pct.on" "$ACT" "$on"
    k2=$(calls calls); a2=$(calls aborted); j2=$(jobs_done)
    n_off=$((j1 - j0)); n_on=$((j2 - j1))
    X[c$pct.off.extra,$round]=$(awk -v c=$((k1 - k0)) -v n="$n_off" 'BEGIN{printf "%.1f", 100*(c-n)/n}')
    X[c$pct.on.extra,$round]=$(awk -v c=$((k2 - k1)) -v n="$n_on" 'BEGIN{printf "%.1f", 100*(c-n)/n}')
    X[c$pct.on.aborted,$round]=$(awk -v c=$((a2 - a1)) -v n="$n_on" 'BEGIN{printf "%.1f", 100*c/n}')
    X[c$pct.on.delay,$round]=$(models_json | jq -r '[.items[] | select(.id=="h-a" or .id=="h-b") | "\(.id) p95 \(.latencyP95Ms)"] | join(", ")')
  done
  SAMPLES+=("(c, ${pct}% tail) hedge=true: \`$(sample "$on")\`")
  local view; view=$(models_json | jq -r '[.items[] | "\(.id): p50 \(.latencyP50Ms) ms, p95 \(.latencyP95Ms) ms, ewma \(.latencyEwmaMs) ms, \(.calls) calls"] | join("; ")')
  local rv; rv=$(run_view)
  local lw; lw=$(logsum "orchestrator-hedge$pct")
  stop_pid "$ORCH_PID"; stop_pid "$fa"; stop_pid "$fb"

  local f50 f99 n50 n99
  f50=$(med "c$pct.off" p50_us); f99=$(med "c$pct.off" p99_us); n50=$(med "c$pct.on" p50_us); n99=$(med "c$pct.on" p99_us)
  SECTIONS+=("$(cat <<EOF
### (c) Hedging: two fake servers, ${pct}% of calls ${TAIL_MS} ms, the rest ${TAIL_BASE_MS} ms (seeds 11 and 22); $CONNECTIONS connections

| /v1/act latency-first, two models | p50 | p90 | p99 | p99.9 | max | req/s | extra model calls | hedge losers canceled |
|---|---|---|---|---|---|---|---|---|
| hedge=false | $(ms "$f50") | $(ms "$(med "c$pct.off" p90_us)") | $(ms "$f99") | $(ms "$(med "c$pct.off" p999_us)") | $(ms "$(med "c$pct.off" max_us)") | $(med "c$pct.off" rps) | $(xmed "c$pct.off.extra")% | - |
| hedge=true | $(ms "$n50") | $(ms "$(med "c$pct.on" p90_us)") | $(ms "$n99") | $(ms "$(med "c$pct.on" p999_us)") | $(ms "$(med "c$pct.on" max_us)") | $(med "c$pct.on" rps) | $(xmed "c$pct.on.extra")% | $(xmed "c$pct.on.aborted")% |

hedge=true minus hedge=false: p50 $(diffms "$n50" "$f50"), p99 $(diffms "$n99" "$f99") ($(ratio "$n99" "$f99")).
"Extra model calls" = calls the two servers received beyond one per job (hedges, plus any retries), as a share of jobs run;
"hedge losers canceled" = calls the servers saw aborted by the caller while still waiting, as a share of jobs run.
The hedge delay is the primary's observed p95; after each hedged run \`GET /v1/models\` showed: $(xraw "c$pct.on.delay" | sed 's/ h-a/; h-a/g').
At the end: $view. Orchestrator's own figures: $rv.

Raw p50/p99/p99.9 us per round: hedge=false $(raw "c$pct.off" p50_us) / $(raw "c$pct.off" p99_us) / $(raw "c$pct.off" p999_us); hedge=true $(raw "c$pct.on" p50_us) / $(raw "c$pct.on" p99_us) / $(raw "c$pct.on" p999_us). wrk-p99 us: hedge=false $(raw "c$pct.off" wrk_p99_us); hedge=true $(raw "c$pct.on" wrk_p99_us). Extra calls %: hedge=false $(xraw "c$pct.off.extra"); hedge=true $(xraw "c$pct.on.extra"). Non-2xx/timeouts: hedge=false $(errsum "c$pct.off"), hedge=true $(errsum "c$pct.on"). Orchestrator warning/error log lines: $lw.
EOF
)")
}

START=$(date +%s)
for s in $SCENARIOS; do
  case $s in
    a) scenario_a ;;
    b) scenario_b ;;
    c) for pct in $TAIL_PCTS; do scenario_c "$pct"; done ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done
TOOK=$(( $(date +%s) - START ))

{
  echo "## Gateway run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS WARMUP=$WARMUP WORKERS=$WORKERS FAIL_STATUS=$FAIL_STATUS SCENARIOS=\"$SCENARIOS\" TAIL_PCTS=\"$TAIL_PCTS\"${REV:+ REV=$REV} bench/gateway.sh\`"
  echo "(medians of $ROUNDS rounds of ${DURATION} s each, wrk -t$CONNECTIONS -c$CONNECTIONS closed loop, sync /v1/act; Orchestrator:Queue:Workers=$WORKERS; every process on the same $(nproc) cores;"
  echo "Orchestrator built from the $BUILT_FROM; $(dotnet --version) SDK; scenarios took ${TOOK} s)."
  echo "Latencies are client side, timed per request by bench/wrk/gateway.lua, not wrk's coordinated-omission-corrected histogram"
  echo "(which bench/wrk/post.lua and bench/run.sh print); wrk's corrected p99 is listed in the raw numbers as wrk-p99."
  echo
  for s in "${SECTIONS[@]}"; do echo "$s"; echo; done
  echo "Sample answers after the runs (one curl each, condensed with jq):"
  echo
  for s in "${SAMPLES[@]}"; do echo "- $s"; done
  if [ "${#NOTES[@]}" -gt 0 ]; then
    echo
    echo "Runs with errors:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
  fi
  echo
  echo "Logs of this run: $LOGS/"
} | tee "$REPORT"
