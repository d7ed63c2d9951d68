#!/usr/bin/env bash
# Memory benchmark: recall and write cost per turn for one principal holding N items (text search), and the sync
# /v1/act p50 with memory on vs off in the same run. Needs curl, jq, sqlite3 and python3.
#   For each N in SIZES: a fresh SQLite store, migrated by the service, is seeded (sqlite3, with the service stopped;
#   the FTS5 index is kept by the migration's triggers) with N items in one session of one principal: turns of 12
#   words drawn from a 3,000-word vocabulary. The service is started again and TURNS sync acts run one after another
#   in that session (intent memory/chat: recall recent 6, relevant 4, summary; budget 1,500 tokens; no summaries, no
#   caps), each asking 4 random vocabulary words, then TURNS acts of the same words without a session (text/respond,
#   no memory). Recall and write times are the service's own (memory.recall, memory.write in /v1/diag/telemetry);
#   act times are client side (curl's time_total), one request at a time, on a zero-latency simulated model.
# Results: bench/results/memory-<UTC timestamp>.md
#
#   bench/memory.sh
#   SIZES="100 10000 100000" TURNS=300 bench/memory.sh
#   REV=HEAD bench/memory.sh                   # build Orchestrator from a commit (git archive), not the work tree
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100 10000 100000"}
TURNS=${TURNS:-200}
WARMUP=${WARMUP:-20}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5193}
ROUNDS=1
KIND=memory
. bench/lib.sh
REPORT="$RESULTS/memory-$STAMP.md"
need curl jq sqlite3 python3

build_orchestrator "$OUT/memory-orchestrator"

start() {
  # Another service on the port would answer for this one (wait_ready cannot tell them apart): refuse to go on.
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ORCH_PORT/health/live")" != "000" ]; then
    echo "port $ORCH_PORT is taken by another process; set ORCH_PORT" >&2; exit 1
  fi
  orchestrator_env "$1"
  env "${ORCH_ENV[@]}" Orchestrator__Workflow__PoliciesPath="$PWD/bench/policies-memory" \
    dotnet "$OUT/memory-orchestrator/Orchestrator.dll" >>"$WORK/orchestrator.log" 2>&1 &
  ORCH_PID=$!; pids+=("$ORCH_PID")
  wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"
}
stop() { kill "$ORCH_PID"; wait "$ORCH_PID" 2>/dev/null || true; }

# seed <db> <n>: n items (user and assistant turns, two per job) for tenant bench, principal bench, session bench
seed() {
  python3 - "$2" >"$WORK/seed.sql" <<'PY'
import random, sys
n = int(sys.argv[1]); random.seed(13)
vocab = ["w%04d" % i for i in range(3000)]
print("BEGIN;")
for i in range(n):
    text = " ".join(random.choice(vocab) for _ in range(12))
    role = "user" if i % 2 == 0 else "assistant"
    print(f"INSERT INTO \"MemoryItems\" (\"Tenant\",\"Principal\",\"Session\",\"Kind\",\"Role\",\"Text\",\"JobId\",\"NodeId\",\"Ordinal\",\"CreatedAt\",\"ExpiresAt\",\"Bytes\") "
          f"VALUES ('bench','bench','bench','turn','{role}','{text}','seed_{i // 2:08d}','memory/write',{i % 2},'2026-12-01 00:00:00',NULL,{len(text)});")
print("COMMIT;")
PY
  sqlite3 "$1" <"$WORK/seed.sql"
}

# turns <n> <intent> <session or empty>: one act at a time; prints each act's time_total in ms
turns() {
  python3 - "$1" <<'PY' >"$WORK/inputs.txt"
import random, sys
random.seed(int(sys.argv[1]) * 7 + 1)
for _ in range(int(sys.argv[1])):
    print(" ".join("w%04d" % random.randrange(3000) for _ in range(4)))
PY
  while read -r words; do
    local body
    if [ -n "$3" ]; then body="{\"intent\":\"$2\",\"session\":\"$3\",\"input\":\"$words\"}"; else body="{\"intent\":\"$2\",\"input\":\"$words\"}"; fi
    curl -s -o /dev/null -w '%{time_total}\n' -H "X-Api-Key: $KEY" -H 'Content-Type: application/json' -d "$body" "$ACT" | awk '{printf "%.3f\n", $1*1000}'
  done <"$WORK/inputs.txt"
}
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR-1)*p/100)+1; printf "%.2f", a[i]}'; }

{
  echo "# Memory benchmark $STAMP"
  echo
  echo "Built from: $BUILT_FROM. Machine: $(nproc) cores, $(uname -r). SIZES=\"$SIZES\" TURNS=$TURNS WARMUP=$WARMUP."
  echo
  echo "| items | recall p50 | recall p99 | write p50 | write p99 | act p50 memory on | act p50 memory off | act p99 on | act p99 off |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$REPORT"

for n in $SIZES; do
  db="$WORK/memory-$n.db"
  start "$db"; stop
  seed "$db" "$n"
  echo "seeded $n items: $(sqlite3 "$db" 'SELECT count(*) FROM "MemoryItems"') rows, $(sqlite3 "$db" "SELECT count(*) FROM \"MemorySearch\" WHERE \"MemorySearch\" MATCH 'w0001'") match w0001" >&2
  start "$db"
  turns "$WARMUP" memory/chat bench >/dev/null
  turns "$WARMUP" text/respond "" >/dev/null
  before=$(diag)
  turns "$TURNS" memory/chat bench >"$WORK/on-$n.txt"
  turns "$TURNS" text/respond "" >"$WORK/off-$n.txt"
  after=$(diag)
  recall=$(jq -c '.latency["memory.recall"]' <<<"$after")
  write=$(jq -c '.latency["memory.write"]' <<<"$after")
  echo "n=$n recall=$recall write=$write" >&2
  printf '| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %s ms | %s ms | %s ms | %s ms |\n' "$n" \
    "$(jq '.p50Ms' <<<"$recall")" "$(jq '.p99Ms' <<<"$recall")" "$(jq '.p50Ms' <<<"$write")" "$(jq '.p99Ms' <<<"$write")" \
    "$(pct 50 <"$WORK/on-$n.txt")" "$(pct 50 <"$WORK/off-$n.txt")" "$(pct 99 <"$WORK/on-$n.txt")" "$(pct 99 <"$WORK/off-$n.txt")" >>"$REPORT"
  stop
done

{
  echo
  echo "Recall and write: the service's own latency summaries (memory.recall, memory.write) over the warm-up and measured"
  echo "memory-on turns of that size ($((WARMUP + TURNS)) each). Act: client side, curl time_total, one request at a time."
} >>"$REPORT"
cat "$REPORT"
