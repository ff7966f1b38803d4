#!/usr/bin/env bash
# Memory while a background save runs: Shoal's BGSAVE (no fork, entries written before they
# change) against redis-server's (fork, copy-on-write pages), on the same data, same machine.
#
# Loads KEYS keys (default 2,000,000) of VALUE_SIZE bytes (default 1000: about 2 GB) into each
# server, then starts a writer overwriting random keys with redis-benchmark (SET, 8 clients,
# same value size) and, once it runs, measures and starts BGSAVE. Samples memory every 100 ms
# until the save ends:
# proportional set size (PSS, /proc/PID/smaps_rollup) summed over the server and, for Redis,
# its fork child, so pages the two share count once. Reports the peak against the value just
# before the save, and writes the table into docs/BENCHMARKS.md ("bench-bgsave" markers).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-2000000}
VALUE_SIZE=${VALUE_SIZE:-1000}
REDIS_PORT=${REDIS_PORT:-16393}
SHOAL_PORT=${SHOAL_PORT:-16394}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

pss_kb() { # pid...: summed PSS in kB of the processes and their children
  local total=0 p kids
  for p in "$@"; do
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
    for q in $p $kids; do
      v=$(awk '/^Pss:/ {print $2}' /proc/"$q"/smaps_rollup 2>/dev/null || echo 0)
      total=$((total + ${v:-0}))
    done
  done
  echo "$total"
}

measure() { # server port pid
  local server=$1 port=$2 pid=$3
  python3 - "$port" "$KEYS" "$VALUE_SIZE" <<'PY' | redis-cli -p "$port" --pipe >/dev/null
import sys
port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer
value = b"v" * size
head = b"*3\r\n$3\r\nSET\r\n"
for i in range(n):
    k = b"key:%012d" % i  # redis-benchmark's -r key format, so its writes overwrite
    out.write(head + b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, value))
PY
  local before peak now
  redis-benchmark -p "$port" -t set -c 8 -r "$KEYS" -d "$VALUE_SIZE" -n 100000000 >/dev/null 2>&1 &
  local writer=$!
  # Measured with the writer running, so its connections count before and during alike.
  sleep 2
  before=$(pss_kb "$pid")
  local started=$SECONDS
  redis-cli -p "$port" BGSAVE >/dev/null
  peak=$before
  while :; do
    now=$(pss_kb "$pid")
    [ "$now" -gt "$peak" ] && peak=$now
    [ "$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = 0 ] && break
    sleep 0.1
  done
  local secs=$((SECONDS - started))
  kill "$writer" 2>/dev/null || true
  wait "$writer" 2>/dev/null || true
  local status
  status=$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: '/^rdb_last_bgsave_status/ {print $2}')
  echo "$server,$before,$peak,$secs,$status" >> "$OUT/results.csv"
  echo "$server: before ${before} kB, peak ${peak} kB, ${secs}s, $status" >&2
}

start_servers "$REDIS_PORT" "$SHOAL_PORT"
measure redis "$REDIS_PORT" "$(cat "$OUT/redis.pid")"
measure shoal "$SHOAL_PORT" "$(cat "$OUT/shoal.pid")"

python3 - "$OUT/results.csv" "$(redis_version)" "$KEYS" "$VALUE_SIZE" <<'PY' > "$OUT/table.md"
import sys
path, version, keys, size = sys.argv[1:5]
print(f"{int(keys):,} keys of {size} bytes loaded into redis-server {version} and Shoal; during "
      f"BGSAVE a redis-benchmark writer (SET, 8 clients) overwrites random keys. Memory is PSS "
      f"summed over the server and its children (Redis's fork child), sampled every 100 ms.\n")
print("| server | before BGSAVE | peak during BGSAVE | peak / before | save took | status |")
print("|---|---:|---:|---:|---:|---|")
for line in open(path):
    server, before, peak, secs, status = line.strip().split(",")
    b, p = int(before), int(peak)
    print(f"| {server} | {b / 1024:,.0f} MiB | {p / 1024:,.0f} MiB | **{p / b:.2f}** | {secs} s | {status} |")
PY
cat "$OUT/table.md"
write_doc_section bench-bgsave "Memory during a background save" "$OUT/table.md"
