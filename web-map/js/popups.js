// Clicks on the map: an audit finding, a live unit (with its trace replay), an item's
// properties (an open incident with the units that would get there first), or, elsewhere,
// which grid the place is in (GET /api/v1/locate) with its code, name, manager and chain.
// Every popup is built from DOM nodes: what the server sent is shown as text.

import { Popup } from '/web/vendor/maplibre-gl/maplibre-gl.mjs';
import { api } from '/web/js/api.js';
import { findingContent } from '/web/js/audit.js';
import { suggestions } from '/web/js/dispatch.js';
import { $, el, t, table, text } from '/web/js/dom.js';
import { canRead, isOn, layerOwner, readableLayers } from '/web/js/layers.js';
import { get } from '/web/js/state.js';
import { replayTrace } from '/web/js/units.js';

// The wall's words for some property names (the others are shown as they are).
const LABELS = { type: 'type', priority: 'priority', status: 'status', reported_at: 'reported_at', code: 'code',
  name: 'name', level: 'level', manager: 'manager', grid_code: 'grids' };

function show(at, content) {
  new Popup({ maxWidth: '28rem' }).setLngLat(at).setDOMContent(el('div', { className: 'popup' }, content)).addTo(get('map'));
}

/** The map's click handler. */
export async function onClick(e) {
  const map = get('map');
  const pointIds = readableLayers().flatMap((l) => [l, `${l}-icon`]).filter((id) => map.getLayer(id) && isOn(layerOwner(id)));
  const hit = map.queryRenderedFeatures(e.point, { layers: pointIds })[0];
  const unit = map.getLayer('live-units') && map.queryRenderedFeatures(e.point, { layers: ['live-units'] })[0];
  const finding = !hit && !unit && $('audit').checked && map.getLayer('audit-fill') && map.queryRenderedFeatures(e.point, { layers: ['audit-fill'] })[0];
  if (finding) {
    show(e.lngLat, findingContent(finding));
    return;
  }
  if (unit) {
    show(e.lngLat, unitContent(unit));
    return;
  }
  let content;
  if (hit) {
    const p = hit.properties;
    if (p.point_count) {
      content = [el('h3', {}, `${t(hit.sourceLayer)} · ${t('cluster')}`), `${text(p.point_count)} ${t('items')}`];
    } else if (hit.sourceLayer === 'incidents') {
      content = await incidentContent(hit.id, e.lngLat, p);
    } else {
      const rows = Object.entries(p).map(([k, v]) => [t(LABELS[k] || k), v]);
      content = [el('h3', {}, `${t(hit.sourceLayer)} #${text(hit.id)}`), table(rows)];
    }
  } else {
    content = await whichGrid(e.lngLat);
    if (canRead('responders')) content.push(await suggestions(e.lngLat, null));
  }
  show(e.lngLat, content);
}

/** An incident's properties (its state in words) and, unless it is closed, the units that
 * would get there first, each with a dispatch button. */
async function incidentContent(id, at, p) {
  const rows = Object.entries(p).map(([k, v]) => [t(LABELS[k] || k), k === 'status' ? t(`state_${v}`) : v]);
  const content = [el('h3', { className: 'incident-title' }, `${t('incidents')} #${text(id)}`), table(rows)];
  if (p.status !== 'closed' && canRead('responders')) content.push(await suggestions(at, id));
  return content;
}

/** Opens an incident as a click on it would (the queue's rows call this). */
export async function showIncident(id, lon, lat, p) {
  const at = { lng: lon, lat };
  show(at, await incidentContent(id, at, p));
}

/** A live unit: status, freshness, age, grid, speed, and a button that replays its last hour. */
function unitContent(f) {
  const p = f.properties;
  const age = p.fix_at ? Math.max(0, Math.round((Date.now() - Date.parse(p.fix_at)) / 1000)) : '—';
  const rows = [[t('status'), p.status], [t('freshness'), t(`fresh_${p.freshness}`)], [t('age'), age], [t('grids'), p.grid_code || '—']];
  if (p.speed_mps !== undefined && p.speed_mps !== null) rows.push(['km/h', Math.round(p.speed_mps * 3.6)]);
  return [
    el('h3', {}, text(p.callsign)),
    table(rows),
    el('button', { type: 'button', dataset: { trace: text(p.id) }, onclick: () => replayTrace(Number(p.id)) }, t('replay')),
  ];
}

/** Which grid a place is in (or the nearest, outside every grid). */
async function whichGrid(at) {
  const r = await api(`/api/v1/locate?lon=${at.lng.toFixed(6)}&lat=${at.lat.toFixed(6)}`);
  if (!r.ok) return [el('h3', {}, t('error')), text(r.status)];
  const body = await r.json();
  const unitRows = (u) => [[t('code'), u.code], [t('name'), u.name],
    [t('manager'), u.manager ? `${u.manager.name || ''} ${u.manager.phone || ''}` : '—']];
  if (body.inside) {
    const chain = (body.chain || []).map((u) => u.name).join(' › ');
    return [el('h3', {}, t('which_grid')), el('div', { className: 'grid-code' }, text(body.grid.code)), table(unitRows(body.grid)), el('div', {}, chain)];
  }
  if (body.nearest) {
    return [el('h3', {}, t('outside')), table([...unitRows(body.nearest.grid), [t('distance'), `${body.nearest.distance_m} m`]])];
  }
  return [el('h3', {}, t('outside'))];
}
