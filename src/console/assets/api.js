// The HTTP API: bearer token (kept in sessionStorage, never in URLs), JSON
// requests, errors as ApiError with the server's code and message.

const TOKEN_KEY = 'balas.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthorized = () => {};

/** Called when the server answers 401 (token gone or revoked). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** Headers with the Authorization bearer token. */
export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
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
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, code, message);
}

/**
 * Calls `/api/v1{path}`. `body` is sent as JSON unless it is a string (sent
 * as-is with `contentType`). Resolves to the parsed JSON, or null for 204.
 */
export async function api(path, { method = 'GET', body, contentType, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
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
  let res;
  try {
    res = await fetch('/api/v1' + path, { method, headers, body: payload, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', e.message || 'network error');
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/** Fetches a file with the Authorization header and saves it via a Blob link. */
export async function download(path, filename) {
  const res = await fetch('/api/v1' + path, { headers: authHeaders(), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
