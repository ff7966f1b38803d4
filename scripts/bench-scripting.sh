#!/usr/bin/env bash
# Scripts and job queues on Shoal and redis-server, same machine, one run:
#
#   - redis-benchmark EVALSHA (-c 50, -P 1) of the issue's 5-command script (INCR, SET, GET,
#     EXPIRE, EXISTS on two random keys), of `return 1` (what running any script costs) and
#     of the common sliding-window rate limiter (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE);
#   - the BullMQ workload of the compatibility tests (tests/compat/bullmq-workload.mjs: 20,000
#     jobs, 4 workers of concurrency 50), in jobs per second.
#
# Shoal runs twice: with its defaults, and with one worker thread (`--threads 1`), Redis's
# share of the machine: scripts run one at a time on one Lua VM, as in Redis, so on a small
# machine a second worker only adds hand-overs, and the load generator wants that core.
#
# Rounds rotate which server goes first; docs/BENCHMARKS.md gets the medians and the median
# ratio of the pairs ("bench-scripting"). Environment: ROUNDS (default 3), JOBS (default
# 20000), KEEP_RESULTS (a file to copy the raw results to, to pool the pairs of several runs).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-20000}
REDIS_PORT=${REDIS_PORT:-16394}
SHOAL_PORT=${SHOAL_PORT:-16395}
SHOAL1_PORT=${SHOAL1_PORT:-16396}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh
start_servers "$REDIS_PORT" "$SHOAL_PORT"
start_shoal "$SHOAL1_PORT" shoal1 --threads 1

FIVE='redis.call("INCR", KEYS[1]) redis.call("SET", KEYS[2], ARGV[1]) redis.call("GET", KEYS[2]) redis.call("EXPIRE", KEYS[1], 100) return redis.call("EXISTS", KEYS[1])'
ONE='return 1'
LIMITER='local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", key, "-inf", now - window)
if redis.call("ZCARD", key) < limit then
  redis.call("ZADD", key, now, ARGV[4])
  redis.call("PEXPIRE", key, window)
  return 1
end
return 0'

# evalsha PORT LABEL SCRIPT ARGS...: one redis-benchmark run, as "LABEL,ops/s".
evalsha() {
  local port=$1 label=$2 script=$3
  shift 3
  local sha
  sha=$(redis-cli -p "$port" SCRIPT LOAD "$script")
  redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n 200000 -r 1000 -P 1 --csv EVALSHA "$sha" "$@" 2>/dev/null \
    | tail -n +2 | tr -d '"' | cut -d, -f2 | sed "s/^/$label,/"
}

# run WORKLOAD PORT: one measurement, as "WORKLOAD,rate".
run() {
  case $1 in
    five) evalsha "$2" five "$FIVE" 2 'k:__rand_int__' 'j:__rand_int__' v ;;
    one) evalsha "$2" one "$ONE" 0 ;;
    limiter) evalsha "$2" limiter "$LIMITER" 1 'rate:__rand_int__' 1000000 60000 100 '__rand_int__' ;;
    bullmq)
      (cd tests/compat && node bullmq-workload.mjs "$2" "$JOBS") \
        | python3 -c 'import json, sys; print("bullmq," + str(json.loads(sys.stdin.read().strip().splitlines()[-1])["jobs_per_sec"]))'
      ;;
  esac
}

# Each workload runs on every server back to back, so a pair is measured within seconds of
# itself: the machine's speed drifts by more than the difference measured over minutes.
for round in $(seq "$ROUNDS"); do
  case $((round % 3)) in
    1) order="redis shoal shoal1" ;;
    2) order="shoal1 redis shoal" ;;
    0) order="shoal shoal1 redis" ;;
  esac
  for workload in five one limiter bullmq; do
    for server in $order; do
      case $server in
        redis) port=$REDIS_PORT ;;
        shoal) port=$SHOAL_PORT ;;
        shoal1) port=$SHOAL1_PORT ;;
      esac
      run "$workload" "$port" | sed "s/^/$server,/;s/\$/,$round/" >> "$OUT/results.csv"
    done
  done
  echo "round $round/$ROUNDS done" >&2
done
if [ -n "${KEEP_RESULTS:-}" ]; then
  cp "$OUT/results.csv" "$KEEP_RESULTS"
fi

{
  echo "redis-server $(redis_version) and Shoal (release build, default shards) on the same $(nproc)-core" \
    "machine, with the load generators; median of $ROUNDS rounds, each starting with another" \
    "server. Each round runs a workload on every server back to back; a ratio is the median of" \
    "those pairs' ratios, with a 95% interval for that median (sign test). Shoal runs with its defaults (a worker" \
    "thread per core) and with \`--threads 1\`."
  echo
  python3 scripts/lib/paired-table.py "$OUT/results.csv" redis Redis \
    --server "shoal=Shoal" --server "shoal1=Shoal 1 thread" \
    "five=EVALSHA, 5-command script, -c 50 (ops/s)" "one=EVALSHA \`return 1\`, -c 50 (ops/s)" \
    "limiter=EVALSHA sliding-window limiter, -c 50 (ops/s)" \
    "bullmq=BullMQ, $(python3 -c "print(f'{$JOBS:,}')") jobs, 4 workers x 50 (jobs/s)"
} > "$OUT/table.md"
cat "$OUT/table.md"
write_doc_section bench-scripting "Scripts and job queues" "$OUT/table.md"
