// The dispatch-centre map wall. Everything it loads comes from this safegrid server: the page,
// MapLibre GL JS (vendored), the tiles and the API. It signs in with a bearer token and asks
// only for the layers the token's role may read (GET /api/v1/whoami), so what a role may not
// read is neither fetched nor shown.

import { Map as MapLibre, Popup, NavigationControl, ScaleControl, AttributionControl } from '/web/vendor/maplibre-gl/maplibre-gl.mjs';
import { STRINGS, initialLanguage } from '/web/i18n.js';

const $ = (id) => document.getElementById(id);
let lang = initialLanguage();
const t = (key) => (STRINGS[lang] && STRINGS[lang][key]) || key;

/** Text for HTML: every value shown in a popup comes from data that users typed. */
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// Colours of the point layers (also the legend swatches).
const COLOURS = {
  incidents: '#ff4d4f',
  rental_housing: '#a78bfa',
  posts: '#4cc2ff',
  responders: '#2ecc71',
  key_personnel: '#ff66c4',
};
const POINT_LAYERS = ['rental_housing', 'posts', 'responders', 'key_personnel', 'incidents'];
// Their icons in the sprite, drawn from this zoom on (circles and clusters below).
const ICONS = { incidents: 'incident', rental_housing: 'rental_housing', posts: 'post', responders: 'responder', key_personnel: 'key_personnel' };
const ICONS_FROM = 15;
// Chinese characters are drawn by the browser from these fonts unless the server has the glyphs
// (style metadata safegrid:server-ideographs); README: the wall machine needs fonts-noto-cjk.
const LOCAL_CJK_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif";
// Incidents as hexbins below this zoom (when hexbins are on), as clusters and points above.
const HEXBIN_UNTIL = 12;

/** The origins of everything MapLibre has loaded (window.sgRequestedOrigins, for tests). */
const requestedOrigins = new Set();
window.sgRequestedOrigins = requestedOrigins;

const state = {
  token: sessionStorage.getItem('sg.token') || '',
  me: null,
  map: null,
  versions: {},
  days: 30,
  hexbins: true,
  visible: new Set(['grids', 'incidents', 'posts', 'responders']),
  feed: null,
  base: null,
  styleReady: false,
};

function applyLanguage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of document.querySelectorAll('[data-t-title]')) el.title = t(el.dataset.tTitle);
  $('lang').textContent = t('language');
  if (state.styleReady) {
    for (const id of ['bm-road-name', 'bm-poi', 'bm-place']) {
      if (state.map.getLayer(id)) state.map.setLayoutProperty(id, 'text-field', labelField());
    }
  }
  if (state.me) {
    $('who').textContent = `${state.me.name} · ${state.me.role}`;
    buildSwitches();
    refreshStats();
  }
}

async function api(path, init = {}) {
  const headers = Object.assign({}, init.headers || {}, { Authorization: `Bearer ${state.token}` });
  return fetch(path, Object.assign({}, init, { headers }));
}

// ---- sign-in ---------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token.trim();
  const r = await api('/api/v1/whoami');
  const me = r.ok ? await r.json() : null;
  // What the caller may do is the server's to say (whoami, from its access policy).
  if (!me || !me.may_read_wall) {
    $('signin_error').textContent = me ? t('public_only') : t('signin_failed');
    $('signin').hidden = false;
    return;
  }
  sessionStorage.setItem('sg.token', state.token);
  state.me = me;
  $('signin').hidden = true;
  $('panel').hidden = false;
  $('signout').hidden = false;
  applyLanguage();
  await startMap();
  startFeed();
  if (state.me.may_read_dispatches) {
    refreshDispatches();
    setInterval(refreshDispatches, DISPATCH_EVERY_MS);
  }
}

function signOut() {
  sessionStorage.removeItem('sg.token');
  location.reload();
}

// ---- the map ---------------------------------------------------------------------------------

