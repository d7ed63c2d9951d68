#!/usr/bin/env bash
# The PostgreSQL store beside SQLite and the bare endpoint, in the same run, medians of ROUNDS rounds. Needs wrk, jq,
# curl, psql and the PostgreSQL server binaries (PGBIN, Debian's postgresql package); installs nothing. PostgreSQL
# refuses to run as root, so as root the script starts its private throwaway cluster as the `postgres` user (runuser):
# initdb in a temp dir, trust auth, listening on 127.0.0.1 only on a free port, every setting at its default (fsync on,
# synchronous_commit on), stopped and removed at exit (its log is kept with the others).
#   (1) throughput: async acceptance (req/s of POST /v1/act, "mode":"async", wrk request counts, as bench/run.sh) and
#       the full lifecycle (async submits for DURATION s, then until the diag counters of the configuration's nodes
#       show as many jobs completed as wrk counted requests; jobs/s over the whole span, as bench/run.sh) for: the bare
#       endpoint (bench/BareEndpoint), SQLite one node, PostgreSQL one node, PostgreSQL two nodes on one database
#       (load split: two wrk processes, -t1 -c(CONNECTIONS/2) each, one per node's port; the single-node figures use
#       wrk -t2 -cCONNECTIONS). Every configuration runs from the start, warmed once; each round measures them in a
#       rotated order. Lifecycle on PostgreSQL is cross-checked against the store (psql, rows completed).
#   (2) failover: two PostgreSQL nodes A and B (FAILOVER_WORKERS workers each), a simulated model answering after
#       HOLD_MS; FAILOVER_JOBS async jobs admitted to A only and running there (store: Owner = A, attempt 1); A killed
#       with SIGKILL; time from the kill until the store shows every job owned by B and until B runs them all (store:
#       Owner = B, attempts 2; B's diag queue.running), beside A's lease expiry (the latest LeaseUntil A had written,
#       read just before the kill). FAILOVER_CASES lists lease/pool pairs: the lease duration, and the connection pool
#       (`default`: Npgsql's, Maximum Pool Size 100, as a connection string without pool settings gets; or a number,
#       added as `Maximum Pool Size=N`).
# Results: bench/results/pg-<UTC timestamp>.md
#
#   bench/pg.sh                                   # both scenarios, 3 rounds, 5 s runs; failover: 5 s and 15 s leases with pool 40, 5 s with the default pool
#   ROUNDS=5 DURATION=10 bench/pg.sh
#   SCENARIOS=failover FAILOVER_CASES="00:00:05/default" bench/pg.sh
#   REV=HEAD bench/pg.sh                          # build Orchestrator from a commit (git archive), not the work tree
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-6}
SCENARIOS=${SCENARIOS:-"throughput failover"}
FAILOVER_JOBS=${FAILOVER_JOBS:-200}
FAILOVER_WORKERS=${FAILOVER_WORKERS:-200}
FAILOVER_CASES=${FAILOVER_CASES:-"00:00:05/40 00:00:15/40 00:00:05/default"}
HOLD_MS=${HOLD_MS:-600000}
JOB_DEADLINE_MS=${JOB_DEADLINE_MS:-3600000}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5094}          # the SQLite node; lib.sh's ACT and diag point at it
BARE_PORT=${BARE_PORT:-5095}
PG1_PORT=${PG1_PORT:-5096}
PG2A_PORT=${PG2A_PORT:-5097}
PG2B_PORT=${PG2B_PORT:-5098}
FOA_PORT=${FOA_PORT:-5099}
FOB_PORT=${FOB_PORT:-5100}
KIND=pg
. bench/lib.sh
REPORT="$RESULTS/pg-$STAMP.md"
# the failover nodes hold jobs on a 600 s model; a graceful stop would only wait for them
CLEANUP_SIGNAL=KILL
need wrk jq curl
command -v psql >/dev/null || { echo "psql is missing: apt-get install postgresql-client" >&2; exit 1; }
for b in initdb pg_ctl postgres; do
  [ -x "$PGBIN/$b" ] || { echo "$PGBIN/$b is missing: apt-get install postgresql (or set PGBIN)" >&2; exit 1; }
done
for p in "$ORCH_PORT" "$BARE_PORT" "$PG1_PORT" "$PG2A_PORT" "$PG2B_PORT" "$FOA_PORT" "$FOB_PORT"; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "port $p is in use; set the *_PORT variables" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------------------
# The throwaway cluster: as root, every PostgreSQL command runs as the postgres user
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then id postgres >/dev/null 2>&1 || { echo "no postgres user (apt-get install postgresql)" >&2; exit 1; }; fi
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 40000 + RANDOM % 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2; exit 1
}
PGDIR=$(mktemp -d /tmp/orchestrator-pgcluster.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
PGPORT=$(free_port)
pg_stop() {
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  cp "$PGDIR/postgres.log" "$WORK/postgres.log" 2>/dev/null || true
  rm -rf "$PGDIR"
}
# At exit: the service processes first (they would log the database going away), then the cluster, then lib.sh's cleanup
on_exit() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pg_stop
  cleanup
}
trap on_exit EXIT

echo "PostgreSQL: initdb in $PGDIR, port $PGPORT" >&2
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log" >&2; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$PGDIR" start >/dev/null ||
  { cat "$PGDIR/postgres.log" >&2; exit 1; }
