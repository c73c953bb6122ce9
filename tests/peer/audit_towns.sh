#!/usr/bin/env bash
# `safegrid audit` of the 33 real Dongguan towns (../shared/data/dongguan_towns), timed as a user
# runs it (the binary, wall clock, median of RUNS):
#   shifted    the towns converted to BD-09 by `safegrid convert`, audited against the original
#              towns as territory with --crs wgs84 (every step runs on a layer ~1 km off: the
#              shape of the case that once took 1,013 s in the outside-territory step);
#   refused    the same file without --crs: the datum check refuses it (exit 2) and says so;
#   unshifted  the original towns against themselves;
#   outline    the original towns against the city's outline simplified to ~180 vertices (their
#              union, ST_Simplify 0.004° by GDAL's SQLite dialect): a coarse territory of the kind
#              a city has, whose vertices lie on the towns' own boundaries — the case that ran for
#              minutes in the outside-territory step;
#   outline-bd09  the BD-09 towns against the same outline, with --crs wgs84.
# Needs: gdal-bin (ogr2ogr with the SQLite dialect) for the outline.
# BIN=path/to/safegrid compares another build (e.g. one from before a change); CONVERT_BIN makes
# the BD-09 file when BIN has no `convert`; TIMEOUT caps one run (seconds).
# Usage: tests/peer/audit_towns.sh   (env: BIN=target/release/safegrid RUNS=3 TIMEOUT=600)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/safegrid}
CONVERT_BIN=${CONVERT_BIN:-$BIN}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-600}
TOWNS=${TOWNS:-../shared/data/dongguan_towns/dongguan_towns.geojson}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -x "$BIN" ] || cargo build --release -q -p safegrid-cli --bin safegrid
"$CONVERT_BIN" convert --file "$TOWNS" --from wgs84 --to bd09 --out "$WORK/bd09.geojson" 2>/dev/null
# As a Baidu-drawn file comes: saying nothing of its datum (convert writes a crs member naming it).
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("crs",None); json.dump(d,open(sys.argv[1],"w"))' "$WORK/bd09.geojson"
LAYER=$(ogrinfo -q "$TOWNS" | head -1 | sed 's/^1: \([^ ]*\).*/\1/')
ogr2ogr -f GeoJSON "$WORK/outline.geojson" "$TOWNS" -dialect sqlite \
  -sql "SELECT ST_Simplify(ST_Union(geometry), 0.004) AS geometry FROM \"$LAYER\""

# run NAME EXPECTED_EXIT ARGS…: RUNS timed runs; prints each and the median (or "> TIMEOUT").
run() {
  local name=$1 want=$2
  shift 2
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1 code=0
    t0=$(date +%s.%N)
    timeout "$TIMEOUT" "$BIN" audit --quiet --code-property id --format json --out "$WORK/out.json" "$@" 2>"$WORK/err.txt" || code=$?
    t1=$(date +%s.%N)
    if [ "$code" = 124 ]; then
      echo "$name: stopped after ${TIMEOUT} s"
      return
    fi
    if [ "$code" != "$want" ]; then
      echo "$name: exit $code, expected $want: $(head -c 400 "$WORK/err.txt")"
      return
    fi
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-12s median %.2f s  (runs: %s)\n' "$name" "$median" "$(printf '%.2f ' "${times[@]}")"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run shifted 1 --grids "$WORK/bd09.geojson" --territory "$TOWNS" --crs wgs84
run refused 2 --grids "$WORK/bd09.geojson" --territory "$TOWNS"
echo "  the refusal: $(head -c 300 "$WORK/err.txt")"
run unshifted 1 --grids "$TOWNS" --territory "$TOWNS"
run outline 1 --grids "$TOWNS" --territory "$WORK/outline.geojson"
run outline-bd09 1 --grids "$WORK/bd09.geojson" --territory "$WORK/outline.geojson" --crs wgs84
