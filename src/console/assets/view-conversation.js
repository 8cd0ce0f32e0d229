// One conversation: the transcript as chat bubbles with delivery ticks and
// files, the reply box (canned responses, 24-hour window, files by the attach
// button or drag and drop, with upload progress), the contact panel and the
// owner's actions. Everything from customers is inserted as text.

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, toast, attempt, channelName, clock, dateTime, timeOfDay } from './dom.js';
import { clipIcon, docIcon, filesView, formatSize, uploadFile } from './files.js';

// How often the agent's typing is reported (WhatsApp shows it for 25 s).
const TYPING_EVERY_MS = 15_000;

const MEDIA = /^\[([a-z_]+)((?:[ :][^\]]*)?)\]\s?([\s\S]*)$/;
const MEDIA_KINDS = ['image', 'video', 'audio', 'voice', 'document', 'sticker', 'location', 'contacts', 'file', 'story', 'unsupported'];
const TICKS = { pending: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '⚠', dry_run: '·', skipped: '·' };

let cannedCache = null;

export function mount(root, { me, navigate }, [id]) {
  const supervisor = me.role === 'supervisor' || me.role === 'admin';
  let conv = null;
  // Server time minus browser time: windows are counted on the server's clock.
  let skew = 0;
  const adopt = (c) => {
    if (typeof c.now_ms === 'number') skew = c.now_ms - Date.now();
    return c;
  };
  let rendered = [];
  let reloadTimer = null;
  let stopped = false;

  // --- layout -------------------------------------------------------------
  const title = h('h1', { class: 'conv-title' }, '…');
  const status = h('p', { class: 'conv-status' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': t('conv.actions') });
  const transcript = h('ol', {
    class: 'transcript', id: 'transcript', 'aria-live': 'polite', 'aria-relevant': 'additions',
    'aria-label': t('conv.transcript'), tabindex: '0',
  });
  const windowInfo = h('p', { class: 'window', id: 'window-info' });
  const reply = h('textarea', {
    id: 'reply', rows: '3', 'aria-describedby': 'window-info reply-hint', 'aria-autocomplete': 'list',
    'aria-controls': 'canned-list', 'aria-expanded': 'false', autocomplete: 'off',
  });
  const cannedList = h('ul', { id: 'canned-list', class: 'canned', role: 'listbox', 'aria-label': t('conv.canned'), hidden: true });
  const sendButton = h('button', { type: 'submit', class: 'primary', id: 'send' }, t('conv.send'));
  const picker = h('input', { type: 'file', id: 'attach-input', class: 'sr', tabindex: '-1', 'aria-hidden': 'true' });
  const attachButton = h('button', {
    type: 'button', id: 'attach', 'aria-label': t('file.attach'), title: t('file.attach'),
    onclick: () => picker.click(),
  }, clipIcon());
  const staged = h('div', { class: 'staged', id: 'staged', hidden: true, role: 'status' });
  const composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); send(); } },
    windowInfo,
    picker,
    staged,
    h('label', { for: 'reply', class: 'sr' }, t('conv.reply')),
    h('div', { class: 'reply-row' }, attachButton, h('div', { class: 'reply-box' }, reply, cannedList), sendButton),
    h('p', { class: 'hint', id: 'reply-hint' }, t('conv.replyHint'), ' ', t('file.hint')),
  );
  const side = h('aside', { class: 'side', 'aria-label': t('conv.contact') });
  root.append(h('div', { class: 'conv' },
    h('div', { class: 'conv-main' },
      h('div', { class: 'conv-head' },
        h('a', { href: '#/mine', class: 'back' }, '← ', t('conv.back')),
        h('div', { class: 'conv-who' }, title, status),
        actions,
      ),
      transcript,
      composer,
    ),
    side,
  ));

  // --- data ---------------------------------------------------------------
  const load = async () => {
    const c = await attempt(() => api('/conversations/' + encodeURIComponent(id)));
    if (!c || stopped) return;
    conv = adopt(c);
    draw();
  };
  const reloadSoon = () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(load, 120);
  };

  const mine = () => conv && conv.state === 'assigned' && (conv.agent === me.id || supervisor);

  function draw() {
    fill(title, conv.contact?.name || conv.contact?.external_id || conv.id);
    fill(status,
      h('span', { class: 'badge state-' + conv.state }, t('state.' + conv.state)),
      ' ', channelName(conv.channel),
      conv.queue ? ' · ' + conv.queue : '',
      conv.agent ? ' · ' + conv.agent : '',
    );
    drawTranscript();
    drawActions();
    drawComposer();
    drawSide();
  }

  function drawTranscript() {
    const entries = conv.transcript;
    if (entries.length < rendered.length) {
      fill(transcript);
      rendered = [];
    }
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    entries.forEach((e, i) => {
      if (i < rendered.length) {
        updateTick(rendered[i].tick, e.delivery);
        updateFiles(rendered[i], e);
        return;
      }
      const drawn = bubble(e, me);
      transcript.append(drawn.li);
      rendered.push(drawn);
    });
    if (atBottom || rendered.length === entries.length) transcript.scrollTop = transcript.scrollHeight;
  }

  function drawActions() {
    const can = mine();
    const queueInput = h('input', { id: 'transfer-target', list: 'queue-names', required: true, autocomplete: 'off' });
    const kind = h('select', { id: 'transfer-kind', 'aria-label': t('conv.transferTo') },
      h('option', { value: 'queue' }, t('conv.toQueue')),
      h('option', { value: 'agent' }, t('conv.toAgent')),
    );
    const transfer = h('form', {
      class: 'transfer',
      onsubmit: async (e) => {
        e.preventDefault();
        const target = queueInput.value.trim();
        if (!target) return;
        const body = kind.value === 'queue' ? { queue: target } : { agent: target };
        const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/transfer`, { method: 'POST', body }));
        if (after) {
          toast(t('conv.transferred'));
          conv = adopt(after);
          draw();
        }
      },
    },
    h('label', { for: 'transfer-target', class: 'sr' }, t('conv.transferTo')),
    kind, queueInput, h('datalist', { id: 'queue-names' }), h('button', { type: 'submit' }, t('conv.transfer')));
    fillQueueNames(transfer.querySelector('datalist'));
    fill(actions,
      can || (supervisor && conv.state === 'queued') ? transfer : null,
      can ? h('button', { type: 'button', id: 'release', onclick: () => act('release', t('conv.released')) }, t('conv.release')) : null,
      can ? h('button', { type: 'button', id: 'resolve', class: 'primary', onclick: () => act('resolve', t('conv.resolved')) }, t('conv.resolve')) : null,
    );
  }

  async function act(what, done) {
    const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/${what}`, { method: 'POST' }));
    if (!after) return;
    toast(done);
    conv = adopt(after);
    draw();
  }

  // --- composer -----------------------------------------------------------
  function windowLeft() {
    if (!conv.window || !conv.window.closes_ms) return 0;
    return Math.floor((conv.window.closes_ms - (Date.now() + skew)) / 1000);
  }

  function drawComposer() {
    let reason = null;
    if (conv.state === 'resolved') reason = t('conv.resolvedNote');
    else if (!mine()) reason = t('conv.notOwner');
    else if (!conv.window.open || windowLeft() <= 0) reason = t('conv.windowClosed');
    const disabled = reason !== null;
    reply.disabled = disabled;
    sendButton.disabled = disabled || uploading;
    attachButton.disabled = disabled || uploading;
    composer.classList.toggle('closed', disabled);
    windowInfo.classList.toggle('warn', disabled);
    fill(windowInfo, reason ?? t('conv.window', { time: clock(windowLeft()) }));
  }

  // --- files -------------------------------------------------------------
  let stagedFile = null;
  let uploading = false;
  function stage(file) {
    if (!file || reply.disabled) return;
    stagedFile = file;
    stagedCanned = null;
    fill(staged,
      h('span', { class: 'file-chip staged-chip' },
        docIcon(),
        h('span', { class: 'file-name' }, file.name),
        h('span', { class: 'file-size' }, formatSize(file.size))),
      h('button', { type: 'button', class: 'chip-x', id: 'unstage', 'aria-label': t('file.remove', { name: file.name }), onclick: unstage }, '×'),
      h('span', { class: 'hint' }, t('file.captionHint')));
    staged.hidden = false;
    reply.focus();
  }
  // A canned response with a file: the file follows the text when sent.
  let stagedCanned = null;
  function stageCanned(c) {
    stagedFile = null;
    stagedCanned = c.shortcut;
    fill(staged,
      h('span', { class: 'file-chip staged-chip' },
        docIcon(),
        h('span', { class: 'file-name' }, c.file.filename),
        h('span', { class: 'file-size' }, formatSize(c.file.size))),
      h('button', { type: 'button', class: 'chip-x', id: 'unstage', 'aria-label': t('file.remove', { name: c.file.filename }), onclick: unstage }, '×'),
      h('span', { class: 'hint' }, t('file.cannedHint')));
    staged.hidden = false;
  }
  function unstage() {
    stagedCanned = null;
    stagedFile = null;
    picker.value = '';
    fill(staged);
    staged.hidden = true;
  }
  picker.addEventListener('change', () => stage(picker.files[0]));
  composer.addEventListener('dragover', (e) => {
    if (reply.disabled || !e.dataTransfer?.types?.includes('Files')) return;
    e.preventDefault();
    composer.classList.add('dropping');
  });
  composer.addEventListener('dragleave', () => composer.classList.remove('dropping'));
  composer.addEventListener('drop', (e) => {
    composer.classList.remove('dropping');
    if (reply.disabled || !e.dataTransfer?.files?.length) return;
    e.preventDefault();
    stage(e.dataTransfer.files[0]);
  });

  async function sendFile(caption) {
    const file = stagedFile;
    uploading = true;
    drawComposer();
    const bar = h('progress', { id: 'upload-progress', max: '100', value: '0', 'aria-label': t('file.uploading', { name: file.name }) });
    fill(staged, h('span', { class: 'hint' }, t('file.uploading', { name: file.name })), bar);
    const res = await attempt(() => uploadFile(id, file, caption, (f) => { bar.value = Math.round(f * 100); }));
    uploading = false;
    if (res) {
      toast(t('file.sent', { name: file.name }));
      unstage();
      reply.value = '';
      load();
    } else {
      stage(file);
    }
    drawComposer();
    reply.focus();
  }

  // The customer sees "typing…" while the agent writes (WhatsApp).
  let lastTyping = 0;
  function typing() {
    if (!conv || conv.channel !== 'whatsapp' || !mine() || Date.now() - lastTyping < TYPING_EVERY_MS) return;
    lastTyping = Date.now();
    api(`/conversations/${encodeURIComponent(id)}/typing`, { method: 'POST' }).catch(() => {});
  }

  async function send() {
    if (reply.disabled || uploading) return;
    if (stagedFile) {
      await sendFile(reply.value.trim());
      return;
    }
    const text = reply.value.trim();
    if (!text) return;
    sendButton.disabled = true;
    const body = stagedCanned ? { text, canned: stagedCanned } : { text };
    const res = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/messages`, { method: 'POST', body }));
    sendButton.disabled = false;
    if (res) {
      reply.value = '';
      closeCanned();
      unstage();
      load();
    }
    reply.focus();
  }

  // Canned responses: "/" at the start of the reply box searches them.
  let options = [];
  let active = -1;
  function closeCanned() {
    cannedList.hidden = true;
    reply.setAttribute('aria-expanded', 'false');
    reply.removeAttribute('aria-activedescendant');
    options = [];
    active = -1;
  }
  async function openCanned(query) {
    if (!cannedCache) {
      const res = await attempt(() => api('/canned'));
      cannedCache = res ? res.canned : [];
    }
    const q = query.toLowerCase();
    options = cannedCache.filter((c) =>
      [c.shortcut, c.title, c.text].some((s) => String(s || '').toLowerCase().includes(q))).slice(0, 8);
    active = options.length ? 0 : -1;
    drawCanned();
  }
  function drawCanned() {
    cannedList.hidden = false;
    reply.setAttribute('aria-expanded', 'true');
    if (!options.length) {
      fill(cannedList, h('li', { class: 'none' }, t('conv.noCanned')));
      reply.removeAttribute('aria-activedescendant');
      return;
    }
    fill(cannedList, options.map((c, i) => h('li', {
      id: 'canned-' + i, role: 'option', 'aria-selected': String(i === active),
      onmousedown: (e) => { e.preventDefault(); pick(i); },
    }, h('strong', {}, '/' + c.shortcut), ' ', h('span', {}, c.title), h('span', { class: 'canned-text' }, c.text))));
    if (active >= 0) reply.setAttribute('aria-activedescendant', 'canned-' + active);
  }
  function pick(i) {
    const c = options[i];
    if (!c) return;
    reply.value = c.text;
    closeCanned();
    if (c.file) stageCanned(c);
    reply.focus();
  }
  reply.addEventListener('input', () => {
    typing();
    const v = reply.value;
    if (v.startsWith('/') && !v.includes('\n')) openCanned(v.slice(1));
    else closeCanned();
  });
  reply.addEventListener('keydown', (e) => {
    if (!cannedList.hidden && options.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        active = (active + (e.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length;
        drawCanned();
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pick(active);
        return;
      }
    }
    if (e.key === 'Escape' && !cannedList.hidden) {
      e.preventDefault();
      e.stopPropagation();
      closeCanned();
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  reply.addEventListener('blur', () => setTimeout(closeCanned, 150));

  // --- side panel ---------------------------------------------------------
  function drawSide() {
    const c = conv.contact || { notes: [], labels: [] };
    const noteInput = h('textarea', { id: 'note-text', rows: '2', required: true });
    const labelInput = h('input', { id: 'label-text', maxlength: '64', required: true, autocomplete: 'off' });
    fill(side,
      h('section', {},
        h('h2', {}, t('conv.contact')),
        h('dl', { class: 'facts' },
          h('dt', {}, t('conv.contact')), h('dd', {}, c.name || '–'),
          h('dt', {}, t('conv.channel')), h('dd', {}, channelName(conv.channel), ' · ', c.external_id || ''),
          h('dt', {}, t('conv.state')), h('dd', {}, t('state.' + conv.state)),
          h('dt', {}, t('conv.queue')), h('dd', {}, conv.queue || '–'),
          // Numbers the customer gave (order, tracking, ticket, phone).
          Object.entries(conv.entities || {}).map(([k, v]) => [h('dt', {}, t('entity.' + k)), h('dd', { class: 'entity' }, v)]).flat(),
        ),
      ),
      h('section', {},
        h('h2', {}, t('conv.labels')),
        h('ul', { class: 'labels' }, (c.labels || []).map((l) => h('li', { class: 'chip' },
          h('span', {}, l),
          h('button', {
            type: 'button', class: 'chip-x', 'aria-label': t('conv.removeLabel', { label: l }),
            onclick: () => labels({ remove: [l] }),
          }, '×')))),
        h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); const v = labelInput.value.trim(); if (v) labels({ add: [v] }); } },
          h('label', { for: 'label-text', class: 'sr' }, t('conv.labelLabel')),
          labelInput, h('button', { type: 'submit' }, t('conv.addLabel'))),
      ),
      h('section', {},
        h('h2', {}, t('conv.notes')),
        h('ul', { class: 'notes' }, (c.notes || []).map((n) => h('li', {},
          h('p', {}, n.text), h('small', {}, n.author, ' · ', dateTime(n.at_ms))))),
        h('form', { class: 'stack', onsubmit: (e) => { e.preventDefault(); addNote(noteInput.value.trim()); } },
          h('label', { for: 'note-text' }, t('conv.noteLabel')),
          noteInput, h('button', { type: 'submit' }, t('conv.addNote'))),
      ),
      h('section', {},
        h('h2', {}, t('conv.previous')),
        conv.previous_cases.length
          ? h('ul', { class: 'cases' }, conv.previous_cases.map((p) => h('li', {},
            h('span', {}, dateTime(p.resolved_ms || p.opened_ms)), ' · ',
            h('span', {}, t('state.' + p.state)), ' · ',
            h('span', { class: p.csat ? 'csat csat-' + p.csat : 'csat' }, p.csat ? t('conv.csat', { n: p.csat }) : t('conv.noCsat')))))
          : h('p', { class: 'empty' }, t('conv.noPrevious')),
      ),
    );
  }

  async function labels(body) {
    const res = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/labels`, { method: 'POST', body }));
    if (res && conv.contact) {
      conv.contact.labels = res.labels;
      drawSide();
      side.querySelector('#label-text')?.focus();
    }
  }

  async function addNote(text) {
    if (!text) return;
    const res = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/notes`, { method: 'POST', body: { text } }));
    if (res && conv.contact) {
      conv.contact.notes = res.notes;
      drawSide();
      side.querySelector('#note-text')?.focus();
    }
  }

  load();
  const tick = setInterval(() => { if (conv) drawComposer(); }, 1000);
  const poll = setInterval(load, 20_000); // Safety net; events do the real work.

  return {
    onEvent(ev) {
      if (ev.conversation_id === id) reloadSoon();
    },
    onKey(e) {
      if (e.key === 'r' && !reply.disabled) {
        reply.focus();
        return true;
      }
      if (e.key === 'Escape') {
        navigate(conv && conv.state === 'queued' ? 'queue' : 'mine');
        return true;
      }
      return false;
    },
    unmount() {
      stopped = true;
      clearInterval(tick);
      clearInterval(poll);
      clearTimeout(reloadTimer);
    },
  };
}

async function fillQueueNames(datalist) {
  const res = await api('/queue').catch(() => null);
  if (!res) return;
  fill(datalist, Object.keys(res.queues).map((q) => h('option', { value: q })));
}

/** A key that changes when an entry's files change state. */
function filesKey(e) {
  return (e.attachments || []).map((a) => a.id + ':' + a.status).join(',');
}

/** Redraws an entry's files when one was downloaded, failed or expired. */
function updateFiles(drawn, e) {
  const key = filesKey(e);
  if (!drawn.files || drawn.key === key) return;
  const fresh = filesView(e.attachments);
  drawn.files.replaceWith(fresh);
  drawn.files = fresh;
  drawn.key = key;
}

/** One transcript entry as a bubble (or a centred line for system events). */
function bubble(e, me) {
  const kind = e.speaker.kind;
  if (kind === 'system') {
    return { li: h('li', { class: 'entry system' }, h('span', {}, e.text), ' ', h('time', {}, timeOfDay(e.at_ms))), tick: null };
  }
  let who = t('conv.' + kind);
  if (kind === 'agent') who = e.speaker.id === me.id ? t('conv.you') : e.speaker.id;
  if (kind === 'bot' && e.speaker.intent) who = `${t('conv.bot')} · ${e.speaker.intent}`;
  const tick = kind === 'customer' ? null : h('span', { class: 'tick' });
  updateTick(tick, e.delivery);
  // A message with files shows them (and their captions) instead of its
  // one-line summary.
  const files = e.attachments && e.attachments.length ? filesView(e.attachments) : null;
  const li = h('li', { class: 'entry ' + kind },
    h('div', { class: 'bubble' },
      h('span', { class: 'who' }, who),
      files || body(e.text, kind),
      h('span', { class: 'stamp' }, h('time', {}, timeOfDay(e.at_ms)), tick ? ' ' : '', tick),
    ));
  return { li, tick, files, key: filesKey(e) };
}

function body(text, kind) {
  const m = kind === 'customer' ? MEDIA.exec(text) : null;
  if (!m || !MEDIA_KINDS.includes(m[1])) return h('p', { class: 'text' }, text);
  const label = t('media.' + m[1]) !== 'media.' + m[1] ? t('media.' + m[1]) : t('media.other');
  const extra = m[2].replace(/^[ :]+/, '');
  return h('div', { class: 'media' },
    h('span', { class: 'media-label', role: 'img', 'aria-label': label }, label, extra ? ` (${extra})` : ''),
    m[3] ? h('p', { class: 'text' }, m[3]) : null);
}

function updateTick(tick, delivery) {
  if (!tick) return;
  if (!delivery) {
    tick.hidden = true;
    return;
  }
  const s = delivery.state;
  tick.hidden = false;
  tick.textContent = TICKS[s] || '';
  tick.className = 'tick tick-' + s;
  let label = t('delivery.' + s);
  if (s === 'failed') {
    const why = [delivery.error_title, delivery.error_code ? `(${delivery.error_code})` : ''].filter(Boolean).join(' ');
    if (why) label += ': ' + why;
  }
  tick.title = label;
  tick.setAttribute('aria-label', label);
  tick.setAttribute('role', 'img');
}
