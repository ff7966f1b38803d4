#!/usr/bin/env bash
# Memcached clients on Shoal's gateway and on memcached (Debian's, `-t 2`), same machine, one
# run. The load is memaslap (libmemcached-tools' `memcaslap`, 2 threads, 50 connections,
# 16-byte keys, 100-byte values) with get/set mixes of 90/10 and 50/50, with single gets and
# with 10-key multigets, over the text protocol; and the 90/10 mix over the binary protocol.
#
# Rounds alternate which server goes first; docs/BENCHMARKS.md gets the medians and the
# median ratio of the pairs ("bench-memcached"). Environment: ROUNDS (default 5), DURATION
# (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
MC_PORT=${MC_PORT:-16396}
SHOAL_PORT=${SHOAL_PORT:-16397}
SHOAL_MC_PORT=${SHOAL_MC_PORT:-16398}
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

scripts/install-test-deps.sh
cargo build --release --quiet --bin shoal
memcached -p "$MC_PORT" -l 127.0.0.1 -U 0 -t 2 -m 4096 -u "$(id -un)" &
echo $! > "$OUT/memcached.pid"
target/release/shoal --port "$SHOAL_PORT" --bind 127.0.0.1 --memcached-port "$SHOAL_MC_PORT" \
  --data-dir "$OUT/shoal-data" --log-level warn --save= &
echo $! > "$OUT/shoal.pid"
for p in "$MC_PORT" "$SHOAL_MC_PORT"; do
  for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $p))" 2>/dev/null && break; sleep 0.1; done
done

# mix SETS GETS: a memaslap configuration file for that set/get proportion.
mix() {
  local f="$OUT/mix-$1-$2.cfg"
  printf 'key\n16 16 1\nvalue\n100 100 1\ncmd\n0 %s\n1 %s\n' "$1" "$2" > "$f"
  echo "$f"
}
MIX90=$(mix 0.1 0.9)
MIX50=$(mix 0.5 0.5)

# load PORT LABEL ARGS...: one memaslap run, as "LABEL,ops/s". A server that answers any
# request with an error fails the benchmark: its rate would not be of the same work.
load() {
  local port=$1 label=$2 out
  shift 2
  out=$(memcaslap -s "127.0.0.1:$port" -T 2 -c 50 -t "$DURATION" "$@" 2>&1)
  if grep -q "ERROR" <<<"$out"; then
    echo "memaslap got errors from port $port ($label): $(grep -m 3 ERROR <<<"$out")" >&2
    exit 1
  fi
  sed -n 's/.*TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -1 | sed "s/^/$label,/"
}

# Each workload runs on both servers back to back, so a pair is measured within seconds of
# itself: the machine's speed drifts by more than the difference measured over minutes.
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="memcached shoal"; else order="shoal memcached"; fi
  for workload in get90 get50 multi90 multi50 binary90; do
    case $workload in
      get90) args=(-F "$MIX90") ;;
      get50) args=(-F "$MIX50") ;;
      multi90) args=(-F "$MIX90" -d 10) ;;
      multi50) args=(-F "$MIX50" -d 10) ;;
      binary90) args=(-F "$MIX90" -B) ;;
    esac
    for server in $order; do
      port=$MC_PORT; [ "$server" = shoal ] && port=$SHOAL_MC_PORT
      load "$port" "$workload" "${args[@]}" | sed "s/^/$server,/;s/\$/,$round/" | tee -a "$OUT/results.csv" >&2
    done
  done
  echo "round $round/$ROUNDS done" >&2
done

{
  echo "memcached $(memcached -V | cut -d' ' -f2) (\`-t 2\`) and Shoal's Memcached gateway (release build," \
    "default shards) on the same $(nproc)-core machine, with the load generator (memaslap, 2 threads," \
    "50 connections, 16-byte keys, 100-byte values); operations per second, median of $ROUNDS" \
    "alternating rounds. Each round runs a workload on both servers back to back; the ratio is the" \
    "median of those pairs' ratios, with a 95% interval for that median (sign test; the range under 6 pairs). Bar: >= 0.8, goal >= 1.0."
  echo
  python3 scripts/lib/paired-table.py "$OUT/results.csv" memcached memcached \
    "get90=get/set 90/10, text" "get50=get/set 50/50, text" \
    "multi90=get/set 90/10, 10-key multiget, text" "multi50=get/set 50/50, 10-key multiget, text" \
    "binary90=get/set 90/10, binary"
} > "$OUT/table.md"
cat "$OUT/table.md"
write_doc_section bench-memcached "Memcached gateway" "$OUT/table.md"