/** Tile URL for a set of layers, with the time window and a version to defeat stale caches. */
function tileUrl(layers, extra = '') {
  const since = new Date(Date.now() - state.days * 86400e3).toISOString();
  const v = layers.map((l) => state.versions[l === 'incidents_h3' ? 'incidents' : l] || '0').join('.');
  // The time window applies to incidents only (other layers have no report time).
  const filters = layers.every((l) => l.startsWith('incidents')) ? `since=${encodeURIComponent(since)}&` : '';
  return `${location.origin}/tiles/${layers.join(',')}/{z}/{x}/{y}.mvt?${filters}${extra}v=${v}`;
}

function readableLayers() {
  return POINT_LAYERS.filter((l) => state.me.layers.includes(l));
}

/**
 * The readable point layers that share one source: not incidents (their own source, with the
 * time window) and not key personnel. Key personnel have their own source so that their tiles,
 * each read audited, are fetched only while their switch is on (MapLibre loads no tiles for a
 * source whose layers are all hidden).
 */
function others() {
  return readableLayers().filter((l) => l !== 'incidents' && l !== 'key_personnel');
}

/** The source a point layer draws from. */
function sourceOf(l) {
  return l === 'incidents' || l === 'key_personnel' ? l : 'points';
}

/** Basemap labels in the wall's language: Chinese names, or English where OSM has them. */
function labelField() {
  return lang === 'en'
    ? ['coalesce', ['get', 'name_en'], ['get', 'name'], ['get', 'ref']]
    : ['coalesce', ['get', 'name'], ['get', 'name_en'], ['get', 'ref']];
}

/**
 * The wall's style: the server's basemap style (GET /basemap/style.json: background, OSM
 * layers, glyphs and sprite) with the data layers on top.
 */
