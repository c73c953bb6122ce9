// The live feed: GET /api/v1/events (server-sent events, read with fetch so that the token
// travels in a header, not the URL). It sends data versions — on a change the affected sources
// are pointed at tiles of the new version, and the audit overlay, the queue and the statistics
// are refetched — and, for callers who may read them, the units (every responder, then those
// that changed) and the open dispatches (then each that changes). Nothing is polled: after a
// break the feed reconnects and starts with the snapshots again, so the wall catches up.

import { api } from '/web/js/api.js';
import { toggleAudit } from '/web/js/audit.js';
import { $ } from '/web/js/dom.js';
import { canRead, others } from '/web/js/layers.js';
import { refreshSource } from '/web/js/map.js';
import { refreshQueue } from '/web/js/queue.js';
import { signOut } from '/web/js/signin.js';
import { get, set } from '/web/js/state.js';
import { refreshStats } from '/web/js/stats.js';

const RECONNECT_MS = 2000;

/** Reads the feed for as long as the page is open, reconnecting after a break. */
export async function startFeed() {
  for (;;) {
    try {
      const r = await api(feedUrl(), { headers: { Accept: 'text/event-stream' } });
      // Refused (the token revoked, or its role changed): back to the sign-in form.
      if (r.status === 401 || r.status === 403) return signOut();
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
          const kind = (block.split('\n').find((l) => l.startsWith('event:')) || '').slice(6).trim();
          if (data && HANDLERS[kind]) HANDLERS[kind](JSON.parse(data));
        }
      }
    } catch (err) {
      console.warn('event feed interrupted; reconnecting', err);
    }
    $('live').classList.remove('on');
    await new Promise((ok) => setTimeout(ok, RECONNECT_MS));
  }
}

/** What this caller's feed carries besides versions. */
function feedUrl() {
  const me = get('me');
  const parts = [];
  if (me.may_read_whereabouts && canRead('responders')) parts.push('units');
  if (me.may_read_dispatches) parts.push('dispatches');
  return parts.length ? `/api/v1/events?with=${parts.join(',')}` : '/api/v1/events';
}

/** Units: a snapshot replaces them all; a change replaces the units it names, a move
 * ([id, lon, lat, fix time in ms]) only a unit's position and fix time. */
function onUnits(m) {
  const units = m.full ? {} : { ...get('units') };
  for (const u of m.units) units[u.id] = Object.freeze(u);
  for (const [id, lon, lat, ms] of m.moves || []) {
    if (units[id]) units[id] = Object.freeze({ ...units[id], lon, lat, fix_at: new Date(ms).toISOString() });
  }
  for (const id of m.removed) delete units[id];
  set({ units: Object.freeze(units) });
}

/** Dispatches: the open ones at first, then each that changed (closed ones leave). */
function onDispatches(m) {
  set({ openDispatches: Object.freeze(Object.fromEntries(m.open.map((d) => [d.id, d]))) });
}

function onDispatch(d) {
  const open = { ...get('openDispatches') };
  if (d.closed_at) delete open[d.id]; else open[d.id] = d;
  set({ openDispatches: Object.freeze(open) });
}

const HANDLERS = { versions: onVersions, units: onUnits, dispatches: onDispatches, dispatch: onDispatch };

/** New data versions: fresh tiles for what changed (none on the first message). */
function onVersions(v) {
  const previous = get('versions');
  const changed = Object.keys(v).filter((k) => previous[k] !== v[k]);
  const first = Object.keys(previous).length === 0;
  set({ versions: v });
  if (first || changed.length === 0) return;
  if (changed.includes('grids')) {
    refreshSource('grids', ['grids']);
    if ($('audit').checked) toggleAudit(true);
  }
  // Responders change version at every fix: their tiles (where units were entered; the moving
  // ones are drawn from the feed) are refetched at most every RESPONDER_TILES_MS for that alone.
  const tiled = changed.filter((k) => others().includes(k));
  if (tiled.some((k) => k !== 'responders')) refreshPoints();
  else if (tiled.length) refreshPointsSoon();
  if (changed.includes('key_personnel')) refreshSource('key_personnel', ['key_personnel']);
  if (changed.includes('incidents')) {
    refreshSource('incidents', ['incidents']);
    refreshSource('hexbins', ['incidents_h3']);
    refreshQueue();
  }
  // A layer's count may have changed (a unit's move changes none: its counts wait for another).
  if (changed.some((k) => k !== 'responders')) refreshStats();
}

const RESPONDER_TILES_MS = 15000;
let pointsTimer = null;

function refreshPoints() {
  clearTimeout(pointsTimer);
  pointsTimer = null;
  refreshSource('points', others());
}

function refreshPointsSoon() {
  if (pointsTimer === null) pointsTimer = setTimeout(refreshPoints, RESPONDER_TILES_MS);
}
