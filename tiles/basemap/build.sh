#!/usr/bin/env bash
# Builds a basemap (vector MBTiles) for safegrid from an OpenStreetMap extract, offline.
#
#   tiles/basemap/build.sh INPUT.osm.pbf OUTPUT.mbtiles [WEST,SOUTH,EAST,NORTH]
#
# Needs tilemaker (Debian: apt-get install tilemaker). The bounding box defaults to the
# extract's header, or failing that its data's extent (osmium fileinfo, from osmium-tool).
# See README.md beside this script for a whole city.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
in="${1:?usage: build.sh INPUT.osm.pbf OUTPUT.mbtiles [W,S,E,N]}"
out="${2:?usage: build.sh INPUT.osm.pbf OUTPUT.mbtiles [W,S,E,N]}"
bbox="${3:-}"
command -v tilemaker >/dev/null || { echo "tilemaker not found (Debian: apt-get install tilemaker)" >&2; exit 2; }
if [ -z "$bbox" ] && command -v osmium >/dev/null; then
  # "(w,s,e,n)" from the data itself; the header's box is often missing in extracts.
  bbox="$(osmium fileinfo -e -g data.bbox "$in" | tr -d '()')"
fi
rm -f "$out"
args=(--input "$in" --output "$out" --config "$here/config.json" --process "$here/process.lua")
[ -n "$bbox" ] && args+=(--bbox "$bbox")
tilemaker "${args[@]}"
echo "built $out ($(du -h "$out" | cut -f1)); serve it with: safegrid serve --basemap $out"