function style() {
  const base = state.base;
  const font = [base.metadata['safegrid:font']];
  const points = readableLayers();
  const layers = base.layers.map((l) => (l.layout && l.layout['text-field'] ? { ...l, layout: { ...l.layout, 'text-field': labelField() } } : l));
  // Over a basemap the grids are a tint, so the streets beneath stay readable.
  const tint = base.sources.basemap ? 0.3 : 0.6;
  layers.push(
    { id: 'grids-fill', type: 'fill', source: 'grids', 'source-layer': 'grids',
      paint: { 'fill-color': ['match', ['get', 'level'], 'district', '#132340', '#10203a'], 'fill-opacity': tint } },
    { id: 'grids-line', type: 'line', source: 'grids', 'source-layer': 'grids',
      paint: { 'line-color': ['match', ['get', 'level'], 'district', '#4cc2ff', '#2d5a88'],
               'line-width': ['match', ['get', 'level'], 'district', 1.6, 0.7] } },
    { id: 'grids-hover', type: 'line', source: 'grids', 'source-layer': 'grids',
      paint: { 'line-color': '#ffffff', 'line-width': 2 }, filter: ['==', ['get', 'code'], ''] },
    // District names at low zoom, grid codes from z13 (what a dispatcher reads out on the radio).
    { id: 'grids-label', type: 'symbol', source: 'grids', 'source-layer': 'grids',
      layout: { 'text-field': ['case', ['==', ['get', 'level'], 'grid'], ['get', 'code'], ['get', 'name']],
                'text-font': font, 'text-size': ['case', ['==', ['get', 'level'], 'grid'], 11, 15] },
      paint: { 'text-color': ['case', ['==', ['get', 'level'], 'grid'], '#6f93c0', '#9fc4ff'],
               'text-halo-color': '#0b1220', 'text-halo-width': 1.5 },
      filter: ['any', ['!=', ['get', 'level'], 'grid'], ['>=', ['zoom'], 13]] },
  );
  if (state.me.layers.includes('incidents')) {
    layers.push({ id: 'incidents_h3', type: 'fill', source: 'hexbins', 'source-layer': 'incidents_h3', maxzoom: HEXBIN_UNTIL,
      paint: { 'fill-color': ['interpolate', ['linear'], ['get', 'count'], 1, '#3b1d2e', 10, '#8c2a3c', 50, '#ff4d4f', 200, '#ffd93d'],
               'fill-opacity': 0.75 } });
  }
  for (const l of points) {
    const base = { source: sourceOf(l), 'source-layer': l };
    // A cluster is a point with point_count: bigger for more.
    layers.push({ id: l, type: 'circle', ...base,
      paint: {
        'circle-color': COLOURS[l],
        'circle-radius': ['case', ['has', 'point_count'],
          ['interpolate', ['linear'], ['get', 'point_count'], 2, 6, 100, 14, 1000, 24], l === 'incidents' ? 4 : 3.5],
        'circle-opacity': ['case', ['has', 'point_count'], 0.55, 0.9],
        'circle-stroke-color': '#0b1220', 'circle-stroke-width': 1,
      } });
    if (l === 'incidents') {
      // Priority 1 glows.
      layers.push({ id: 'incidents-p1', type: 'circle', ...base, filter: ['==', ['get', 'priority'], 1],
        paint: { 'circle-color': 'rgba(0,0,0,0)', 'circle-radius': 8, 'circle-stroke-color': '#ff4d4f', 'circle-stroke-width': 1.5 } });
    }
  }
  // Close in, single items are icons (clusters stay circles with their counts).
  for (const l of points) {
    layers.push({ id: `${l}-icon`, type: 'symbol', source: sourceOf(l), 'source-layer': l, minzoom: ICONS_FROM,
      filter: ['!', ['has', 'point_count']],
      layout: { 'icon-image': ICONS[l], 'icon-allow-overlap': true, 'icon-size': 0.9 } });
  }
  // Visibility is set in the style itself, not after loading: MapLibre would otherwise fetch
  // tiles for every layer once before the switches hide them (audited reads, for key personnel).
  for (const layer of layers) {
    const owner = layerOwner(layer.id);
    if (owner) layer.layout = { ...(layer.layout || {}), visibility: isShown(owner, layer.id) ? 'visible' : 'none' };
  }
  return {
    version: 8,
    glyphs: base.glyphs,
    sprite: base.sprite,
    layers,
    sources: {
      ...base.sources,
      grids: { type: 'vector', tiles: [tileUrl(['grids'])], maxzoom: 16 },
      ...(others().length ? { points: { type: 'vector', tiles: [tileUrl(others())], maxzoom: 16 } } : {}),
      ...(state.me.layers.includes('key_personnel')
        ? { key_personnel: { type: 'vector', tiles: [tileUrl(['key_personnel'])], maxzoom: 16 } } : {}),
      ...(state.me.layers.includes('incidents') ? {
        incidents: { type: 'vector', tiles: [tileUrl(['incidents'])], maxzoom: 16 },
        hexbins: { type: 'vector', tiles: [tileUrl(['incidents_h3'])], maxzoom: HEXBIN_UNTIL },
      } : {}),
    },
  };
}

async function startMap() {
  const [tj, base] = await Promise.all([
    api('/tiles/grids.json').then((r) => r.json()),
    api('/basemap/style.json').then((r) => r.json()),
  ]);
  state.base = base;
  const map = new MapLibre({
    container: 'map',
    style: style(),
    localIdeographFontFamily: base.metadata['safegrid:server-ideographs'] ? false : LOCAL_CJK_FONTS,
    bounds: tj.bounds,
    fitBoundsOptions: { padding: 40 },
    // Added below, on the left: the side panel covers the right-hand corners.
    attributionControl: false,
    // Every URL MapLibre loads passes here first (tiles too, which its worker then fetches):
    // tiles need the token, and the hosts are noted so a test can prove there is only this one.
    transformRequest: (url) => {
      requestedOrigins.add(new URL(url, location.href).origin);
      return url.startsWith(location.origin) ? { url, headers: { Authorization: `Bearer ${state.token}` } } : { url };
    },
  });
  state.map = map;
  window.sgMap = map;
  map.addControl(new NavigationControl(), 'top-left');
  map.addControl(new ScaleControl(), 'bottom-left');
  // The basemap's licence (ODbL) asks for its attribution to be shown: always open.
  map.addControl(new AttributionControl({ compact: false, customAttribution: 'safegrid' }), 'bottom-left');
  map.on('load', () => {
    state.styleReady = true;
    addLiveLayers(map);
    applyVisibility();
    map.once('idle', () => { window.sgReady = true; });
  });
  map.on('mousemove', 'grids-fill', (e) => {
    const f = e.features && e.features[0];
    if (!f) return;
    $('hover').hidden = false;
    $('hover').textContent = `${f.properties.code} ${f.properties.name}`;
    map.setFilter('grids-hover', ['==', ['get', 'code'], f.properties.code]);
  });
  map.on('mouseleave', 'grids-fill', () => {
    $('hover').hidden = true;
    map.setFilter('grids-hover', ['==', ['get', 'code'], '']);
  });
  map.on('click', onClick);
  // A tile or style that fails to load is an error an engineer must see.
  map.on('error', (e) => console.error('map error:', (e.error && e.error.message) || e));
}

