// The MapLibre map and its sources: the server's basemap style with the wall's tile sources
// (built from the layers whoami says the caller may read) and layers on top; the token on every
// request to this server; hover and clicks.

import { Map as MapLibre, NavigationControl, ScaleControl, AttributionControl } from '/web/vendor/maplibre-gl/maplibre-gl.mjs';
import { api } from '/web/js/api.js';
import { $ } from '/web/js/dom.js';
import { applyVisibility, HEXBIN_UNTIL, others, shownStatuses, styleLayers } from '/web/js/layers.js';
import { onClick } from '/web/js/popups.js';
import { get, set } from '/web/js/state.js';
import { addLiveLayers } from '/web/js/units.js';

// Chinese characters are drawn by the browser from these fonts unless the server has the glyphs
// (style metadata safegrid:server-ideographs); README: the wall machine needs fonts-noto-cjk.
const LOCAL_CJK_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif";

/** The origins of everything MapLibre has loaded: a record for the browser test, not state. */
const requestedOrigins = new Set();
window.sgRequestedOrigins = requestedOrigins;

/** The start of the wall's time window (its slider, in days), as the server reads it. */
export function windowStart() {
  return new Date(Date.now() - get('days') * 86400e3).toISOString();
}

/**
 * Tile URL for a set of layers, with the time window and the states shown (incidents only:
 * other layers have no report time), and a version to defeat stale caches.
 */
function tileUrl(layers, extra = '') {
  const versions = get('versions');
  const v = layers.map((l) => versions[l === 'incidents_h3' ? 'incidents' : l] || '0').join('.');
  const filters = layers.every((l) => l.startsWith('incidents'))
    ? `since=${encodeURIComponent(windowStart())}&status=${shownStatuses().join(',')}&` : '';
  return `${location.origin}/tiles/${layers.join(',')}/{z}/{x}/{y}.mvt?${filters}${extra}v=${v}`;
}

/**
 * The wall's style: the server's basemap style (GET /basemap/style.json: background, OSM
 * layers, glyphs and sprite) with the data sources and layers on top.
 */
function style() {
  const base = get('base');
  const me = get('me');
  return {
    version: 8,
    glyphs: base.glyphs,
    sprite: base.sprite,
    layers: styleLayers(base),
    sources: {
      ...base.sources,
      grids: { type: 'vector', tiles: [tileUrl(['grids'])], maxzoom: 16 },
      ...(others().length ? { points: { type: 'vector', tiles: [tileUrl(others())], maxzoom: 16 } } : {}),
      ...(me.layers.includes('key_personnel')
        ? { key_personnel: { type: 'vector', tiles: [tileUrl(['key_personnel'])], maxzoom: 16 } } : {}),
      ...(me.layers.includes('incidents') ? {
        incidents: { type: 'vector', tiles: [tileUrl(['incidents'])], maxzoom: 16 },
        hexbins: { type: 'vector', tiles: [tileUrl(['incidents_h3'])], maxzoom: HEXBIN_UNTIL },
      } : {}),
    },
  };
}

/** Makes the map (once signed in). */
export async function startMap() {
  const [tj, base] = await Promise.all([
    api('/tiles/grids.json').then((r) => r.json()),
    api('/basemap/style.json').then((r) => r.json()),
  ]);
  set({ base });
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
      return url.startsWith(location.origin) ? { url, headers: { Authorization: `Bearer ${get('token')}` } } : { url };
    },
  });
  set({ map });
  window.sgMap = map;
  map.addControl(new NavigationControl(), 'top-left');
  map.addControl(new ScaleControl(), 'bottom-left');
  // The basemap's licence (ODbL) asks for its attribution to be shown: always open.
  map.addControl(new AttributionControl({ compact: false, customAttribution: 'safegrid' }), 'bottom-left');
  map.on('load', () => {
    set({ styleReady: true });
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

/** Points a source at fresh tiles (new data version or time window). */
export function refreshSource(id, layers) {
  const map = get('map');
  const src = map && map.getSource(id);
  if (src) src.setTiles([tileUrl(layers)]);
}

/** The incidents' sources at fresh tiles (the states shown changed). */
export function refreshIncidents() {
  refreshSource('incidents', ['incidents']);
  refreshSource('hexbins', ['incidents_h3']);
}

/** Flies to a place, close enough to tell one incident from the next. */
export function flyTo(lon, lat) {
  const map = get('map');
  if (map) map.flyTo({ center: [lon, lat], zoom: Math.max(map.getZoom(), 16), duration: 800 });
}

/** Every data source at fresh tiles (the time window changed). */
export function refreshAll() {
  refreshSource('grids', ['grids']);
  refreshSource('points', others());
  refreshSource('incidents', ['incidents']);
  refreshSource('hexbins', ['incidents_h3']);
  refreshSource('key_personnel', ['key_personnel']);
}