# q <database> <sql>: one psql call, unaligned, tuples only
q() { psql -X -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$1" -Atq -v ON_ERROR_STOP=1 -c "$2"; }
pgconn() { echo "Host=127.0.0.1;Port=$PGPORT;Username=orch;Database=$1"; }
# conns <database>: the service's connections to it now (Npgsql keeps idle pooled connections for minutes)
conns() { q postgres "select count(*) from pg_stat_activity where datname='$1' and usename='orch'"; }
# newdb <name>: a database owned by the service's role, a copy of orch_schema (migrated once by the service itself, see
# below), so that the nodes sharing it may start at once instead of one after the other's migrations
newdb() { q postgres "create database $1 owner orch template orch_schema" >/dev/null; }
# The nodes connect as a role without superuser, so psql (superuser) keeps PostgreSQL's reserved slots
# (superuser_reserved_connections): a node's Npgsql pool (default Maximum Pool Size 100) can fill max_connections=100.
q postgres "create role orch login" >/dev/null
PGVERSION=$(q postgres "show server_version")
PGSETTINGS="fsync=$(q postgres 'show fsync'), synchronous_commit=$(q postgres 'show synchronous_commit'), wal_level=$(q postgres 'show wal_level'), shared_buffers=$(q postgres 'show shared_buffers'), max_connections=$(q postgres 'show max_connections'), superuser_reserved_connections=$(q postgres 'show superuser_reserved_connections')"
echo "  PostgreSQL $PGVERSION: $PGSETTINGS" >&2

build_orchestrator "$OUT/pg-orchestrator"
dotnet publish bench/BareEndpoint -c Release -o "$OUT/bare" -v q -nologo >/dev/null

# launch <name> <port> <connection string> [extra env assignments...]: one Orchestrator node; sets NODE_PID
launch() {
  local name=$1 port=$2 conn=$3; shift 3
  ORCH_PORT=$port orchestrator_env "$WORK/$name.db"
  env "${ORCH_ENV[@]}" ConnectionStrings__Orchestrator="$conn" Orchestrator__Queue__Capacity=10000000 \
    "$@" dotnet "$OUT/pg-orchestrator/Orchestrator.dll" >>"$WORK/orchestrator-$name.log" 2>&1 &
  NODE_PID=$!
  pids+=("$NODE_PID")
}
# ready <port>: until the node answers 200 on /health/ready; bounded at 120 s, not lib.sh's 30 s: on the shared machine
# several nodes starting at once have taken 40 s
ready() {
  for _ in $(seq 1 1200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health/ready")" = 200 ] && return 0; sleep 0.1; done
  echo "not ready: http://127.0.0.1:$1/health/ready" >&2; exit 1
}
# stop_node <pid> <name>: SIGTERM (SIGKILL after 30 s); a status other than 0/143 is noted
stop_node() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && { NOTES+=("$2 did not stop within 30 s of SIGTERM; killed"); kill -9 "$1" 2>/dev/null || true; }
  wait "$1" 2>/dev/null && true
  local rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 143 ] || NOTES+=("$2 exited with status $rc when stopped")
}
diag_at() { ORCH_PORT=$1 diag; }
# completed_sum <ports...>: jobs.completed over the nodes' diag counters
completed_sum() { local s=0 p; for p in "$@"; do s=$(( s + $(diag_at "$p" | jq '.counters["jobs.completed"] // 0') )); done; echo "$s"; }
failed_sum() {
  local s=0 p
  for p in "$@"; do s=$(( s + $(diag_at "$p" | jq '[.counters | to_entries[] | select(.key | test("^jobs[.](failed|canceled)")) | .value] | add // 0') )); done
  echo "$s"
}
# drain <db or -> <ports...>: lib.sh's drain_jobs on every node, then (PostgreSQL) until no row is accepted or running
drain() {
  local db=$1 p; shift
  for p in "$@"; do ORCH_PORT=$p drain_jobs; done
  [ "$db" = - ] && return 0
  for _ in $(seq 1 600); do
    [ "$(q "$db" "select count(*) from \"Jobs\" where \"Status\" in ('accepted','running')")" = 0 ] && return 0
    sleep 0.1
  done
  NOTES+=("$db: rows still accepted or running 60 s after the nodes' queues drained")
}

# The failover scenario's model (the routing snapshot a node records at start depends on the models only)
HOLD_MODEL=(Orchestrator__Models__0__Id=hold Orchestrator__Models__0__Provider=simulated Orchestrator__Models__0__LatencyMs="$HOLD_MS"
  Orchestrator__Models__0__Timeout=01:00:00 Orchestrator__Models__0__MaxConcurrency=$((FAILOVER_WORKERS + 100)))
# orch_schema: the service's migrations applied once, by a node started on it and stopped, then a second node with the
# failover scenario's models, so the snapshots of both configurations are there too (their node rows removed). Nodes
# that start together on a store that lacks their configuration's snapshot race to insert it and one of them dies at
# start-up (23505 on PK_Snapshots, seen in this script's first version), so every database is a copy of this one.
q postgres "create database orch_schema owner orch" >/dev/null
launch schema "$FOA_PORT" "$(pgconn orch_schema)" Orchestrator__Store__Provider=Postgres Orchestrator__Node__Id=schema
ready "$FOA_PORT"; stop_node "$NODE_PID" "the node that migrated orch_schema"
launch schema-hold "$FOA_PORT" "$(pgconn orch_schema)" Orchestrator__Store__Provider=Postgres Orchestrator__Node__Id=schema "${HOLD_MODEL[@]}"
ready "$FOA_PORT"; stop_node "$NODE_PID" "the second node on orch_schema"
q orch_schema "delete from \"Nodes\"" >/dev/null
MIGRATIONS=$(q orch_schema "select string_agg(\"MigrationId\", ', ' order by \"MigrationId\") from \"__EFMigrationsHistory\"")