/** Which switch a style layer belongs to. */
function layerOwner(id) {
  if (id.startsWith('grids')) return 'grids';
  if (id.startsWith('incidents')) return 'incidents';
  const l = id.replace(/-icon$/, '');
  return POINT_LAYERS.includes(l) ? l : null;
}

function isShown(owner, id) {
  return state.visible.has(owner) && (id !== 'incidents_h3' || state.hexbins);
}

function applyVisibility() {
  const map = state.map;
  // Not isStyleLoaded(): that is false while any tile loads, and a switch flipped then would be
  // lost. The style's layers exist from 'load' on.
  if (!map || !state.styleReady) return;
  const show = (id, on) => map.getLayer(id) && map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  for (const id of ['grids-fill', 'grids-line', 'grids-hover', 'grids-label']) show(id, state.visible.has('grids'));
  for (const l of readableLayers()) {
    show(l, state.visible.has(l));
    show(`${l}-icon`, state.visible.has(l));
  }
  show('incidents-p1', state.visible.has('incidents'));
  show('live-units', state.visible.has('responders'));
  show('live-label', state.visible.has('responders'));
  show('incidents_h3', state.visible.has('incidents') && state.hexbins);
  // With hexbins on, incident points start where the hexbins stop.
  if (map.getLayer('incidents')) {
    const from = state.hexbins ? HEXBIN_UNTIL : 0;
    map.setLayerZoomRange('incidents', from, 24);
    map.setLayerZoomRange('incidents-p1', from, 24);
  }
}

/** Point a source at fresh tiles (new data version or time window). */
function refreshSource(id, layers) {
  const src = state.map && state.map.getSource(id);
  if (src) src.setTiles([tileUrl(layers)]);
}

function refreshAll() {
  refreshSource('grids', ['grids']);
  refreshSource('points', others());
  refreshSource('incidents', ['incidents']);
  refreshSource('hexbins', ['incidents_h3']);
  refreshSource('key_personnel', ['key_personnel']);
}

// ---- clicks: an item's details, or which grid a place is in ------------------------------------

const LABELS = { type: 'type', priority: 'priority', status: 'status', reported_at: 'reported_at', code: 'code',
  name: 'name', level: 'level', manager: 'manager', grid_code: 'grids' };

