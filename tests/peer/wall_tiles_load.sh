#!/usr/bin/env bash
# Map-wall tile latency at every zoom the wall uses (z10-z16), and under concurrent writes.
#
# 1. For each zoom, every tile over Shenzhen's districts is walked by wrk (2 threads, CONC
#    connections) after one connection has built up to 1,000 of them once each (cold: the
#    time to build a tile). Prints req/s, p50, p99.
# 2. At z11 (the whole city on a wall) and z14, the same walk while a writer POSTs incidents
#    (WRITES per second) and, after each write, fetches the z14 tile under it and checks the
#    new incident's id is in it: the freshness guarantee, kept under load. Each write
#    invalidates the tiles that show it (and the composite tiles holding them), so this
#    measures rebuilding those while the rest are served from the cache.
# Same binary, same demo city (SQLite, the default store), same run.
# Needs: wrk (Debian). Usage: tests/peer/wall_tiles_load.sh  (env: CONC=8 DUR=10 WRITES=20)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${CONC:-8}
DUR=${DUR:-10}
WRITES=${WRITES:-20}
PORT=${PORT:-18083}
WORK=$(mktemp -d)
trap 'kill ${PIDS:-} 2>/dev/null || true; rm -rf "$WORK"' EXIT
PIDS=""

cargo build --release -q
BIN=target/release/safegrid
DB="sqlite://$WORK/safegrid.db"
echo "== the demo city (SQLite)"
RUST_LOG=warn $BIN --database-url "$DB" demo --no-serve --tokens-out "$WORK/tokens.json"
TOKEN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['dispatcher'])" "$WORK/tokens.json")
RUST_LOG=warn $BIN --database-url "$DB" serve --listen "127.0.0.1:$PORT" &
PIDS="$PIDS $!"
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done

tiles() { # $1: zoom -> $WORK/tiles.txt, every tile over the districts' box
  python3 - "$WORK" "$1" <<'PY'
import math, sys
work, z = sys.argv[1], int(sys.argv[2])
def tile(lon, lat):
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
x0, y1 = tile(113.75, 22.40)
x1, y0 = tile(114.62, 22.86)
with open(f"{work}/tiles.txt", "w") as f:
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            f.write(f"{x} {y}\n")
PY
}

walk() { # $1: zoom
  cat > "$WORK/walk.lua" <<LUA
local tiles = {}
for line in io.lines("$WORK/tiles.txt") do
  local x, y = line:match("(%d+) (%d+)")
  tiles[#tiles + 1] = "/tiles/grids,incidents,rental_housing/$1/" .. x .. "/" .. y .. ".mvt"
end
local i = 0
setup = function(thread) thread:set("offset", math.random(#tiles)) end
request = function()
  i = i + 1
  return wrk.format("GET", tiles[((i + (offset or 0)) % #tiles) + 1],
    {["Authorization"] = "Bearer $TOKEN", ["Accept-Encoding"] = "gzip"})
end
LUA
}

measure() { # $1: label; prints "label tiles rps p50 p99"
  wrk -t2 -c"$CONC" -d"${DUR}s" --latency -s "$WORK/walk.lua" "http://127.0.0.1:$PORT" >"$WORK/out.txt"
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/out.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/out.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/out.txt")
  errs=$(awk '/Non-2xx/ {print $4}' "$WORK/out.txt")
  printf "%-30s %6s tiles %10s req/s   p50 %8s   p99 %8s %s\n" "$1" "$(wc -l <"$WORK/tiles.txt")" "$rps" "$p50" "$p99" "${errs:+non-2xx: $errs}"
}

cold() { # $1: zoom; one connection fetches up to 1,000 of the tiles once each, cache cold
  python3 - "$PORT" "$TOKEN" "$WORK/tiles.txt" "$1" <<'PY'
import http.client, random, sys, time
port, token, path, z = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tiles = [l.split() for l in open(path)]
random.Random(1).shuffle(tiles)
conn = http.client.HTTPConnection("127.0.0.1", port)
ms = []
for x, y in tiles[:1000]:
    t0 = time.perf_counter()
    conn.request("GET", f"/tiles/grids,incidents,rental_housing/{z}/{x}/{y}.mvt",
                 headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
    r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
    ms.append((time.perf_counter() - t0) * 1000)
ms.sort()
q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]
print(f"{'z' + z + ' cold, each tile once':30s} {len(ms):6d} tiles   p50 {q(.5):6.2f}ms   p99 {q(.99):6.2f}ms   max {ms[-1]:6.2f}ms")
PY
}

echo "== z10-z16, grids+incidents+housing: each tile built once (cold), then ${CONC} connections for ${DUR}s"
for z in 10 11 12 13 14 15 16; do
  tiles "$z"
  walk "$z"
  cold "$z"
  measure "z$z, cache filled"
done

under_writes() { # $1: zoom
echo "== z$1 while incidents are written (${WRITES}/s), each write checked in the very next z14 tile"
tiles "$1"
walk "$1"
measure "z$1 warm, before writes" >/dev/null
python3 - "$PORT" "$TOKEN" "$WRITES" "$((DUR + 2))" >"$WORK/writer.txt" <<'PY' &
# Writes incidents at a steady rate; after each, fetches the z14 tile under it (the wall's
# layers) and looks for the new id in its incidents layer: a tiny MVT reader, enough for ids.
import http.client, json, math, random, sys, time
port, token, rate, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i
def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i); f, w = k >> 3, k & 7
        if w == 0: v, i = varint(b, i)
        elif w == 2: n, i = varint(b, i); v = b[i:i + n]; i += n
        elif w == 1: v = b[i:i + 8]; i += 8
        elif w == 5: v = b[i:i + 4]; i += 4
        yield f, v
def ids(tile, layer):
    for f, l in fields(tile):
        if f != 3: continue
        fs = list(fields(l))
        if any(f == 1 and v == layer.encode() for f, v in fs):
            return {dict(fields(v)).get(1) for f, v in fs if f == 2}
    return set()
conn = http.client.HTTPConnection("127.0.0.1", port)
auth = {"Authorization": f"Bearer {token}"}
rng = random.Random(7)
done = fresh = 0
lat_ms = []
end = time.time() + secs
while time.time() < end:
    t0 = time.time()
    lon, lat = rng.uniform(113.9, 114.3), rng.uniform(22.52, 22.7)
    body = json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"type": "theft", "priority": 2, "status": "open",
                       "reported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})
    conn.request("POST", "/api/v1/incidents", body, {**auth, "Content-Type": "application/geo+json"})
    r = conn.getresponse(); created = json.loads(r.read())
    if r.status != 201: sys.exit(f"write refused: {r.status} {created}")
    n = 2 ** 14
    x = int((lon + 180) / 360 * n); y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    conn.request("GET", f"/tiles/grids,incidents,rental_housing/14/{x}/{y}.mvt", headers=auth)
    r = conn.getresponse(); tile = r.read()
    lat_ms.append((time.time() - t0) * 1000)
    done += 1
    fresh += created["id"] in ids(tile, "incidents")
    time.sleep(max(0.0, 1 / rate - (time.time() - t0)))
lat_ms.sort()
print(f"writes {done}, seen in the very next tile {fresh}, write+tile p50 {lat_ms[len(lat_ms)//2]:.1f} ms, max {lat_ms[-1]:.1f} ms")
PY
WRITER=$!
sleep 1
measure "z$1 under ${WRITES} writes/s"
wait "$WRITER"
cat "$WORK/writer.txt"
}
under_writes 11
under_writes 14
