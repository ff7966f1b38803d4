#!/usr/bin/env bash
# Throughput over TLS: Shoal's --tls-port against redis-server's tls-port (Debian's build has
# TLS), same certificate, same machine, one run. redis-benchmark --tls -t set,get -c 50
# -r 100000 at -P 1 and -P 16, alternating which server goes first, ROUNDS times; the median
# ops/s of each and the ratio Shoal/Redis go into docs/BENCHMARKS.md ("bench-tls" markers).
#
# Environment: ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REDIS_PORT=${REDIS_PORT:-16389}
SHOAL_PORT=${SHOAL_PORT:-16390}
SHOAL_TLS_PORT=${SHOAL_TLS_PORT:-16391}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

scripts/install-test-deps.sh
cargo build --release --quiet --bin shoal
# Shoal makes the certificate; both servers use it.
target/release/shoal --port "$SHOAL_PORT" --bind 127.0.0.1 --tls-port "$SHOAL_TLS_PORT" --tls-self-signed \
  --data-dir "$OUT/shoal-data" --log-level warn --save= &
echo $! > "$OUT/shoal.pid"
for _ in $(seq 100); do redis-cli -p "$SHOAL_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
CERT="$OUT/shoal-data/tls/self-signed.crt"
KEY="$OUT/shoal-data/tls/self-signed.key"
redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 --tls-cert-file "$CERT" --tls-key-file "$KEY" \
  --tls-ca-cert-file "$CERT" --tls-auth-clients no --save "" --appendonly no --dir "$OUT" --logfile "$OUT/redis.log" &
echo $! > "$OUT/redis.pid"
for _ in $(seq 100); do redis-cli --tls --cacert "$CERT" -p "$REDIS_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done

for round in $(seq "$ROUNDS"); do
  for pipe in 1 16; do
    if [ $((round % 2)) = 1 ]; then order="redis shoal"; else order="shoal redis"; fi
    for server in $order; do
      port=$REDIS_PORT; [ "$server" = shoal ] && port=$SHOAL_TLS_PORT
      n=100000; [ "$pipe" -gt 1 ] && n=1000000
      redis-benchmark --tls --cacert "$CERT" -p "$port" -t set,get -c 50 -r 100000 -n "$n" -P "$pipe" --csv 2>/dev/null \
        | csv_rows "$server,$pipe" >> "$OUT/results.csv"
    done
  done
  echo "round $round/$ROUNDS done" >&2
done

redis_version=$(redis_version)
python3 - "$OUT/results.csv" "$ROUNDS" "$redis_version" <<'PY' > "$OUT/table.md"
import collections, math, statistics, sys, os
path, rounds, redis_version = sys.argv[1], sys.argv[2], sys.argv[3]
runs = collections.defaultdict(list)
for line in open(path):
    server, pipe, test, rps = line.strip().split(",")
    runs[(int(pipe), test, server)].append(float(rps))
print(f"redis-server {redis_version} (tls-port) and Shoal (--tls-port) with the same self-signed "
      f"certificate on the same {os.cpu_count()}-core machine; redis-benchmark --tls -c 50 "
      f"-r 100000, median of {rounds} alternating rounds.\n")
print("| -P | test | Redis ops/s | Shoal ops/s | Shoal/Redis |")
print("|---:|---|---:|---:|---:|")
ratios = []
for (pipe, test, server) in sorted(k for k in runs if k[2] == "redis"):
    r = statistics.median(runs[(pipe, test, "redis")])
    s = statistics.median(runs[(pipe, test, "shoal")])
    ratios.append(s / r)
    print(f"| {pipe} | {test} | {r:,.0f} | {s:,.0f} | {s / r:.2f} |")
print(f"| | **geometric mean** | | | **{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}** |")
PY
cat "$OUT/table.md"
write_doc_section bench-tls "Throughput over TLS" "$OUT/table.md"
