// Live units and their traces: units with a fix, drawn from /api/v1/positions/live and coloured
// by freshness, refreshed every few seconds; a unit's last hour replayed on the map.

import { api } from '/web/js/api.js';
import { canRead, isOn } from '/web/js/layers.js';
import { signOut } from '/web/js/signin.js';
import { get, set } from '/web/js/state.js';

const FRESH_COLOURS = ['match', ['get', 'freshness'], 'live', '#22c55e', 'stale', '#f59e0b', 'lost', '#6b7280', '#94a3b8'];
const LIVE_EVERY_MS = 3000;

/** The live units' and traces' sources and layers, then a refresh every few seconds. */
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
  refreshLive();
  setInterval(refreshLive, LIVE_EVERY_MS);
}

/** Fetches the live units (while responders are shown). */
export async function refreshLive() {
  const map = get('map');
  const src = map && map.getSource('live');
  if (!src || !isOn('responders')) return;
  const r = await api('/api/v1/positions/live?freshness=live,stale,lost');
  if (r.status === 401) return signOut();
  if (!r.ok) return;
  const body = await r.json();
  // Flat properties: MapLibre expressions read top-level values.
  for (const f of body.features) {
    const fix = f.properties.fix || {};
    Object.assign(f.properties, { id: f.id, speed_mps: fix.speed_mps, battery_pct: fix.battery_pct });
    delete f.properties.fix;
    delete f.properties.capabilities;
  }
  src.setData(body);
  set({ callsigns: Object.fromEntries(body.features.map((f) => [f.id, f.properties.callsign])) });
  window.sgLiveCount = body.features.length;
}

/** Draws a unit's last hour and runs a marker along it, sixty times faster than it happened. */
export async function replayTrace(id) {
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const r = await api(`/api/v1/responders/${id}/trace?since=${encodeURIComponent(since)}&simplify_m=2`);
  if (!r.ok) return;
  const f = await r.json();
  const map = get('map');
  if (!f.geometry || f.geometry.type !== 'LineString') {
    map.getSource('trace').setData({ type: 'FeatureCollection', features: [] });
    return;
  }
  map.getSource('trace').setData(f);
  const coords = f.geometry.coordinates;
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
