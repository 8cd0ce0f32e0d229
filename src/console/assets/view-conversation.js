// One conversation: the transcript as chat bubbles with delivery ticks and
// files, the reply box (canned responses rendered for this conversation,
// 24-hour window, files by the attach button or drag and drop, with upload
// progress), the contact panel (a drawer on phones) and the actions: claim
// a waiting conversation, transfer to a queue or to a person chosen from a
// list, snooze, release, resolve. Everything from customers is inserted as
// text.

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, toast, attempt, channelName, clock, dateTime, timeOfDay } from './dom.js';
import { clipIcon, docIcon, filesView, formatSize, uploadFile } from './files.js';
import { agentName, knownAgents, labelName, loadAgents, mediaSummary, queueName, reasonName } from './names.js';
import { systemLine } from './system.js';

// How often the agent's typing is reported (WhatsApp shows it for 25 s).
const TYPING_EVERY_MS = 15_000;

const TICKS = { pending: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '⚠', dry_run: '·', skipped: '·' };

/** `{{name}}` left in a reply: the customer would read it as written. */
const PLACEHOLDER = /\{\{\s*[\w.]+\s*\}\}/;

export function mount(root, { me, navigate, back = 'mine' }, [id]) {
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
  const claimButton = h('button', { type: 'button', class: 'primary', id: 'claim', hidden: true, onclick: () => claimThis() }, t('conv.claim'));
  const placeholderNote = h('p', { class: 'hint warn-text', id: 'placeholder-note', role: 'status', hidden: true });
  const picker = h('input', { type: 'file', id: 'attach-input', class: 'sr', tabindex: '-1', 'aria-hidden': 'true' });
  const attachButton = h('button', {
    type: 'button', id: 'attach', 'aria-label': t('file.attach'), title: t('file.attach'),
    onclick: () => picker.click(),
  }, clipIcon());
  const staged = h('div', { class: 'staged', id: 'staged', hidden: true, role: 'status' });
  const composer = h('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); send(); } },
    h('div', { class: 'window-row' }, windowInfo, claimButton),
    picker,
    staged,
    h('label', { for: 'reply', class: 'sr' }, t('conv.reply')),
    h('div', { class: 'reply-row' }, attachButton, h('div', { class: 'reply-box' }, reply, cannedList), sendButton),
    placeholderNote,
    h('p', { class: 'hint keyboard-hint', id: 'reply-hint' }, t('conv.replyHint'), ' ', t('file.hint')),
  );
  // On phones the contact panel is a drawer and the actions a menu.
  const side = h('aside', { class: 'side', id: 'side', 'aria-label': t('conv.contact') });
  const scrim = h('div', { class: 'scrim', hidden: true, onclick: () => drawer(false) });
  const contactToggle = h('button', {
    type: 'button', id: 'contact-toggle', class: 'phone-only', 'aria-controls': 'side', 'aria-expanded': 'false',
    onclick: () => drawer(!side.classList.contains('open')),
  }, t('conv.contact'));
  const actionsToggle = h('button', {
    type: 'button', id: 'actions-toggle', class: 'phone-only', 'aria-controls': 'actions', 'aria-expanded': 'false',
    onclick: () => {
      const open = !actions.classList.contains('open');
      actions.classList.toggle('open', open);
      actionsToggle.setAttribute('aria-expanded', String(open));
    },
  }, t('conv.actions'), ' ▾');
  actions.id = 'actions';
  function drawer(open) {
    side.classList.toggle('open', open);
    scrim.hidden = !open;
    contactToggle.setAttribute('aria-expanded', String(open));
    if (open) side.querySelector('.drawer-close')?.focus();
    else if (document.activeElement && side.contains(document.activeElement)) contactToggle.focus();
  }
  root.append(h('div', { class: 'conv' },
    h('div', { class: 'conv-main' },
      h('div', { class: 'conv-head' },
        h('a', { href: '#/' + back, class: 'back', id: 'back' }, '← ', t('conv.back')),
        h('div', { class: 'conv-who' }, title, status),
        contactToggle,
        actionsToggle,
        actions,
      ),
      transcript,
      composer,
    ),
    scrim,
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
      conv.snooze ? [' ', h('span', { class: 'badge snoozed', id: 'snooze-badge' }, snoozeText(conv.snooze))] : null,
      ' ', channelName(conv.channel),
      conv.queue ? ' · ' + queueName(conv.queue) : '',
      conv.agent ? ' · ' + agentName(conv.agent) : '',
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

  const choices = { kind: 'queue', target: null, snooze: 'reply' };
  function drawActions() {
    const can = mine();
    const transferable = can || (supervisor && conv.state === 'queued');
    const snoozable = can;
    fill(actions,
      transferable ? transferForm() : null,
      snoozable && !conv.snooze ? snoozeForm() : null,
      snoozable && conv.snooze
        ? h('button', { type: 'button', id: 'wake', onclick: () => act('snooze', t('conv.woken'), 'DELETE') }, t('conv.wake'))
        : null,
      can ? h('button', { type: 'button', id: 'release', onclick: () => act('release', t('conv.released')) }, t('conv.release')) : null,
      can ? h('button', { type: 'button', id: 'resolve', class: 'primary', onclick: () => act('resolve', t('conv.resolved')) }, t('conv.resolve')) : null,
    );
    actionsToggle.hidden = !actions.childElementCount;
  }

  /** Transfer to a queue or to a person picked from a list (with presence and load). */
  function transferForm() {
    const kind = h('select', { id: 'transfer-kind', 'aria-label': t('conv.transferKind') },
      h('option', { value: 'queue' }, t('conv.toQueue')),
      h('option', { value: 'agent' }, t('conv.toAgent')),
    );
    const target = h('select', { id: 'transfer-target', required: true });
    // Live updates redraw the actions: what the agent was choosing stays.
    kind.value = choices.kind;
    const fillTargets = () => {
      if (kind.value === 'queue') {
        const queues = [...new Set([...(transferQueues || []), ...(conv.queue ? [conv.queue] : [])])].sort();
        fill(target, queues.map((q) => h('option', { value: q, selected: q === conv.queue }, queueName(q))));
        return;
      }
      const people = knownAgents().filter((a) => a.id !== conv.agent);
      fill(target, people.length
        ? people.map((a) => h('option', { value: a.id, disabled: a.available === false }, agentLabel(a)))
        : h('option', { value: '', disabled: true }, t('conv.nobody')));
      const first = people.find((a) => a.available !== false);
      if (first) target.value = first.id;
    };
    kind.addEventListener('change', () => {
      choices.kind = kind.value;
      choices.target = null;
      fillTargets();
    });
    target.addEventListener('change', () => { choices.target = target.value; });
    fillTargets();
    if (choices.target && [...target.options].some((o) => o.value === choices.target && !o.disabled)) target.value = choices.target;
    return h('form', {
      class: 'transfer',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!target.value) return;
        const body = kind.value === 'queue' ? { queue: target.value } : { agent: target.value };
        const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/transfer`, { method: 'POST', body }));
        if (after) {
          toast(t('conv.transferred'));
          conv = adopt(after);
          draw();
        }
      },
    },
    h('label', { for: 'transfer-target', class: 'sr' }, t('conv.transferTo')),
    kind, target, h('button', { type: 'submit' }, t('conv.transfer')));
  }

  /** Snooze until the customer writes, in an hour, tomorrow morning or a chosen time. */
  function snoozeForm() {
    const until = h('select', { id: 'snooze-until', 'aria-label': t('conv.snoozeUntil') },
      h('option', { value: 'reply' }, t('conv.snoozeReply')),
      h('option', { value: '1h' }, t('conv.snooze1h')),
      h('option', { value: '4h' }, t('conv.snooze4h')),
      h('option', { value: 'morning' }, t('conv.snoozeMorning')),
      h('option', { value: 'at' }, t('conv.snoozeAt')),
    );
    const at = h('input', { type: 'datetime-local', id: 'snooze-at', hidden: until.value !== 'at', 'aria-label': t('conv.snoozeAt') });
    until.value = choices.snooze;
    at.hidden = until.value !== 'at';
    until.addEventListener('change', () => {
      choices.snooze = until.value;
      at.hidden = until.value !== 'at';
    });
    return h('form', {
      class: 'snooze',
      onsubmit: async (e) => {
        e.preventDefault();
        const now = Date.now() + skew;
        let ms = null;
        if (until.value === '1h') ms = now + 3_600_000;
        else if (until.value === '4h') ms = now + 4 * 3_600_000;
        else if (until.value === 'morning') {
          const d = new Date(now + 86_400_000);
          d.setHours(9, 0, 0, 0);
          ms = d.getTime();
        } else if (until.value === 'at') {
          ms = at.value ? new Date(at.value).getTime() : NaN;
          if (!(ms > now)) {
            toast(t('conv.snoozePast'), 'error');
            return;
          }
        }
        const body = ms === null ? {} : { until: new Date(ms).toISOString() };
        const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/snooze`, { method: 'POST', body }));
        if (after) {
          toast(t('conv.snoozed'));
          conv = adopt(after);
          draw();
        }
      },
    }, until, at, h('button', { type: 'submit', id: 'snooze' }, t('conv.snooze')));
  }

  /** Takes this waiting conversation (the same guards as "claim next"). */
  async function claimThis() {
    const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/claim`, { method: 'POST' }));
    if (!after) {
      load();
      return;
    }
    toast(t('conv.claimed'));
    conv = adopt(after);
    draw();
    reply.focus();
  }

  async function act(what, done, method = 'POST') {
    const after = await attempt(() => api(`/conversations/${encodeURIComponent(id)}/${what}`, { method }));
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
    const claimable = conv.state === 'queued';
    if (conv.state === 'resolved') reason = t('conv.resolvedNote');
    else if (claimable) reason = t('conv.queuedNote', { queue: queueName(conv.queue) });
    else if (!mine()) reason = t('conv.notOwner');
    else if (!conv.window.open || windowLeft() <= 0) reason = t('conv.windowClosed');
    const disabled = reason !== null;
    reply.disabled = disabled;
    sendButton.disabled = disabled || uploading;
    attachButton.disabled = disabled || uploading;
    composer.classList.toggle('closed', disabled);
    windowInfo.classList.toggle('warn', disabled);
    fill(windowInfo, reason ?? t('conv.window', { time: clock(windowLeft()) }));
    claimButton.hidden = !claimable;
    notePlaceholders();
  }

  // A {{variable}} typed by hand: the server fills it in for this
  // conversation when sending (and refuses an unknown one with 422).
  function notePlaceholders() {
    const has = PLACEHOLDER.test(reply.value) && !reply.disabled;
    placeholderNote.hidden = !has;
    if (has) fill(placeholderNote, t('conv.placeholderServer'));
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
  // Rendered for this conversation by the server (name, order number …).
  let cannedCache = null;
  async function openCanned(query) {
    if (!cannedCache) {
      const res = await attempt(() => api('/canned?conversation=' + encodeURIComponent(id)));
      cannedCache = res ? res.canned : [];
    }
    const q = query.toLowerCase();
    options = cannedCache.filter((c) =>
      [c.shortcut, c.title, c.rendered ?? c.text].some((s) => String(s || '').toLowerCase().includes(q))).slice(0, 8);
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
    // The text the customer will read: the chosen one in full (a preview).
    fill(cannedList, options.map((c, i) => h('li', {
      id: 'canned-' + i, role: 'option', 'aria-selected': String(i === active),
      onmousedown: (e) => { e.preventDefault(); pick(i); },
    }, h('strong', {}, '/' + c.shortcut), ' ', h('span', {}, c.title),
    h('span', { class: 'canned-text' + (i === active ? ' preview' : '') }, c.rendered ?? c.text))));
    if (active >= 0) reply.setAttribute('aria-activedescendant', 'canned-' + active);
  }
  function pick(i) {
    const c = options[i];
    if (!c) return;
    reply.value = c.rendered ?? c.text;
    closeCanned();
    notePlaceholders();
    if (c.file) stageCanned(c);
    reply.focus();
  }
  reply.addEventListener('input', () => {
    typing();
    notePlaceholders();
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
      h('button', { type: 'button', class: 'drawer-close phone-only', onclick: () => drawer(false) }, '× ', t('close')),
      h('section', {},
        h('h2', {}, t('conv.contact')),
        h('dl', { class: 'facts' },
          h('dt', {}, t('conv.contact')), h('dd', {}, c.name || '–'),
          h('dt', {}, t('conv.channel')), h('dd', {}, channelName(conv.channel), ' · ', c.external_id || ''),
          h('dt', {}, t('conv.state')), h('dd', {}, t('state.' + conv.state)),
          h('dt', {}, t('conv.queue')), h('dd', {}, conv.queue ? queueName(conv.queue) : '–'),
          conv.reason ? [h('dt', {}, t('conv.reason')), h('dd', {}, reasonName(conv.reason))] : null,
          // Numbers the customer gave (order, tracking, ticket, phone).
          Object.entries(conv.entities || {}).map(([k, v]) => [h('dt', {}, t('entity.' + k)), h('dd', { class: 'entity' }, v)]).flat(),
        ),
      ),
      h('section', {},
        h('h2', {}, t('conv.labels')),
        h('ul', { class: 'labels' }, (c.labels || []).map((l) => h('li', { class: 'chip' },
          h('span', {}, labelName(l)),
          h('button', {
            type: 'button', class: 'chip-x', 'aria-label': t('conv.removeLabel', { label: labelName(l) }),
            onclick: () => labels({ remove: [l] }),
          }, '×')))),
        h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); const v = labelInput.value.trim(); if (v) labels({ add: [v] }); } },
          h('label', { for: 'label-text', class: 'sr' }, t('conv.labelLabel')),
          labelInput, h('button', { type: 'submit' }, t('conv.addLabel'))),
      ),
      h('section', {},
        h('h2', {}, t('conv.notes')),
        h('ul', { class: 'notes' }, (c.notes || []).map((n) => h('li', {},
          h('p', {}, n.text), h('small', {}, agentName(n.author), ' · ', dateTime(n.at_ms))))),
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

  // Who a transfer can go to (queues; people with presence and load).
  let transferQueues = null;
  loadAgents().then((res) => {
    transferQueues = res.queues || [];
    if (conv) drawActions();
  }).catch(() => {});
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
        if (side.classList.contains('open')) drawer(false);
        else navigate(back);
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

/** "Dewi Lestari — online · 2/5" (presence and load where the server has them). */
function agentLabel(a) {
  const bits = [];
  if (a.presence) bits.push(t('presence.' + a.presence));
  if (typeof a.load === 'number' && a.capacity) bits.push(`${a.load}/${a.capacity}`);
  if (a.available === false && a.presence === 'online') bits.push(t('conv.full'));
  return bits.length ? `${a.name || a.id} — ${bits.join(' · ')}` : a.name || a.id;
}

/** "until the customer writes" / "until 1 Des 09.00". */
function snoozeText(snooze) {
  return snooze.until_ms ? t('conv.snoozedUntil', { time: dateTime(snooze.until_ms) }) : t('conv.snoozedReply');
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
    return { li: h('li', { class: 'entry system' }, h('span', {}, systemLine(e)), ' ', h('time', {}, timeOfDay(e.at_ms))), tick: null };
  }
  let who = t('conv.' + kind);
  if (kind === 'agent') who = e.speaker.id === me.id ? t('conv.you') : agentName(e.speaker.id);
  if (kind === 'bot' && e.speaker.intent) who = `${t('conv.bot')} · ${reasonName(e.speaker.intent)}`;
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
  const m = kind === 'customer' ? mediaSummary(text) : null;
  if (!m) return h('p', { class: 'text' }, text);
  return h('div', { class: 'media' },
    h('span', { class: 'media-label', role: 'img', 'aria-label': m.label }, m.label, m.extra ? ` (${m.extra})` : ''),
    m.caption ? h('p', { class: 'text' }, m.caption) : null);
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
