#!/usr/bin/env bash
# Measures /v1/act beside a bare minimal-API endpoint that reads the same JSON body, in the same run,
# and prints medians and ratios. Needs wrk (apt-get install wrk) and jq. Results: bench/results/<date>.md
#
#   bench/run.sh                 # all scenarios, 3 rounds each
#   ROUNDS=5 DURATION=15 bench/run.sh
#   REV=HEAD bench/run.sh        # build Orchestrator from a commit (git archive into a temp dir), not the work tree
#
# Throughput (async acceptance, full lifecycle) is wrk's request count (bench/wrk/post.lua, wrk -t2 -cCONNECTIONS).
# Latency (sync p50/p99) is timed per request by bench/wrk/gateway.lua with one connection per wrk thread
# (wrk -tN -cN), not wrk's own histogram, which wrk 4.x corrects for coordinated omission before a script sees it
# (see gateway.lua); wrk's corrected p99 is kept in the raw numbers as wrk-p99.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
SYNC_CONNECTIONS=${SYNC_CONNECTIONS:-8}
WARMUP=${WARMUP:-8}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5090}
BARE_PORT=${BARE_PORT:-5091}
KIND=run
. bench/lib.sh
REPORT="$RESULTS/$STAMP.md"
need wrk jq curl

build_orchestrator "$OUT/orchestrator"
dotnet publish bench/BareEndpoint -c Release -o "$OUT/bare" -v q -nologo >/dev/null

start_bare() {
  ASPNETCORE_URLS=http://127.0.0.1:$BARE_PORT dotnet "$OUT/bare/BareEndpoint.dll" >"$WORK/bare.log" 2>&1 &
  pids+=($!)
}

# start_orchestrator <name> [extra env assignments...]
start_orchestrator() {
  local name=$1; shift
  rm -f "$WORK"/$name.db*
  orchestrator_env "$WORK/$name.db"
  env "${ORCH_ENV[@]}" Orchestrator__Queue__Capacity=10000000 \
    "$@" dotnet "$OUT/orchestrator/Orchestrator.dll" >"$WORK/orchestrator-$name.log" 2>&1 &
  ORCH_PID=$!
  ORCH_NAME=$name
  pids+=($ORCH_PID)
  wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"
}

stop_orchestrator() {
  kill "$ORCH_PID" 2>/dev/null || true
  wait "$ORCH_PID" 2>/dev/null && true
  local rc=$?
  # 0 or 143 (SIGTERM): a clean stop; anything else is worth knowing
  [ "$rc" = 0 ] || [ "$rc" = 143 ] || NOTES+=("orchestrator $ORCH_NAME exited with status $rc when stopped")
  LOGSUM+=("$ORCH_NAME: $(logsum "orchestrator-$ORCH_NAME")")
}

counter() { diag | jq --arg k "$1" '.counters[$k] // 0'; }
LOGSUM=()

ASYNC='{"intent":"text/respond","input":"hello bench","mode":"async"}'
SYNC='{"intent":"text/respond","input":"hello bench","mode":"sync"}'
BARE=http://127.0.0.1:$BARE_PORT/v1/act
START=$(date +%s)

start_bare; wait_up "http://127.0.0.1:$BARE_PORT/v1/act"
start_orchestrator main
# JIT tiering takes several seconds of load before the hot path is fully optimized.
warm() { latrun "$SYNC_CONNECTIONS" "$WARMUP" "$ACT" "$SYNC" >/dev/null; wrkrun "$CONNECTIONS" 4 "$ACT" "$ASYNC" >/dev/null; drain_jobs; }
echo "warming up..." >&2
wrkrun 16 4 "$BARE" "$ASYNC" >/dev/null; latrun "$SYNC_CONNECTIONS" 4 "$BARE" "$SYNC" >/dev/null; warm

