// Broadcasts for marketers: the list with live progress (polled) drawn per
// outcome, a create form (a WhatsApp template picked from the list synced
// from Meta with a rendered preview, or text; audience from a CSV file,
// pasted CSV or a segment; schedule with a quiet-hours warning), row errors
// in the interface's language with file lines, and pause / resume / cancel.

import { api, download, ApiError } from './api.js';
import { t, lang } from './i18n.js';
import { h, fill, svg, attempt, toast, channelName, dateTime } from './dom.js';
import { parseCsv, recipientsFromCsv } from './csv.js';

const POLL_MS = 3000;

/** Outcomes in the order the bar draws them; `pending` is the empty rest. */
const OUTCOMES = ['read', 'delivered', 'sent', 'dry_run', 'skipped', 'failed', 'cancelled', 'pending'];

export function mount(root) {
  const list = h('div', { class: 'broadcasts' });
  const form = createForm(() => load());
  root.append(
    h('div', { class: 'toolbar' }, h('h1', {}, t('bc.title'))),
    list,
    h('details', { class: 'create', open: true }, h('summary', {}, t('bc.new')), form),
  );

  let stopped = false;
  const load = async () => {
    const res = await attempt(() => api('/broadcasts'));
    if (!res || stopped) return;
    drawList(list, res.broadcasts, load);
  };
  load();
  const poll = setInterval(load, POLL_MS);
  return {
    unmount() {
      stopped = true;
      clearInterval(poll);
    },
  };
}

/**
 * The progress of a broadcast as a bar with one segment per outcome (read,
 * delivered, sent, dry run, skipped, failed, cancelled; pending is the rest),
 * so a dry run or a cancelled broadcast never looks fully sent.
 */
export function progressBar(b) {
  const c = b.counts || {};
  const total = Math.max(c.total || 0, 1);
  let x = 0;
  const segments = [];
  for (const k of OUTCOMES) {
    const n = Number(c[k] || 0);
    if (!n || k === 'pending') continue;
    segments.push(svg('rect', { x, y: 0, width: n, height: 1, class: 'seg seg-' + k }, svg('title', {}, `${t('bcout.' + k)}: ${n}`)));
    x += n;
  }
  const summary = OUTCOMES.filter((k) => c[k]).map((k) => `${t('bcout.' + k)} ${c[k]}`).join(' · ');
  return h('div', { class: 'bc-progress' },
    svg('svg', {
      class: 'bar', viewBox: `0 0 ${total} 1`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': `${t('bc.progress')} ${b.name}: ${summary || t('bc.nothingYet')}`,
    }, svg('rect', { x: 0, y: 0, width: total, height: 1, class: 'seg seg-rest' }), segments),
    h('small', { class: 'bc-counts' }, t('bc.total', { total: c.total || 0 }), summary ? ' · ' + summary : ''));
}

function drawList(list, items, reload) {
  if (!items.length) {
    fill(list, h('p', { class: 'empty' }, t('bc.empty')));
    return;
  }
  const sorted = [...items].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const action = (b, what) => async () => {
    if (what === 'cancel' && !confirm(t('bc.confirmCancel', { name: b.name }))) return;
    const res = await attempt(() => api(`/broadcasts/${encodeURIComponent(b.id)}/${what}`, { method: 'POST' }));
    if (res) reload();
  };
  fill(list, h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('bc.name')),
      h('th', { scope: 'col' }, t('bc.status')),
      h('th', { scope: 'col' }, t('bc.progress')),
      h('th', { scope: 'col' }, t('bc.when')),
      h('th', { scope: 'col' }, h('span', { class: 'sr' }, t('conv.actions'))))),
    h('tbody', {}, sorted.map((b) => {
      const reasons = [
        ...Object.entries(b.reasons?.skipped || {}).map(([r, n]) => `${t('bcout.skipped')}: ${reasonText(r)} ${n}`),
        ...Object.entries(b.reasons?.failed || {}).map(([r, n]) => `${t('bcout.failed')}: ${reasonText(r)} ${n}`),
      ];
      const dry = b.counts?.dry_run > 0 && !b.counts.sent && !b.counts.delivered && !b.counts.read;
      return h('tr', { 'data-broadcast': b.id },
        h('th', { scope: 'row' }, b.name, h('small', {}, channelName(b.channel))),
        h('td', {},
          h('span', { class: 'badge bc-' + b.status }, t('bcstatus.' + b.status)),
          dry ? [' ', h('span', { class: 'badge bc-dry' }, t('bc.dryRun'))] : null),
        h('td', { class: 'progress-cell' }, progressBar(b), reasons.length ? h('small', { class: 'bc-reasons' }, reasons.join(' · ')) : null),
        h('td', {}, dateTime(Date.parse(b.send_at))),
        h('td', {}, h('div', { class: 'row-actions' },
          ['scheduled', 'running'].includes(b.status) ? h('button', { type: 'button', onclick: action(b, 'pause') }, t('bc.pause')) : null,
          b.status === 'paused' ? h('button', { type: 'button', onclick: action(b, 'resume') }, t('bc.resume')) : null,
          ['scheduled', 'running', 'paused'].includes(b.status)
            ? h('button', { type: 'button', class: 'danger', onclick: action(b, 'cancel') }, t('bc.cancelBc')) : null,
          h('button', {
            type: 'button', class: 'link',
            onclick: () => attempt(() => download(`/broadcasts/${encodeURIComponent(b.id)}/recipients.csv`, `recipients-${b.id}.csv`)),
          }, t('bc.recipientsCsv')),
        )));
    })),
  )));
}

