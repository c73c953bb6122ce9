#!/usr/bin/env bash
# Durable position ingest, side by side in the same run:
#   safegrid's batch API (POST /api/v1/positions, acknowledged after commit), into the embedded
#   SQLite store and into PostGIS, driven by services/examples/fix_load.rs
#   vs  PostGIS row-per-fix: one transaction per fix that UPDATEs the unit and INSERTs the fix
#   (what a tracker server without group commit does), driven by pgbench.
#   and the geofence cost: the SQLite run again in the demo city, whose ~3,000 grids are each a
#   geofence (every live fix is located, crossings decided with hysteresis and stored).
# Also prints the stored bytes per fix in each store.
# Needs: pgbench (postgresql-client), PostGIS on the server, python3.
# Usage: tests/peer/ingest_vs_postgis.sh
#   env: DEVICES=2000 BATCH=5000 CONNS=4 FIXES=2000000 CONC=8 DUR=15 PGURL=postgres://postgres@127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICES=${DEVICES:-2000}
BATCH=${BATCH:-5000}
CONNS=${CONNS:-4}
FIXES=${FIXES:-2000000}
CONC=${CONC:-8}
DUR=${DUR:-15}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18081}
WORK=$(mktemp -d)
# Never `kill 0`: with no server started that would kill this whole process group.
trap 'if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

cargo build --release -q --bin safegrid --example fix_load
BIN=target/release/safegrid
LOAD=target/release/examples/fix_load

python3 - "$DEVICES" > "$WORK/units.geojson" <<'PY'
import json, sys
n = int(sys.argv[1])
feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.20 + (d % 50) * 0.002, 22.68 + (d // 50) * 0.0005]},
          "properties": {"kind": "patrol", "callsign": f"L-{d}", "status": "available", "device_id": f"load-{d}"}} for d in range(n)]
print(json.dumps({"type": "FeatureCollection", "features": feats}))
PY

