// The wall's one state store. Every field is declared here, once, with its starting value, and
// the object is sealed: no module can add a field. Modules read a field with get(), change
// fields with set() (which then calls the subscribers of each field that changed) and listen
// with subscribe(). Values are replaced, never changed in place, so a change is always seen.

import { initialLanguage } from '/web/i18n.js';

const state = Object.seal({
  /** The bearer token; kept in sessionStorage for the tab once the server accepts it. */
  token: sessionStorage.getItem('sg.token') || '',
  /** The server's answer to GET /api/v1/whoami once signed in: name, role, the readable
   * layers and what the caller may do (may_read_wall, may_dispatch, may_read_dispatches…). */
  me: null,
  /** The wall's language: 'zh' or 'en'. */
  lang: initialLanguage(),
  /** The MapLibre map, once made. */
  map: null,
  /** The server's basemap style (GET /basemap/style.json). */
  base: null,
  /** True from the map's 'load' on: the style's layers exist. */
  styleReady: false,
  /** The data version of each layer, from the live feed. */
  versions: {},
  /** The time window for incidents, in days. */
  days: 30,
  /** Incidents drawn as hexbins at low zoom. */
  hexbins: true,
  /** Closed incidents drawn and counted too (off: only open, dispatched and on scene). */
  showClosed: false,
  /** The queue: open incidents without a dispatch, most urgent first (a frozen list of
   * {id, lon, lat, props, since}). */
  queue: Object.freeze([]),
  /** The ids of incidents the queue has shown (null before its first answer): a P1 not among
   * them is new, and raises an alarm. */
  queueSeen: null,
  /** New P1 incidents not yet acknowledged at this wall (a frozen list of queue entries). */
  alarms: Object.freeze([]),
  /** The switches that are on: 'grids' and point layers (a frozen list). */
  visible: Object.freeze(['grids', 'incidents', 'posts', 'responders']),
  /** Every responder in the caller's grids, by id, as the live feed last sent it: callsign,
   * kind, status, tracked, freshness, lon/lat, fix_at, dispatch, radio (frozen). */
  units: Object.freeze({}),
  /** The open dispatches, by id, from the live feed (frozen). */
  openDispatches: Object.freeze({}),
  /** The id of the unit the map follows (null: none). */
  follow: null,
  /** The unit board's search text (callsign). */
  unitFilter: '',
  /** The id of the unit whose trace is being replayed. */
  replay: null,
  /** The grids' fill colour, kept while the audit overlay paints them green. */
  gridsFill: null,
});

const subscribers = new Map(Object.keys(state).map((key) => [key, []]));

function known(key) {
  if (!Object.hasOwn(state, key)) throw new Error(`the wall's state has no field ${key}`);
}

/** The value of one field. */
export function get(key) {
  known(key);
  return state[key];
}

/** Changes fields, then calls each changed field's subscribers with (value, previous). */
export function set(patch) {
  const changed = [];
  for (const [key, value] of Object.entries(patch)) {
    known(key);
    if (state[key] === value) continue;
    changed.push([key, state[key]]);
    state[key] = value;
  }
  for (const [key, previous] of changed) {
    for (const fn of subscribers.get(key)) fn(state[key], previous);
  }
}

/** Calls fn(value, previous) after each change of the field. */
export function subscribe(key, fn) {
  known(key);
  subscribers.get(key).push(fn);
}