function table(rows) {
  return `<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

async function onClick(e) {
  const map = state.map;
  const pointIds = readableLayers().flatMap((l) => [l, `${l}-icon`]).filter((id) => map.getLayer(id) && state.visible.has(layerOwner(id)));
  const hit = map.queryRenderedFeatures(e.point, { layers: pointIds })[0];
  let html;
  const unit = map.getLayer('live-units') && map.queryRenderedFeatures(e.point, { layers: ['live-units'] })[0];
  const finding = !hit && !unit && $('audit').checked && map.getLayer('audit-fill') && map.queryRenderedFeatures(e.point, { layers: ['audit-fill'] })[0];
  if (finding) {
    new Popup({ maxWidth: '28rem' }).setLngLat(e.lngLat).setHTML(`<div class="popup">${auditHtml(finding)}</div>`).addTo(map);
    return;
  }
  if (unit) {
    new Popup({ maxWidth: '28rem' }).setLngLat(e.lngLat).setHTML(`<div class="popup">${unitHtml(unit)}</div>`).addTo(map);
    return;
  }
  if (hit) {
    const p = hit.properties;
    if (p.point_count) {
      html = `<h3>${esc(t(hit.sourceLayer))} · ${esc(t('cluster'))}</h3>${esc(p.point_count)} ${esc(t('items'))}`;
    } else {
      const rows = Object.entries(p).map(([k, v]) => [t(LABELS[k] || k), v]);
      html = `<h3>${esc(t(hit.sourceLayer))} #${esc(hit.id)}</h3>${table(rows)}`;
      // An open incident: the units that would get there first, each with a dispatch button.
      if (hit.sourceLayer === 'incidents' && p.status !== 'closed' && canRead('responders')) {
        html += await suggestions(e.lngLat, hit.id);
      }
    }
  } else {
    html = await whichGrid(e.lngLat);
    if (canRead('responders')) html += await suggestions(e.lngLat, null);
  }
  new Popup({ maxWidth: '28rem' }).setLngLat(e.lngLat).setHTML(`<div class="popup">${html}</div>`).addTo(map);
}

async function whichGrid(at) {
  const r = await api(`/api/v1/locate?lon=${at.lng.toFixed(6)}&lat=${at.lat.toFixed(6)}`);
  if (!r.ok) return `<h3>${esc(t('error'))}</h3>${esc(r.status)}`;
  const body = await r.json();
  const unitRows = (u) => [[t('code'), u.code], [t('name'), u.name],
    [t('manager'), u.manager ? `${u.manager.name || ''} ${u.manager.phone || ''}` : '—']];
  if (body.inside) {
    const chain = (body.chain || []).map((u) => u.name).join(' › ');
    return `<h3>${esc(t('which_grid'))}</h3><div class="grid-code">${esc(body.grid.code)}</div>${table(unitRows(body.grid))}<div>${esc(chain)}</div>`;
  }
  if (body.nearest) {
    return `<h3>${esc(t('outside'))}</h3>${table([...unitRows(body.nearest.grid), [t('distance'), `${body.nearest.distance_m} m`]])}`;
  }
  return `<h3>${esc(t('outside'))}</h3>`;
}

// ---- live units, traces and dispatch ----------------------------------------------------------

const FRESH_COLOURS = ['match', ['get', 'freshness'], 'live', '#22c55e', 'stale', '#f59e0b', 'lost', '#6b7280', '#94a3b8'];
const LIVE_EVERY_MS = 3000;

function canRead(layer) {
  return readableLayers().includes(layer);
}

