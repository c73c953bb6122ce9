// The wall's own style layers (grid tints, outlines and labels, incident hexbins, clusters,
// points and icons), which of them the caller may read (whoami's layers), the layer switches
// and what they show.

import { $, el, t } from '/web/js/dom.js';
import { get, set } from '/web/js/state.js';

// Colours of the point layers (also the switches' swatches).
const COLOURS = {
  incidents: '#ff4d4f',
  rental_housing: '#a78bfa',
  posts: '#4cc2ff',
  responders: '#2ecc71',
  key_personnel: '#ff66c4',
};
const POINT_LAYERS = ['rental_housing', 'posts', 'responders', 'key_personnel', 'incidents'];
/** An incident's colour by its state: waiting red, units sent orange, on scene yellow, closed grey. */
export const INCIDENT_STATES = { open: '#ff4d4f', dispatched: '#ff9f1a', on_scene: '#ffd93d', closed: '#5b6b80' };
/** Reported within this long ago: drawn with a white ring (new). */
const FRESH_MS = 3600e3;
// Their icons in the sprite, drawn from this zoom on (circles and clusters below).
const ICONS = { incidents: 'incident', rental_housing: 'rental_housing', posts: 'post', responders: 'responder', key_personnel: 'key_personnel' };
const ICONS_FROM = 15;
/** Incidents as hexbins below this zoom (when hexbins are on), as clusters and points above. */
export const HEXBIN_UNTIL = 12;

/** The point layers the caller may read (whoami's `layers`). */
export function readableLayers() {
  return POINT_LAYERS.filter((l) => get('me').layers.includes(l));
}

export function canRead(layer) {
  return readableLayers().includes(layer);
}

/**
 * The readable point layers that share one source: not incidents (their own source, with the
 * time window) and not key personnel. Key personnel have their own source so that their tiles,
 * each read audited, are fetched only while their switch is on (MapLibre loads no tiles for a
 * source whose layers are all hidden).
 */
export function others() {
  return readableLayers().filter((l) => l !== 'incidents' && l !== 'key_personnel');
}

/** The source a point layer draws from. */
function sourceOf(l) {
  return l === 'incidents' || l === 'key_personnel' ? l : 'points';
}

/** Basemap labels in the wall's language: Chinese names, or English where OSM has them. */
function labelField() {
  return get('lang') === 'en'
    ? ['coalesce', ['get', 'name_en'], ['get', 'name'], ['get', 'ref']]
    : ['coalesce', ['get', 'name'], ['get', 'name_en'], ['get', 'ref']];
}

