#!/usr/bin/env bash
# Throughput of Shoal against redis-server on the same machine, measured in one run.
#
# Starts redis-server (no persistence) and a release build of Shoal with default settings, then
# runs redis-benchmark against both, alternating which goes first, ROUNDS times:
#   -t set,get,incr,mset,lpush,rpop,sadd,hset,zadd,lrange_100,xadd -c 50 -r 100000 at -P 1
#   and -P 16, with the default single-threaded
#   client and again with --threads 2.
# Prints the median ops/s of each and the ratio Shoal/Redis per test with a geometric mean, and
# writes the table into docs/BENCHMARKS.md between the "bench-vs-redis" markers.
#
# Environment: ROUNDS (default 3), TESTS (comma-separated redis-benchmark tests), SHOAL_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-set,get,incr,mset,lpush,rpop,sadd,hset,zadd,lrange_100,xadd}
REDIS_PORT=${REDIS_PORT:-16379}
SHOAL_PORT=${SHOAL_PORT:-16380}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh
start_servers "$REDIS_PORT" "$SHOAL_PORT"

# redis-benchmark 7.0 has no built-in XADD test: it runs as a custom command.
BUILTIN=$(echo "$TESTS" | tr ',' '\n' | grep -vx xadd | paste -sd, -)
run() { # server port pipeline threads
  local n=200000
  [ "$3" -gt 1 ] && n=2000000
  if [ -n "$BUILTIN" ]; then
    redis-benchmark -p "$2" -t "$BUILTIN" -c 50 -r 100000 -n "$n" -P "$3" --threads "$4" --csv 2>/dev/null \
      | csv_rows "$1,$3,$4" >> "$OUT/results.csv"
  fi
  if echo ",$TESTS," | grep -q ",xadd,"; then
    redis-cli -p "$2" DEL bench:stream > /dev/null
    redis-benchmark -p "$2" -c 50 -n "$n" -P "$3" --threads "$4" --csv XADD bench:stream '*' f v 2>/dev/null \
      | tail -n +2 | tr -d '"' | while IFS=, read -r _ rps _; do
          echo "$1,$3,$4,XADD,$rps"
        done >> "$OUT/results.csv"
  fi
}

for round in $(seq "$ROUNDS"); do
  for threads in 1 2; do
    for pipe in 1 16; do
      if [ $((round % 2)) = 1 ]; then order="redis shoal"; else order="shoal redis"; fi
      for server in $order; do
        port=$REDIS_PORT; [ "$server" = shoal ] && port=$SHOAL_PORT
        run "$server" "$port" "$pipe" "$threads"
      done
    done
  done
  echo "round $round/$ROUNDS done" >&2
done

redis_version=$(redis_version)
python3 - "$OUT/results.csv" "$ROUNDS" "$redis_version" <<'PY' > "$OUT/table.md"
import collections, math, statistics, sys, platform, os
path, rounds, redis_version = sys.argv[1], sys.argv[2], sys.argv[3]
runs = collections.defaultdict(list)
for line in open(path):
    server, pipe, threads, test, rps = line.strip().split(",")
    runs[(int(threads), int(pipe), test, server)].append(float(rps))
print(f"redis-server {redis_version} and Shoal on the same {os.cpu_count()}-core machine; "
      f"redis-benchmark -c 50 -r 100000, median of {rounds} alternating rounds.\n")
for threads in (1, 2):
    for pipe in (1, 16):
        tests = [t for (th, p, t, s) in runs if th == threads and p == pipe and s == "redis"]
        if not tests:
            continue
        print(f"**-P {pipe}, redis-benchmark --threads {threads}**\n")
        print("| test | Redis ops/s | Shoal ops/s | Shoal/Redis |")
        print("|---|---:|---:|---:|")
        ratios = []
        for t in tests:
            r = statistics.median(runs[(threads, pipe, t, "redis")])
            s = statistics.median(runs[(threads, pipe, t, "shoal")])
            ratios.append(s / r)
            print(f"| {t} | {r:,.0f} | {s:,.0f} | {s / r:.2f} |")
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print(f"| **geometric mean** | | | **{geo:.2f}** |\n")
PY
cat "$OUT/table.md"

write_doc_section bench-vs-redis "Throughput against redis-server" "$OUT/table.md"
