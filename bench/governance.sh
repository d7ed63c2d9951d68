#!/usr/bin/env bash
# Async acceptance with a tenant's limits and budgets on (far away: they never refuse) against off, in the same run on
# the same instance: each round measures off, then on, then off again, so drift on this shared machine hits both.
# Needs wrk, jq and curl. Results: bench/results/governance-<date>.md
#
#   bench/governance.sh
#   ROUNDS=5 DURATION=15 bench/governance.sh
#
# "On" is one PUT of the bench tenant: requestsPerMinute, maxConcurrentJobs, daily token and cost budgets, and the same
# for its principal, so every request takes four counter rows and a budget hold in its admission transaction, and
# every start counts the tenant's running jobs. "Off" is the same tenant with an empty document.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
REV=${REV:-}
ORCH_PORT=${ORCH_PORT:-5094}
KIND=governance
. bench/lib.sh
REPORT="$RESULTS/$KIND-$STAMP.md"
need wrk jq curl

build_orchestrator "$OUT/orchestrator"
orchestrator_env "$WORK/governance.db"
env "${ORCH_ENV[@]}" Orchestrator__Queue__Capacity=10000000 \
  Orchestrator__Models__0__Id=sim Orchestrator__Models__0__Provider=simulated \
  Orchestrator__Models__0__CostPer1kInputUsd=0.001 Orchestrator__Models__0__CostPer1kOutputUsd=0.002 \
  dotnet "$OUT/orchestrator/Orchestrator.dll" >"$WORK/orchestrator.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$ORCH_PORT/health/ready"

tenant() {
  curl -fs -o /dev/null -X PUT -H "X-Api-Key: $OPKEY" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$ORCH_PORT/v1/admin/tenants/bench" -d "$1"
}
OFF='{}'
ON='{"limits":{"requestsPerMinute":100000000,"maxConcurrentJobs":100000,"dailyTokenBudget":1000000000000,"dailyCostBudgetUsd":100000000},
     "principals":{"bench":{"requestsPerMinute":100000000,"maxConcurrentJobs":100000,"dailyTokenBudget":1000000000000,"dailyCostBudgetUsd":100000000}}}'
ASYNC='{"intent":"text/respond","input":"hello bench","mode":"async"}'
START=$(date +%s)

echo "warming up..." >&2
tenant "$OFF"; wrkrun "$CONNECTIONS" 4 "$ACT" "$ASYNC" >/dev/null; drain_jobs
tenant "$ON"; wrkrun "$CONNECTIONS" 4 "$ACT" "$ASYNC" >/dev/null; drain_jobs

declare -a off_rps on_rps
for r in $(seq 1 "$ROUNDS"); do
  for phase in off on off2; do
    if [ "$phase" = on ]; then tenant "$ON"; else tenant "$OFF"; fi
    res=$(wrkrun "$CONNECTIONS" "$DURATION" "$ACT" "$ASYNC"); check "$phase round $r" "$res"
    drain_jobs
    if [ "$phase" = on ]; then on_rps+=("$(field rps "$res")"); else off_rps+=("$(field rps "$res")"); fi
    echo "  round $r $phase: $(field rps "$res") req/s" >&2
  done
done
REJECTED=$(diag | jq '[.counters | to_entries[] | select(.key | startswith("jobs.rejected")) | .value] | add // 0')
TOOK=$(( $(date +%s) - START ))

OFFM=$(printf '%s\n' "${off_rps[@]}" | median); ONM=$(printf '%s\n' "${on_rps[@]}" | median)
{
  echo "## Governance run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), kernel $(uname -r)"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS${REV:+ REV=$REV} bench/governance.sh\`"
  echo "(one instance on SQLite, Orchestrator built from the $BUILT_FROM; each round: off, on, off; medians of ${#off_rps[@]} off and ${#on_rps[@]} on runs of ${DURATION} s; took ${TOOK} s)."
  echo
  echo "| figure | limits off | limits on | on / off |"
  echo "|---|---|---|---|"
  echo "| async acceptance, $CONNECTIONS conn (req/s) | $OFFM | $ONM | $(awk -v a="$ONM" -v b="$OFFM" 'BEGIN{printf "%.1f%%", 100*a/b}') |"
  echo
  echo "Raw req/s: off ${off_rps[*]}; on ${on_rps[*]}. Refusals during the run: $REJECTED (limits far away: expected 0)."
  echo "Orchestrator warning/error log lines: $(logsum orchestrator)."
  if [ "${#NOTES[@]}" -gt 0 ]; then
    echo
    echo "Problems:"
    for n in "${NOTES[@]}"; do echo "- $n"; done
  fi
} | tee "$REPORT"
