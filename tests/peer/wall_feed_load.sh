#!/usr/bin/env bash
# The map wall following a city's units: 3,000 tracked responders each reporting every 5 s
# (600 fixes a second through POST /api/v1/positions), and walls watching them — before and
# after the live feed, on the same data in the same run:
#   polling:  what the wall did before (GET /api/v1/positions/live every 3 s, the open
#             dispatches every 5 s, the statistics every 30 s; gzip accepted, as a browser does)
#   feed:     GET /api/v1/events?with=units,dispatches (a snapshot, then what changed)
# Prints, per wall, the server CPU it costs (the server's CPU time over the phase, less the
# same length of the load alone, divided by the walls) and the bytes it receives a minute.
# Needs: python3; nothing else runs on the machine.
# Usage: tests/peer/wall_feed_load.sh   (env: UNITS=3000 EVERY_S=5 WALLS=4 PHASE_S=60;
#   BIN=path/to/safegrid measures another build)
set -euo pipefail
cd "$(dirname "$0")/../.."
UNITS=${UNITS:-3000}
EVERY_S=${EVERY_S:-5}
WALLS=${WALLS:-4}
PHASE_S=${PHASE_S:-60}
PORT=${PORT:-18083}
WORK=$(mktemp -d)
# Never `kill 0`: with no server started that would kill this whole process group.
trap 'if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

if [ -z "${BIN:-}" ]; then
  cargo build --release -q --bin safegrid
  BIN=target/release/safegrid
fi

python3 - "$UNITS" > "$WORK/units.geojson" <<'PY'
import json, sys
n = int(sys.argv[1])
# Spread over Shenzhen's districts: 60 columns by 50 rows.
feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.85 + (d % 60) * 0.011, 22.50 + (d // 60) * 0.006]},
          "properties": {"kind": "patrol", "callsign": f"巡-{d:04}", "status": "available", "device_id": f"wall-{d}"}} for d in range(n)]
print(json.dumps({"type": "FeatureCollection", "features": feats}))
PY
URL="sqlite://$WORK/wall.db"
RUST_LOG=warn $BIN --database-url "$URL" import --layer responders --file "$WORK/units.geojson" >/dev/null
GATEWAY=$(RUST_LOG=warn $BIN --database-url "$URL" token --role gateway --name load)
ADMIN=$(RUST_LOG=warn $BIN --database-url "$URL" token --role admin --name load-admin)
WALL=$(RUST_LOG=warn $BIN --database-url "$URL" token --role dispatcher --name wall)
RUST_LOG=warn $BIN --database-url "$URL" serve --listen "127.0.0.1:$PORT" --no-osmand &
SERVER_PID=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done

python3 - "$PORT" "$SERVER_PID" "$UNITS" "$EVERY_S" "$WALLS" "$PHASE_S" "$GATEWAY" "$ADMIN" "$WALL" <<'PY'
import http.client, json, os, sys, threading, time
port, pid, units, every, walls, phase = (int(x) for x in sys.argv[1:7])
gateway, admin, wall = sys.argv[7:10]
tick = os.sysconf("SC_CLK_TCK")

def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def call(method, path, token, body=None, gzip=False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if gzip:
        h["Accept-Encoding"] = "gzip"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data

# Every device proves itself with a minted secret.
secrets = []
for d in range(units):
    status, data = call("POST", f"/api/v1/devices/wall-{d}/secret", admin)
    assert status == 201, (status, data)
    secrets.append(json.loads(data)["identifier"])

stop = threading.Event()
posted = [0]

def load():
    # Each second a 1/every share of the units reports, each a few metres on.
    per = units // every
    k = 0
    while not stop.is_set():
        t0 = time.time()
        fixes = []
        for i in range(per):
            d = (k * per + i) % units
            step = (k * per + i) // units
            fixes.append({"device_id": secrets[d], "time": round(t0, 3),
                          "lon": 113.85 + (d % 60) * 0.011 + (step % 200) * 0.00005,
                          "lat": 22.50 + (d // 60) * 0.006, "speed_mps": 2.0, "accuracy_m": 5})
        status, data = call("POST", "/api/v1/positions", gateway, json.dumps({"fixes": fixes}))
        assert status == 200, (status, data[:300])
        posted[0] += len(fixes)
        k += 1
        time.sleep(max(0.0, 1.0 - (time.time() - t0)))

def measure(label, start_walls):
    done = threading.Event()
    counts = [dict(bytes=0) for _ in range(walls)]
    threads = start_walls(done, counts) if start_walls else []
    time.sleep(3)  # connected and past the first snapshot
    for c in counts:
        c["bytes"] = 0
    c0, t0 = cpu_s(), time.time()
    time.sleep(phase)
    c1, t1 = cpu_s(), time.time()
    got = [c["bytes"] for c in counts]
    done.set()
    for t in threads:
        t.join(timeout=10)
    return dict(label=label, cpu=(c1 - c0) / (t1 - t0), bytes_per_min=[b * 60 / (t1 - t0) for b in got])

def polling(done, counts):
    def run(i):
        last = {"live": 0, "disp": 0, "stats": 0}
        while not done.is_set():
            now = time.time()
            for key, every_s, path in (("live", 3, "/api/v1/positions/live?freshness=live,stale,lost"),
                                       ("disp", 5, "/api/v1/dispatches?open=true&limit=20"),
                                       ("stats", 30, "/api/v1/stats")):
                if now - last[key] >= every_s:
                    last[key] = now
                    status, data = call("GET", path, wall, gzip=True)
                    assert status == 200, (status, data[:200])
                    counts[i]["bytes"] += len(data)
            time.sleep(0.1)
    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(walls)]
    for t in ts:
        t.start()
    return ts

def feed(done, counts):
    def run(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/api/v1/events?with=units,dispatches",
                  headers={"Authorization": f"Bearer {wall}", "Accept": "text/event-stream", "Accept-Encoding": "gzip"})
        r = c.getresponse()
        assert r.status == 200, r.status
        while not done.is_set():
            chunk = r.read1(65536)
            if not chunk:
                break
            counts[i]["bytes"] += len(chunk)
        c.close()
    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(walls)]
    for t in ts:
        t.start()
    return ts

loader = threading.Thread(target=load, daemon=True)
loader.start()
time.sleep(8)  # every unit has reported: all are live
results = [measure("the load alone", None), measure(f"{walls} walls polling", polling), measure(f"{walls} walls on the feed", feed)]
stop.set()
base = results[0]["cpu"]
print(f"\n{units} units reporting every {every} s ({units // every} fixes/s, {posted[0]} posted); {walls} walls; {phase} s a phase")
print(f"{'phase':<28} {'server CPU (cores)':>20} {'CPU a wall':>12} {'KB a wall a minute':>20}")
for r in results:
    per_wall = (r["cpu"] - base) / walls if r is not results[0] else 0.0
    kb = sorted(r["bytes_per_min"])[len(r["bytes_per_min"]) // 2] / 1024 if r is not results[0] else 0.0
    print(f"{r['label']:<28} {r['cpu']:>20.3f} {per_wall:>12.3f} {kb:>20.0f}")
PY
