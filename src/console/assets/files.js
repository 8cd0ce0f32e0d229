// Files in a conversation: a thumbnail with a click-to-open viewer for
// pictures, an inline player for video and audio, a download chip for
// documents; and uploads with progress.
//
// Files are fetched with the session cookie (uploads carry the CSRF token
// too) and shown as data: URLs, which the console's CSP allows for images and
// media; nothing a customer sent is ever put in the page as HTML.

import { ApiError, authHeaders, download } from './api.js';
import { t } from './i18n.js';
import { h, fill, attempt, svg } from './dom.js';

/** A small line icon (paths in a 24-unit box), hidden from screen readers. */
function icon(...paths) {
  return svg('svg', { viewBox: '0 0 24 24', width: '18', height: '18', class: 'icon', 'aria-hidden': 'true', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' },
    paths.map((d) => svg('path', { d })));
}

/** A paperclip. */
export function clipIcon() {
  return icon('M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5');
}

/** A sheet of paper. */
export function docIcon() {
  return icon('M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z', 'M14 2v6h6');
}

/** Bytes as "218 B", "12.4 KB", "3.1 MB". */
export function formatSize(bytes) {
  if (typeof bytes !== 'number') return '';
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

// One download per file per page: url -> Promise<data: URL>.
const cache = new Map();

/** The file at `url` (under /api/v1) as a data: URL. */
export function fileData(url) {
  if (!cache.has(url)) {
    const p = (async () => {
      const res = await fetch(url, { headers: authHeaders(), cache: 'no-store' });
      if (!res.ok) {
        let message = res.statusText;
        try {
          message = (await res.json()).error.message;
        } catch {
          // keep the status line
        }
        throw new ApiError(res.status, 'http_' + res.status, message);
      }
      const blob = await res.blob();
      return new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(blob);
      });
    })();
    p.catch(() => cache.delete(url));
    cache.set(url, p);
  }
  return cache.get(url);
}

function kindOf(att) {
  const mime = att.mime_type || '';
  if (mime.startsWith('image/') && ['image', 'sticker', 'story'].includes(att.kind)) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'document';
}

function fileName(att) {
  return att.filename || `${t('media.' + att.kind)} ${formatSize(att.size)}`.trim();
}

/** Opens a picture in a modal viewer (Escape or the button closes it). */
function openViewer(att, src) {
  document.getElementById('viewer')?.remove();
  const close = h('button', { type: 'button', class: 'primary', id: 'viewer-close', onclick: () => dialog.close() }, t('close'));
  const dialog = h('dialog', { id: 'viewer', class: 'viewer', 'aria-label': att.caption || t('media.image') },
    h('img', { src, alt: att.caption || t('media.image'), class: 'viewer-img' }),
    att.caption ? h('p', { class: 'text' }, att.caption) : null,
    h('div', { class: 'viewer-actions' },
      h('button', { type: 'button', onclick: () => save(att) }, t('file.download')),
      close),
  );
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

function save(att) {
  return attempt(() => download(att.url.replace(/^\/api\/v1/, '') + '?download=1', att.filename || `${att.kind}-${att.id}`));
}

/** A picture: the thumbnail loads when it scrolls into view. */
function picture(att) {
  const label = att.caption || t('media.' + att.kind);
  const img = h('img', { class: 'thumb-img', alt: label });
  const button = h('button', { type: 'button', class: 'thumb', 'aria-label': t('file.open', { name: label }), disabled: true }, img);
  const load = async () => {
    const src = await attempt(() => fileData(att.url));
    if (!src) return;
    img.src = src;
    button.disabled = false;
    button.addEventListener('click', () => openViewer(att, src));
  };
  if ('IntersectionObserver' in window) {
    const seen = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        seen.disconnect();
        load();
      }
    });
    seen.observe(button);
  } else {
    load();
  }
  return button;
}

/** Video or audio: a play button that becomes the player. */
function player(att, kind) {
  const label = kind === 'video' ? t('file.playVideo') : att.voice ? t('file.playVoice') : t('file.playAudio');
  const box = h('div', { class: 'player' });
  const start = h('button', { type: 'button', class: 'play', onclick: async () => {
    start.disabled = true;
    const src = await attempt(() => fileData(att.url));
    if (!src) {
      start.disabled = false;
      return;
    }
    const media = h(kind, { src, controls: true, preload: 'auto', class: kind === 'video' ? 'video' : 'audio' });
    fill(box, media);
    media.play?.().catch(() => {});
  } }, '▶ ', label, ` (${formatSize(att.size)})`);
  fill(box, start);
  return box;
}

/** A document: a chip that downloads it. */
function chip(att) {
  return h('button', { type: 'button', class: 'file-chip', onclick: () => save(att), title: t('file.download') },
    docIcon(),
    h('span', { class: 'file-name' }, fileName(att)),
    att.size ? h('span', { class: 'file-size' }, formatSize(att.size)) : null);
}

/** One file of a transcript entry, in whatever state it is. */
export function fileView(att) {
  if (att.status === 'pending') {
    const retry = att.attempts ? ` (${t('file.retrying', { n: att.attempts })})` : '';
    return h('div', { class: 'file file-pending', role: 'status' }, '⏳ ', t('file.pending', { kind: t('media.' + att.kind) }), retry);
  }
  if (att.status === 'failed') {
    return h('div', { class: 'file file-failed', role: 'note' }, '⚠ ', t('file.failed', { kind: t('media.' + att.kind) }),
      att.error ? h('small', { class: 'file-reason' }, att.error) : null);
  }
  if (att.status === 'expired') {
    return h('div', { class: 'file file-expired', role: 'note' }, t('file.expired', { kind: t('media.' + att.kind) }));
  }
  const kind = kindOf(att);
  const view = kind === 'image' ? picture(att) : kind === 'document' ? chip(att) : player(att, kind);
  return h('div', { class: 'file file-' + kind }, view);
}

/** The files of an entry plus their captions. */
export function filesView(attachments) {
  return h('div', { class: 'files' },
    attachments.map((a) => [fileView(a), a.caption ? h('p', { class: 'text' }, a.caption) : null]));
}

/**
 * Uploads `file` to a conversation (multipart `file` and `caption`), calling
 * `onProgress(fraction)` as it goes; resolves to the server's JSON.
 */
export function uploadFile(conversationId, file, caption, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/conversations/${encodeURIComponent(conversationId)}/attachments`);
    for (const [k, v] of Object.entries(authHeaders({ Accept: 'application/json' }, 'POST'))) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body);
      } else {
        const err = body && body.error ? body.error : {};
        reject(new ApiError(xhr.status, err.code || 'http_' + xhr.status, err.message || xhr.statusText || 'upload failed'));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', t('file.network')));
    const form = new FormData();
    form.append('file', file, file.name);
    if (caption) form.append('caption', caption);
    xhr.send(form);
  });
}
