// The statistics panel (GET /api/v1/stats): open incidents in total, by priority, by district
// and the grids with the most; items per readable layer.

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';

/** How often the panel is refreshed besides on live changes. */
export const STATS_EVERY_MS = 30000;

/** Redraws the statistics panel. */
export async function refreshStats() {
  const r = await api('/api/v1/stats');
  if (!r.ok) return;
  const s = await r.json();
  const o = s.open_incidents;
  const head = (key, span) => el('tr', {}, el('th', { colSpan: span }, t(key)));
  const n = (v) => el('td', { className: 'n' }, text(v));
  const places = (key, list) => el('table', {}, el('tbody', {}, head(key, 3),
    list.map((d) => el('tr', {}, el('td', {}, text(d.name || d.code || '—')), el('td', {}, text(d.code)), n(d.open)))));
  $('stats').replaceChildren(
    el('div', {}, `${t('open_incidents')}: `, el('span', { className: 'big', id: 'open_total' }, text(o.total))),
    el('table', {}, el('tbody', {}, head('by_priority', 2),
      [1, 2, 3, 4].map((p) => el('tr', {}, el('td', { className: `p${p}` }, `${t('priority')} ${p}`), n(o.by_priority[p]))))),
    places('by_district', o.by_district),
    places('top_grids', o.top_grids),
    el('table', {}, el('tbody', {}, head('counts', 2),
      Object.entries(s.counts).map(([k, v]) => el('tr', {}, el('td', {}, t(k)), n(v))))),
  );
}
