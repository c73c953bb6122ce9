#!/usr/bin/env bash
# Map-wall tiles, side by side on the same data in the same run: safegrid's
#   GET /tiles/grids,incidents,rental_housing/14/{x}/{y}.mvt        (live state, never-stale cache)
# vs martin 1.14 serving the same rows from PostGIS as one composite source
#   GET /wall_grids,wall_incidents,wall_housing/14/{x}/{y}          (views with the same columns)
# martin runs twice: with its tile cache off, and with it on and warmed. Every z14 tile over
# Shenzhen's districts is requested in turn, the same list for both, by wrk (2 threads).
# Prints requests/s, p50/p99 latency and the ratios.
# Needs: wrk (Debian), martin on PATH
#   (cargo install martin --version 1.14.0 --locked --no-default-features --features postgres,mbtiles,pmtiles,fonts),
#   PostGIS on the server.
# Usage: tests/peer/tiles_vs_martin.sh   (env: CONC=8 DUR=15 PGURL=postgres://postgres@127.0.0.1:5432;
#   NO_MARTIN=1 measures safegrid alone, for a before/after of our own builds without martin)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${CONC:-8}
DUR=${DUR:-15}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18081}
MPORT=${MPORT:-18082}
WORK=$(mktemp -d)
trap 'kill ${PIDS:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT
PIDS=""

# BIN=path/to/safegrid measures another build (an older commit's, for a before/after).
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=target/release/safegrid
fi
MARTIN=${MARTIN:-$(command -v martin || echo "$HOME/.cargo/bin/martin")}

echo "== the demo city in PostGIS (safegrid serves it from memory; martin from the tables)"
psql -X -q "$PGURL/test" -c "DROP DATABASE IF EXISTS safegrid_tiles" -c "CREATE DATABASE safegrid_tiles"
RUST_LOG=warn $BIN --database-url "$PGURL/safegrid_tiles" demo --no-serve --tokens-out "$WORK/tokens.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dispatcher'])" "$WORK/tokens.json")
# The columns our wall layers carry, so that both sides encode the same properties.
psql -X -q "$PGURL/safegrid_tiles" <<'SQL'
CREATE VIEW wall_grids AS SELECT code::bigint AS id, code, name, level, geom FROM grid_units WHERE level = 'grid';
CREATE VIEW wall_incidents AS
  SELECT id, kind AS type, (props->>'priority')::int AS priority, status, observed_at::text AS reported_at, grid_code, geom
  FROM incidents;
CREATE VIEW wall_housing AS
  SELECT id, status AS safety_rating, (props->>'units')::int AS units, (props->>'tenant_count')::int AS tenant_count, grid_code, geom
  FROM rental_housing;
VACUUM ANALYZE;
SQL

RUST_LOG=warn $BIN --database-url "$PGURL/safegrid_tiles" serve --listen "127.0.0.1:$PORT" &
PIDS="$PIDS $!"
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done

start_martin() { # $1: cache size in MB (0 = off)
  "$MARTIN" --listen-addresses "127.0.0.1:$MPORT" --cache-size "$1" "$PGURL/safegrid_tiles" >"$WORK/martin.log" 2>&1 &
  MPID=$!
  PIDS="$PIDS $MPID"
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$MPORT/catalog" >/dev/null && break; sleep 0.5; done
}

# Every z14 tile over the districts' box, in one list both sides walk through.
python3 - "$WORK" <<'PY'
import math, sys
work = sys.argv[1]
def tile(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y
x0, y1 = tile(113.75, 22.40, 14)
x1, y0 = tile(114.62, 22.86, 14)
tiles = [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
with open(f"{work}/tiles.txt", "w") as f:
    for x, y in tiles:
        f.write(f"{x} {y}\n")
print(f"{len(tiles)} z14 tiles")
PY

lua() { # $1: path template with X and Y, $2: extra header line
  cat > "$WORK/walk.lua" <<LUA
local tiles = {}
for line in io.lines("$WORK/tiles.txt") do
  local x, y = line:match("(%d+) (%d+)")
  tiles[#tiles + 1] = string.gsub(string.gsub("$1", "X", x), "Y", y)
end
local i = 0
setup = function(thread) thread:set("offset", math.random(#tiles)) end
request = function()
  i = i + 1
  local path = tiles[((i + (offset or 0)) % #tiles) + 1]
  return wrk.format("GET", path, {$2})
end
LUA
}

measure() { # $1: label, $2: base URL; prints "label rps p50 p99"
  wrk -t2 -c"$CONC" -d"${DUR}s" --latency -s "$WORK/walk.lua" "$2" >"$WORK/out.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/out.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/out.txt")
  local errs
  errs=$(awk '/Non-2xx/ {print $4}' "$WORK/out.txt")
  # Bytes a response (gzipped), so that a fast empty answer cannot pass for a tile.
  local per
  per=$(awk '/Transfer\/sec/ {v=$2; u=substr(v, length(v)-1); n=v+0; m=(u=="KB")?1024:(u=="MB")?1048576:(u=="GB")?1073741824:1; print n*m}' "$WORK/out.txt")
  per=$(python3 -c "print(f'{$per / $rps / 1024:.1f} KB/tile')")
  printf "%-36s %10s req/s   p50 %8s   p99 %8s   %s %s\n" "$1" "$rps" "$p50" "$p99" "$per" "${errs:+non-2xx: $errs}"
  echo "$rps" >"$WORK/$(echo "$1" | tr ' ' _).rps"
}


echo "== safegrid"
lua "/tiles/grids,incidents,rental_housing/14/X/Y.mvt" "[\"Authorization\"] = \"Bearer $TOKEN\", [\"Accept-Encoding\"] = \"gzip\""
measure "safegrid (first pass, cache filling)" "http://127.0.0.1:$PORT"
measure "safegrid (cache warm)" "http://127.0.0.1:$PORT"

if [ -n "${NO_MARTIN:-}" ]; then
  echo "(NO_MARTIN: martin not run)"
  exit 0
fi

echo "== martin, cache off"
start_martin 0
lua "/wall_grids,wall_incidents,wall_housing/14/X/Y" "[\"Accept-Encoding\"] = \"gzip\""
measure "martin (no cache)" "http://127.0.0.1:$MPORT"
kill "$MPID"; wait "$MPID" 2>/dev/null || true

echo "== martin, cache on (512 MB), warmed by one pass"
start_martin 512
measure "martin (cache warming)" "http://127.0.0.1:$MPORT" >/dev/null
measure "martin (cache warm)" "http://127.0.0.1:$MPORT"

ours=$(cat "$WORK/safegrid_(cache_warm).rps")
nocache=$(cat "$WORK/martin_(no_cache).rps")
cached=$(cat "$WORK/martin_(cache_warm).rps")
python3 -c "
o, n, c = $ours, $nocache, $cached
print(f'ratio safegrid / martin without cache: {o / n:.1f}x (target >= 10x)')
print(f'ratio safegrid / martin with a warm cache: {o / c:.1f}x (target >= 5x)')"
