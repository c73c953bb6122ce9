// Building what the wall shows. Names, codes, phone numbers, any property: most of it was typed
// by users and comes from the server, so it goes into the page as text (text nodes,
// textContent), never as HTML. Nothing here parses markup.

import { translate } from '/web/i18n.js';
import { get } from '/web/js/state.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** The wall's string for a key, in the current language. */
export const t = (key) => translate(get('lang'), key);

/** A value as text: nothing for null or undefined. */
export const text = (v) => String(v ?? '');

/**
 * A new element. props are set as properties (className, type, colSpan…), except `dataset`
 * (data-* attributes), `style` (inline style properties) and `on…` (event listeners).
 * Children are nodes or values; values become text nodes; null and undefined are skipped and
 * arrays are flattened.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'style') Object.assign(node.style, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  appendAll(node, children);
  return node;
}

function appendAll(node, children) {
  for (const c of children) {
    if (c === null || c === undefined) continue;
    if (Array.isArray(c)) appendAll(node, c);
    else node.append(c instanceof Node ? c : String(c));
  }
}

/** A table of rows, each given as its cells (nodes or values). */
export function table(rows, props = {}) {
  return el('table', props, el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((c) => el('td', {}, c))))));
}
