#!/usr/bin/env bash
# Nearest responders by road travel time, side by side on the same graph in the same run:
#   safegrid: the 5 best of 200 live units for a place (contraction hierarchy, pruned by the
#             straight line), in process, 1,000 places  (services/examples/dispatch_bench.rs)
#   pgRouting 3.4: pgr_dijkstraCost from the 200 units' nodes to the place's node, ORDER BY cost
#             LIMIT 5, on the same edges exported as CSV (pgbench, one client: latency).
# Also prints how often the straight-line nearest unit is not the fastest by road.
# Needs: ../shared/data/osm_monaco, pgbench, postgresql-15-pgrouting on the server.
# Usage: tests/peer/dispatch_vs_pgrouting.sh   (env: PBF=… DUR=15 PGURL=postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/../.."
PBF=${PBF:-../shared/data/osm_monaco/monaco.osm.pbf}
DUR=${DUR:-15}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q --example dispatch_bench
OURS=$(RUST_LOG=warn target/release/examples/dispatch_bench "$PBF" "$WORK")
echo "$OURS"

psql -X -q "$PGURL/test" -c "DROP DATABASE IF EXISTS safegrid_routing" -c "CREATE DATABASE safegrid_routing"
psql -X -q "$PGURL/safegrid_routing" <<SQL
CREATE EXTENSION postgis;
CREATE EXTENSION pgrouting;
CREATE TABLE edges (id bigint PRIMARY KEY, source bigint, target bigint, cost float8, reverse_cost float8);
CREATE TABLE units (unit_id bigint PRIMARY KEY, node bigint);
CREATE TABLE places (qid int PRIMARY KEY, node bigint);
\copy edges FROM '$WORK/edges.csv' CSV HEADER
\copy units FROM '$WORK/units.csv' CSV HEADER
\copy places FROM '$WORK/places.csv' CSV HEADER
ANALYZE;
SQL
cat > "$WORK/nearest.sql" <<'SQL'
\set q random(1, 1000)
SELECT start_vid, agg_cost FROM pgr_dijkstraCost('SELECT id, source, target, cost, reverse_cost FROM edges', (SELECT array_agg(node) FROM units), (SELECT node FROM places WHERE qid = :q), directed => true) ORDER BY agg_cost LIMIT 5;
SQL
PG_MS=$(pgbench -n -c 1 -T "$DUR" -f "$WORK/nearest.sql" "$PGURL/safegrid_routing" 2>/dev/null | awk '/latency average/ {print $4; exit}')

python3 - "$OURS" "$PG_MS" <<'PY'
import json, sys
o = json.loads(sys.argv[1]); pg = float(sys.argv[2])
print(f"\ngraph: {o['nodes']:,} nodes, {o['segments']:,} road segments; {o['units']} live units, {o['places']} places, k = {o['k']}")
print(f"{'safegrid (search + hierarchy, in process)':<42} median {o['median_us'] / 1000:.3f} ms  p99 {o['p99_us'] / 1000:.3f} ms  mean {o['mean_us'] / 1000:.3f} ms")
print(f"{'pgRouting pgr_dijkstraCost':<42} mean   {pg:.3f} ms (pgbench, 1 client)")
print(f"ratio (pgRouting mean / safegrid mean): {pg / (o['mean_us'] / 1000):.0f}x")
print(f"straight-line nearest is not the fastest by road at {o['straight_top1_differs']} of {o['places']} places ({o['straight_top1_differs'] / o['places']:.0%})")
PY
echo "($(date -u +%F), $(nproc) cores)"
