#!/usr/bin/env bash
# Memory for the same data in redis-server and Shoal, measured in one run on one machine.
#
# Loads KEYS (default 1,000,000) keys `SET key:N <16-byte value>` into each with
# redis-cli --pipe, then records RSS (/proc VmRSS) and INFO used_memory, and writes the table
# into docs/BENCHMARKS.md between the "bench-memory" markers.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
REDIS_PORT=${REDIS_PORT:-16389}
SHOAL_PORT=${SHOAL_PORT:-16390}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh
start_servers "$REDIS_PORT" "$SHOAL_PORT"

python3 - "$KEYS" > "$OUT/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%d" % i
    v = b"%016d" % (i * 7919 % 10**16)
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(k), k, v))
PY

measure() { # name port pid
  redis-cli -p "$2" --pipe < "$OUT/load.resp" > "$OUT/$1.pipe" 2>&1
  grep -q "errors: 0, replies: $KEYS" "$OUT/$1.pipe" || { cat "$OUT/$1.pipe"; exit 1; }
  local keys used rss
  keys=$(redis-cli -p "$2" DBSIZE)
  used=$(redis-cli -p "$2" INFO memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)$/\1/p')
  rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$3/status")
  echo "$1 $keys $used $rss"
}
{
  measure redis "$REDIS_PORT" "$(cat "$OUT/redis.pid")"
  measure shoal "$SHOAL_PORT" "$(cat "$OUT/shoal.pid")"
} > "$OUT/mem.txt"

python3 - "$OUT/mem.txt" "$KEYS" "$(redis_version)" <<'PY' > "$OUT/table.md"
import sys
rows = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(sys.argv[1])}
n, ver = int(sys.argv[2]), sys.argv[3]
r, s = rows["redis"], rows["shoal"]
mb = lambda b: f"{b / 2**20:,.1f} MiB"
print(f"{n:,} keys `SET key:N <16-byte value>` loaded with redis-cli --pipe into redis-server {ver} and Shoal.\n")
print("| | keys | INFO used_memory | RSS | RSS bytes/key |")
print("|---|---:|---:|---:|---:|")
print(f"| Redis | {r[0]:,} | {mb(r[1])} | {mb(r[2])} | {r[2] / n:.0f} |")
print(f"| Shoal | {s[0]:,} | {mb(s[1])} | {mb(s[2])} | {s[2] / n:.0f} |")
print(f"| **Shoal/Redis** | | {s[1] / r[1]:.2f} | **{s[2] / r[2]:.2f}** | |\n")
PY
cat "$OUT/table.md"

write_doc_section bench-memory "Memory against redis-server" "$OUT/table.md"
