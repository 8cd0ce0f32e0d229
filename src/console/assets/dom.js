// DOM helpers. Text always goes in as text nodes (never as HTML), so anything
// a customer wrote is shown as written.

import { t, lang } from './i18n.js';

/**
 * h('button', {class: 'x', onclick: fn, 'aria-label': '…'}, 'text', child…)
 * Attributes starting with "on" become listeners; `false`/`null` are skipped;
 * strings and numbers among the children become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * A duration people read at a glance: "54 dtk", "3 mnt", "2 jam 5 mnt",
 * "3 hr 2 jam" (English "54 s", "3 min", "2 h 5 min", "3 d 2 h").
 */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const u = t('units');
  const two = (a, ua, b, ub) => (b ? `${a} ${ua} ${b} ${ub}` : `${a} ${ua}`);
  if (s < 60) return `${s} ${u.s}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${u.m}`;
  if (s < 86_400) return two(Math.floor(s / 3600), u.h, Math.floor((s % 3600) / 60), u.m);
  return two(Math.floor(s / 86_400), u.d, Math.floor((s % 86_400) / 3600), u.h);
}

/** A countdown like 23:59:07. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** Local date and time of a Unix-ms instant. */
export function dateTime(ms) {
  if (!ms) return '–';
  return new Date(ms).toLocaleString(lang() === 'id' ? 'id-ID' : 'en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
  });
}

/** Local time of day of a Unix-ms instant. */
export function timeOfDay(ms) {
  return new Date(ms).toLocaleTimeString(lang() === 'id' ? 'id-ID' : 'en-GB', {
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** Shows a short message at the bottom of the screen. */
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.dataset.kind = kind;
  el.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove('show'), 4000);
}

/** Runs an async action, showing its error as a toast; returns its result or undefined. */
export async function attempt(fn) {
  try {
    return await fn();
  } catch (e) {
    toast(e.message || String(e), 'error');
    return undefined;
  }
}

/** Channel name for people. */
export function channelName(c) {
  return c === 'whatsapp' ? 'WhatsApp' : c === 'instagram' ? 'Instagram' : String(c || '');
}
