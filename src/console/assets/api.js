// The HTTP API. The console signs in with a password and rides on the
// HttpOnly session cookie (shared by every tab, invisible to scripts); every
// change also carries the session's CSRF token, kept here in memory only.
// Errors become ApiError with the server's code, a message in the
// interface's language (by code), and the server's own words as `detail`.

import { h } from './dom.js';
import { t, lang } from './i18n.js';

/** Codes whose server message says more than any fixed sentence could. */
const GENERIC = new Set(['bad_request', 'not_found', 'conflict', 'internal', 'bad_body']);

/** The message to show for an error `code` (`detail`: the server's words). */
export function errorMessage(status, code, detail) {
  const key = 'err.' + code;
  const known = t(key) !== key;
  if (known && !GENERIC.has(code)) return t(key);
  // The server writes English: in English its specific words are best.
  if (lang() === 'en' && detail) return detail;
  if (known) return t(key);
  return t('err.other', { status });
}

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(errorMessage(status, code, detail));
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

let csrfToken = null;

/** Remembers the CSRF token of the current session (null after signing out). */
export function setCsrf(token) {
  csrfToken = token || null;
}

let onUnauthorized = () => {};

/** Called when the server answers 401 (signed out elsewhere, expired, disabled). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Extra request headers: the CSRF token for anything that changes state. */
export function authHeaders(extra = {}, method = 'GET') {
  const safe = ['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase());
  return !safe && csrfToken ? { ...extra, 'X-CSRF-Token': csrfToken } : { ...extra };
}

async function failure(res) {
  let code = 'http_' + res.status;
  let message = res.statusText || 'request failed';
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message);
}

async function send(path, method, headers, payload, signal) {
  try {
    return await fetch('/api/v1' + path, {
      method,
      headers: authHeaders(headers, method),
      body: payload,
      signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', e.message || 'network error');
  }
}

/**
 * Calls `/api/v1{path}`. `body` is sent as JSON unless it is a string (sent
 * as-is with `contentType`). Resolves to the parsed JSON, or null for 204.
 */
export async function api(path, { method = 'GET', body, contentType, signal, quiet = false } = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') {
      payload = body;
      headers['Content-Type'] = contentType || 'text/plain; charset=utf-8';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  let res = await send(path, method, headers, payload, signal);
  if (res.status === 403 && !['GET', 'HEAD'].includes(method)) {
    // Another tab may have signed in again, which gave the shared cookie a
    // new session and CSRF token: fetch it and try once more.
    const err = await failure(res.clone());
    if (err.code === 'csrf' && (await refreshCsrf())) {
      res = await send(path, method, headers, payload, signal);
    }
  }
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401 && !quiet) onUnauthorized();
    throw err;
  }
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/** Who is signed in with this browser's cookie (null when nobody is). */
export async function currentSession() {
  const s = await api('/session', { quiet: true });
  setCsrf(s && s.user ? s.csrf_token : null);
  return s && s.user ? s : null;
}

async function refreshCsrf() {
  try {
    return Boolean(await currentSession());
  } catch {
    return false;
  }
}

/** Signs in with a user name and password; resolves to the session. */
export async function signIn(username, password) {
  const s = await api('/session', { method: 'POST', body: { username, password }, quiet: true });
  setCsrf(s.csrf_token);
  return s;
}

/** Signs this browser out (every tab). */
export async function signOut() {
  try {
    await api('/session', { method: 'DELETE', quiet: true });
  } finally {
    setCsrf(null);
  }
}

/** Fetches a file (with the session cookie) and saves it via a Blob link. */
export async function download(path, filename) {
  const res = await fetch('/api/v1' + path, { headers: authHeaders(), cache: 'no-store', credentials: 'same-origin' });
  if (!res.ok) {
    const err = await failure(res);
    if (res.status === 401) onUnauthorized();
    throw err;
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
