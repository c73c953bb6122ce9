// Live units and their traces: the units with a fix, from the live feed (state `units`),
// coloured by freshness; the unit the map follows; a unit's last hour replayed on the map.

import { api } from '/web/js/api.js';
import { canRead } from '/web/js/layers.js';
import { get, set, subscribe } from '/web/js/state.js';

const FRESH_COLOURS = ['match', ['get', 'freshness'], 'live', '#22c55e', 'stale', '#f59e0b', 'lost', '#6b7280', '#94a3b8'];
/** The live units' and traces' sources and layers; they follow the feed's units from then on. */
export function addLiveLayers(map) {
  if (!canRead('responders')) return;
  const empty = { type: 'FeatureCollection', features: [] };
  map.addSource('live', { type: 'geojson', data: empty });
  map.addSource('trace', { type: 'geojson', data: empty });
  map.addSource('trace-head', { type: 'geojson', data: empty });
  map.addLayer({ id: 'trace-line', type: 'line', source: 'trace', paint: { 'line-color': '#38bdf8', 'line-width': 3, 'line-opacity': 0.8 } });
  map.addLayer({
    id: 'live-units', type: 'circle', source: 'live',
    paint: {
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 10, 4, 16, 9],
      'circle-color': FRESH_COLOURS,
      // Busy units (dispatched, en route, on scene…) get a red ring.
      'circle-stroke-color': ['case', ['==', ['get', 'status'], 'available'], '#f8fafc', '#ef4444'],
      'circle-stroke-width': 2,
    },
  });
  map.addLayer({
    id: 'live-label', type: 'symbol', source: 'live', minzoom: 14,
    layout: { 'text-field': ['get', 'callsign'], 'text-font': [get('base').metadata['safegrid:font']], 'text-size': 11, 'text-offset': [0, 1.2] },
    paint: { 'text-color': '#e2e8f0', 'text-halo-color': '#0f172a', 'text-halo-width': 1 },
  });
  map.addLayer({ id: 'trace-head', type: 'circle', source: 'trace-head', paint: { 'circle-radius': 7, 'circle-color': '#38bdf8', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
  drawUnits(get('units'));
  subscribe('units', drawUnits);
  // Dragging the map ends following a unit.
  map.on('dragstart', () => set({ follow: null }));
}

/** The units with a fix on the map (an untracked unit is not drawn here: it was never seen),
 * and the followed one kept in view. */
function drawUnits(units) {
  const map = get('map');
  const src = map && map.getSource('live');
  if (!src) return;
  const seen = Object.values(units).filter((u) => u.freshness !== 'none');
  src.setData({ type: 'FeatureCollection', features: seen.map((u) => ({
    type: 'Feature', id: u.id, geometry: { type: 'Point', coordinates: [u.lon, u.lat] },
    properties: { id: u.id, callsign: u.callsign, status: u.status, freshness: u.freshness, grid_code: u.grid_code,
      speed_mps: u.speed_mps, fix_at: u.fix_at, dispatch: u.dispatch },
  })) });
  // For the engineer at the console and the browser test: what the live layer holds.
  window.sgLiveCount = seen.length;
  window.sgLiveCallsigns = seen.map((u) => u.callsign);
  const followed = get('follow') !== null && units[get('follow')];
  if (followed) map.easeTo({ center: [followed.lon, followed.lat], duration: 400 });
}

/** Follows a unit: the map centres on it at each move until dragged (or another is followed). */
export function follow(id) {
  const u = get('units')[id];
  const map = get('map');
  if (!u || !map) return;
  set({ follow: id });
  map.flyTo({ center: [u.lon, u.lat], zoom: Math.max(map.getZoom(), 15), duration: 600 });
}

/** Draws a unit's last hour and runs a marker along it, sixty times faster than it happened. */
export async function replayTrace(id) {
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const r = await api(`/api/v1/responders/${id}/trace?since=${encodeURIComponent(since)}&simplify_m=2`);
  if (!r.ok) return;
  const f = await r.json();
  const map = get('map');
  const kind = f.geometry && f.geometry.type;
  if (kind !== 'LineString' && kind !== 'MultiLineString') {
    map.getSource('trace').setData({ type: 'FeatureCollection', features: [] });
    return;
  }
  map.getSource('trace').setData(f);
  // Trips are separate lines (a gap of over ten minutes splits them); the marker runs through
  // them in order, one time per position.
  const coords = kind === 'MultiLineString' ? f.geometry.coordinates.flat() : f.geometry.coordinates;
  const times = f.properties.times.map((x) => Date.parse(x));
  const t0 = times[0];
  const span = times[times.length - 1] - t0;
  const started = performance.now();
  set({ replay: id });
  const frame = (now) => {
    if (get('replay') !== id) return;
    const at = t0 + Math.min(span, (now - started) * 60);
    let i = 0;
    while (i < times.length - 2 && times[i + 1] < at) i++;
    const f2 = times[i + 1] > times[i] ? Math.min(1, Math.max(0, (at - times[i]) / (times[i + 1] - times[i]))) : 0;
    const [a, b] = [coords[i], coords[Math.min(i + 1, coords.length - 1)]];
    const p = [a[0] + (b[0] - a[0]) * f2, a[1] + (b[1] - a[1]) * f2];
    map.getSource('trace-head').setData({ type: 'Feature', geometry: { type: 'Point', coordinates: p }, properties: {} });
    window.sgReplayAt = at;
    if (at < t0 + span) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
