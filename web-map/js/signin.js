// Sign-in and sign-out. The token is checked with GET /api/v1/whoami, and what the caller may do
// is the server's to say: the wall reads may_read_wall, may_dispatch, may_read_dispatches and
// the readable layers from that answer (kept as `me` in the state) and holds no role rule of
// its own.

import { api } from '/web/js/api.js';
import { $, t } from '/web/js/dom.js';
import { get, set } from '/web/js/state.js';

/** Signs in with a token: true once the server says it may open the wall. */
export async function signIn(token) {
  set({ token: token.trim() });
  const r = await api('/api/v1/whoami');
  const me = r.ok ? await r.json() : null;
  if (!me || !me.may_read_wall) {
    $('signin_error').textContent = me ? t('public_only') : t('signin_failed');
    $('signin').hidden = false;
    return false;
  }
  sessionStorage.setItem('sg.token', get('token'));
  set({ me });
  $('signin').hidden = true;
  $('panel').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = `${me.name} · ${me.role}`;
  return true;
}

/** Forgets the token and starts again at the sign-in form. */
export function signOut() {
  sessionStorage.removeItem('sg.token');
  location.reload();
}
