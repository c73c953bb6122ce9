// The statistics panel (GET /api/v1/stats), for the wall's time window and the incident states
// it shows (as its tiles): incidents by state; those shown in total, by priority, by district
// and the grids with the most; items per readable layer.

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';
import { INCIDENT_STATES, shownStatuses } from '/web/js/layers.js';
import { windowStart } from '/web/js/map.js';

/** Redraws the statistics panel. */
export async function refreshStats() {
  const r = await api(`/api/v1/stats?since=${encodeURIComponent(windowStart())}&status=${shownStatuses().join(',')}`);
  if (!r.ok) return;
  const s = await r.json();
  const o = s.open_incidents;
  const head = (key, span) => el('tr', {}, el('th', { colSpan: span }, t(key)));
  const n = (v) => el('td', { className: 'n' }, text(v));
  const places = (key, list) => el('table', {}, el('tbody', {}, head(key, 3),
    list.map((d) => el('tr', {}, el('td', {}, text(d.name || d.code || '—')), el('td', {}, text(d.code)), n(d.open)))));
  const states = Object.keys(INCIDENT_STATES).map((k) => el('span', { className: 'state', dataset: { state: k } },
    el('span', { className: 'swatch round', style: { background: INCIDENT_STATES[k] } }), `${t(`state_${k}`)} `, el('b', {}, text(s.incidents_by_status[k]))));
  $('stats').replaceChildren(
    el('div', {}, `${t('incidents_shown')}: `, el('span', { className: 'big', id: 'open_total' }, text(o.total))),
    el('div', { className: 'states', id: 'by_state' }, states),
    el('table', {}, el('tbody', {}, head('by_priority', 2),
      [1, 2, 3, 4].map((p) => el('tr', {}, el('td', { className: `p${p}` }, `${t('priority')} ${p}`), n(o.by_priority[p]))))),
    places('by_district', o.by_district),
    places('top_grids', o.top_grids),
    el('table', {}, el('tbody', {}, head('counts', 2),
      Object.entries(s.counts).map(([k, v]) => el('tr', {}, el('td', {}, t(k)), n(v))))),
  );
}
