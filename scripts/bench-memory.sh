#!/usr/bin/env bash
# Memory for the same data in redis-server and Shoal, measured in one run on one machine.
#
# For each dataset, starts both servers afresh, loads KEYS (default 1,000,000) keys with
# redis-cli --pipe, then records RSS (/proc VmRSS) and INFO used_memory:
#   strings  SET key:N <16-byte value>
#   hashes   HSET hash:N with 5 fields (f1..f5, 8-byte values)
#   sets     SADD set:N with 5 members (member:N:i)
#   zsets    ZADD zset:N with 5 members (member:i, integer scores)
# Writes the table into docs/BENCHMARKS.md between the "bench-memory" markers.
# Environment: KEYS, DATASETS (default "strings hashes sets zsets").
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
DATASETS=${DATASETS:-strings hashes sets zsets}
REDIS_PORT=${REDIS_PORT:-16389}
SHOAL_PORT=${SHOAL_PORT:-16390}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

generate() { # dataset
  python3 - "$KEYS" "$1" <<'PY'
import sys
n, kind = int(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for i in range(n):
    if kind == "strings":
        cmd(b"SET", b"key:%d" % i, b"%016d" % (i * 7919 % 10**16))
    elif kind == "hashes":
        args = [b"HSET", b"hash:%d" % i]
        for f in range(1, 6):
            args += [b"f%d" % f, b"%08d" % ((i + f) * 7919 % 10**8)]
        cmd(*args)
    elif kind == "sets":
        cmd(b"SADD", b"set:%d" % i, *[b"member:%d:%d" % (i, m) for m in range(5)])
    elif kind == "zsets":
        args = [b"ZADD", b"zset:%d" % i]
        for m in range(5):
            args += [b"%d" % (i % 1000 + m), b"member:%d" % m]
        cmd(*args)
PY
}

measure() { # name port pid
  redis-cli -p "$2" --pipe < "$OUT/load.resp" > "$OUT/$1.pipe" 2>&1
  grep -q "errors: 0, replies: $KEYS" "$OUT/$1.pipe" || { cat "$OUT/$1.pipe"; exit 1; }
  local keys used rss
  keys=$(redis-cli -p "$2" DBSIZE)
  used=$(redis-cli -p "$2" INFO memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)$/\1/p')
  rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$3/status")
  echo "$1 $keys $used $rss"
}

: > "$OUT/mem.txt"
for d in $DATASETS; do
  generate "$d" > "$OUT/load.resp"
  start_servers "$REDIS_PORT" "$SHOAL_PORT"
  {
    echo "dataset $d"
    measure redis "$REDIS_PORT" "$(cat "$OUT/redis.pid")"
    measure shoal "$SHOAL_PORT" "$(cat "$OUT/shoal.pid")"
  } >> "$OUT/mem.txt"
  stop_servers
  echo "$d done" >&2
done

python3 - "$OUT/mem.txt" "$KEYS" "$(redis_version)" <<'PY' > "$OUT/table.md"
import sys
n, ver = int(sys.argv[2]), sys.argv[3]
data, cur = {}, None
for line in open(sys.argv[1]):
    parts = line.split()
    if parts[0] == "dataset":
        cur = parts[1]
        data[cur] = {}
    else:
        data[cur][parts[0]] = list(map(int, parts[1:]))
shape = {
    "strings": "`SET key:N <16-byte value>`",
    "hashes": "`HSET hash:N` with 5 fields of 8-byte values",
    "sets": "`SADD set:N` with 5 members",
    "zsets": "`ZADD zset:N` with 5 members",
}
mb = lambda b: f"{b / 2**20:,.1f} MiB"
print(f"{n:,} keys per dataset loaded with redis-cli --pipe into redis-server {ver} and Shoal, "
      "each dataset into freshly started servers.\n")
print("| dataset | Redis used_memory | Shoal used_memory | Redis RSS | Shoal RSS | RSS bytes/key (Redis / Shoal) | **Shoal/Redis RSS** | Shoal used_memory / RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for d, rows in data.items():
    r, s = rows["redis"], rows["shoal"]
    assert r[0] == s[0] == n, (d, r, s)
    print(f"| {shape[d]} | {mb(r[1])} | {mb(s[1])} | {mb(r[2])} | {mb(s[2])} | {r[2] / n:.0f} / {s[2] / n:.0f} | **{s[2] / r[2]:.2f}** | {s[1] / s[2]:.2f} |")
print()
print("The last column is how closely INFO's used_memory (what maxmemory counts) follows the "
      "process's RSS; the gap is the allocator's unused pages and the fixed runtime.")
PY
cat "$OUT/table.md"

write_doc_section bench-memory "Memory against redis-server" "$OUT/table.md"