declare -a bare_rps accept_rps life_rps bare_p50 bare_p99 sync_p50 sync_p99 bare_wp99 sync_wp99 life_n bare_p999 sync_p999 bare_max sync_max
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r: throughput at $CONNECTIONS connections" >&2
  b=$(wrkrun "$CONNECTIONS" "$DURATION" "$BARE" "$ASYNC"); bare_rps+=("$(field rps "$b")"); check "bare rps round $r" "$b"
  drain_jobs
  a=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$ASYNC"); accept_rps+=("$(field rps "$a")"); check "async act round $r" "$a"
  drain_jobs
  echo "  bare $(field rps "$b") req/s, act $(field rps "$a") req/s" >&2

  echo "round $r: full lifecycle (accepted -> completed)" >&2
  before=$(counter jobs.completed); t0=$(now_ms)
  l=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$ASYNC"); n=$(field requests "$l"); check "lifecycle round $r" "$l"
  for _ in $(seq 1 2400); do [ $(( $(counter jobs.completed) - before )) -lt "$n" ] || break; sleep 0.05; done
  t1=$(now_ms); life_rps+=("$(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN{printf "%.1f", n*1000/ms}')"); life_n+=("$n/$((t1 - t0))ms")
  [ $(( $(counter jobs.completed) - before )) -ge "$n" ] || { echo "  warning: lifecycle round $r: not all $n jobs completed" >&2; NOTES+=("lifecycle round $r: not all $n jobs completed within 120 s"); }
  drain_jobs
  echo "  ${life_rps[-1]} jobs/s" >&2

  echo "round $r: sync latency at $SYNC_CONNECTIONS connections" >&2
  b=$(latrun "$SYNC_CONNECTIONS" "$DURATION" "$BARE" "$SYNC"); bare_p50+=("$(field p50_us "$b")"); bare_p99+=("$(field p99_us "$b")"); bare_wp99+=("$(field wrk_p99_us "$b")"); bare_p999+=("$(field p999_us "$b")"); bare_max+=("$(field max_us "$b")"); check "bare sync round $r" "$b"
  s=$(latrun "$SYNC_CONNECTIONS" "$DURATION" "$ACT" "$SYNC"); sync_p50+=("$(field p50_us "$s")"); sync_p99+=("$(field p99_us "$s")"); sync_wp99+=("$(field wrk_p99_us "$s")"); sync_p999+=("$(field p999_us "$s")"); sync_max+=("$(field max_us "$s")"); check "sync act round $r" "$s"
  drain_jobs
  echo "  bare p50/p99 $(field p50_us "$b")/$(field p99_us "$b") us, act $(field p50_us "$s")/$(field p99_us "$s") us" >&2
done
COMPLETED=$(counter jobs.completed); FAILED=$(diag | jq '[.counters | to_entries[] | select(.key | startswith("jobs.failed")) | .value] | add // 0')
stop_orchestrator

# WAL checkpointing variants, each on a fresh store and warmed the same way: sync act p50/p99.
declare -A W   # W[name.p50|p99|p999|max|raw50|raw99|raw999|rawmax|wrk99]
wal_variant() {
  local name=$1; shift
  start_orchestrator "$name" "$@"; warm
  local p50s=() p99s=() p999s=() maxs=() wp99s=() s
  for r in $(seq 1 "$ROUNDS"); do
    s=$(latrun "$SYNC_CONNECTIONS" "$DURATION" "$ACT" "$SYNC"); check "WAL $name round $r" "$s"
    p50s+=("$(field p50_us "$s")"); p99s+=("$(field p99_us "$s")"); wp99s+=("$(field wrk_p99_us "$s")")
    p999s+=("$(field p999_us "$s")"); maxs+=("$(field max_us "$s")")
    echo "  $name: p50/p99 $(field p50_us "$s")/$(field p99_us "$s") us" >&2
  done
  drain_jobs
  stop_orchestrator
  W[$name.p50]=$(printf '%s\n' "${p50s[@]}" | median); W[$name.p99]=$(printf '%s\n' "${p99s[@]}" | median)
  W[$name.p999]=$(printf '%s\n' "${p999s[@]}" | median); W[$name.max]=$(printf '%s\n' "${maxs[@]}" | median)
  W[$name.raw50]="${p50s[*]}"; W[$name.raw99]="${p99s[*]}"; W[$name.raw999]="${p999s[*]}"; W[$name.rawmax]="${maxs[*]}"; W[$name.wrk99]="${wp99s[*]}"
}
echo "WAL variants" >&2
wal_variant sqlite Orchestrator__Store__WalAutoCheckpointPages=1000
wal_variant large Orchestrator__Store__WalAutoCheckpointPages=8000
wal_variant default
TOOK=$(( $(date +%s) - START ))

