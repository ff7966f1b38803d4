#!/usr/bin/env bash
# Cache hit ratio under memory pressure: Shoal's `cache` policy against redis-server's
# allkeys-lru and allkeys-lfu, on the same trace, at the same maxmemory, in one run.
#
# The trace is Zipf(0.99) over KEYS keys (default 2,000,000), REQUESTS long (default
# 6,000,000), values of VALUE_SIZE bytes (default 100); every GET that misses is followed by a
# SET, as a cache-aside client does. MAXMEMORY (default 40mb) holds about a tenth of the keys.
# Each policy starts from an empty server. Reports the hit ratio after a 10% warm-up, the
# highest used_memory seen (INFO used_memory_peak) against maxmemory, and evictions; writes
# the table into docs/BENCHMARKS.md between the "bench-eviction" markers.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-2000000}
REQUESTS=${REQUESTS:-6000000}
VALUE_SIZE=${VALUE_SIZE:-100}
MAXMEMORY=${MAXMEMORY:-40mb}
SEED=${SEED:-42}
REDIS_PORT=${REDIS_PORT:-16391}
SHOAL_PORT=${SHOAL_PORT:-16392}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

replay() { # server policy port
  redis-cli -p "$3" CONFIG SET maxmemory "$MAXMEMORY" >/dev/null
  redis-cli -p "$3" CONFIG SET maxmemory-policy "$2" >/dev/null
  local line
  line=$(python3 scripts/lib/eviction_replay.py "$3" "$KEYS" "$REQUESTS" "$VALUE_SIZE" "$SEED")
  echo "$1,$2,$line" >> "$OUT/results.csv"
  echo "$1 $2: $line" >&2
}

for policy in allkeys-lru allkeys-lfu; do
  start_servers "$REDIS_PORT" "$SHOAL_PORT"
  replay redis "$policy" "$REDIS_PORT"
  stop_servers
done
for policy in cache allkeys-lru allkeys-lfu; do
  start_servers "$REDIS_PORT" "$SHOAL_PORT"
  replay shoal "$policy" "$SHOAL_PORT"
  stop_servers
done

redis_version=$(redis_version)
python3 - "$OUT/results.csv" "$redis_version" "$KEYS" "$REQUESTS" "$VALUE_SIZE" "$MAXMEMORY" <<'PY' > "$OUT/table.md"
import sys
path, redis_version, keys, requests, value_size, maxmemory = sys.argv[1:7]
rows = [line.strip().split(",") for line in open(path)]
print(f"Zipf(0.99) over {int(keys):,} keys, {int(requests):,} requests (GET, then SET on a miss), "
      f"{value_size}-byte values, maxmemory {maxmemory}; redis-server {redis_version} and Shoal on "
      f"the same machine, each policy from an empty server. Hit ratio after a 10% warm-up.\n")
print("| server | policy | hit ratio | peak used_memory / maxmemory | evicted keys |")
print("|---|---|---:|---:|---:|")
best_redis = 0.0
for server, policy, hits, gets, used, maxmem, evicted in rows:
    ratio = int(hits) / int(gets)
    if server == "redis":
        best_redis = max(best_redis, ratio)
    print(f"| {server} | {policy} | {ratio:.4f} | {int(used) / int(maxmem):.3f} | {int(evicted):,} |")
cache = [int(h) / int(g) for s, p, h, g, *_ in rows if s == "shoal" and p == "cache"]
if cache:
    print(f"\nShoal `cache` / Redis's best policy: **{cache[0] / best_redis:.3f}** in hit ratio.")
PY
cat "$OUT/table.md"

write_doc_section bench-eviction "Eviction: hit ratio at maxmemory" "$OUT/table.md"
