#!/usr/bin/env bash
# Write throughput with the write-ahead log on: Shoal (appendonly yes) against redis-server
# (appendonly yes) on the same machine, in one run, for appendfsync everysec and always.
#
# For each policy: starts both servers fresh with that policy, runs redis-benchmark
# -t set,incr,lpush,hset -c 50 -r 100000 at -P 1 and -P 16, alternating which goes first,
# ROUNDS times, and reports the median ops/s of each and the ratio Shoal/Redis. Writes the
# table into docs/BENCHMARKS.md between the "bench-wal" markers.
#
# Environment: ROUNDS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
REDIS_PORT=${REDIS_PORT:-16379}
SHOAL_PORT=${SHOAL_PORT:-16380}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

for fsync in everysec always; do
  REDIS_ARGS="--appendonly yes --appendfsync $fsync"
  SHOAL_ARGS="--appendonly yes --appendfsync $fsync"
  start_servers "$REDIS_PORT" "$SHOAL_PORT"
  for round in $(seq "$ROUNDS"); do
    for pipe in 1 16; do
      if [ $((round % 2)) = 1 ]; then order="redis shoal"; else order="shoal redis"; fi
      for server in $order; do
        port=$REDIS_PORT; [ "$server" = shoal ] && port=$SHOAL_PORT
        redis-benchmark -p "$port" -t set,incr,lpush,hset -c 50 -r 100000 -n 200000 -P "$pipe" --csv 2>/dev/null \
          | csv_rows "$fsync,$server,$pipe" >> "$OUT/results.csv"
      done
    done
    echo "$fsync round $round/$ROUNDS done" >&2
  done
  stop_servers
  rm -rf "$OUT/shoal-data" "$OUT/appendonlydir"
done

redis_version=$(redis_version)
python3 - "$OUT/results.csv" "$ROUNDS" "$redis_version" <<'PY' > "$OUT/table.md"
import collections, math, statistics, sys, os
path, rounds, redis_version = sys.argv[1], sys.argv[2], sys.argv[3]
runs = collections.defaultdict(list)
for line in open(path):
    fsync, server, pipe, test, rps = line.strip().split(",")
    runs[(fsync, int(pipe), test, server)].append(float(rps))
print(f"redis-server {redis_version} and Shoal, both with `appendonly yes`, on the same "
      f"{os.cpu_count()}-core machine; redis-benchmark -c 50 -r 100000, median of {rounds} "
      f"alternating rounds.\n")
print("| appendfsync | -P | test | Redis ops/s | Shoal ops/s | Shoal/Redis |")
print("|---|---:|---|---:|---:|---:|")
for (fsync, pipe, test, server) in sorted(k for k in runs if k[3] == "redis"):
    r = statistics.median(runs[(fsync, pipe, test, "redis")])
    s = statistics.median(runs[(fsync, pipe, test, "shoal")])
    print(f"| {fsync} | {pipe} | {test} | {r:,.0f} | {s:,.0f} | {s / r:.2f} |")
PY
cat "$OUT/table.md"
write_doc_section bench-wal "Writes with the write-ahead log" "$OUT/table.md"
