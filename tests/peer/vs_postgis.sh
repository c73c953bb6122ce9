#!/usr/bin/env bash
# Side by side, same data, same run, same concurrency:
#   safegrid's HTTP routes (load from wrk)  vs  the PostGIS query doing the same job (pgbench).
#   locate:  GET /api/v1/locate                       vs  ST_Contains over grid_units (GiST)
#   nearest: GET /api/v1/rental_housing/nearest k=5   vs  ORDER BY geom <-> point LIMIT 5 (GiST KNN)
#            with a status filter (safety_rating b, 45 % of 100,000 houses)
# Both stores hold the same seeded demo city (`safegrid demo` is deterministic).
# Needs: wrk and pgbench (Debian: wrk, postgresql-client), PostGIS on the server.
# Usage: tests/peer/vs_postgis.sh   (env: CONC=8 DUR=15 PGURL=postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${CONC:-8}
DUR=${DUR:-15}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18080}
WORK=$(mktemp -d)
# Never `kill 0`: with no server started that would kill this whole process group.
trap 'if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

# BIN=path/to/safegrid measures another build (an older commit's, for a before/after).
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=target/release/safegrid
fi

echo "== building the same demo city in SQLite and in PostGIS"
psql -X -q "$PGURL/test" -c "DROP DATABASE IF EXISTS safegrid_bench" -c "CREATE DATABASE safegrid_bench"
RUST_LOG=warn $BIN --database-url "$PGURL/safegrid_bench" demo --no-serve
RUST_LOG=warn $BIN --database-url "sqlite://$WORK/demo.db" demo --no-serve --tokens-out "$WORK/tokens.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dispatcher'])" "$WORK/tokens.json")
psql -X -q "$PGURL/safegrid_bench" -c "VACUUM ANALYZE"

RUST_LOG=warn $BIN --database-url "sqlite://$WORK/demo.db" serve --listen "127.0.0.1:$PORT" &
SERVER_PID=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done

cat > "$WORK/locate.lua" <<LUA
math.randomseed(42)
request = function()
  local lon = 113.80 + math.random() * 0.75
  local lat = 22.45 + math.random() * 0.38
  return wrk.format("GET", string.format("/api/v1/locate?lon=%.6f&lat=%.6f", lon, lat), {["Authorization"] = "Bearer $TOKEN"})
end
LUA
cat > "$WORK/nearest.lua" <<LUA
math.randomseed(43)
request = function()
  local lon = 113.85 + math.random() * 0.55
  local lat = 22.50 + math.random() * 0.30
  return wrk.format("GET", string.format("/api/v1/rental_housing/nearest?lon=%.6f&lat=%.6f&k=5&status=b", lon, lat), {["Authorization"] = "Bearer $TOKEN"})
end
LUA
cat > "$WORK/locate.sql" <<'SQL'
\set lon random(113800000, 114550000)
\set lat random(22450000, 22830000)
SELECT code FROM grid_units WHERE level = 'grid' AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(:lon / 1000000.0, :lat / 1000000.0), 4326)) ORDER BY code LIMIT 1;
SQL
cat > "$WORK/nearest.sql" <<'SQL'
\set lon random(113850000, 114400000)
\set lat random(22500000, 22800000)
SELECT id FROM rental_housing WHERE status = 'b' ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:lon / 1000000.0, :lat / 1000000.0), 4326) LIMIT 5;
SQL

wrk_rps() { wrk -t2 -c"$CONC" -d"${DUR}s" -s "$WORK/$1.lua" "http://127.0.0.1:$PORT" | awk '/Requests\/sec/ {print $2}'; }
pg_tps() { pgbench -n -c "$CONC" -j 2 -T "$DUR" -f "$WORK/$1.sql" "$PGURL/safegrid_bench" 2>/dev/null | awk '/^tps/ {print $3; exit}'; }

printf "\n%-8s %6s %16s %16s %7s\n" work conc "safegrid req/s" "PostGIS tps" ratio
for work in locate nearest; do
  ours=$(wrk_rps "$work")
  theirs=$(pg_tps "$work")
  ratio=$(python3 -c "print(f'{$ours / $theirs:.2f}')")
  printf "%-8s %6s %16s %16s %6sx\n" "$work" "$CONC" "$ours" "$theirs" "$ratio"
done
echo "($(date -u +%F), $(nproc) cores, wrk -t2 -c$CONC -d${DUR}s vs pgbench -c$CONC -j2 -T$DUR)"
