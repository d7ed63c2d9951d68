# Shared by bench/run.sh, bench/graph.sh and bench/gateway.sh: set-up, building Orchestrator, starting it,
# driving wrk and summarising. Source it from the repository root after setting KIND (the results' prefix).
# Expects ORCH_PORT, ROUNDS and REV set; defines OUT, WORK, RESULTS, STAMP, LOGS, KEY, OPKEY, pids, NOTES.

KEY=bench-key-000000000001
OPKEY=bench-operator-key-0001
OUT=bench/out
RESULTS=bench/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOGS="$OUT/$KIND-logs-$STAMP"
WORK=$(mktemp -d "/tmp/orchestrator-$KIND.XXXXXX")
ACT=http://127.0.0.1:$ORCH_PORT/v1/act
mkdir -p "$RESULTS"
pids=()
NOTES=()

# need <tool>...: stop at once, naming the Debian package, when one is missing
need() { for tool in "$@"; do command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }; done; }

# build_orchestrator <dir>: publish Release into <dir>, from the work tree or, with REV, from that commit (git archive
# into the temp dir: read-only on the repository); BUILT_FROM says which
build_orchestrator() {
  echo "building Release..." >&2
  local src=. dirty
  dirty=$(git status --porcelain -- src 2>/dev/null || true)
  BUILT_FROM="work tree of $(git rev-parse --short HEAD 2>/dev/null || echo '?')${dirty:+ (src/ has uncommitted changes)}"
  if [ -n "${REV:-}" ]; then
    src="$WORK/src"; mkdir -p "$src"
    git archive "$REV" | tar -x -C "$src"
    BUILT_FROM="commit $(git rev-parse --short "$REV")"
  fi
  # A fresh folder: publish copies a file only when it is newer, and git archive stamps files with the commit's time,
  # so an older REV published over a newer build kept the newer build's policy files (and failed to start).
  rm -rf "$1"
  dotnet publish "$src/src/Orchestrator" -c Release -o "$1" -v q -nologo >/dev/null
}

# At exit: every started process stopped (CLEANUP_SIGNAL, TERM unless a script says otherwise), logs kept under $LOGS.
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "-${CLEANUP_SIGNAL:-TERM}" "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  mkdir -p "$LOGS"; cp "$WORK"/*.log "$LOGS"/ 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# orchestrator_env <db file>: the environment every benchmark instance gets (ORCH_ENV); a script adds its own after it
orchestrator_env() {
  ORCH_ENV=(ASPNETCORE_URLS="http://127.0.0.1:$ORCH_PORT"
    ConnectionStrings__Orchestrator="Data Source=$1"
    Orchestrator__ApiKeys__0__Key=$KEY Orchestrator__ApiKeys__0__Tenant=bench Orchestrator__ApiKeys__0__Principal=bench
    Orchestrator__ApiKeys__1__Key=$OPKEY Orchestrator__ApiKeys__1__Tenant=ops Orchestrator__ApiKeys__1__Principal=ops
    Orchestrator__ApiKeys__1__Roles__0=operator
    Orchestrator__Effects__WorkspaceRoot="$WORK/workspaces"
    Serilog__MinimumLevel__Default=Warning)
}

# wait_up <url>: until the server answers at all (any status); wait_ready <url>: until it answers 200 (both bounded: 30 s)
wait_up() { for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != "000" ] && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }
wait_ready() { for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }

# diag: the operator's telemetry view (DIAG_QUERY, ?tenant=bench unless a script sets it)
diag() { curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$ORCH_PORT/v1/diag/telemetry${DIAG_QUERY-?tenant=bench}"; }
# drain_jobs: until no job is queued or running (wrk leaves jobs behind when it closes its connections; bounded: 60 s)
drain_jobs() {
  for _ in $(seq 1 600); do
    [ "$(diag | jq '.queue.held + .queue.running + (.queue.waitingForSlot // 0)')" = 0 ] && return 0
    sleep 0.1
  done
  echo "  warning: jobs still queued or running after 60 s" >&2; NOTES+=("jobs still queued or running after 60 s of draining")
}

# wrkrun <connections> <seconds> <url> <body> -> the RESULT line; throughput: wrk's own counts, 2 threads (bench/wrk/post.lua)
wrkrun() { BODY="$4" BENCH_KEY=$KEY wrk -t2 -c"$1" -d"$2"s --timeout 30s -s bench/wrk/post.lua "$3" | grep '^RESULT'; }
# latrun <connections> <seconds> <url> <body> -> the RESULT line; latency timed per request, one connection per thread
# (bench/wrk/gateway.lua: p50_us/p99_us measured, wrk_p99_us is wrk's coordinated-omission-corrected figure)
latrun() { BODY="$4" BENCH_KEY=$KEY wrk -t"$1" -c"$1" -d"$2"s --timeout 30s -s bench/wrk/gateway.lua "$3" | grep '^RESULT'; }
# check <label> <RESULT line>: note non-2xx answers, connect errors and timeouts
check() {
  local bad=$(( $(field errors_status "$2") + $(field errors_connect "$2") + $(field errors_timeout "$2") ))
  [ "$bad" = 0 ] || { echo "  warning: $1: $bad errors ($2)" >&2; NOTES+=("$1: $2"); }
}

field() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<<"$2"; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
now_ms() { date +%s%3N; }
ms() { awk -v us="$1" 'BEGIN{printf "%.2f ms", us/1000}'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN{d=(a-b)/1000; printf "%s%.2f ms", (d>=0?"+":""), d}'; }
secs() { awk -v ms="$1" 'BEGIN{printf "%.2f s", ms/1000}'; }

# Per-round figures: R[label,round] holds a RESULT line, X[key,round] any other figure.
declare -A R X
med() { for r in $(seq 1 "$ROUNDS"); do field "$2" "${R[$1,$r]}"; done | median; }
raw() { local s=(); for r in $(seq 1 "$ROUNDS"); do s+=("$(field "$2" "${R[$1,$r]}")"); done; echo "${s[*]}"; }
xmed() { for r in $(seq 1 "$ROUNDS"); do echo "${X[$1,$r]}"; done | median; }
xraw() { local s=(); for r in $(seq 1 "$ROUNDS"); do s+=("${X[$1,$r]}"); done; echo "${s[*]}"; }

# logsum <log name in $WORK, without .log>: its WRN/ERR/FTL lines, counted by their first words
logsum() {
  local s
  s=$( (grep -oE '^\[[0-9:.]+ (WRN|ERR|FTL)\] [^.:(]{0,60}' "$WORK/$1.log" || true) | sed -E 's/^\[[0-9:.]+ //' |
    sort | uniq -c | sort -rn | head -5 | awk '{n=$1; $1=""; printf "%s%d x \"%s\"", (NR>1?", ":""), n, substr($0,2)}')
  echo "${s:-none}"
}