m() { printf '%s\n' "$@" | median; }
BR=$(m "${bare_rps[@]}"); AR=$(m "${accept_rps[@]}"); LR=$(m "${life_rps[@]}")
BP50=$(m "${bare_p50[@]}"); BP99=$(m "${bare_p99[@]}"); SP50=$(m "${sync_p50[@]}"); SP99=$(m "${sync_p99[@]}")
BP999=$(m "${bare_p999[@]}"); SP999=$(m "${sync_p999[@]}"); BMAX=$(m "${bare_max[@]}"); SMAX=$(m "${sync_max[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f%%", 100*a/b}'; }
{
  echo "## Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS SYNC_CONNECTIONS=$SYNC_CONNECTIONS WARMUP=$WARMUP${REV:+ REV=$REV} bench/run.sh\`"
  echo "(medians of $ROUNDS rounds of ${DURATION} s; Orchestrator built from the $BUILT_FROM; $(dotnet --version) SDK; default"
  echo "Orchestrator:Queue:Workers ($(( 2 * $(nproc) )) here); wrk, Orchestrator and the bare endpoint share the $(nproc) cores; took ${TOOK} s)."
  echo "Throughput: wrk -t2 -c$CONNECTIONS request counts (bench/wrk/post.lua). Latency: client side, timed per request by"
  echo "bench/wrk/gateway.lua with wrk -t$SYNC_CONNECTIONS -c$SYNC_CONNECTIONS (one connection per thread), not wrk's coordinated-omission-corrected"
  echo "histogram; wrk's corrected p99 is in the raw numbers as wrk-p99 for comparison."
  echo
  echo "| figure | bare endpoint | orchestrator | ratio |"
  echo "|---|---|---|---|"
  echo "| async acceptance, $CONNECTIONS conn (req/s) | $BR | $AR | $(ratio "$AR" "$BR") |"
  echo "| full lifecycle accepted -> completed, $CONNECTIONS conn (jobs/s) | $BR | $LR | $(ratio "$LR" "$BR") |"
  echo "| sync p50, $SYNC_CONNECTIONS conn | $(ms "$BP50") | $(ms "$SP50") | $(diffms "$SP50" "$BP50") |"
  echo "| sync p99, $SYNC_CONNECTIONS conn | $(ms "$BP99") | $(ms "$SP99") | $(diffms "$SP99" "$BP99") |"
  echo "| sync p99.9, $SYNC_CONNECTIONS conn | $(ms "$BP999") | $(ms "$SP999") | $(diffms "$SP999" "$BP999") |"
  echo "| sync max of a run (median of the rounds' max), $SYNC_CONNECTIONS conn | $(ms "$BMAX") | $(ms "$SMAX") | $(diffms "$SMAX" "$BMAX") |"
  echo
  echo "| WAL checkpointing (sync act, $SYNC_CONNECTIONS conn) | p50 | p99 | p99.9 | max of a run |"
  echo "|---|---|---|---|---|"
  echo "| wal_autocheckpoint=1000 pages (4 MiB, SQLite's default) | $(ms "${W[sqlite.p50]}") | $(ms "${W[sqlite.p99]}") | $(ms "${W[sqlite.p999]}") | $(ms "${W[sqlite.max]}") |"
  echo "| wal_autocheckpoint=8000 pages (32 MiB) | $(ms "${W[large.p50]}") | $(ms "${W[large.p99]}") | $(ms "${W[large.p999]}") | $(ms "${W[large.max]}") |"
  echo "| wal_autocheckpoint=250 pages (1 MiB, our default) | $(ms "${W[default.p50]}") | $(ms "${W[default.p99]}") | $(ms "${W[default.p999]}") | $(ms "${W[default.max]}") |"
  echo
  echo "Raw: bare rps ${bare_rps[*]}; accept rps ${accept_rps[*]}; lifecycle jobs/s ${life_rps[*]} (jobs/span ${life_n[*]}); bare p50/p99 us ${bare_p50[*]} / ${bare_p99[*]}; sync p50/p99 us ${sync_p50[*]} / ${sync_p99[*]}; p99.9/max us bare ${bare_p999[*]} / ${bare_max[*]}, sync ${sync_p999[*]} / ${sync_max[*]}; wrk-p99 us bare ${bare_wp99[*]}, sync ${sync_wp99[*]}; WAL p50/p99/p99.9/max us at 1000 pages ${W[sqlite.raw50]} / ${W[sqlite.raw99]} / ${W[sqlite.raw999]} / ${W[sqlite.rawmax]}; 8000 pages ${W[large.raw50]} / ${W[large.raw99]} / ${W[large.raw999]} / ${W[large.rawmax]}; 250 pages ${W[default.raw50]} / ${W[default.raw99]} / ${W[default.raw999]} / ${W[default.rawmax]}; WAL wrk-p99 us at 1000 pages ${W[sqlite.wrk99]}; 8000 pages ${W[large.wrk99]}; 250 pages ${W[default.wrk99]}."
  echo "Main instance's jobs: $COMPLETED completed, $FAILED failed. Orchestrator warning/error log lines: ${LOGSUM[*]}."
  if [ "${#NOTES[@]}" -gt 0 ]; then
    echo
    echo "Problems:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
  fi
  echo
  echo "Logs of this run: $LOGS/"
} | tee "$REPORT"
