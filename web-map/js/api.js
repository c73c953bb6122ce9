// Calls to this server's API, with the bearer token in a header (never in a URL).

import { get } from '/web/js/state.js';

/** fetch(), with the caller's token. */
export async function api(path, init = {}) {
  const headers = Object.assign({}, init.headers || {}, { Authorization: `Bearer ${get('token')}` });
  return fetch(path, Object.assign({}, init, { headers }));
}
