// The dispatch-centre map wall, entry module: it wires the modules under /web/js/ together.
// Everything the wall loads comes from this safegrid server: the page, MapLibre GL JS
// (vendored), the tiles and the API. It signs in with a bearer token and asks only for the
// layers the token's role may read (GET /api/v1/whoami), so what a role may not read is neither
// fetched nor shown.

import { toggleAudit } from '/web/js/audit.js';
import { startBoard } from '/web/js/board.js';
import { startDispatches } from '/web/js/dispatch.js';
import { $, t } from '/web/js/dom.js';
import { applyLabelLanguage, applyVisibility, buildSwitches, refreshFreshRing } from '/web/js/layers.js';
import { startFeed } from '/web/js/live.js';
import { refreshAll, refreshIncidents, startMap } from '/web/js/map.js';
import { drawAlarms, startQueue, unlockAudio } from '/web/js/queue.js';
import { signIn, signOut } from '/web/js/signin.js';
import { get, set, subscribe } from '/web/js/state.js';
import { startSearch } from '/web/js/search.js';
import { refreshStats } from '/web/js/stats.js';

/** The page in the wall's language: static text, basemap labels, switches and statistics. */
function applyLanguage() {
  document.documentElement.lang = get('lang') === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  for (const e of document.querySelectorAll('[data-t]')) e.textContent = t(e.dataset.t);
  for (const e of document.querySelectorAll('[data-t-title]')) e.title = t(e.dataset.tTitle);
  for (const e of document.querySelectorAll('[data-t-placeholder]')) e.placeholder = t(e.dataset.tPlaceholder);
  $('lang').textContent = t('language');
  applyLabelLanguage();
  if (get('me')) {
    buildSwitches();
    refreshStats();
  }
}

/** Signs in, then opens the map, the live feed and (if whoami allows) the dispatch panel. */
async function open(token) {
  if (!(await signIn(token))) return;
  applyLanguage();
  await startMap();
  startFeed();
  startSearch();
  if (get('me').may_read_whereabouts && get('me').layers.includes('responders')) startBoard();
  if (get('me').may_read_dispatches) {
    startQueue();
    startDispatches();
  }
}

subscribe('lang', () => applyLanguage());
subscribe('visible', () => applyVisibility());
subscribe('hexbins', () => applyVisibility());
subscribe('days', (days) => { $('days').textContent = days; });
subscribe('showClosed', () => {
  refreshIncidents();
  refreshStats();
});
subscribe('alarms', (alarms) => drawAlarms(alarms));

$('lang').addEventListener('click', () => {
  const lang = get('lang') === 'zh' ? 'en' : 'zh';
  localStorage.setItem('sg.lang', lang);
  set({ lang });
});
$('signout').addEventListener('click', signOut);
$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  open($('token').value);
});
$('window').addEventListener('input', () => set({ days: Number($('window').value) }));
$('window').addEventListener('change', () => {
  refreshAll();
  refreshStats();
});
// A page may sound only after a user gesture: the first one lets the P1 alarm's tone play.
document.addEventListener('pointerdown', unlockAudio, { once: true });
$('audit').addEventListener('change', () => toggleAudit($('audit').checked));
$('hexbins').addEventListener('change', () => set({ hexbins: $('hexbins').checked }));

$('days').textContent = get('days');
applyLanguage();
if (get('token')) open(get('token')); else $('signin').hidden = false;
// "New" incidents (reported within the hour) stop being new as time passes.
setInterval(refreshFreshRing, 60000);