/** The basemap's layers, labelled in the wall's language, with the wall's layers on top. */
export function styleLayers(base) {
  const font = [base.metadata['safegrid:font']];
  const me = get('me');
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
  if (me.layers.includes('incidents')) {
    layers.push({ id: 'incidents_h3', type: 'fill', source: 'hexbins', 'source-layer': 'incidents_h3', maxzoom: HEXBIN_UNTIL,
      paint: { 'fill-color': ['interpolate', ['linear'], ['get', 'count'], 1, '#3b1d2e', 10, '#8c2a3c', 50, '#ff4d4f', 200, '#ffd93d'],
               'fill-opacity': 0.75 } });
  }
  for (const l of points) {
    const from = { source: sourceOf(l), 'source-layer': l };
    // A cluster is a point with point_count: bigger for more.
    const single = l === 'incidents' ? incidentRadius() : 3.5;
    layers.push({ id: l, type: 'circle', ...from,
      paint: {
        'circle-color': l === 'incidents' ? incidentColour() : l === 'responders' ? responderColour() : COLOURS[l],
        'circle-radius': ['case', ['has', 'point_count'],
          ['interpolate', ['linear'], ['get', 'point_count'], 2, 6, 100, 14, 1000, 24], single],
        'circle-opacity': ['case', ['has', 'point_count'], 0.55, ['==', ['get', 'status'], 'closed'], 0.35, 0.9],
        'circle-stroke-color': l === 'incidents' ? freshRing() : l === 'responders' ? UNTRACKED : '#0b1220',
        'circle-stroke-width': l === 'incidents' ? ['case', ['has', 'point_count'], 1, 1.5] : 1,
      } });
    if (l === 'incidents') {
      // Priority 1 glows while it is unresolved.
      layers.push({ id: 'incidents-p1', type: 'circle', ...from,
        filter: ['all', ['==', ['get', 'priority'], 1], ['!=', ['get', 'status'], 'closed'], ['!', ['has', 'point_count']]],
        paint: { 'circle-color': 'rgba(0,0,0,0)', 'circle-radius': 10, 'circle-stroke-color': '#ff4d4f', 'circle-stroke-width': 1.5 } });
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
  return layers;
}

/** Incidents by state; clusters keep the layer's red. */
function incidentColour() {
  return ['case', ['has', 'point_count'], INCIDENT_STATES.open,
    ['match', ['get', 'status'], ...Object.entries(INCIDENT_STATES).flat(), INCIDENT_STATES.open]];
}

/** Where responders were entered: a hollow grey ring, never the live layer's green. A tracked
 * unit is drawn by the live layer (coloured by how fresh its fix is) over a dark dot here; an
 * untracked one stays a ring — its position is as registered, not seen. */
function responderColour() {
  return ['case', ['has', 'point_count'], COLOURS.responders, ['==', ['get', 'tracked'], true], '#1f2937', 'rgba(0,0,0,0)'];
}
const UNTRACKED = '#94a3b8';

/** Bigger for more urgent: priority 1 largest. */
function incidentRadius() {
  return ['match', ['get', 'priority'], 1, 7, 2, 5.5, 3, 4.5, 3.5];
}

/**
 * New incidents (reported within the hour) get a white ring. Report times are RFC 3339 in UTC,
 * so they compare as text with the cut-off; the ring is recomputed every minute
 * ({@link refreshFreshRing}).
 */
function freshRing() {
  const cutoff = new Date(Date.now() - FRESH_MS).toISOString().slice(0, 19);
  return ['case', ['all', ['has', 'reported_at'], ['>=', ['slice', ['get', 'reported_at'], 0, 19], cutoff]], '#ffffff', '#0b1220'];
}

/** Moves the "new" cut-off on (the wall calls this every minute). */
export function refreshFreshRing() {
  const map = get('map');
  if (map && get('styleReady') && map.getLayer('incidents')) map.setPaintProperty('incidents', 'circle-stroke-color', freshRing());
}

/** Which switch a style layer belongs to. */
export function layerOwner(id) {
  if (id.startsWith('grids')) return 'grids';
  if (id.startsWith('incidents')) return 'incidents';
  const l = id.replace(/-icon$/, '');
  return POINT_LAYERS.includes(l) ? l : null;
}

/** Whether a switch ('grids' or a point layer) is on. */
export function isOn(layer) {
  return get('visible').includes(layer);
}

function isShown(owner, id) {
  return isOn(owner) && (id !== 'incidents_h3' || get('hexbins'));
}

/** Turns a switch on or off (the state's subscribers then apply it). */
function switchLayer(layer, on) {
  const rest = get('visible').filter((l) => l !== layer);
  set({ visible: Object.freeze(on ? [...rest, layer] : rest) });
}

/** Shows and hides the style's layers as the switches and the hexbin box say. */
export function applyVisibility() {
  const map = get('map');
  // Not isStyleLoaded(): that is false while any tile loads, and a switch flipped then would be
  // lost. The style's layers exist from 'load' on.
  if (!map || !get('styleReady')) return;
  const show = (id, on) => map.getLayer(id) && map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  for (const id of ['grids-fill', 'grids-line', 'grids-hover', 'grids-label']) show(id, isOn('grids'));
  for (const l of readableLayers()) {
    show(l, isOn(l));
    show(`${l}-icon`, isOn(l));
  }
  show('incidents-p1', isOn('incidents'));
  show('live-units', isOn('responders'));
  show('live-label', isOn('responders'));
  show('incidents_h3', isOn('incidents') && get('hexbins'));
  // With hexbins on, incident points start where the hexbins stop.
  if (map.getLayer('incidents')) {
    const from = get('hexbins') ? HEXBIN_UNTIL : 0;
    map.setLayerZoomRange('incidents', from, 24);
    map.setLayerZoomRange('incidents-p1', from, 24);
  }
}

/** Basemap labels in the wall's language, once the style is loaded. */
export function applyLabelLanguage() {
  const map = get('map');
  if (!get('styleReady')) return;
  for (const id of ['bm-road-name', 'bm-poi', 'bm-place']) {
    if (map.getLayer(id)) map.setLayoutProperty(id, 'text-field', labelField());
  }
}

/** The switches in the side panel: grids, then every readable point layer; under incidents,
 * the legend of their states and the switch that brings closed ones back. */
export function buildSwitches() {
  const switches = ['grids', ...readableLayers()].map((l) => el('label', {},
    el('input', { type: 'checkbox', checked: isOn(l), dataset: { layer: l },
      onchange: (e) => switchLayer(l, e.target.checked) }),
    el('span', { className: 'swatch', style: { background: COLOURS[l] || '#2d5a88' } }),
    t(l)));
  if (canRead('incidents')) {
    const legend = el('div', { className: 'legend' }, Object.entries(INCIDENT_STATES).map(([state, colour]) =>
      el('span', {}, el('span', { className: 'swatch round', style: { background: colour } }), t(`state_${state}`))));
    const closed = el('label', { className: 'check sub' },
      el('input', { type: 'checkbox', id: 'show-closed', checked: get('showClosed'),
        onchange: (e) => set({ showClosed: e.target.checked }) }),
      t('show_closed'));
    switches.push(legend, closed);
  }
  $('switches').replaceChildren(...switches);
}

/** The incident statuses shown (tiles, hexbins and statistics alike). */
export function shownStatuses() {
  return Object.keys(INCIDENT_STATES).filter((s) => s !== 'closed' || get('showClosed'));
}
