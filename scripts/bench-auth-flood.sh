#!/usr/bin/env bash
# What an AUTH brute force costs the other clients: redis-benchmark GET/SET (-c 50, -P 1,
# authenticated, from 127.0.0.1) alone, then while a guesser on 127.0.0.2 sends wrong
# passwords, on Shoal and on redis-server (both with requirepass), same machine, one run.
#
# Two guessers: "10k/s" paces 10,000 wrong passwords a second in pipelines of 200 (the
# issue's brute force); "flat out" sends pipelines of 200 as fast as one connection can.
# Shoal refuses an address after 10 failures in 10 s, so most guesses are turned away before
# any password check; Redis checks every one. The ratio "with guesser / alone" per server is
# what the other clients lose; docs/BENCHMARKS.md gets the medians ("bench-auth-flood").
#
# Environment: ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REDIS_PORT=${REDIS_PORT:-16392}
SHOAL_PORT=${SHOAL_PORT:-16393}
PASS=bench-legit-password
# shellcheck source=scripts/lib/bench-common.sh
. scripts/lib/bench-common.sh

scripts/install-test-deps.sh
cargo build --release --quiet --bin shoal
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --requirepass "$PASS" --save "" --appendonly no \
  --dir "$OUT" --logfile "$OUT/redis.log" &
echo $! > "$OUT/redis.pid"
target/release/shoal --port "$SHOAL_PORT" --bind 127.0.0.1 --requirepass "$PASS" \
  --data-dir "$OUT/shoal-data" --log-level error --save= &
echo $! > "$OUT/shoal.pid"
for p in "$REDIS_PORT" "$SHOAL_PORT"; do
  for _ in $(seq 100); do redis-cli -p "$p" -a "$PASS" --no-auth-warning PING >/dev/null 2>&1 && break; sleep 0.1; done
done

# guesser PORT RATE: wrong AUTHs from 127.0.0.2 until killed (RATE 0 = flat out); on exit it
# writes "<guesses/s>,<checked/s>" to $OUT/guess.<pid> (checked: answered WRONGPASS).
cat > "$OUT/guesser.py" <<'PY'
import os, signal, socket, sys, time
port, rate = int(sys.argv[1]), int(sys.argv[2])
# Redis closes an unauthenticated client with more than 16 KB of replies pending.
BATCH = 200
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
start, sent, checked, buf, n = time.monotonic(), 0, 0, b"", 0
while not stop:
    batch = b"".join(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(p), p)
                     for p in (b"guess-%d" % (n + i) for i in range(BATCH)))
    n += BATCH
    s.sendall(batch)
    replies = 0
    while replies < BATCH:
        chunk = s.recv(1 << 16)
        if not chunk:
            raise SystemExit("server closed the guesser")
        buf += chunk
        lines = buf.split(b"\r\n")
        buf = lines.pop()
        replies += len(lines)
        checked += sum(l.startswith(b"-WRONGPASS") for l in lines)
    sent += BATCH
    if rate:
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
took = time.monotonic() - start
open(os.path.join(os.environ["OUT"], f"guess.{os.getpid()}"), "w").write(f"{sent / took:.0f},{checked / took:.0f}\n")
PY

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="redis shoal"; else order="shoal redis"; fi
  for server in $order; do
    port=$REDIS_PORT; [ "$server" = shoal ] && port=$SHOAL_PORT
    for mode in alone 10k flat; do
      guesser=""
      case $mode in
        10k) OUT=$OUT python3 "$OUT/guesser.py" "$port" 10000 & guesser=$! ;;
        flat) OUT=$OUT python3 "$OUT/guesser.py" "$port" 0 & guesser=$! ;;
      esac
      [ -n "$guesser" ] && sleep 0.5
      redis-benchmark -h 127.0.0.1 -p "$port" -a "$PASS" -t set,get -c 50 -r 100000 -n 300000 -P 1 --csv 2>/dev/null \
        | csv_rows "$server,$mode" >> "$OUT/results.csv"
      if [ -n "$guesser" ]; then
        kill -TERM "$guesser"
        wait "$guesser" || true
        echo "$server,$mode,$(cat "$OUT/guess.$guesser")" >> "$OUT/guesses.csv"
      fi
    done
  done
  echo "round $round/$ROUNDS done" >&2
done

redis_version=$(redis_version)
python3 - "$OUT/results.csv" "$OUT/guesses.csv" "$ROUNDS" "$redis_version" <<'PY' > "$OUT/table.md"
import collections, statistics, sys, os
results, guesses, rounds, redis_version = sys.argv[1:5]
runs = collections.defaultdict(list)
for line in open(results):
    server, mode, test, rps = line.strip().split(",")
    runs[(server, mode, test)].append(float(rps))
tried = collections.defaultdict(list)
for line in open(guesses):
    server, mode, sent, checked = line.strip().split(",")
    tried[(server, mode)].append((float(sent), float(checked)))
print(f"redis-server {redis_version} and Shoal, both with requirepass, on the same {os.cpu_count()}-core "
      f"machine; redis-benchmark -a -c 50 -P 1 -r 100000 from 127.0.0.1 while a guesser on 127.0.0.2 "
      f"sends wrong passwords; median of {rounds} alternating rounds.\n")
print("| server | test | alone ops/s | guesser | guesses/s | checked/s | with guesser ops/s | with / alone |")
print("|---|---|---:|---|---:|---:|---:|---:|")
for server in ("redis", "shoal"):
    for test in ("SET", "GET"):
        alone = statistics.median(runs[(server, "alone", test)])
        for mode, name in (("10k", "10k/s"), ("flat", "flat out")):
            busy = statistics.median(runs[(server, mode, test)])
            sent = statistics.median(t[0] for t in tried[(server, mode)])
            checked = statistics.median(t[1] for t in tried[(server, mode)])
            label = "Redis" if server == "redis" else "Shoal"
            print(f"| {label} | {test} | {alone:,.0f} | {name} | {sent:,.0f} | {checked:,.0f} | {busy:,.0f} | {busy / alone:.2f} |")
PY
cat "$OUT/table.md"
write_doc_section bench-auth-flood "Other clients during an AUTH brute force" "$OUT/table.md"
