#!/usr/bin/env bash
# Measures /v1/act beside a bare minimal-API endpoint that reads the same JSON body, in the same run,
# and prints medians and ratios. Needs wrk (apt-get install wrk). Results: bench/results/<date>.md
#
#   bench/run.sh                 # all scenarios, 3 rounds each
#   ROUNDS=5 DURATION=15 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
SYNC_CONNECTIONS=${SYNC_CONNECTIONS:-8}
ORCH_PORT=5090
BARE_PORT=5091
KEY=bench-key-000000000001
OPKEY=bench-operator-key-0001
OUT=bench/out
WORK=$(mktemp -d /tmp/orchestrator-bench.XXXXXX)
RESULTS=bench/results
mkdir -p "$RESULTS"
REPORT="$RESULTS/$(date -u +%Y%m%dT%H%M%SZ).md"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

echo "building Release..." >&2
dotnet publish src/Orchestrator -c Release -o "$OUT/orchestrator" -v q -nologo >/dev/null
dotnet publish bench/BareEndpoint -c Release -o "$OUT/bare" -v q -nologo >/dev/null

pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

start_bare() {
  ASPNETCORE_URLS=http://127.0.0.1:$BARE_PORT dotnet "$OUT/bare/BareEndpoint.dll" >"$WORK/bare.log" 2>&1 &
  pids+=($!)
}

# start_orchestrator <name> [extra env assignments...]
start_orchestrator() {
  local name=$1; shift
  rm -f "$WORK"/$name.db*
  env ASPNETCORE_URLS=http://127.0.0.1:$ORCH_PORT \
    ConnectionStrings__Orchestrator="Data Source=$WORK/$name.db" \
    Orchestrator__ApiKeys__0__Key=$KEY Orchestrator__ApiKeys__0__Tenant=bench Orchestrator__ApiKeys__0__Principal=bench \
    Orchestrator__ApiKeys__1__Key=$OPKEY Orchestrator__ApiKeys__1__Tenant=ops Orchestrator__ApiKeys__1__Principal=ops \
    Orchestrator__ApiKeys__1__Roles__0=operator \
    Orchestrator__Queue__Capacity=10000000 \
    Orchestrator__Effects__WorkspaceRoot="$WORK/workspaces" \
    Serilog__MinimumLevel__Default=Warning \
    "$@" dotnet "$OUT/orchestrator/Orchestrator.dll" >"$WORK/$name.log" 2>&1 &
  ORCH_PID=$!
  pids+=($ORCH_PID)
  wait_up "http://127.0.0.1:$ORCH_PORT/health/ready"
}

stop_orchestrator() { kill "$ORCH_PID" 2>/dev/null || true; wait "$ORCH_PID" 2>/dev/null || true; }

# wait_up <url>: until the server answers at all (any status)
wait_up() { for _ in $(seq 1 150); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != "000" ] && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }

# wrkrun <connections> <seconds> <url> <body>  -> prints the RESULT line
wrkrun() {
  BODY="$4" BENCH_KEY=$KEY wrk -t2 -c"$1" -d"$2"s --timeout 30s -s bench/wrk/post.lua "$3" | grep '^RESULT'
}
field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<"$2"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
counter() { curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$ORCH_PORT/v1/diag/telemetry?tenant=bench" | sed -E "s/.*\"$1\":([0-9]+).*/\1/;t;s/.*/0/"; }
held() { curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$ORCH_PORT/v1/diag/telemetry" | sed -E 's/.*"held":([0-9]+).*/\1/'; }
drain() { while [ "$(held)" != "0" ]; do sleep 0.2; done; }
now_ms() { date +%s%3N; }

ASYNC='{"intent":"text/respond","input":"hello bench","mode":"async"}'
SYNC='{"intent":"text/respond","input":"hello bench","mode":"sync"}'
BARE=http://127.0.0.1:$BARE_PORT/v1/act
ACT=http://127.0.0.1:$ORCH_PORT/v1/act

start_bare; wait_up "http://127.0.0.1:$BARE_PORT/v1/act"
start_orchestrator main
# JIT tiering takes several seconds of load before the hot path is fully optimized.
warm() { wrkrun 8 "${WARMUP:-8}" "$ACT" "$SYNC" >/dev/null; wrkrun "$CONNECTIONS" 4 "$ACT" "$ASYNC" >/dev/null; drain; }
echo "warming up..." >&2
wrkrun 16 4 "$BARE" "$ASYNC" >/dev/null; warm

declare -a bare_rps accept_rps life_rps bare_p50 bare_p99 sync_p50 sync_p99
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r: throughput at $CONNECTIONS connections" >&2
  b=$(wrkrun "$CONNECTIONS" "$DURATION" "$BARE" "$ASYNC"); bare_rps+=("$(field rps "$b")")
  drain
  a=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$ASYNC"); accept_rps+=("$(field rps "$a")")
  [ "$(field errors_status "$a")" = "0" ] || echo "  warning: $(field errors_status "$a") non-2xx answers on async act" >&2
  drain

  echo "round $r: full lifecycle (accepted -> completed)" >&2
  before=$(counter jobs.completed); t0=$(now_ms)
  l=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$ASYNC"); n=$(field requests "$l")
  while [ $(( $(counter jobs.completed) - before )) -lt "$n" ]; do sleep 0.05; done
  t1=$(now_ms); life_rps+=("$(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN{printf "%.1f", n*1000/ms}')")

  echo "round $r: sync latency at $SYNC_CONNECTIONS connections" >&2
  b=$(wrkrun "$SYNC_CONNECTIONS" "$DURATION" "$BARE" "$SYNC"); bare_p50+=("$(field p50_us "$b")"); bare_p99+=("$(field p99_us "$b")")
  s=$(wrkrun "$SYNC_CONNECTIONS" "$DURATION" "$ACT" "$SYNC"); sync_p50+=("$(field p50_us "$s")"); sync_p99+=("$(field p99_us "$s")")
  [ "$(field errors_status "$s")" = "0" ] || echo "  warning: $(field errors_status "$s") non-2xx answers on sync act" >&2
done
stop_orchestrator

# WAL checkpointing variants, each on a fresh store and warmed the same way: sync act p50/p99.
wal_variant() {
  local name=$1; shift
  start_orchestrator "$name" "$@"; warm
  local p50s=() p99s=()
  for r in $(seq 1 "$ROUNDS"); do
    s=$(wrkrun "$SYNC_CONNECTIONS" "$DURATION" "$ACT" "$SYNC"); p50s+=("$(field p50_us "$s")"); p99s+=("$(field p99_us "$s")")
  done
  stop_orchestrator
  echo "$(printf '%s\n' "${p50s[@]}" | median) $(printf '%s\n' "${p99s[@]}" | median) ${p99s[*]}"
}
echo "WAL variants" >&2
read -r IP50 IP99 IRAW <<<"$(wal_variant sqlite Orchestrator__Store__WalAutoCheckpointPages=1000)"
read -r SP50W SP99W SRAW <<<"$(wal_variant large Orchestrator__Store__WalAutoCheckpointPages=8000)"
read -r GP50 GP99 GRAW <<<"$(wal_variant default)"

m() { printf '%s\n' "$@" | median; }
BR=$(m "${bare_rps[@]}"); AR=$(m "${accept_rps[@]}"); LR=$(m "${life_rps[@]}")
BP50=$(m "${bare_p50[@]}"); BP99=$(m "${bare_p99[@]}"); SP50=$(m "${sync_p50[@]}"); SP99=$(m "${sync_p99[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f%%", 100*a/b}'; }
ms() { awk -v us="$1" 'BEGIN{printf "%.2f ms", us/1000}'; }
{
  echo "## Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS SYNC_CONNECTIONS=$SYNC_CONNECTIONS bench/run.sh\` (medians of $ROUNDS rounds; wrk -t2)"
  echo
  echo "| figure | bare endpoint | orchestrator | ratio |"
  echo "|---|---|---|---|"
  echo "| async acceptance, $CONNECTIONS conn (req/s) | $BR | $AR | $(ratio "$AR" "$BR") |"
  echo "| full lifecycle accepted -> completed, $CONNECTIONS conn (jobs/s) | $BR | $LR | $(ratio "$LR" "$BR") |"
  echo "| sync p50, $SYNC_CONNECTIONS conn | $(ms "$BP50") | $(ms "$SP50") | +$(ms "$(awk -v a="$SP50" -v b="$BP50" 'BEGIN{print a-b}')") |"
  echo "| sync p99, $SYNC_CONNECTIONS conn | $(ms "$BP99") | $(ms "$SP99") | +$(ms "$(awk -v a="$SP99" -v b="$BP99" 'BEGIN{print a-b}')") |"
  echo
  echo "| WAL checkpointing (sync act, $SYNC_CONNECTIONS conn) | p50 | p99 |"
  echo "|---|---|---|"
  echo "| wal_autocheckpoint=1000 pages (4 MiB, SQLite's default) | $(ms "$IP50") | $(ms "$IP99") |"
  echo "| wal_autocheckpoint=8000 pages (32 MiB) | $(ms "$SP50W") | $(ms "$SP99W") |"
  echo "| wal_autocheckpoint=250 pages (1 MiB, our default) | $(ms "$GP50") | $(ms "$GP99") |"
  echo
  echo "Raw: bare rps ${bare_rps[*]}; accept rps ${accept_rps[*]}; lifecycle ${life_rps[*]}; bare p50/p99 us ${bare_p50[*]} / ${bare_p99[*]}; sync p50/p99 us ${sync_p50[*]} / ${sync_p99[*]}; p99 us at 1000 pages $IRAW; 8000 pages $SRAW; 250 pages $GRAW"
} | tee "$REPORT"
