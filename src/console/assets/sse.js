// Live events from GET /api/v1/events, read with fetch() and a
// ReadableStream (the session cookie rides along), reconnecting with backoff.

import { authHeaders } from './api.js';

/** Parses a chunked event-stream; calls `emit({event, data})` per event. */
export function createParser(emit) {
  let buffer = '';
  let event = '';
  let data = [];
  const line = (l) => {
    if (l === '') {
      if (data.length) emit({ event: event || 'message', data: data.join('\n') });
      event = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) return; // comment / keep-alive
    const colon = l.indexOf(':');
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  };
  return (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const sep = buffer[i] === '\r' && buffer[i + 1] === '\n' ? 2 : 1;
      line(buffer.slice(0, i));
      buffer = buffer.slice(i + sep);
    }
  };
}

/**
 * Connects and keeps connected. `onEvent(obj)` gets each event's parsed JSON
 * data; `onStatus(connected)` reports the connection. Returns `stop()`.
 */
export function connectEvents(onEvent, onStatus = () => {}) {
  let stopped = false;
  let controller = null;
  let delay = 500;
  let timer = null;

  const run = async () => {
    if (stopped) return;
    controller = new AbortController();
    try {
      const res = await fetch('/api/v1/events', {
        headers: authHeaders({ Accept: 'text/event-stream' }),
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'same-origin',
      });
      if (res.status === 401 || res.status === 403) {
        onStatus(false);
        return; // Not allowed: do not hammer the server.
      }
      if (!res.ok || !res.body) throw new Error('events: HTTP ' + res.status);
      onStatus(true);
      delay = 500;
      const parse = createParser(({ event, data }) => {
        let obj;
        try {
          obj = JSON.parse(data);
        } catch {
          return;
        }
        if (obj && typeof obj === 'object') {
          if (!obj.type) obj.type = event;
          onEvent(obj);
        }
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(value);
      }
      throw new Error('events: stream ended');
    } catch (e) {
      if (stopped) return;
      onStatus(false);
      timer = setTimeout(run, delay);
      delay = Math.min(delay * 2, 15_000);
    }
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (controller) controller.abort();
  };
}