/** Units with a fix, drawn from /api/v1/positions/live and refreshed every few seconds. */
function addLiveLayers(map) {
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
    layout: { 'text-field': ['get', 'callsign'], 'text-font': [state.base.metadata['safegrid:font']], 'text-size': 11, 'text-offset': [0, 1.2] },
    paint: { 'text-color': '#e2e8f0', 'text-halo-color': '#0f172a', 'text-halo-width': 1 },
  });
  map.addLayer({ id: 'trace-head', type: 'circle', source: 'trace-head', paint: { 'circle-radius': 7, 'circle-color': '#38bdf8', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
  refreshLive();
  setInterval(refreshLive, LIVE_EVERY_MS);
}

async function refreshLive() {
  const src = state.map && state.map.getSource('live');
  if (!src || !state.visible.has('responders')) return;
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
  state.callsigns = Object.fromEntries(body.features.map((f) => [f.id, f.properties.callsign]));
  window.sgLiveCount = body.features.length;
}

function unitHtml(f) {
  const p = f.properties;
  const rows = [[t('status'), p.status], [t('freshness'), t(`fresh_${p.freshness}`)], [t('age'), p.age_s], [t('grids'), p.grid_code || '—']];
  if (p.speed_mps !== undefined && p.speed_mps !== null) rows.push(['km/h', Math.round(p.speed_mps * 3.6)]);
  return `<h3>${esc(p.callsign)}</h3>${table(rows)}<button type="button" data-trace="${esc(p.id)}">${esc(t('replay'))}</button>`;
}

/** The five units that would arrive first, by road time; with dispatch buttons for an incident. */
async function suggestions(at, incidentId) {
  const r = await api(`/api/v1/dispatch/nearest?lon=${at.lng.toFixed(6)}&lat=${at.lat.toFixed(6)}&k=5`);
  if (!r.ok) return '';
  const body = await r.json();
  if (!body.features.length) return `<h4>${esc(t('suggested'))}</h4><p>${esc(t('none_available'))}</p>`;
  const rows = body.features.map((u) => {
    const p = u.properties;
    const eta = `${(p.eta_s / 60).toFixed(1)} ${t('minutes')} · ${t(p.eta_source)}`;
    const button = incidentId !== null && mayDispatch() ? `<button type="button" data-dispatch="${esc(u.id)}" data-incident="${esc(incidentId)}">${esc(t('dispatch'))}</button>` : '';
    return `<tr><td>${esc(p.callsign)}</td><td>${esc(eta)}</td><td>${esc(Math.round(p.distance_m))} m</td><td>${button}</td></tr>`;
  });
  return `<h4 class="suggested">${esc(t('suggested'))}</h4><table class="suggested">${rows.join('')}</table><p class="dispatch-result"></p>`;
}

// Buttons inside popups: one listener for all (the page's CSP allows no inline handlers).
document.addEventListener('click', async (e) => {
  const b = e.target.closest && e.target.closest('button[data-dispatch], button[data-trace]');
  if (!b) return;
  if (b.dataset.trace) return replayTrace(Number(b.dataset.trace));
  b.disabled = true;
  const r = await api('/api/v1/dispatches', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ incident_id: Number(b.dataset.incident), units: [Number(b.dataset.dispatch)] }),
  });
  const body = await r.json().catch(() => ({}));
  const out = b.closest('.popup').querySelector('.dispatch-result');
  if (out) out.textContent = r.ok ? `${t('dispatched_ok')} #${body.id}` : `${t('error')}: ${body.detail || r.status}`;
  refreshLive();
  refreshDispatches();
});

