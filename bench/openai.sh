#!/usr/bin/env bash
# What the OpenAI-compatible endpoint adds to a call, against a zero-latency OpenAI-compatible model (bench/FakeModel):
# p50 and p99 of the fake model called directly, and through
#   - Orchestrator POST /v1/chat/completions (model "auto", one `openai` model pointing at the fake),
#   - Orchestrator sync POST /v1/act routed to that model,
#   - the Portkey AI gateway (npm @portkey-ai/gateway, a stateless proxy; --headless, x-portkey-provider: openai,
#     x-portkey-custom-host: the fake), started with npx,
# at 1 and 4 connections, medians of ROUNDS rounds of DURATION seconds, each run timed per request (bench/wrk/gateway.lua).
# Needs wrk, jq, curl, node/npx. Results: bench/results/openai-<UTC timestamp>.md
#
#   bench/openai.sh
#   ROUNDS=5 DURATION=15 bench/openai.sh
#   PORTKEY=off bench/openai.sh        # without Portkey
#   STREAM=off bench/openai.sh         # without the streamed part
# Streamed: "stream": true at 1 connection, the whole streamed answer per request, for the fake directly, through
# /v1/chat/completions, and Portkey (an upper bound of the time to first token; see below).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-"1 4"}
STREAM=${STREAM:-on}
PORTKEY=${PORTKEY:-on}
PORTKEY_VERSION=${PORTKEY_VERSION:-latest}
PORTKEY_PORT=${PORTKEY_PORT:-8787}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5093}
FAKE_PORT=${FAKE_PORT:-7111}
KIND=openai
. bench/lib.sh
REPORT="$RESULTS/openai-$STAMP.md"
need wrk jq curl

build_orchestrator "$OUT/openai-orchestrator"
dotnet publish bench/FakeModel -c Release -o "$OUT/fakemodel" -v q -nologo >/dev/null

dotnet "$OUT/fakemodel/FakeModel.dll" --Port "$FAKE_PORT" --Name zero >"$WORK/fake.log" 2>&1 &
pids+=("$!")
wait_up "http://127.0.0.1:$FAKE_PORT/stats"

orchestrator_env "$WORK/openai.db"
env "${ORCH_ENV[@]}" Orchestrator__Queue__Capacity=10000000 Orchestrator__Queue__Workers=64 \
  Orchestrator__Models__0__Id=fake Orchestrator__Models__0__Provider=openai \
  Orchestrator__Models__0__Endpoint="http://127.0.0.1:$FAKE_PORT/v1" Orchestrator__Models__0__Model=fake-model \
  dotnet "$OUT/openai-orchestrator/Orchestrator.dll" >"$WORK/orchestrator.log" 2>&1 &
ORCH_PID=$!; pids+=("$ORCH_PID")
wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"

if [ "$PORTKEY" = on ]; then
  need npx
  # Its own process group, so cleanup stops npx and the node server it starts.
  setsid npx -y "@portkey-ai/gateway@$PORTKEY_VERSION" --headless --port "$PORTKEY_PORT" >"$WORK/portkey.log" 2>&1 &
  PORTKEY_PID=$!; pids+=("-$PORTKEY_PID")
  for _ in $(seq 1 1200); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORTKEY_PORT/")" != "000" ] && break; sleep 0.1; done
  PORTKEY_AT=$(npm view "@portkey-ai/gateway@$PORTKEY_VERSION" version 2>/dev/null || echo "$PORTKEY_VERSION")
fi

MESSAGES='[{"role":"user","content":"hello bench"}]'
DIRECT="http://127.0.0.1:$FAKE_PORT/v1/chat/completions"
CHAT="http://127.0.0.1:$ORCH_PORT/v1/chat/completions"
PK="http://127.0.0.1:$PORTKEY_PORT/v1/chat/completions"
BODY_DIRECT="{\"model\":\"fake-model\",\"messages\":$MESSAGES}"
BODY_CHAT="{\"model\":\"auto\",\"messages\":$MESSAGES}"
BODY_ACT='{"intent":"text/respond","input":"hello bench","mode":"sync","routing":{"models":["fake"]}}'
PK_HEADERS="x-portkey-provider: openai|x-portkey-custom-host: http://127.0.0.1:$FAKE_PORT/v1|Authorization: Bearer sk-fake"

# run <label> <connections> <url> <body> [headers]
run() { HEADERS="${5:-}" latrun "$2" "$DURATION" "$3" "$4"; }
check_answer() { curl -fs "$1" -H 'Content-Type: application/json' -H "X-Api-Key: $KEY" ${3:+-H "$3"} -d "$2" >/dev/null || { echo "no answer from $1" >&2; exit 1; }; }
check_answer "$DIRECT" "$BODY_DIRECT"; check_answer "$CHAT" "$BODY_CHAT"; check_answer "$ACT" "$BODY_ACT"
if [ "$PORTKEY" = on ]; then
  curl -fs "$PK" -H 'Content-Type: application/json' -H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$FAKE_PORT/v1" \
    -H 'Authorization: Bearer sk-fake' -d "$BODY_DIRECT" | jq -e '.choices[0].message.content' >/dev/null || { echo "Portkey does not answer" >&2; exit 1; }
fi

