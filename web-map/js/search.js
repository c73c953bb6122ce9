// The search box: an incident's number, a unit's callsign, a grid's code or name, a post's name
// or an address (GET /api/v1/search); a result is a click from flying the map there — to a
// grid's whole box, or close in on anything else, an incident opened as a click on it would.

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';
import { flyTo } from '/web/js/map.js';
import { showIncident } from '/web/js/popups.js';
import { get } from '/web/js/state.js';

const WAIT_MS = 250;
let timer = null;
let asked = '';

async function ask(q) {
  asked = q;
  if (!q.trim()) {
    $('search-results').replaceChildren();
    $('search-results').hidden = true;
    return;
  }
  const r = await api(`/api/v1/search?q=${encodeURIComponent(q)}`);
  if (asked !== q) return; // a later keystroke won
  const body = r.ok ? await r.json() : { results: [] };
  const items = body.results.map((res) => el('li', {}, el('button', {
    type: 'button', className: `result kind-${res.kind}`, dataset: { kind: res.kind },
    onclick: () => go(res),
  }, el('span', { className: 'muted' }, t(`found_${res.kind}`)), ` ${text(res.label)}`)));
  $('search-results').replaceChildren(...(items.length ? items : [el('li', { className: 'muted' }, t('nothing_found'))]));
  $('search-results').hidden = false;
}

async function go(res) {
  $('search-results').hidden = true;
  const map = get('map');
  if (res.bbox) {
    map.fitBounds([[res.bbox[0], res.bbox[1]], [res.bbox[2], res.bbox[3]]], { padding: 60, duration: 800 });
    return;
  }
  flyTo(res.lon, res.lat);
  if (res.kind === 'incident') {
    const r = await api(`/api/v1/incidents/${res.id}`);
    if (!r.ok) return;
    const f = await r.json();
    const p = f.properties;
    const shown = Object.fromEntries(['type', 'priority', 'status', 'reported_at', 'address', 'grid_code']
      .filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
    showIncident(res.id, res.lon, res.lat, shown);
  }
}

/** Wires the search box. */
export function startSearch() {
  $('search-box').hidden = false;
  $('search').addEventListener('input', (e) => {
    clearTimeout(timer);
    const q = e.target.value;
    timer = setTimeout(() => ask(q), WAIT_MS);
  });
  $('search').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') $('search-results').hidden = true;
  });
}