/** Draws a unit's last hour and runs a marker along it, sixty times faster than it happened. */
async function replayTrace(id) {
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const r = await api(`/api/v1/responders/${id}/trace?since=${encodeURIComponent(since)}&simplify_m=2`);
  if (!r.ok) return;
  const f = await r.json();
  const map = state.map;
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
  state.replay = id;
  const frame = (now) => {
    if (state.replay !== id) return;
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

// ---- open dispatches: steps, deadline alarms, next-step buttons ---------------------------------

const STEPS = ['dispatched', 'acknowledged', 'en_route', 'on_scene', 'cleared'];
const DISPATCH_EVERY_MS = 5000;

function mayDispatch() {
  return Boolean(state.me && state.me.may_dispatch);
}

async function refreshDispatches() {
  if (!state.me) return;
  const r = await api('/api/v1/dispatches?open=true&limit=20');
  if (!r.ok) return;
  const body = await r.json();
  $('dispatch-panel').hidden = false;
  const box = $('dispatches');
  if (!body.dispatches.length) {
    box.innerHTML = `<p class="muted">${esc(t('no_dispatches'))}</p>`;
    return;
  }
  box.innerHTML = body.dispatches.map((d) => {
    const units = Object.values(d.units).map((a) => {
      const name = (state.callsigns && state.callsigns[a.unit_id]) || `#${a.unit_id}`;
      const alarms = a.alarms.map((k) => `<span class="alarm">${esc(t(k))}</span>`).join(' ');
      const next = STEPS[STEPS.indexOf(a.step) + 1];
      const button = next && mayDispatch()
        ? `<button type="button" data-step="${esc(next)}" data-d="${esc(d.id)}" data-u="${esc(a.unit_id)}">${esc(t(`next_${next}`))}</button>` : '';
      return `<li>${esc(name)} · ${esc(t(`step_${a.step}`))} ${alarms} ${button}</li>`;
    }).join('');
    return `<div class="dispatch" data-id="${esc(d.id)}"><strong>#${esc(d.id)}</strong> ${esc(t('incident'))} #${esc(d.incident_id)} · ${esc(d.grid_code || '')}<ul>${units}</ul></div>`;
  }).join('');
}

document.addEventListener('click', async (e) => {
  const b = e.target.closest && e.target.closest('button[data-step]');
  if (!b) return;
  b.disabled = true;
  await api(`/api/v1/dispatches/${b.dataset.d}/units/${b.dataset.u}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ step: b.dataset.step }),
  });
  refreshDispatches();
});

// ---- the audit overlay: grids coloured by the coverage audit of the live layer -----------------

const AUDIT_COLOURS = ['match', ['get', 'severity'], 'error', '#dc2626', 'warning', '#f59e0b', '#a855f7'];

/** Shows or hides the audit: every grid green, then each finding (a gap, an overlap, a grid
 * with no worker…) over it in red (fails the layer) or amber (a sliver or a warning). */
async function toggleAudit(on) {
  const map = state.map;
  if (!map || !state.styleReady) return;
  const summary = $('audit-summary');
  if (!on) {
    for (const id of ['audit-fill', 'audit-line']) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'none');
    if (map.getLayer('grids-fill')) map.setPaintProperty('grids-fill', 'fill-color', state.gridsFill);
    summary.hidden = true;
    return;
  }
  const r = await api('/api/v1/audit/geometry?format=geojson');
  if (r.status === 401) return signOut();
  if (!r.ok) {
    summary.hidden = false;
    summary.textContent = `${t('error')} ${r.status}`;
    return;
  }
  const fc = await r.json();
  // Switched off while the audit was on its way: show nothing.
  if (!$('audit').checked) return;
  fc.features.forEach((f, i) => { f.properties.n = i + 1; f.properties.grids = (f.properties.grids || []).join(', '); });
  if (!map.getSource('audit')) {
    map.addSource('audit', { type: 'geojson', data: fc });
    map.addLayer({ id: 'audit-fill', type: 'fill', source: 'audit', paint: { 'fill-color': AUDIT_COLOURS, 'fill-opacity': 0.55 } });
    map.addLayer({ id: 'audit-line', type: 'line', source: 'audit', paint: { 'line-color': AUDIT_COLOURS, 'line-width': 2 } });
  } else {
    map.getSource('audit').setData(fc);
  }
  for (const id of ['audit-fill', 'audit-line']) map.setLayoutProperty(id, 'visibility', 'visible');
  if (map.getLayer('grids-fill')) {
    state.gridsFill = state.gridsFill || map.getPaintProperty('grids-fill', 'fill-color');
    map.setPaintProperty('grids-fill', 'fill-color', '#16a34a');
  }
  const s = fc.summary || { errors: 0, warnings: 0 };
  summary.hidden = false;
  summary.className = fc.passed ? 'audit-pass' : 'audit-fail';
  summary.textContent = `${t(fc.passed ? 'audit_passed' : 'audit_failed')}: ${s.errors} ${t('audit_errors')}, ${s.warnings} ${t('audit_warnings')}`;
  window.sgAudit = { passed: fc.passed, findings: fc.features.length };
}

function auditHtml(f) {
  const p = f.properties;
  const area = p.area_m2 ? ` · ${Math.round(p.area_m2).toLocaleString()} m²` : '';
  return `<h3>#${esc(p.n)} ${esc(p.kind)} (${esc(p.severity)})</h3><p>${esc(p.message)}${esc(area)}</p>`;
}

// ---- side panel: switches and statistics -------------------------------------------------------

function buildSwitches() {
  const box = $('switches');
  box.textContent = '';
  for (const l of ['grids', ...readableLayers()]) {
    const label = document.createElement('label');
    const input = Object.assign(document.createElement('input'), { type: 'checkbox', checked: state.visible.has(l) });
    input.dataset.layer = l;
    input.addEventListener('change', () => {
      if (input.checked) state.visible.add(l); else state.visible.delete(l);
      applyVisibility();
    });
    const sw = Object.assign(document.createElement('span'), { className: 'swatch' });
    sw.style.background = COLOURS[l] || '#2d5a88';
    label.append(input, sw, document.createTextNode(t(l)));
    box.append(label);
  }
}

async function refreshStats() {
  const r = await api('/api/v1/stats');
  if (!r.ok) return;
  const s = await r.json();
  const o = s.open_incidents;
  const rows = (list) => list.map((d) => `<tr><td>${esc(d.name || d.code || '—')}</td><td>${esc(d.code)}</td><td class="n">${esc(d.open)}</td></tr>`).join('');
  $('stats').innerHTML = `
    <div>${esc(t('open_incidents'))}: <span class="big" id="open_total">${esc(o.total)}</span></div>
    <table><tr><th colspan="2">${esc(t('by_priority'))}</th></tr>
      ${[1, 2, 3, 4].map((p) => `<tr><td class="p${p}">${esc(t('priority'))} ${p}</td><td class="n">${esc(o.by_priority[p])}</td></tr>`).join('')}
    </table>
    <table><tr><th colspan="3">${esc(t('by_district'))}</th></tr>${rows(o.by_district)}</table>
    <table><tr><th colspan="3">${esc(t('top_grids'))}</th></tr>${rows(o.top_grids)}</table>
    <table><tr><th colspan="2">${esc(t('counts'))}</th></tr>
      ${Object.entries(s.counts).map(([k, v]) => `<tr><td>${esc(t(k))}</td><td class="n">${esc(v)}</td></tr>`).join('')}
    </table>`;
}

// ---- live updates: server-sent events read through fetch, so the token goes in a header --------

async function startFeed() {
  for (;;) {
    try {
      const r = await api('/api/v1/events', { headers: { Accept: 'text/event-stream' } });
      if (r.status === 401) return signOut();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      $('live').classList.add('on');
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          if (block.includes('event: versions') && data) onVersions(JSON.parse(data));
        }
      }
    } catch (err) {
      console.warn('event feed interrupted; reconnecting', err);
    }
    $('live').classList.remove('on');
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

function onVersions(v) {
  const changed = Object.keys(v).filter((k) => state.versions[k] !== v[k]);
  const first = Object.keys(state.versions).length === 0;
  state.versions = v;
  if (first || changed.length === 0) return;
  if (changed.includes('grids')) {
    refreshSource('grids', ['grids']);
    if ($('audit').checked) toggleAudit(true);
  }
  if (changed.some((k) => others().includes(k))) refreshSource('points', others());
  if (changed.includes('key_personnel')) refreshSource('key_personnel', ['key_personnel']);
  if (changed.includes('incidents')) {
    refreshSource('incidents', ['incidents']);
    refreshSource('hexbins', ['incidents_h3']);
  }
  if (changed.includes('incidents') || changed.includes('grids')) refreshStats();
}

// ---- start -----------------------------------------------------------------------------------

$('lang').addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('sg.lang', lang);
  applyLanguage();
});
$('signout').addEventListener('click', signOut);
$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('token').value);
});
$('window').addEventListener('input', () => {
  state.days = Number($('window').value);
  $('days').textContent = state.days;
});
$('window').addEventListener('change', refreshAll);
$('audit').addEventListener('change', () => toggleAudit($('audit').checked));

$('hexbins').addEventListener('change', () => {
  state.hexbins = $('hexbins').checked;
  applyVisibility();
});
$('days').textContent = state.days;
applyLanguage();
if (state.token) signIn(state.token); else $('signin').hidden = false;
setInterval(() => state.me && refreshStats(), 30000);
