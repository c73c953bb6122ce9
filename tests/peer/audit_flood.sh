#!/usr/bin/env bash
# The audit log under a flood of key-personnel reads (issue "Close the doors"): one dispatcher
# token reading key personnel as fast as it can for DUR seconds, as the attacker's test did
# (31,750 rows in 50 s before reads collapsed). Two floods on the demo city (SQLite):
#   same    — one URL over and over (a wall or a script polling one view): collapses per window;
#   varied  — a new bounding box each time: every read is distinct, so each keeps its own row.
# Prints requests served, rows written, the reads those rows account for (sum of repeats, which
# must equal the requests once the windows are flushed) and rows per second.
# Usage: tests/peer/audit_flood.sh   (env: CONC=8 DUR=50 PORT=18092 WINDOW=60)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${CONC:-8}
DUR=${DUR:-50}
PORT=${PORT:-18092}
WINDOW=${WINDOW:-60}
WORK=$(mktemp -d)
# Never `kill 0`: with no server started that would kill this whole process group.
trap 'if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

cargo build --release -q
BIN=${CARGO_TARGET_DIR:-target}/release/safegrid
URL="http://127.0.0.1:$PORT"
DB="$WORK/demo.db"

echo "== the demo city in SQLite"
RUST_LOG=warn $BIN --database-url "sqlite://$DB" demo --no-serve --tokens-out "$WORK/tokens.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dispatcher'])" "$WORK/tokens.json")
start() {
  RUST_LOG=warn $BIN --database-url "sqlite://$DB" serve --listen "127.0.0.1:$PORT" --no-osmand --audit-window-secs "$WINDOW" &
  SERVER_PID=$!
  for _ in $(seq 1 120); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.5; done
}
stop() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }
rows() { python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(*c.execute('SELECT count(*), coalesce(sum(repeats),0) FROM audit_log').fetchone())" "$DB"; }

cat > "$WORK/same.lua" <<LUA
request = function()
  return wrk.format("GET", "/api/v1/key_personnel?bbox=114.00,22.50,114.10,22.60&limit=50", {["Authorization"] = "Bearer $TOKEN"})
end
LUA
cat > "$WORK/varied.lua" <<LUA
math.randomseed(44)
request = function()
  local lon = 113.85 + math.random() * 0.50
  local lat = 22.50 + math.random() * 0.25
  return wrk.format("GET", string.format("/api/v1/key_personnel?bbox=%.5f,%.5f,%.5f,%.5f&limit=50", lon, lat, lon + 0.05, lat + 0.05), {["Authorization"] = "Bearer $TOKEN"})
end
LUA

for flood in same varied; do
  start
  read -r r0 s0 <<<"$(rows)"
  out=$(wrk -t1 -c"$CONC" -d"${DUR}s" -s "$WORK/$flood.lua" "$URL")
  served=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  # A graceful stop writes the counts of the windows still open.
  stop
  read -r r1 s1 <<<"$(rows)"
  printf '%-7s %8s requests (%s non-2xx) in %ss: %7s rows written (%6.1f rows/s), accounting for %s reads\n' \
    "$flood" "$served" "$non2xx" "$DUR" "$((r1 - r0))" "$(python3 -c "print(($r1-$r0)/$DUR)")" "$((s1 - s0))"
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
