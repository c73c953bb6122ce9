#!/usr/bin/env bash
# Cheap routes while the expensive ones are saturated (issue "Close the doors", load shedding).
#
# On the demo city (SQLite), wrk measures the throughput of `locate` (dispatcher token) and of the
# citizens' nearest-post lookup (no token) twice: on an idle server, and while four clients keep
# asking for response audits (each ~20 s of CPU on this city) with a new `minutes` each time, so
# that one audit is always computing (on its low-priority thread) and the others are refused 503
# at once. Prints both rates and their ratio per route; the target is a ratio of at least 0.8.
# Runs RUNS rounds and prints the median ratio. wrk (Debian: wrk) is the load generator.
# Usage: tests/peer/shed_load.sh   (env: CONC=16 DUR=10 RUNS=3 PORT=18091)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${CONC:-16}
DUR=${DUR:-10}
RUNS=${RUNS:-3}
PORT=${PORT:-18091}
WORK=$(mktemp -d)
# Never `kill 0`: with no server started that would kill this whole process group.
trap 'kill ${HAMMER_PIDS:-} ${SERVER_PID:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -q
BIN=${CARGO_TARGET_DIR:-target}/release/safegrid
URL="http://127.0.0.1:$PORT"

echo "== the demo city in SQLite"
RUST_LOG=warn $BIN --database-url "sqlite://$WORK/demo.db" demo --no-serve --tokens-out "$WORK/tokens.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dispatcher'])" "$WORK/tokens.json")
ADMIN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$WORK/tokens.json")
# The public lookup's per-address limit is lifted: wrk is one address, and this measures the
# route, not the limiter.
RUST_LOG=warn $BIN --database-url "sqlite://$WORK/demo.db" serve --listen "127.0.0.1:$PORT" --no-osmand \
  --public-rate-per-minute 1000000000 &
SERVER_PID=$!
for _ in $(seq 1 120); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.5; done

cat > "$WORK/locate.lua" <<LUA
math.randomseed(42)
request = function()
  local lon = 113.80 + math.random() * 0.75
  local lat = 22.45 + math.random() * 0.38
  return wrk.format("GET", string.format("/api/v1/locate?lon=%.6f&lat=%.6f", lon, lat), {["Authorization"] = "Bearer $TOKEN"})
end
LUA
cat > "$WORK/public.lua" <<'LUA'
math.randomseed(43)
request = function()
  local lon = 113.85 + math.random() * 0.55
  local lat = 22.50 + math.random() * 0.30
  return wrk.format("GET", string.format("/api/v1/posts/nearest?lon=%.6f&lat=%.6f&k=3", lon, lat))
end
LUA
rps() { wrk -t1 -c"$CONC" -d"${DUR}s" -s "$WORK/$1.lua" "$URL" | awk '/Requests\/sec/ {print $2}'; }

# Four clients asking for response audits, each with its own sequence of `minutes` (so no answer
# is cached), pausing 200 ms between tries so that the refused ones do not turn into a curl
# storm that would measure curl instead of the server.
hammer() {
  local i=$1 m=$1
  while true; do
    m=$(( (m % 59) + 1 ))
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $TOKEN" "$URL/api/v1/audit/response?minutes=$m" >> "$WORK/audit-codes-$i"
    sleep 0.2
  done
}

declare -a LOC PUB
for run in $(seq 1 "$RUNS"); do
  echo "== round $run: idle"
  idle_loc=$(rps locate); idle_pub=$(rps public)
  for i in 1 2 3 4; do hammer "$i" & HAMMER_PIDS="${HAMMER_PIDS:-} $!"; done
  # Until an audit is computing.
  for _ in $(seq 1 100); do
    curl -s -H "Authorization: Bearer $ADMIN" "$URL/metrics" | grep -q 'safegrid_work_running{work="audit"} 1' && break
    sleep 0.1
  done
  echo "== round $run: four clients asking for response audits"
  busy_loc=$(rps locate); busy_pub=$(rps public)
  refused=$(curl -s -H "Authorization: Bearer $ADMIN" "$URL/metrics" | awk -F' ' '/^safegrid_work_refused_total\{work="audit"\}/ {print $2}')
  kill $HAMMER_PIDS 2>/dev/null || true; wait $HAMMER_PIDS 2>/dev/null || true; HAMMER_PIDS=""
  l=$(python3 -c "print(round($busy_loc/$idle_loc, 3))"); p=$(python3 -c "print(round($busy_pub/$idle_pub, 3))")
  LOC+=("$l"); PUB+=("$p")
  printf 'locate  idle %10s req/s   while audits refused %10s req/s   ratio %s\n' "$idle_loc" "$busy_loc" "$l"
  printf 'public  idle %10s req/s   while audits refused %10s req/s   ratio %s\n' "$idle_pub" "$busy_pub" "$p"
  echo "audits refused so far: $refused; answers seen: $(cat "$WORK"/audit-codes-* | sort | uniq -c | tr '\n' ' ')"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== median ratio over $RUNS rounds: locate $(med "${LOC[@]}"), public lookup $(med "${PUB[@]}") (target ≥ 0.8)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
