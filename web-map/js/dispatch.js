// Dispatch: the units that would arrive first at a place (by road time), with a dispatch button
// for an incident; the panel of open dispatches (from the live feed) with their steps, deadline
// alarms and next-step buttons. The buttons are there only when whoami says the caller may
// dispatch (may_dispatch).

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';
import { get, subscribe } from '/web/js/state.js';

const STEPS = ['dispatched', 'acknowledged', 'en_route', 'on_scene', 'cleared'];

/**
 * The five units that would arrive first at a place, by road time, as nodes for a popup; with
 * dispatch buttons when incidentId is an incident's. Nothing when the server refuses.
 */
export async function suggestions(at, incidentId) {
  const r = await api(`/api/v1/dispatch/nearest?lon=${at.lng.toFixed(6)}&lat=${at.lat.toFixed(6)}&k=5`);
  if (!r.ok) return [];
  const body = await r.json();
  const me = get('me');
  if (!body.features.length) return [el('h4', {}, t('suggested')), el('p', {}, t('none_available'))];
  const result = el('p', { className: 'dispatch-result' });
  const rows = body.features.map((u) => {
    const p = u.properties;
    const eta = `${(p.eta_s / 60).toFixed(1)} ${t('minutes')} · ${t(p.eta_source)}`;
    const button = incidentId !== null && me.may_dispatch
      ? el('button', { type: 'button', dataset: { dispatch: u.id, incident: incidentId },
          onclick: (e) => dispatch(e.currentTarget, incidentId, u.id, result) }, t('dispatch'))
      : null;
    return el('tr', {}, el('td', {}, text(p.callsign)), el('td', {}, eta), el('td', {}, `${Math.round(p.distance_m)} m`), el('td', {}, button));
  });
  return [
    el('h4', { className: 'suggested' }, t('suggested')),
    el('table', { className: 'suggested' }, el('tbody', {}, rows)),
    result,
  ];
}

/** Sends one unit to an incident; says how it went under the suggestions. */
async function dispatch(button, incidentId, unitId, result) {
  button.disabled = true;
  const r = await api('/api/v1/dispatches', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ incident_id: Number(incidentId), units: [Number(unitId)] }),
  });
  const body = await r.json().catch(() => ({}));
  result.textContent = r.ok ? `${t('dispatched_ok')} #${body.id}` : `${t('error')}: ${body.detail || r.status}`;
}

/** The open dispatches panel, redrawn whenever the live feed changes them. */
export function startDispatches() {
  $('dispatch-panel').hidden = false;
  drawDispatches(get('openDispatches'));
  subscribe('openDispatches', drawDispatches);
  // A unit's callsign may arrive after its dispatch: redraw then, and only then (a redraw at
  // every move would replace a button under the dispatcher's pointer).
  subscribe('units', (units) => {
    if ([...unnamed].some((id) => units[id])) drawDispatches(get('openDispatches'));
  });
}

/** The units the panel shows by id for want of a callsign (a unit outside the caller's grids
 * never gets one: it must not make the panel redraw at every turn of the feed). */
let unnamed = new Set();

/** The open dispatches, newest first: each unit's step, its alarms and the button to its next step. */
function drawDispatches(open) {
  const me = get('me');
  const box = $('dispatches');
  const list = Object.values(open).sort((a, b) => b.id - a.id);
  if (!list.length) {
    unnamed = new Set();
    box.replaceChildren(el('p', { className: 'muted' }, t('no_dispatches')));
    return;
  }
  const units = get('units');
  unnamed = new Set();
  box.replaceChildren(...list.map((d) => {
    const rows = Object.values(d.units).map((a) => {
      if (!units[a.unit_id]) unnamed.add(a.unit_id);
      const name = (units[a.unit_id] && units[a.unit_id].callsign) || `#${a.unit_id}`;
      const alarms = a.alarms.flatMap((k, i) => [i ? ' ' : null, el('span', { className: 'alarm' }, t(k))]);
      const next = STEPS[STEPS.indexOf(a.step) + 1];
      const button = next && me.may_dispatch
        ? el('button', { type: 'button', dataset: { step: next, d: d.id, u: a.unit_id },
            onclick: (e) => moveOn(e.currentTarget, d.id, a.unit_id, next) }, t(`next_${next}`))
        : null;
      return el('li', {}, `${text(name)} · ${t(`step_${a.step}`)} `, alarms, ' ', button);
    });
    return el('div', { className: 'dispatch', dataset: { id: d.id } },
      el('strong', {}, `#${text(d.id)}`), ` ${t('incident')} #${text(d.incident_id)} · ${text(d.grid_code)}`,
      el('ul', {}, rows));
  }));
}

/** Moves a unit of a dispatch to its next step. */
async function moveOn(button, dispatchId, unitId, step) {
  button.disabled = true;
  await api(`/api/v1/dispatches/${dispatchId}/units/${unitId}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ step }),
  });
}
