#!/usr/bin/env bash
# Scripts and job queues on Shoal and redis-server, same machine, one run:
#
#   - redis-benchmark EVALSHA (-c 50, -P 1) of the issue's 5-command script (INCR, SET, GET,
#     EXPIRE, EXISTS on two random keys), of `return 1` (what running any script costs) and
#     of the common sliding-window rate limiter (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE);
#   - the BullMQ workload of the compatibility tests (tests/compat/bullmq-workload.mjs: 20,000
#     jobs, 4 workers of concurrency 50), in jobs per second.
#
# Rounds alternate which server goes first; docs/BENCHMARKS.md gets the medians
# ("bench-scripting"). Environment: ROUNDS (default 3), JOBS (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-20000}
REDIS_PORT=${REDIS_PORT:-16394}
SHOAL_PORT=${SHOAL_PORT:-16395}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh
start_servers "$REDIS_PORT" "$SHOAL_PORT"

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

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="redis shoal"; else order="shoal redis"; fi
  for server in $order; do
    port=$REDIS_PORT; [ "$server" = shoal ] && port=$SHOAL_PORT
    {
      evalsha "$port" five "$FIVE" 2 'k:__rand_int__' 'j:__rand_int__' v
      evalsha "$port" one "$ONE" 0
      evalsha "$port" limiter "$LIMITER" 1 'rate:__rand_int__' 1000000 60000 100 '__rand_int__'
      (cd tests/compat && node bullmq-workload.mjs "$port" "$JOBS") \
        | python3 -c 'import json, sys; print("bullmq," + str(json.loads(sys.stdin.read().strip().splitlines()[-1])["jobs_per_sec"]))'
    } | sed "s/^/$server,/" >> "$OUT/results.csv"
  done
  echo "round $round/$ROUNDS done" >&2
done

python3 - "$OUT/results.csv" "$ROUNDS" "$(redis_version)" "$JOBS" <<'PY' > "$OUT/table.md"
import collections, os, statistics, sys
results, rounds, redis_version, jobs = sys.argv[1:5]
runs = collections.defaultdict(list)
for line in open(results):
    server, test, rate = line.strip().split(",")
    runs[(server, test)].append(float(rate))
print(f"redis-server {redis_version} and Shoal (release build, default shards) on the same "
      f"{os.cpu_count()}-core machine, with the load generators; median of {rounds} alternating rounds.\n")
print("| workload | Redis | Shoal | Shoal / Redis |")
print("|---|---:|---:|---:|")
names = {
    "five": "EVALSHA, 5-command script, -c 50 (ops/s)",
    "one": "EVALSHA `return 1`, -c 50 (ops/s)",
    "limiter": "EVALSHA sliding-window limiter, -c 50 (ops/s)",
    "bullmq": f"BullMQ, {int(jobs):,} jobs, 4 workers x 50 (jobs/s)",
}
for test, name in names.items():
    r, s = statistics.median(runs[("redis", test)]), statistics.median(runs[("shoal", test)])
    print(f"| {name} | {r:,.0f} | {s:,.0f} | {s / r:.2f} |")
PY
cat "$OUT/table.md"
write_doc_section bench-scripting "Scripts and job queues" "$OUT/table.md"
