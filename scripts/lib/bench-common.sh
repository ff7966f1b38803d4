# Shared by the benchmark scripts: start redis-server and Shoal side by side, and write a
# result table into docs/BENCHMARKS.md between named markers. Source it; it sets OUT.

OUT=$(mktemp -d)
trap 'kill $(cat "$OUT"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$OUT"' EXIT

# start_servers REDIS_PORT SHOAL_PORT: both listen on 127.0.0.1, with no persistence unless
# REDIS_ARGS and SHOAL_ARGS add some.
start_servers() {
  scripts/install-test-deps.sh
  cargo build --release --quiet --bin shoal
  # shellcheck disable=SC2086
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" --logfile "$OUT/redis.log" ${REDIS_ARGS:-} &
  echo $! > "$OUT/redis.pid"
  # shellcheck disable=SC2086
  start_shoal "$2" shoal ${SHOAL_ARGS:-}
  wait_ready "$1"
}

# start_shoal PORT NAME [ARGS...]: one more Shoal (release build) on 127.0.0.1, its data and
# pid file under NAME, stopped with the others; returns once it answers.
start_shoal() {
  local port=$1 name=$2
  shift 2
  # No snapshots on either side (Redis runs with --save ""): a save would land in a measurement.
  target/release/shoal --port "$port" --bind 127.0.0.1 --data-dir "$OUT/$name-data" --log-level warn --save= "$@" &
  echo $! > "$OUT/$name.pid"
  wait_ready "$port"
}

# wait_ready PORT: until a server answers PING there (at most ~10 s).
wait_ready() {
  for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && break; sleep 0.1; done
}

# stop_servers: stops every server started (so the next start_servers measures from a fresh
# process).
stop_servers() {
  local f
  for f in "$OUT"/*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    while kill -0 "$(cat "$f")" 2>/dev/null; do sleep 0.1; done
    rm -f "$f"
  done
}

# csv_rows PREFIX: turns redis-benchmark --csv output (stdin) into "PREFIX,<test>,<ops/s>" lines.
csv_rows() {
  tail -n +2 | tr -d '"' | while IFS=, read -r test rps _; do
    echo "$1,$test,$rps"
  done
}

redis_version() {
  redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/'
}

# write_doc_section NAME TITLE TABLE_FILE: replaces the NAME block of docs/BENCHMARKS.md.
write_doc_section() {
  local doc=docs/BENCHMARKS.md
  [ -f "$doc" ] || printf '# Benchmarks\n' > "$doc"
  python3 - "$doc" "$1" "$2" "$3" <<'PY'
import sys
doc, name, title, table = sys.argv[1], sys.argv[2], sys.argv[3], open(sys.argv[4]).read()
text = open(doc).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = f"{begin}\n{table}{end}"
if begin in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text += f"\n## {title}\n\n{block}\n"
open(doc, "w").write(text)
PY
  echo "wrote $doc" >&2
}