/** Why recipients were skipped (a word) or failed (Meta's error code). */
function reasonText(r) {
  const key = 'bcreason.' + r;
  if (t(key) !== key) return t(key);
  return /^\d+$/.test(r) ? t('bcreason.code', { code: r }) : r;
}

let seq = 0;
function field(label, input, hint) {
  const id = input.id || `f${++seq}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

/** Radio buttons; the first is the default (also after the form is reset). */
function radios(name, options, onchange) {
  return h('fieldset', { class: 'radios' }, h('legend', {}, options.legend),
    options.items.map(([value, label], i) => {
      const input = h('input', { type: 'radio', name, value, checked: i === 0, onchange });
      input.defaultChecked = i === 0;
      return h('label', {}, input, ' ', label);
    }));
}

/** Quiet hours until the server says (the shipped default). */
const DEFAULT_SETTINGS = { quiet_hours: '21:00-08:00', timezone: 'Asia/Jakarta' };

/** Minutes since midnight of "HH:MM". */
function minutes(hhmm) {
  const m = /^(\d{1,2}):(\d{2})$/.exec(hhmm.trim());
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/**
 * Whether the instant `ms` falls in `range` ("21:00-08:00", local to
 * `timezone`; the end may be before the start, across midnight).
 */
export function inQuietHours(ms, range, timezone) {
  const [a, b] = String(range || '').split('-');
  const from = a && minutes(a);
  const to = b && minutes(b);
  if (from === null || to === null || from === undefined || to === undefined || from === to) return false;
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(new Date(ms));
  const at = Number(parts.find((p) => p.type === 'hour').value) * 60 + Number(parts.find((p) => p.type === 'minute').value);
  return from < to ? at >= from && at < to : at >= from || at < to;
}

/** A template body with `{{1}}` … filled from `params` (and their `{{var}}` from `row`). */
export function renderTemplate(body, params, row = {}) {
  const fillVars = (s) => String(s).replace(/\{\{\s*([\w.]+)\s*\}\}/g, (m, k) => (row[k] !== undefined && row[k] !== '' ? row[k] : m));
  return String(body || '').replace(/\{\{\s*(\d+)\s*\}\}/g, (m, n) => {
    const p = params[Number(n) - 1];
    return p === undefined ? m : fillVars(p);
  });
}

function createForm(onCreated) {
  const name = h('input', { required: true, maxlength: '200', id: 'bc-name' });
  const channel = h('select', { id: 'bc-channel' }, h('option', { value: 'whatsapp', selected: true }, 'WhatsApp'), h('option', { value: 'instagram' }, 'Instagram'));
  const tplPick = h('select', { id: 'tpl-pick' });
  const tplSync = h('button', { type: 'button', id: 'tpl-sync' }, t('bc.sync'));
  const tplInfo = h('small', { id: 'tpl-info', class: 'hint' });
  const tplName = h('input', { autocomplete: 'off', id: 'tpl-name' });
  const tplLang = h('input', { maxlength: '16', id: 'tpl-lang' });
  tplLang.defaultValue = 'id';
  const tplParams = h('textarea', { rows: '2', id: 'tpl-params' });
  const tplPreview = h('div', { class: 'tpl-preview', id: 'tpl-preview', hidden: true, 'aria-live': 'polite' });
  const text = h('textarea', { rows: '3', id: 'bc-text' });
  const csvFile = h('input', { type: 'file', accept: '.csv,text/csv', id: 'bc-csv-file' });
  const csvText = h('textarea', { rows: '4', placeholder: 'to,name\n6281234567890,Budi', id: 'bc-csv-text' });
  const segLabel = h('input', {});
  const segDays = h('input', { type: 'number', min: '0', step: '1' });
  const segQueue = h('input', {});
  const segCsatMax = h('input', { type: 'number', min: '1', max: '5', step: '1' });
  const sendAt = h('input', { type: 'datetime-local', id: 'bc-send-at' });
  const quiet = h('p', { class: 'warn-box', id: 'quiet-warning', role: 'status', hidden: true });
  const rate = h('input', { type: 'number', min: '0.1', max: '1000', step: 'any', id: 'bc-rate' });
  const errors = h('div', { class: 'row-errors', role: 'alert', id: 'bc-errors' });

  // Templates synced from Meta (when a WhatsApp Business Account is set).
  let templates = [];
  const pickerPart = h('div', { class: 'tpl-picker', hidden: true },
    field(t('bc.pickTemplate'), tplPick), h('div', { class: 'tpl-sync' }, tplSync, tplInfo));
  const templatePart = h('div', { class: 'part' }, pickerPart, field(t('bc.template'), tplName), field(t('bc.language'), tplLang), field(t('bc.params'), tplParams), tplPreview);
  const textPart = h('div', { class: 'part', hidden: true }, field(t('bc.text'), text));
  const csvPart = h('div', { class: 'part' }, field(t('bc.csvFile'), csvFile, t('bc.csvHint')));
  const pastePart = h('div', { class: 'part', hidden: true }, field(t('bc.csvText'), csvText, t('bc.csvHint')));
  const segPart = h('div', { class: 'part', hidden: true },
    field(t('bc.segLabel'), segLabel), field(t('bc.segDays'), segDays), field(t('bc.segQueue'), segQueue), field(t('bc.segCsatMax'), segCsatMax));

  const kindRadios = radios('bc-kind', { legend: t('bc.message'), items: [['template', t('bc.kindTemplate')], ['text', t('bc.kindText')]] }, () => sync());
  const audRadios = radios('bc-aud', { legend: t('bc.audience'), items: [['csv', t('bc.audCsv')], ['paste', t('bc.audPaste')], ['segment', t('bc.audSegment')]] }, () => sync());
  const kind = () => kindRadios.querySelector('input:checked')?.value || 'template';
  const audience = () => audRadios.querySelector('input:checked')?.value || 'csv';
  /** Shows the parts the radios and the channel call for. */
  function sync() {
    // Instagram has no templates.
    const ig = channel.value === 'instagram';
    kindRadios.querySelector('input[value=template]').disabled = ig;
    if (ig && kind() === 'template') kindRadios.querySelector('input[value=text]').checked = true;
    templatePart.hidden = kind() !== 'template';
    textPart.hidden = kind() !== 'text';
    csvPart.hidden = audience() !== 'csv';
    pastePart.hidden = audience() !== 'paste';
    segPart.hidden = audience() !== 'segment';
    preview();
  }
  channel.addEventListener('change', sync);

  // The first recipient's values, for the preview.
  let firstRow = {};
  async function readFirstRow() {
    const raw = audience() === 'csv' ? (csvFile.files[0] ? await csvFile.files[0].text() : '') : audience() === 'paste' ? csvText.value : '';
    const parsed = raw.trim() ? recipientsFromCsv(parseCsv(raw)) : null;
    firstRow = parsed && parsed.recipients[0] ? parsed.recipients[0].variables : {};
    preview();
  }
  csvFile.addEventListener('change', readFirstRow);
  csvText.addEventListener('input', readFirstRow);

  const chosen = () => templates.find((x) => x.name === tplName.value.trim() && x.language === (tplLang.value.trim() || 'id'));
  const params = () => tplParams.value.split('\n').map((x) => x.trim()).filter(Boolean);
  /** The template as the first recipient will read it, and whether the parameters fit. */
  function preview() {
    const tpl = chosen();
    if (!tpl || kind() !== 'template') {
      tplPreview.hidden = true;
      return;
    }
    const given = params();
    const fits = given.length === tpl.parameters;
    fill(tplPreview,
      h('p', { class: 'tpl-preview-title' }, t('bc.preview')),
      h('div', { class: 'bubble tpl-bubble' },
        tpl.header ? h('strong', {}, renderTemplate(tpl.header, given, firstRow)) : null,
        h('p', { class: 'text', id: 'tpl-preview-body' }, renderTemplate(tpl.body, given, firstRow)),
        tpl.footer ? h('small', {}, tpl.footer) : null,
        tpl.buttons?.length ? h('div', { class: 'tpl-buttons' }, tpl.buttons.map((b) => h('span', { class: 'tpl-button' }, b.text))) : null),
      h('p', { class: fits ? 'hint' : 'error', id: 'tpl-params-check' },
        t(fits ? 'bc.paramsOk' : 'bc.paramsWrong', { n: tpl.parameters, given: given.length })));
    tplPreview.hidden = false;
  }
  tplParams.addEventListener('input', preview);
  tplName.addEventListener('input', preview);
  tplLang.addEventListener('input', preview);
  tplPick.addEventListener('change', () => {
    const tpl = templates[Number(tplPick.value)];
    if (!tpl) return;
    tplName.value = tpl.name;
    tplLang.value = tpl.language;
    // One line per parameter, ready to fill.
    const lines = params();
    while (lines.length < tpl.parameters) lines.push('');
    tplParams.value = lines.slice(0, Math.max(tpl.parameters, 0)).join('\n');
    tplParams.rows = Math.max(2, tpl.parameters);
    preview();
    if (tpl.parameters) tplParams.focus();
  });

  function drawTemplates(res) {
    templates = res.templates || [];
    pickerPart.hidden = !res.configured;
    fill(tplPick, h('option', { value: '' }, templates.length ? t('bc.choose') : t('bc.noTemplates')),
      templates.map((x, i) => h('option', { value: String(i), disabled: x.status !== 'APPROVED' },
        `${x.name} (${x.language}) · ${t('tplcat.' + x.category) !== 'tplcat.' + x.category ? t('tplcat.' + x.category) : x.category}`
        + (x.status !== 'APPROVED' ? ` · ${t('tplstatus.' + x.status) !== 'tplstatus.' + x.status ? t('tplstatus.' + x.status) : x.status}` : ''))));
    fill(tplInfo, res.synced_ms ? t('bc.synced', { time: dateTime(res.synced_ms), n: templates.length }) : t('bc.neverSynced'));
    preview();
  }
  tplSync.addEventListener('click', async () => {
    tplSync.disabled = true;
    const res = await attempt(() => api('/templates/sync', { method: 'POST' }));
    tplSync.disabled = false;
    if (res) {
      drawTemplates(res);
      toast(t('bc.syncedNow', { n: res.templates.length }));
    }
  });

  // Quiet hours: the time is accepted, but nothing goes out before they end.
  let settings = DEFAULT_SETTINGS;
  function checkQuiet() {
    const ms = sendAt.value ? new Date(sendAt.value).getTime() : Date.now();
    const range = settings.quiet_hours;
    const hit = range && !Number.isNaN(ms) && inQuietHours(ms, range, settings.timezone);
    quiet.hidden = !hit;
    if (hit) {
      const [from, to] = range.split('-').map((x) => x.trim());
      fill(quiet, t(sendAt.value ? 'bc.quietAt' : 'bc.quietNow', { from, to, tz: settings.timezone }));
    }
  }
  sendAt.addEventListener('input', checkQuiet);
  sendAt.addEventListener('change', checkQuiet);

  api('/broadcasts/settings').then((x) => {
    settings = { ...DEFAULT_SETTINGS, ...x };
    checkQuiet();
  }).catch(() => {});
  api('/templates').then(drawTemplates).catch(() => {});
  checkQuiet();

  const showErrors = (title, lines) => fill(errors, h('p', {}, h('strong', {}, title)), lines.length ? h('ul', {}, lines.map((l) => h('li', {}, l))) : null);

  const form = h('form', {
    class: 'bc-form',
    onsubmit: async (e) => {
      e.preventDefault();
      fill(errors);
      const message = kind() === 'template'
        ? { template: { name: tplName.value.trim(), language: tplLang.value.trim() || 'id', body_parameters: params() } }
        : { text: text.value };
      const body = { name: name.value.trim(), channel: channel.value, message };
      if (sendAt.value) body.send_at = new Date(sendAt.value).toISOString();
      if (rate.value) body.rate_per_sec = Number(rate.value);

      // Line numbers of recipients in the file, to translate the server's positions.
      let lines = null;
      if (audience() === 'segment') {
        const seg = {};
        if (segLabel.value.trim()) seg.label = segLabel.value.trim();
        if (segDays.value) seg.last_inbound_within_days = Number(segDays.value);
        if (segQueue.value.trim()) seg.queue = segQueue.value.trim();
        if (segCsatMax.value) seg.csat_max = Number(segCsatMax.value);
        body.audience = { segment: seg };
      } else {
        const raw = audience() === 'csv' ? (csvFile.files[0] ? await csvFile.files[0].text() : '') : csvText.value;
        if (!raw.trim()) {
          showErrors(t('bc.noCsv'), []);
          return;
        }
        const parsed = recipientsFromCsv(parseCsv(raw));
        if (parsed.errors.length) {
          showErrors(t('bc.rowErrors'), parsed.errors.map((x) => t('bc.csvLine', { line: x.line, message: t(x.message) })));
          return;
        }
        if (!parsed.recipients.length) {
          showErrors(t('bc.csvEmpty'), []);
          return;
        }
        body.audience = { recipients: parsed.recipients };
        lines = parsed.lines;
      }
      try {
        await api('/broadcasts', { method: 'POST', body });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'invalid_recipients') {
          showErrors(t('bc.rowErrors'), rowErrors(err.detail || '', lines));
        } else {
          showErrors(err.message, []);
        }
        return;
      }
      toast(t('bc.created'));
      // Back to the defaults (WhatsApp, template, language id, CSV file).
      form.reset();
      firstRow = {};
      sync();
      checkQuiet();
      onCreated();
    },
  },
  h('div', { class: 'grid' }, field(t('bc.name'), name), field(t('bc.channel'), channel)),
  kindRadios, templatePart, textPart,
  audRadios, csvPart, pastePart, segPart,
  h('div', { class: 'grid' }, h('div', { class: 'field' }, field(t('bc.sendAt'), sendAt), quiet), field(t('bc.rate'), rate)),
  errors,
  h('button', { type: 'submit', class: 'primary', id: 'bc-create' }, t('bc.create')));
  tplLang.value = 'id';
  return form;
}

/** The server's English row messages, in the interface's language. */
const ROW_MESSAGES = [
  [/^"(.*)" is not a phone number/, (m) => t('bcrow.notPhone', { value: m[1] })],
  [/^"(.*)" has (\d+) digits/, (m) => t('bcrow.digits', { value: m[1], n: m[2] })],
  [/^"(.*)" is not an Instagram-scoped user id/, (m) => t('bcrow.notIgsid', { value: m[1] })],
  [/^missing value for (.*)$/, (m) => t('bcrow.missing', { vars: m[1] })],
];

function rowMessage(message) {
  if (lang() === 'en') return message;
  for (const [re, f] of ROW_MESSAGES) {
    const m = re.exec(message);
    if (m) return f(m);
  }
  return message;
}

/**
 * The server reports `line N: message` with N the position in the recipients
 * list; show the line of the file instead, in the interface's language.
 */
function rowErrors(message, lines) {
  const at = message.indexOf('line ');
  if (at === -1) return [rowMessage(message)];
  const parts = message.slice(at).split(/;\s(?=line \d+: )/);
  return parts.map((p) => {
    const m = /^line (\d+): ([\s\S]*)$/.exec(p);
    if (!m) return rowMessage(p);
    const line = lines ? lines[Number(m[1]) - 1] ?? m[1] : m[1];
    return t('bc.csvLine', { line, message: rowMessage(m[2]) });
  });
}