ASYNC='{"intent":"text/respond","input":"hello bench","mode":"async"}'
SECTIONS=()
LOGSUM=()

# ---------------------------------------------------------------------------------------------------------
# load <config> <seconds>: async submits at CONNECTIONS to the configuration's nodes -> one RESULT line (summed)
declare -A PORTS DBS
load() {
  local ports=(${PORTS[$1]})
  if [ "${#ports[@]}" = 1 ]; then wrkrun "$CONNECTIONS" "$2" "http://127.0.0.1:${ports[0]}/v1/act" "$ASYNC"; return; fi
  local i files=() wpids=()
  for i in "${!ports[@]}"; do
    files+=("$WORK/wrk-$i.out")
    BODY="$ASYNC" BENCH_KEY=$KEY wrk -t1 -c$((CONNECTIONS / ${#ports[@]})) -d"$2"s --timeout 30s -s bench/wrk/post.lua \
      "http://127.0.0.1:${ports[$i]}/v1/act" >"${files[-1]}" &
    wpids+=($!)
  done
  wait "${wpids[@]}"
  grep -h '^RESULT' "${files[@]}" | awk '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2]; if (kv[1] == "duration_us" && kv[2] > d) d = kv[2] } }
    END { printf "RESULT requests=%d duration_us=%d rps=%.1f errors_status=%d errors_connect=%d errors_timeout=%d\n",
          v["requests"], d, v["rps"], v["errors_status"], v["errors_connect"], v["errors_timeout"] }'
}

# lifecycle <config> <round>: as bench/run.sh: n = wrk's requests; the span ends when the nodes' counters show n more completed
lifecycle() {
  local c=$1 r=$2 ports=(${PORTS[$1]}) db=${DBS[$1]} before t0 t1 l n done0 done1 pg0=0 pg1=0
  before=$(completed_sum "${ports[@]}")
  [ "$db" != - ] && pg0=$(q "$db" "select count(*) from \"Jobs\" where \"Status\"='completed'")
  t0=$(now_ms)
  l=$(load "$c" "$DURATION"); n=$(field requests "$l"); check "$c lifecycle round $r" "$l"
  done1=0
  for _ in $(seq 1 2400); do done1=$(( $(completed_sum "${ports[@]}") - before )); [ "$done1" -lt "$n" ] || break; sleep 0.05; done
  t1=$(now_ms)
  [ "$done1" -ge "$n" ] || NOTES+=("$c lifecycle round $r: $done1 of $n jobs completed within 120 s")
  X[$c.life,$r]=$(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN{printf "%.1f", n*1000/ms}')
  X[$c.lifespan,$r]="$n/$((t1 - t0))ms"
  X[$c.lifesubmit,$r]=$(field rps "$l")
  if [ "$db" != - ]; then
    pg1=$(q "$db" "select count(*) from \"Jobs\" where \"Status\"='completed'")
    X[$c.lifestore,$r]="$(( pg1 - pg0 ))/$done1"
    X[$c.conns,$r]=$(conns "$db")
  fi
  echo "  $c lifecycle: $n jobs in $((t1 - t0)) ms = ${X[$c.life,$r]} jobs/s (submits $(field rps "$l") req/s${X[$c.lifestore,$r]:+; store completed/counters ${X[$c.lifestore,$r]}})" >&2
  drain "$db" "${ports[@]}"
}

scenario_throughput() {
  echo "(1) throughput: bare, SQLite 1 node, PostgreSQL 1 node, PostgreSQL 2 nodes" >&2
  newdb orch1; newdb orch2
  ASPNETCORE_URLS=http://127.0.0.1:$BARE_PORT dotnet "$OUT/bare/BareEndpoint.dll" >"$WORK/bare.log" 2>&1 &
  local bare=$!; pids+=("$bare")
  rm -f "$WORK"/sqlite.db*
  launch sqlite "$ORCH_PORT" "Data Source=$WORK/sqlite.db"; local sq=$NODE_PID
  launch pg1 "$PG1_PORT" "$(pgconn orch1)" Orchestrator__Store__Provider=Postgres Orchestrator__Node__Id=p1; local p1=$NODE_PID
  launch pg2a "$PG2A_PORT" "$(pgconn orch2)" Orchestrator__Store__Provider=Postgres Orchestrator__Node__Id=p2a; local p2a=$NODE_PID
  launch pg2b "$PG2B_PORT" "$(pgconn orch2)" Orchestrator__Store__Provider=Postgres Orchestrator__Node__Id=p2b; local p2b=$NODE_PID
  wait_up "http://127.0.0.1:$BARE_PORT/v1/act"
  ready "$ORCH_PORT"; ready "$PG1_PORT"; ready "$PG2A_PORT"; ready "$PG2B_PORT"
  PORTS=([bare]=$BARE_PORT [sqlite]=$ORCH_PORT [pg1]=$PG1_PORT [pg2]="$PG2A_PORT $PG2B_PORT")
  DBS=([bare]=- [sqlite]=- [pg1]=orch1 [pg2]=orch2)
  local nodes2; nodes2=$(curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$PG2A_PORT/v1/diag/nodes" | jq -c '[.items[] | {id, alive}]')
  echo "  pg2 nodes: $nodes2" >&2
  local configs=(bare sqlite pg1 pg2) c
  # JIT tiering takes several seconds of load before the hot path is fully optimized
  echo "  warming up..." >&2
  for c in "${configs[@]}"; do
    load "$c" "$WARMUP" >/dev/null
    [ "$c" = bare ] || drain "${DBS[$c]}" ${PORTS[$c]}
  done
  for r in $(seq 1 "$ROUNDS"); do
    local rot=$(( (r - 1) % 4 )) order=() i
    for i in 0 1 2 3; do order+=("${configs[$(( (i + rot) % 4 ))]}"); done
    echo " round $r (order: ${order[*]})" >&2
    for c in "${order[@]}"; do
      R[$c.acc,$r]=$(load "$c" "$DURATION"); check "$c async round $r" "${R[$c.acc,$r]}"
      echo "  $c async: $(field rps "${R[$c.acc,$r]}") req/s" >&2
      [ "$c" = bare ] && continue
      drain "${DBS[$c]}" ${PORTS[$c]}
      lifecycle "$c" "$r"
    done
  done
  # What the two-node store shows: who completed what, and whether any job was claimed or run more than once
  local split dup notdone
  split=$(q orch2 "select coalesce(string_agg(o || ': ' || n, ', ' order by o), 'none') from (select coalesce(\"Owner\", '(none)') o, count(*) n from \"Jobs\" where \"Status\"='completed' group by 1) s")
  dup=$(q orch2 "select count(*) filter (where \"Epoch\" > 1) || ' claimed more than once, ' || count(*) filter (where \"Attempts\" > 1) || ' run more than once (attempts > 1), of ' || count(*) from \"Jobs\"")
  notdone=$(q orch2 "select coalesce(string_agg(\"Status\" || ': ' || n, ', '), 'none') from (select \"Status\", count(*) n from \"Jobs\" where \"Status\" <> 'completed' group by 1) s")
  local dup1; dup1=$(q orch1 "select count(*) filter (where \"Epoch\" > 1) || ' claimed more than once, ' || count(*) filter (where \"Attempts\" > 1) || ' run more than once, of ' || count(*) from \"Jobs\"")
  # model calls beyond one per completed job (text/respond has one model node): a job that ran on both nodes
  local calls=0 comp=0 p
  for p in "$PG2A_PORT" "$PG2B_PORT"; do
    calls=$(( calls + $(diag_at "$p" | jq '.counters["nodes.model.succeeded"] // 0') )); comp=$(( comp + $(diag_at "$p" | jq '.counters["jobs.completed"] // 0') ))
  done
  local calls1; calls1="$(diag_at "$PG1_PORT" | jq -r '"\(.counters["nodes.model.succeeded"] // 0) model nodes succeeded for \(.counters["jobs.completed"] // 0) jobs completed"')"
  local nodesend; nodesend=$(curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$PG2B_PORT/v1/diag/nodes" | jq -c '[.items[] | {id, alive, running}]')
  local failed="sqlite $(failed_sum "$ORCH_PORT"), pg1 $(failed_sum "$PG1_PORT"), pg2 $(failed_sum "$PG2A_PORT" "$PG2B_PORT")"
  stop_node "$sq" "SQLite node"; stop_node "$p1" "PostgreSQL node p1"; stop_node "$p2a" "PostgreSQL node p2a"; stop_node "$p2b" "PostgreSQL node p2b"
  kill "$bare" 2>/dev/null || true; wait "$bare" 2>/dev/null || true
  local lw="sqlite: $(logsum orchestrator-sqlite); pg1: $(logsum orchestrator-pg1); pg2a: $(logsum orchestrator-pg2a); pg2b: $(logsum orchestrator-pg2b)"
  # a run whose end the store refused: the job had been taken by the other node, and ran on both
  local refused; refused=$(cat "$WORK/orchestrator-pg2a.log" "$WORK/orchestrator-pg2b.log" | grep -c 'was no longer Running when it ended' || true)

  ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
  pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f%%", 100*a/b}'; }
  local BR SA SL P1A P1L P2A P2L
  BR=$(med bare.acc rps); SA=$(med sqlite.acc rps); P1A=$(med pg1.acc rps); P2A=$(med pg2.acc rps)
  SL=$(xmed sqlite.life); P1L=$(xmed pg1.life); P2L=$(xmed pg2.life)
  # the ratios per round too (same round, same minute), and their medians
  local rl=() rs=() rl2=() ra2=()
  for r in $(seq 1 "$ROUNDS"); do
    rl+=("$(awk -v a="${X[pg1.life,$r]}" -v b="${X[sqlite.life,$r]}" 'BEGIN{printf "%.2f", a/b}')")
    rs+=("$(awk -v a="$(field rps "${R[pg1.acc,$r]}")" -v b="$(field rps "${R[sqlite.acc,$r]}")" 'BEGIN{printf "%.2f", a/b}')")
    rl2+=("$(awk -v a="${X[pg2.life,$r]}" -v b="${X[pg1.life,$r]}" 'BEGIN{printf "%.2f", a/b}')")
    ra2+=("$(awk -v a="$(field rps "${R[pg2.acc,$r]}")" -v b="$(field rps "${R[pg1.acc,$r]}")" 'BEGIN{printf "%.2f", a/b}')")
  done
  # judged on both the ratio of the medians and the median of the per-round ratios; when they disagree it is at the line
  local rlm target; rlm=$(printf '%s\n' "${rl[@]}" | median)
  target=$(awk -v a="$P1L" -v b="$SL" -v m="$rlm" 'BEGIN{x = (a >= b/2); y = (m >= 0.5); print (x && y ? "met" : (!x && !y ? "missed" : "at the line: met by one of the two ratios, missed by the other"))}')
  SUMMARY+=("PostgreSQL one node lifecycle vs SQLite one node (target >= 50%)|$(pct "$P1L" "$SL") of the medians ($P1L vs $SL jobs/s); median of the per-round ratios $rlm: **$target**")
  SUMMARY+=("PostgreSQL two nodes vs one (no target)|lifecycle $(ratio "$P2L" "$P1L") ($P2L vs $P1L jobs/s), async acceptance $(ratio "$P2A" "$P1A") ($P2A vs $P1A req/s)")
  SECTIONS+=("$(cat <<EOF
### (1) Throughput: bare endpoint, SQLite one node, PostgreSQL one node, PostgreSQL two nodes

Every configuration ran for the whole scenario (warmed once with ${WARMUP} s of async submits), each round measured them in a
rotated order; default Orchestrator:Queue:Workers ($(( 2 * $(nproc) )) here per node), Capacity 10000000, default
models, logs at Warning. Async acceptance: wrk request counts for ${DURATION} s (bench/wrk/post.lua), then drained. Lifecycle:
as bench/run.sh, async submits for ${DURATION} s, the span ends when the configuration's diag counters show as many jobs
completed as wrk counted requests (polled every 50 ms); jobs/s = requests / span. One node: wrk -t2 -c$CONNECTIONS; two nodes:
two wrk -t1 -c$((CONNECTIONS / 2)), one per node's port, counts summed. PostgreSQL: one database per configuration
(orch1, orch2, copies of orch_schema: $MIGRATIONS) on the same cluster.

| figure (medians) | bare endpoint | SQLite, 1 node | PostgreSQL, 1 node | PostgreSQL, 2 nodes |
|---|---|---|---|---|
| async acceptance, $CONNECTIONS conn (req/s) | $BR | $SA | $P1A | $P2A |
| vs bare | - | $(pct "$SA" "$BR") | $(pct "$P1A" "$BR") | $(pct "$P2A" "$BR") |
| full lifecycle accepted -> completed, $CONNECTIONS conn (jobs/s) | $BR (its async rate) | $SL | $P1L | $P2L |
| vs bare | - | $(pct "$SL" "$BR") | $(pct "$P1L" "$BR") | $(pct "$P2L" "$BR") |

| ratio | of the medians | per round (median) |
|---|---|---|
| PostgreSQL 1 node vs SQLite, lifecycle (target >= 0.50) | $(ratio "$P1L" "$SL") | $(printf '%s ' "${rl[@]}")($(printf '%s\n' "${rl[@]}" | median)) |
| PostgreSQL 1 node vs SQLite, async acceptance | $(ratio "$P1A" "$SA") | $(printf '%s ' "${rs[@]}")($(printf '%s\n' "${rs[@]}" | median)) |
| PostgreSQL 2 nodes vs 1 node, lifecycle | $(ratio "$P2L" "$P1L") | $(printf '%s ' "${rl2[@]}")($(printf '%s\n' "${rl2[@]}" | median)) |
| PostgreSQL 2 nodes vs 1 node, async acceptance | $(ratio "$P2A" "$P1A") | $(printf '%s ' "${ra2[@]}")($(printf '%s\n' "${ra2[@]}" | median)) |

Raw async req/s: bare $(raw bare.acc rps); sqlite $(raw sqlite.acc rps); pg1 $(raw pg1.acc rps); pg2 $(raw pg2.acc rps).
Raw lifecycle jobs/s: sqlite $(xraw sqlite.life) (jobs/span $(xraw sqlite.lifespan)); pg1 $(xraw pg1.life) (jobs/span $(xraw pg1.lifespan));
pg2 $(xraw pg2.life) (jobs/span $(xraw pg2.lifespan)). Submit rate during the lifecycle runs: sqlite $(xraw sqlite.lifesubmit); pg1 $(xraw pg1.lifesubmit); pg2 $(xraw pg2.lifesubmit).
Store check (rows completed in the window / counters' completed): pg1 $(xraw pg1.lifestore); pg2 $(xraw pg2.lifestore).
The nodes' connections to PostgreSQL after each lifecycle run (pg_stat_activity): pg1 $(xraw pg1.conns); pg2 (both nodes) $(xraw pg2.conns).
Two-node store at the end: completed by node: $split; $dup; not completed: $notdone. Diag counters of both nodes (warm-up
included): $calls model nodes succeeded for $comp jobs completed ($((calls - comp)) model calls beyond one per job; one node: $calls1);
runs that reached their end after the other node had taken the job from the store (log: "was no longer Running when it ended"): $refused; nodes: \`$nodesend\` (at start \`$nodes2\`).
One-node store: $dup1. Jobs failed or canceled (diag counters): $failed.
Orchestrator warning/error log lines: $lw.
EOF
)")
}

# ---------------------------------------------------------------------------------------------------------
# fig <values...>: the median of the rounds that reached a condition ("-" = not reached within the bound), and how many did
fig() {
  local got=() v
  for v in "$@"; do [ "$v" = - ] || got+=("$v"); done
  if [ "${#got[@]}" = 0 ]; then echo "not reached"; return; fi
  local m; m=$(secs "$(printf '%s\n' "${got[@]}" | median)")
  if [ "${#got[@]}" = "$#" ]; then echo "$m"; else echo "$m (reached in ${#got[@]} of $# rounds)"; fi
}
since() { if [ -n "$1" ]; then echo $(( $1 - $2 )); else echo -; fi; }

scenario_failover() {
  local case
  for case in $FAILOVER_CASES; do
    local lease=${case%/*} pool=${case#*/}
    echo "(2) failover, lease $lease, pool $pool: $FAILOVER_JOBS jobs on node A, A killed" >&2
    local fenv=(Orchestrator__Store__Provider=Postgres Orchestrator__Node__LeaseDuration="$lease" "${HOLD_MODEL[@]}"
      Orchestrator__Queue__Workers="$FAILOVER_WORKERS" Orchestrator__Queue__Capacity=100000
      Serilog__MinimumLevel__Override__Orchestrator.Jobs=Information)
    local submit; submit=$(printf '{"intent":"text/respond","input":"hold","mode":"async","deadlineMs":%d}' "$JOB_DEADLINE_MS")
    local L="${lease//:/}_$pool" leasems extra="" poolname poolconn
    leasems=$(awk -v t="$lease" 'BEGIN{split(t, a, ":"); printf "%d", (a[1]*3600 + a[2]*60 + a[3])*1000}')
    poolname="Npgsql's default pool (Maximum Pool Size 100)"; poolconn="no pool settings"
    if [ "$pool" != default ]; then extra=";Maximum Pool Size=$pool"; poolname="Maximum Pool Size=$pool"; poolconn="\`Maximum Pool Size=$pool\`"; fi
    for r in $(seq 1 "$ROUNDS"); do
      local db="fo_${L}_$r" k="$L.$r"
      newdb "$db"
      launch "fo-$L-$r-a" "$FOA_PORT" "$(pgconn "$db")$extra" "${fenv[@]}" Orchestrator__Node__Id=A; local a=$NODE_PID
      launch "fo-$L-$r-b" "$FOB_PORT" "$(pgconn "$db")$extra" "${fenv[@]}" Orchestrator__Node__Id=B; local b=$NODE_PID
      ready "$FOA_PORT"
      # B may still be starting while the jobs go to A: it takes from the store only jobs unowned for longer than a poll, and A's workers claim at once
      local codes; codes=$(curl -s --no-progress-meter -Z --parallel-max 32 -o /dev/null -w '%{http_code}\n' -X POST \
        -H "X-Api-Key: $KEY" -H 'content-type: application/json' -d "$submit" "http://127.0.0.1:$FOA_PORT/v1/act?n=[1-$FAILOVER_JOBS]" 2>/dev/null |
        sort | uniq -c | awk '{printf "%s%d x %s", (NR>1?", ":""), $1, $2}')
      X[$k.submit]=$codes
      [ "$codes" = "$FAILOVER_JOBS x 202" ] || NOTES+=("failover $case round $r: submits answered $codes")
      ready "$FOB_PORT"
      # running on A: the store shows every job owned by A with its run started (attempt 1)
      local onA=0 t_sub; t_sub=$(now_ms)
      for _ in $(seq 1 400); do
        onA=$(q "$db" "select count(*) from \"Jobs\" where \"Owner\"='A' and \"Status\"='running' and \"Attempts\"=1")
        [ "$onA" -ge "$FAILOVER_JOBS" ] && break; sleep 0.05
      done
      X[$k.before]="$onA on A after $(( $(now_ms) - t_sub )) ms (A's diag running $(diag_at "$FOA_PORT" | jq '.queue.running'); connections $(conns "$db")), store $(q "$db" "select string_agg(coalesce(\"Owner\",'-') || '/' || \"Status\" || ': ' || n, ', ') from (select \"Owner\", \"Status\", count(*) n from \"Jobs\" group by 1, 2) s")"
      [ "$onA" -ge "$FAILOVER_JOBS" ] || NOTES+=("failover $case round $r: only $onA of $FAILOVER_JOBS running on A before the kill")
      # A's lease as the store has it, then the kill
      local expiry; expiry=$(q "$db" "select (extract(epoch from max(\"LeaseUntil\")) * 1000)::bigint from \"Jobs\" where \"Owner\"='A'")
      kill -9 "$a"; local t_kill; t_kill=$(now_ms); wait "$a" 2>/dev/null || true
      local left=$(( expiry - t_kill ))
      local t_claim="" t_run="" t_diag="" t_settled="" line owned=0 started=0 ended=0 cn peak=0 now
      for _ in $(seq 1 2000); do
        line=$(q "$db" "select count(*) filter (where \"Owner\"='B' and \"Status\" in ('running','completed')), count(*) filter (where \"Owner\"='B' and \"Status\" in ('running','completed') and \"Attempts\" >= 2), count(*) filter (where \"Status\" not in ('accepted','running','completed')), (select count(*) from pg_stat_activity where datname=current_database() and usename='orch') from \"Jobs\"")
        now=$(now_ms)
        IFS='|' read -r owned started ended cn <<<"$line"
        [ "$cn" -gt "$peak" ] && peak=$cn
        [ -z "$t_claim" ] && [ "$owned" -ge "$FAILOVER_JOBS" ] && t_claim=$now
        [ -z "$t_run" ] && [ "$started" -ge "$FAILOVER_JOBS" ] && t_run=$now
        [ -z "$t_settled" ] && [ $(( started + ended )) -ge "$FAILOVER_JOBS" ] && t_settled=$now
        [ -z "$t_diag" ] && [ "$(diag_at "$FOB_PORT" | jq '.queue.running')" -ge "$FAILOVER_JOBS" ] && t_diag=$(now_ms)
        [ -n "$t_claim" ] && [ -n "$t_run" ] && [ -n "$t_diag" ] && break
        # a round in which some job ended (failed) never gets all of them running: stop 3 s after the rest settled
        [ -n "$t_settled" ] && [ $(( now - t_settled )) -gt 3000 ] && break
        [ $(( now - t_kill )) -lt $(( leasems + 30000 )) ] || break
        sleep 0.05
      done
      [ -n "$t_run" ] && [ -n "$t_diag" ] ||
        NOTES+=("failover $case round $r: $(( $(now_ms) - t_kill )) ms after the kill B owned $owned and had started $started of $FAILOVER_JOBS (B's diag running $(diag_at "$FOB_PORT" | jq '.queue.running')); $ended in another status (failed, canceled)")
      X[exp,$k]=$left; X[claim,$k]=$(since "$t_claim" "$t_kill"); X[run,$k]=$(since "$t_run" "$t_kill")
      X[diag,$k]=$(since "$t_diag" "$t_kill"); X[settled,$k]=$(since "$t_settled" "$t_kill")
      if [ -n "$t_run" ]; then X[late,$k]=$(( t_run - t_kill - left )); else X[late,$k]=-; fi
      sleep 1
      X[$k.after]=$(q "$db" "select string_agg(coalesce(\"Owner\",'-') || '/' || \"Status\" || coalesce('/' || \"ErrorCode\", '') || '/epoch ' || \"Epoch\" || '/attempts ' || \"Attempts\" || ': ' || n, ', ') from (select \"Owner\", \"Status\", \"ErrorCode\", \"Epoch\", \"Attempts\", count(*) n from \"Jobs\" group by 1, 2, 3, 4, 5) s")
      X[$k.peak]=$peak; X[$k.conns]=$(conns "$db")
      X[$k.nodes]=$(curl -fs -H "X-Api-Key: $OPKEY" "http://127.0.0.1:$FOB_PORT/v1/diag/nodes" | jq -c '[.items[] | {id, alive, running}]')
      local id; id=$(q "$db" "select \"Id\" from \"Jobs\" order by \"Id\" limit 1")
      X[$k.job]=$(curl -s -H "X-Api-Key: $KEY" "http://127.0.0.1:$FOB_PORT/v1/jobs/$id" | jq -c '{jobId, status, node, attempts}' 2>/dev/null || echo "?")
      X[$k.claims]=$( (grep -oE 'Claimed [0-9]+ jobs from the store \([0-9]+ were running' "$WORK/orchestrator-fo-$L-$r-b.log" || true) | sed -E 's/Claimed ([0-9]+) jobs.*\(([0-9]+) were running/\1 (\2 running)/' | paste -sd, -)
      X[$k.failed]=$(grep -c 'failed unexpectedly' "$WORK/orchestrator-fo-$L-$r-b.log" || true)
      echo "  round $r: A's lease ran out $(secs "$left") after the kill; all owned by B after ${X[claim,$k]} ms, started on B after ${X[run,$k]} ms, B's diag after ${X[diag,$k]} ms; $ended ended otherwise; B's claims: ${X[$k.claims]:-none}; B's peak connections $peak" >&2
      kill -9 "$b"; wait "$b" 2>/dev/null || true
      X[$k.logs]="A: $(logsum "orchestrator-fo-$L-$r-a"); B: $(logsum "orchestrator-fo-$L-$r-b")"
    done
    local cl=() ru=() di=() ex=() la=() se=() kk worst=0 missing=0 v
    for r in $(seq 1 "$ROUNDS"); do
      kk="$L.$r"; cl+=("${X[claim,$kk]}"); ru+=("${X[run,$kk]}"); di+=("${X[diag,$kk]}"); ex+=("${X[exp,$kk]}"); la+=("${X[late,$kk]}"); se+=("${X[settled,$kk]}")
      for v in "${X[run,$kk]}" "${X[diag,$kk]}"; do if [ "$v" = - ]; then missing=$((missing + 1)); elif [ "$v" -gt "$worst" ]; then worst=$v; fi; done
    done
    local bound=$((leasems + 2000)) verdict worstnote=""
    if [ "$missing" -gt 0 ]; then verdict="missed: in some rounds not every job ran on B (see the per-round lines)"
    elif [ "$worst" -le "$bound" ]; then verdict="met in every round"
    else verdict="missed in at least one round"; fi
    [ "$missing" = 0 ] && worstnote="; worst round $(secs "$worst")"
    SUMMARY+=("failover, lease $lease, $poolname: all $FAILOVER_JOBS running on B within lease + 2 s = $(secs "$bound") of A's SIGKILL|started on B (store) $(fig "${ru[@]}"), B's diag $(fig "${di[@]}")$worstnote: **$verdict**")
    local per=""
    for r in $(seq 1 "$ROUNDS"); do kk="$L.$r"; per+="- r$r: submits ${X[$kk.submit]}; before the kill ${X[$kk.before]}; 1 s after the last poll: ${X[$kk.after]}; B's claim log lines: ${X[$kk.claims]:-none}; B's \"failed unexpectedly\" log lines: ${X[$kk.failed]}; B's connections to PostgreSQL: peak ${X[$kk.peak]} while polling, ${X[$kk.conns]} after; nodes (from B): \`${X[$kk.nodes]}\`; job ${X[$kk.job]}; log lines ${X[$kk.logs]}."$'\n'; done
    local body
    body=$(cat <<EOT
### (2) Failover, lease $lease, $poolname: $FAILOVER_JOBS running jobs on node A, A killed with SIGKILL

Two nodes A and B started together on one fresh database per round (a copy of orch_schema), Orchestrator:Node:LeaseDuration=$lease (renewed every third),
PollInterval default (1 s), Workers=$FAILOVER_WORKERS each, connection string with $poolconn, a simulated model answering after
$HOLD_MS ms (MaxConcurrency $((FAILOVER_WORKERS + 100))), deadlineMs $JOB_DEADLINE_MS. $FAILOVER_JOBS async jobs admitted to A only (curl, 32 at a
time); once the store showed all of them \`running\` with Owner = A and attempt 1, A was killed with SIGKILL. Times from the
kill (\`date +%s%3N\`) to the first poll that saw the condition (psql every ~50 ms plus the query, so each figure is late by up
to ~80 ms); "-" = not reached:

| from A's SIGKILL to | median | raw (ms) |
|---|---|---|
| A's lease running out (the latest LeaseUntil A wrote, read just before the kill) | $(fig "${ex[@]}") | ${ex[*]} |
| every job owned by B (store: Owner = 'B', status running or completed: B's claim committed) | $(fig "${cl[@]}") | ${cl[*]} |
| every job started on B (store: Owner = 'B', attempts >= 2, status running or completed) | $(fig "${ru[@]}") | ${ru[*]} |
| B's diag \`queue.running\` >= $FAILOVER_JOBS | $(fig "${di[@]}") | ${di[*]} |
| every job started on B or ended (failed): nothing left to take | $(fig "${se[@]}") | ${se[*]} |
| started on B, counted from A's lease running out | $(fig "${la[@]}") | ${la[*]} |

Target: all $FAILOVER_JOBS running on B within lease + 2 s ($(secs "$bound")) of the kill: $verdict.
B takes a dead node's jobs only once their lease has run out (it polls every PollInterval when it has idle workers), so the
expected time is the lease left at the kill (the lease minus up to one renewal interval, a third of it rounded up to the
node's 1 s beat) plus up to one poll plus the start.

$per
EOT
)
    SECTIONS+=("$body")
  done
}

SUMMARY=()
START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for s in $SCENARIOS; do
  case $s in
    throughput) scenario_throughput ;;
    failover) scenario_failover ;;
    *) echo "unknown scenario $s" >&2; exit 1 ;;
  esac
done
TOOK=$(( $(date +%s) - START ))
PGERR=$( (grep -oE '(ERROR|FATAL|PANIC|WARNING): .{0,60}' "$PGDIR/postgres.log" || true) | sort | uniq -c | sort -rn | head -5 | awk '{n=$1; $1=""; printf "%s%d x \"%s\"", (NR>1?", ":""), n, substr($0,2)}')

{
  echo "## PostgreSQL run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS WARMUP=$WARMUP SCENARIOS=\"$SCENARIOS\" FAILOVER_JOBS=$FAILOVER_JOBS FAILOVER_WORKERS=$FAILOVER_WORKERS FAILOVER_CASES=\"$FAILOVER_CASES\" HOLD_MS=$HOLD_MS${REV:+ REV=$REV} bench/pg.sh\`"
  echo "(medians of $ROUNDS rounds; Orchestrator built from the $BUILT_FROM; $(dotnet --version) SDK; PostgreSQL $PGVERSION"
  echo "($PGBIN), a throwaway cluster on 127.0.0.1 with default settings ($PGSETTINGS) in /tmp on $(df -T /tmp | awk 'NR==2{print $2}'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}');"
  echo "wrk, curl, psql, PostgreSQL and every node share the $(nproc) cores; scenarios took ${TOOK} s; load average (1/5/15 min)"
  echo "$LOAD0 when they started, $(cut -d' ' -f1-3 /proc/loadavg) at the end: the machine is shared with other work)."
  echo
  echo "| against the targets | |"
  echo "|---|---|"
  for s in "${SUMMARY[@]}"; do echo "| ${s%%|*} | ${s#*|} |"; done
  echo
  for s in "${SECTIONS[@]}"; do echo "$s"; echo; done
  echo "PostgreSQL log: ${PGERR:-no ERROR/FATAL/WARNING lines}."
  if [ "${#NOTES[@]}" -gt 0 ]; then
    echo
    echo "Problems:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
  fi
  echo
  echo "Logs of this run: $LOGS/"
} | tee "$REPORT"
