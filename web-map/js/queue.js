// The queue: open incidents no unit has been sent to (GET /api/v1/dispatch/queue), most urgent
// first — priority, then the longest waiting — each with how long it has waited, ticking on
// the wall's own clock. A click flies the map there and opens the incident: its details, the
// five units that would arrive first and their dispatch buttons. The queue is refetched when
// the live feed says incidents changed (a new report, a dispatch), not on a timer.
//
// A priority-1 incident that joins the queue after the wall opened raises an alarm: a banner
// naming it, and a tone every few seconds, until someone at the wall acknowledges it.

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';
import { flyTo } from '/web/js/map.js';
import { showIncident } from '/web/js/popups.js';
import { get, set } from '/web/js/state.js';

const QUEUE_LENGTH = 50;
const TONE_EVERY_MS = 4000;
// What the incident's popup shows of a queued incident.
const SHOWN = ['type', 'priority', 'status', 'reported_at', 'address', 'grid_code'];

/** How many times the queue was asked for. */
let asked = 0;

/** Refetches the queue (for callers who may read dispatches) and raises alarms for new P1s. */
export async function refreshQueue() {
  const me = get('me');
  if (!me || !me.may_read_dispatches) return;
  const ask = ++asked;
  const r = await api(`/api/v1/dispatch/queue?limit=${QUEUE_LENGTH}`);
  if (!r.ok) return;
  const body = await r.json();
  // Answers may come back out of order: only the latest question's is drawn.
  if (ask !== asked) return;
  const now = Date.now();
  const items = body.features.map((f) => ({
    id: f.id,
    lon: f.geometry.coordinates[0],
    lat: f.geometry.coordinates[1],
    props: f.properties,
    // The server's count of the wait, carried on by this clock (no skew between the two).
    since: now - f.properties.waiting_s * 1000,
  }));
  const seen = get('queueSeen');
  if (seen) {
    const fresh = items.filter((i) => i.props.priority === 1 && !seen.has(i.id));
    if (fresh.length) set({ alarms: Object.freeze([...get('alarms'), ...fresh]) });
  }
  set({ queueSeen: new Set([...(seen || []), ...items.map((i) => i.id)]), queue: Object.freeze(items) });
  $('queue-panel').hidden = false;
  $('queue-count').textContent = text(body.numberMatched);
  drawQueue();
}

/** A wait as the wall says it: 42 s, 7 min, 3 h 5 min. */
function waited(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} ${t('seconds')}`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} ${t('minutes')}`;
  return `${Math.floor(m / 60)} ${t('hours')} ${m % 60} ${t('minutes')}`;
}

function drawQueue() {
  const items = get('queue');
  if (!items.length) {
    $('queue').replaceChildren(el('p', { className: 'muted' }, t('queue_empty')));
    return;
  }
  $('queue').replaceChildren(el('ol', {}, items.map((i) => el('li', {
    className: `queue-item p${i.props.priority}`,
    dataset: { incident: i.id },
    onclick: () => openQueued(i),
  },
  el('span', { className: 'badge' }, `P${text(i.props.priority)}`),
  ` ${text(i.props.type)} `,
  el('span', { className: 'muted' }, text(i.props.address || i.props.grid_code || '')),
  el('span', { className: 'waited', dataset: { since: i.since } }, waited(Date.now() - i.since))))));
}

/** Flies to a queued incident and opens it. */
function openQueued(i) {
  flyTo(i.lon, i.lat);
  const p = Object.fromEntries(SHOWN.filter((k) => i.props[k] !== undefined).map((k) => [k, i.props[k]]));
  showIncident(i.id, i.lon, i.lat, p);
}

/** The waits tick every second, from the wall's clock. */
function tick() {
  for (const e of document.querySelectorAll('#queue .waited')) e.textContent = waited(Date.now() - Number(e.dataset.since));
}

/** The alarm banner: every unacknowledged P1, each a click away; hidden when none is left. */
export function drawAlarms(alarms) {
  const box = $('alarm');
  box.hidden = alarms.length === 0;
  if (!alarms.length) return;
  box.replaceChildren(
    el('strong', {}, t('p1_alarm')),
    ...alarms.map((i) => el('button', { type: 'button', className: 'alarm-item', dataset: { incident: i.id }, onclick: () => openQueued(i) },
      `#${text(i.id)} ${text(i.props.type)} ${text(i.props.address || i.props.grid_code || '')}`)),
    el('button', { type: 'button', id: 'alarm-ack', onclick: () => set({ alarms: Object.freeze([]) }) }, t('acknowledge')),
  );
}

let audio = null;

/** A short two-note tone while an alarm is unacknowledged. A browser lets a page sound only
 * after a user gesture (signing in is one); before that the banner alone must do. */
function tone() {
  if (!get('alarms').length) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state !== 'running') return;
    const at = audio.currentTime;
    for (const [i, f] of [880, 660].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.2, at + i * 0.25);
      gain.gain.exponentialRampToValueAtTime(0.001, at + i * 0.25 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(at + i * 0.25);
      osc.stop(at + i * 0.25 + 0.25);
    }
  } catch (err) {
    console.warn('the alarm tone could not play', err);
  }
}

/** Lets the tone play from the next user gesture on. */
export function unlockAudio() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch (err) {
    console.warn('no audio for the alarm tone', err);
  }
}

/** The queue now, its clock, and the alarm's tone. */
export function startQueue() {
  refreshQueue();
  setInterval(tick, 1000);
  setInterval(tone, TONE_EVERY_MS);
}