# run_store URL LABEL: import the units, serve, load, print the load's JSON line.
run_store() {
  local url=$1
  RUST_LOG=warn $BIN --database-url "$url" import --layer responders --file "$WORK/units.geojson" >/dev/null
  local token admin
  token=$(RUST_LOG=warn $BIN --database-url "$url" token --role gateway --name load)
  # Devices prove themselves: fix_load mints each one's secret (before its clock starts) and
  # sends every fix as "device_id": "ID:SECRET".
  admin=$(RUST_LOG=warn $BIN --database-url "$url" token --role admin --name load-admin)
  RUST_LOG=warn $BIN --database-url "$url" serve --listen "127.0.0.1:$PORT" --no-osmand &
  SERVER_PID=$!
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done
  $LOAD --addr "127.0.0.1:$PORT" --token "$token" --secrets-token "$admin" --devices "$DEVICES" --batch "$BATCH" --conns "$CONNS" --fixes "$FIXES"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

echo "== safegrid into SQLite ($FIXES fixes, $DEVICES devices, batches of $BATCH, $CONNS connections)"
SQLITE_JSON=$(run_store "sqlite://$WORK/ingest.db")
echo "$SQLITE_JSON"
SQLITE_BYTES=$(python3 - "$WORK" <<'PY'
import os, sqlite3, sys
w = sys.argv[1]
db = sqlite3.connect(os.path.join(w, "ingest.db"))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
n = db.execute("SELECT count(*) FROM fixes").fetchone()[0]
size = os.path.getsize(os.path.join(w, "ingest.db"))
print(f"{n} {size / n:.1f}")
PY
)

echo "== safegrid into SQLite, in the demo city (~3,000 grid geofences)"
RUST_LOG=warn $BIN --database-url "sqlite://$WORK/fenced.db" demo --no-serve >/dev/null
FENCED_JSON=$(run_store "sqlite://$WORK/fenced.db")
echo "$FENCED_JSON"
FENCE_EVENTS=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM geofence_events').fetchone()[0])" "$WORK/fenced.db")

echo "== safegrid into PostGIS"
psql -X -q "$PGURL/test" -c "DROP DATABASE IF EXISTS safegrid_ingest" -c "CREATE DATABASE safegrid_ingest"
PG_JSON=$(run_store "$PGURL/safegrid_ingest")
echo "$PG_JSON"
PG_BYTES=$(psql -X -qAt "$PGURL/safegrid_ingest" -c "SELECT count(*) || ' ' || round((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'fixes'::regclass)::numeric / count(*), 1) FROM fixes")

echo "== PostGIS row-per-fix (UPDATE unit + INSERT fix, one commit each; pgbench -c$CONC -T$DUR)"
psql -X -q "$PGURL/safegrid_ingest" <<SQL
CREATE TABLE peer_units (id int PRIMARY KEY, geom geometry(Point, 4326), t timestamptz);
INSERT INTO peer_units SELECT g, ST_SetSRID(ST_MakePoint(114.2, 22.68), 4326), now() FROM generate_series(1, $DEVICES) g;
CREATE TABLE peer_fixes (unit_id int, t timestamptz, geom geometry(Point, 4326), PRIMARY KEY (unit_id, t));
SQL
cat > "$WORK/peer.sql" <<SQL
\set u random(1, $DEVICES)
\set dx random(0, 1000)
BEGIN;
UPDATE peer_units SET geom = ST_SetSRID(ST_MakePoint(114.2 + :dx / 1000000.0, 22.68), 4326), t = clock_timestamp() WHERE id = :u;
INSERT INTO peer_fixes VALUES (:u, clock_timestamp(), ST_SetSRID(ST_MakePoint(114.2 + :dx / 1000000.0, 22.68), 4326)) ON CONFLICT DO NOTHING;
END;
SQL
PEER_TPS=$(pgbench -n -c "$CONC" -j 2 -T "$DUR" -f "$WORK/peer.sql" "$PGURL/safegrid_ingest" 2>/dev/null | awk '/^tps/ {print $3; exit}')

python3 - "$SQLITE_JSON" "$PG_JSON" "$PEER_TPS" "$SQLITE_BYTES" "$PG_BYTES" "$FENCED_JSON" "$FENCE_EVENTS" <<'PY'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
peer = float(sys.argv[3])
sb, pb = sys.argv[4].split(), sys.argv[5].split()
g = json.loads(sys.argv[6])
print(f"\n{'store':<34}{'fixes/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'503s':>6}{'vs peer':>9}{'B/fix':>8}")
print(f"{'safegrid → SQLite (batch API)':<34}{s['fixes_per_s']:>12,.0f}{s['p50_ms']:>9.1f}{s['p99_ms']:>9.1f}{s['overloaded_answers']:>6}{s['fixes_per_s']/peer:>8.1f}x{sb[1]:>8}")
print(f"{'safegrid → PostGIS (batch API)':<34}{p['fixes_per_s']:>12,.0f}{p['p50_ms']:>9.1f}{p['p99_ms']:>9.1f}{p['overloaded_answers']:>6}{p['fixes_per_s']/peer:>8.1f}x{pb[1]:>8}")
print(f"{'PostGIS row-per-fix (pgbench)':<34}{peer:>12,.0f}")
print(f"{'safegrid → SQLite, 3,000 fences':<34}{g['fixes_per_s']:>12,.0f}{g['p50_ms']:>9.1f}{g['p99_ms']:>9.1f}{g['overloaded_answers']:>6}{g['fixes_per_s']/peer:>8.1f}x")
print(f"\ngeofence cost: ingest {s['fixes_per_s'] / g['fixes_per_s']:.2f}x slower with 3,000 grid fences than with none ({sys.argv[7]} crossings stored)")
PY
echo "($(date -u +%F), $(nproc) cores; fixes stored: SQLite ${SQLITE_BYTES%% *}, PostGIS ${PG_BYTES%% *})"
