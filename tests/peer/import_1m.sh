#!/usr/bin/env bash
# Bulk import of 1,000,000 points into the embedded store through `safegrid import`, over the
# demo's ~3,200 grids: parse, check, locate, write in one transaction. Prints rows/s and peak RSS.
# Usage: tests/peer/import_1m.sh   (env: ROWS=1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo build --release -q
BIN=target/release/safegrid

python3 - "$WORK/incidents.csv" "$ROWS" <<'PY'
import random, sys
random.seed(7)
path, n = sys.argv[1], int(sys.argv[2])
types = ["theft", "dispute", "traffic", "fraud", "noise", "fight"]
with open(path, "w") as f:
    f.write("lon,lat,type,priority,status,reported_at,address\n")
    for i in range(n):
        f.write(f"{random.uniform(113.8, 114.5):.6f},{random.uniform(22.5, 22.8):.6f},{types[i % 6]},{1 + i % 4},closed,2026-11-{1 + i % 28:02d}T08:00:00Z,深南大道{i % 3000}号\n")
PY
RUST_LOG=warn $BIN --database-url "sqlite://$WORK/city.db" demo --no-serve >/dev/null
RUST_LOG=${RUST_LOG:-info} /usr/bin/time -f "peak RSS %M KB, wall %e s" \
  $BIN --database-url "sqlite://$WORK/city.db" import --layer incidents --file "$WORK/incidents.csv"
