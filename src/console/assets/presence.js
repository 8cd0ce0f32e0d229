// The agent's presence (online, away, offline), for servers with the desk
// routes: the switch in the header, reported again every 30 s while the
// console is open (the server counts an agent unheard of for
// `presence_timeout` as offline), set offline after `idle_offline_after`
// without a click or key, and offline when the console is closed.
//
// Several tabs: a choice made in one is told to the others (a
// BroadcastChannel), and a tab that learns the agent went offline while it
// is still open and was not told of such a choice (another tab closed, or
// the server stopped hearing from this browser) says its status again.

import { api, authHeaders } from './api.js';
import { t } from './i18n.js';
import { toast } from './dom.js';

const HEARTBEAT_MS = 30_000;
const STATUSES = ['online', 'away', 'offline'];

let select = null;
let status = null;
let me = null;
let timer = null;
let idleAfterMs = 30 * 60_000;
let lastUse = Date.now();
const tabs = typeof BroadcastChannel === 'function' ? new BroadcastChannel('balas-presence') : null;
if (tabs) {
  tabs.onmessage = (e) => {
    if (me && e.data?.user === me.id && STATUSES.includes(e.data.status)) show(e.data.status);
  };
}

function used() {
  lastUse = Date.now();
}

function show(s) {
  status = s;
  if (select) {
    select.value = s;
    select.dataset.status = s;
  }
}

async function report(s) {
  const p = await api('/me/presence', { method: 'PUT', body: { status: s } });
  show(p.status);
  return p;
}

function closing() {
  if (status === null || status === 'offline') return;
  // keepalive lets the request outlive the page.
  fetch('/api/v1/me/presence', {
    method: 'PUT',
    keepalive: true,
    credentials: 'same-origin',
    headers: authHeaders({ 'Content-Type': 'application/json' }, 'PUT'),
    body: JSON.stringify({ status: 'offline' }),
  }).catch(() => {});
}

function beat() {
  if (status === null) return;
  if (status !== 'offline' && Date.now() - lastUse > idleAfterMs) {
    report('offline').then(() => toast(t('presence.idleOff'))).catch(() => {});
    return;
  }
  if (status !== 'offline') report(status).catch(() => {});
}

function onChange() {
  used();
  const chosen = select.value;
  tabs?.postMessage({ user: me.id, status: chosen });
  report(chosen).then(() => toast(t('presence.now', { status: t('presence.' + chosen) }))).catch((e) => {
    toast(e.message, 'error');
    show(status);
  });
}

/**
 * Starts reporting for the signed-in `user` with the `<select>` of the
 * header. Opening the console brings an offline agent online (an agent who
 * chose "away" stays away). Resolves false when the server has no presence.
 */
export async function start(user, sel) {
  stop();
  me = user;
  select = sel;
  const p = await api('/me/presence', { quiet: true }).catch(() => null);
  if (!p || !STATUSES.includes(p.status)) return false;
  idleAfterMs = Math.max(60, p.idle_offline_after_s || 1800) * 1000;
  show(p.status);
  used();
  await report(p.status === 'away' ? 'away' : 'online').catch(() => {});
  select.addEventListener('change', onChange);
  document.addEventListener('pointerdown', used, { passive: true });
  document.addEventListener('keydown', used);
  window.addEventListener('pagehide', closing);
  timer = setInterval(beat, HEARTBEAT_MS);
  return true;
}

let recheck = null;

/** Another tab, device or the server changed our presence (a `presence` event). */
export function onEvent(ev) {
  if (ev.type !== 'presence' || !me || ev.agent !== me.id || !STATUSES.includes(ev.status)) return;
  if (ev.status !== 'offline' || status === null || status === 'offline') {
    show(ev.status);
    return;
  }
  // Offline while this tab is open: unless a tab tells of that choice in a
  // moment, this tab is still here.
  clearTimeout(recheck);
  recheck = setTimeout(() => {
    if (status !== null && status !== 'offline') report(status).catch(() => {});
  }, 300);
}

/** Reports offline (signing out) and stops. */
export async function signOff() {
  if (status !== null && status !== 'offline') await report('offline').catch(() => {});
  stop();
}

/** Stops reporting (the session is gone). */
export function stop() {
  clearInterval(timer);
  clearTimeout(recheck);
  timer = null;
  select?.removeEventListener('change', onChange);
  document.removeEventListener('pointerdown', used);
  document.removeEventListener('keydown', used);
  window.removeEventListener('pagehide', closing);
  status = null;
  me = null;
}
