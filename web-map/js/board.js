// The unit board: every unit on duty in the caller's grids, from the live feed — callsign, kind,
// status, how fresh its position is (an untracked unit says so: its position is as registered,
// never live), its dispatch and its radio channel — searchable by callsign, each a click from
// following it on the map. Busy units first, then by callsign.

import { $, el, t, text } from '/web/js/dom.js';
import { get, set, subscribe } from '/web/js/state.js';
import { follow } from '/web/js/units.js';

/** Rows drawn at most: the search narrows a city's thousands. */
const ROWS = 200;
/** Redrawn at most this often: units move every second; a board that never stops changing
 * cannot be read or clicked. */
const REDRAW_MS = 2000;

let pending = null;

function schedule() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    drawBoard();
  }, REDRAW_MS);
}

function freshnessOf(u) {
  return u.tracked ? t(`fresh_${u.freshness}`) : t('untracked');
}

/** The board now. */
export function drawBoard() {
  const q = get('unitFilter').trim().toLowerCase();
  const onDuty = Object.values(get('units')).filter((u) => u.status !== 'off_duty');
  const shown = onDuty
    .filter((u) => !q || u.callsign.toLowerCase().includes(q))
    .sort((a, b) => (b.dispatch !== null) - (a.dispatch !== null) || a.callsign.localeCompare(b.callsign, 'zh'));
  $('board-count').textContent = `${onDuty.length}`;
  const followed = get('follow');
  const rows = shown.slice(0, ROWS).map((u) => el('tr', {
    className: `unit fresh-${u.tracked ? u.freshness : 'untracked'}${u.id === followed ? ' followed' : ''}`,
    dataset: { unit: u.id },
  },
  el('td', {}, text(u.callsign)),
  el('td', { className: 'muted' }, text(u.kind)),
  el('td', {}, text(u.status)),
  el('td', { className: 'fresh' }, freshnessOf(u)),
  el('td', {}, u.dispatch !== null && u.dispatch !== undefined ? `#${text(u.dispatch)}` : ''),
  el('td', { className: 'muted' }, text(u.radio || '')),
  el('td', {}, u.tracked && u.freshness !== 'none'
    ? el('button', { type: 'button', className: 'follow', onclick: () => follow(u.id) }, t('follow'))
    : null)));
  const more = shown.length > ROWS ? el('p', { className: 'muted' }, `${shown.length - ROWS} ${t('more_units')}`) : null;
  $('board').replaceChildren(el('div', {}, el('table', { className: 'board' }, el('tbody', {}, rows)), more));
}

/** The board, its search box, and redraws as the feed moves the units. */
export function startBoard() {
  $('board-panel').hidden = false;
  $('board-search').addEventListener('input', (e) => set({ unitFilter: e.target.value }));
  subscribe('unitFilter', drawBoard);
  subscribe('follow', drawBoard);
  subscribe('units', schedule);
  drawBoard();
}