targets="direct chat act"; [ "$PORTKEY" = on ] && targets="$targets portkey"
echo "warming up..." >&2
for c in $CONNS; do
  HEADERS="" latrun "$c" "$WARMUP" "$DIRECT" "$BODY_DIRECT" >/dev/null
  HEADERS="" latrun "$c" "$WARMUP" "$CHAT" "$BODY_CHAT" >/dev/null
  HEADERS="" latrun "$c" "$WARMUP" "$ACT" "$BODY_ACT" >/dev/null
  [ "$PORTKEY" = on ] && HEADERS="$PK_HEADERS" latrun "$c" "$WARMUP" "$PK" "$BODY_DIRECT" >/dev/null
done
drain_jobs
for round in $(seq 1 "$ROUNDS"); do
  for c in $CONNS; do
    for t in $targets; do
      case $t in
        direct) line=$(run "$t" "$c" "$DIRECT" "$BODY_DIRECT") ;;
        chat) line=$(run "$t" "$c" "$CHAT" "$BODY_CHAT") ;;
        act) line=$(run "$t" "$c" "$ACT" "$BODY_ACT"); drain_jobs ;;
        portkey) line=$(run "$t" "$c" "$PK" "$BODY_DIRECT" "$PK_HEADERS") ;;
      esac
      R[$t.$c,$round]=$line
      check "$t c=$c round $round" "$line"
      echo "round $round c=$c $t: p50 $(ms "$(field p50_us "$line")") p99 $(ms "$(field p99_us "$line")") ($(field rps "$line") req/s)" >&2
    done
  done
done

# Streamed calls: the whole streamed answer, timed per request over one kept-alive connection like the runs above. The
# zero-latency model sends all its chunks at once, so this is the time to its first token plus a few chunks; and since
# Orchestrator sends nothing before the model's first content has arrived, it bounds the time to first token from above.
STREAM_DIRECT="{\"model\":\"fake-model\",\"stream\":true,\"messages\":$MESSAGES}"
STREAM_CHAT="{\"model\":\"auto\",\"stream\":true,\"messages\":$MESSAGES}"
stream_targets=""
if [ "$STREAM" = on ]; then
  stream_targets="direct chat"; [ "$PORTKEY" = on ] && stream_targets="$stream_targets portkey"
  HEADERS="" latrun 1 "$WARMUP" "$CHAT" "$STREAM_CHAT" >/dev/null
  for round in $(seq 1 "$ROUNDS"); do
    for t in $stream_targets; do
      case $t in
        direct) line=$(run "$t" 1 "$DIRECT" "$STREAM_DIRECT") ;;
        chat) line=$(run "$t" 1 "$CHAT" "$STREAM_CHAT") ;;
        portkey) line=$(run "$t" 1 "$PK" "$STREAM_DIRECT" "$PK_HEADERS") ;;
      esac
      R[stream.$t,$round]=$line
      check "stream $t round $round" "$line"
      echo "round $round streamed $t: p50 $(ms "$(field p50_us "$line")") p99 $(ms "$(field p99_us "$line")")" >&2
    done
  done
fi

{
  echo "# OpenAI-compatible endpoint: added latency over a zero-latency model ($STAMP)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION bench/openai.sh\`. Orchestrator: $BUILT_FROM, SQLite store, one \`openai\` model"
  echo "pointing at bench/FakeModel (answers at once). Portkey: ${PORTKEY_AT:-off}. Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Each figure is the median of $ROUNDS rounds of ${DURATION} s, every request timed (bench/wrk/gateway.lua), one connection per wrk thread."
  echo
  echo "| connections | target | p50 | p99 | req/s | p50 added | p99 added |"
  echo "|---|---|---|---|---|---|---|"
  for c in $CONNS; do
    d50=$(med "direct.$c" p50_us); d99=$(med "direct.$c" p99_us)
    for t in $targets; do
      p50=$(med "$t.$c" p50_us); p99=$(med "$t.$c" p99_us)
      added50="-"; added99="-"
      [ "$t" = direct ] || { added50=$(diffms "$p50" "$d50"); added99=$(diffms "$p99" "$d99"); }
      echo "| $c | $t | $(ms "$p50") | $(ms "$p99") | $(med "$t.$c" rps) | $added50 | $added99 |"
    done
  done
  if [ -n "$stream_targets" ]; then
    echo
    echo "Streamed (\"stream\": true), 1 connection: the whole streamed answer of the zero-latency model, an upper bound of the time to first token:"
    echo
    echo "| target | p50 | p99 | p50 added | p99 added |"
    echo "|---|---|---|---|---|"
    s50=$(med stream.direct p50_us); s99=$(med stream.direct p99_us)
    for t in $stream_targets; do
      a50="-"; a99="-"
      p50=$(med "stream.$t" p50_us); p99=$(med "stream.$t" p99_us)
      [ "$t" = direct ] || { a50=$(diffms "$p50" "$s50"); a99=$(diffms "$p99" "$s99"); }
      echo "| $t | $(ms "$p50") | $(ms "$p99") | $a50 | $a99 |"
    done
  fi
  echo
  echo "Raw p50/p99 us per round:"
  for c in $CONNS; do for t in $targets; do echo "- c=$c $t: $(raw "$t.$c" p50_us) / $(raw "$t.$c" p99_us)"; done; done
  for t in $stream_targets; do echo "- streamed $t: $(raw "stream.$t" p50_us) / $(raw "stream.$t" p99_us)"; done
  if ((${#NOTES[@]})); then echo; echo "Notes:"; for n in "${NOTES[@]}"; do echo "- $n"; done; fi
} >"$REPORT"
cat "$REPORT"
