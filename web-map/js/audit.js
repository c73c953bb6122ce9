// The audit overlay: the grids coloured by the coverage audit of the live layer
// (GET /api/v1/audit/geometry?format=geojson), its summary, and a finding's popup.

import { api } from '/web/js/api.js';
import { $, el, t, text } from '/web/js/dom.js';
import { signOut } from '/web/js/signin.js';
import { get, set } from '/web/js/state.js';

const AUDIT_COLOURS = ['match', ['get', 'severity'], 'error', '#dc2626', 'warning', '#f59e0b', '#a855f7'];

/** Shows or hides the audit: every grid green, then each finding (a gap, an overlap, a grid
 * with no worker…) over it in red (fails the layer) or amber (a sliver or a warning). */
export async function toggleAudit(on) {
  const map = get('map');
  if (!map || !get('styleReady')) return;
  const summary = $('audit-summary');
  if (!on) {
    for (const id of ['audit-fill', 'audit-line']) if (map.getLayer(id)) map.setLayoutProperty(id, 'visibility', 'none');
    if (map.getLayer('grids-fill')) map.setPaintProperty('grids-fill', 'fill-color', get('gridsFill') ?? undefined);
    summary.hidden = true;
    return;
  }
  const r = await api('/api/v1/audit/geometry?format=geojson');
  if (r.status === 401) return signOut();
  if (!r.ok) {
    summary.hidden = false;
    summary.textContent = `${t('error')} ${r.status}`;
    return;
  }
  const fc = await r.json();
  // Switched off while the audit was on its way: show nothing.
  if (!$('audit').checked) return;
  fc.features.forEach((f, i) => { f.properties.n = i + 1; f.properties.grids = (f.properties.grids || []).join(', '); });
  if (!map.getSource('audit')) {
    map.addSource('audit', { type: 'geojson', data: fc });
    map.addLayer({ id: 'audit-fill', type: 'fill', source: 'audit', paint: { 'fill-color': AUDIT_COLOURS, 'fill-opacity': 0.55 } });
    map.addLayer({ id: 'audit-line', type: 'line', source: 'audit', paint: { 'line-color': AUDIT_COLOURS, 'line-width': 2 } });
  } else {
    map.getSource('audit').setData(fc);
  }
  for (const id of ['audit-fill', 'audit-line']) map.setLayoutProperty(id, 'visibility', 'visible');
  if (map.getLayer('grids-fill')) {
    if (!get('gridsFill')) set({ gridsFill: map.getPaintProperty('grids-fill', 'fill-color') });
    map.setPaintProperty('grids-fill', 'fill-color', '#16a34a');
  }
  const s = fc.summary || { errors: 0, warnings: 0 };
  summary.hidden = false;
  summary.className = fc.passed ? 'audit-pass' : 'audit-fail';
  summary.textContent = `${t(fc.passed ? 'audit_passed' : 'audit_failed')}: ${s.errors} ${t('audit_errors')}, ${s.warnings} ${t('audit_warnings')}`;
  window.sgAudit = { passed: fc.passed, findings: fc.features.length };
}

/** A finding's popup: its number, kind, severity, message and area. */
export function findingContent(f) {
  const p = f.properties;
  const area = p.area_m2 ? ` · ${Math.round(p.area_m2).toLocaleString()} m²` : '';
  return [el('h3', {}, `#${text(p.n)} ${text(p.kind)} (${text(p.severity)})`), el('p', {}, `${text(p.message)}${area}`)];
}
