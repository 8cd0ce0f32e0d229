// Broadcasts for marketers: the list with live progress (polled), a create
// form (template or text; audience from a CSV file, pasted CSV or a segment;
// schedule), row errors from the server, and pause / resume / cancel.

import { api, download, ApiError } from './api.js';
import { t } from './i18n.js';
import { h, fill, attempt, toast, channelName, dateTime } from './dom.js';
import { parseCsv, recipientsFromCsv } from './csv.js';

const POLL_MS = 3000;

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
      const c = b.counts;
      const total = c.total || 0;
      const done = Math.max(0, total - c.pending);
      const reasons = Object.entries({ ...(b.reasons?.failed || {}), ...(b.reasons?.skipped || {}) })
        .map(([r, n]) => `${r}: ${n}`).join('\n');
      return h('tr', { 'data-broadcast': b.id },
        h('th', { scope: 'row' }, b.name, h('small', {}, channelName(b.channel))),
        h('td', {}, h('span', { class: 'badge bc-' + b.status }, t('bcstatus.' + b.status))),
        h('td', { class: 'progress-cell' },
          h('progress', { max: String(Math.max(total, 1)), value: String(done), 'aria-label': `${t('bc.progress')} ${b.name}` }),
          h('small', { title: reasons || null }, t('bc.counts', { done, total, read: c.read, failed: c.failed, skipped: c.skipped }))),
        h('td', {}, dateTime(Date.parse(b.send_at))),
        h('td', { class: 'row-actions' },
          ['scheduled', 'running'].includes(b.status) ? h('button', { type: 'button', onclick: action(b, 'pause') }, t('bc.pause')) : null,
          b.status === 'paused' ? h('button', { type: 'button', onclick: action(b, 'resume') }, t('bc.resume')) : null,
          ['scheduled', 'running', 'paused'].includes(b.status)
            ? h('button', { type: 'button', class: 'danger', onclick: action(b, 'cancel') }, t('bc.cancelBc')) : null,
          h('button', {
            type: 'button', class: 'link',
            onclick: () => attempt(() => download(`/broadcasts/${encodeURIComponent(b.id)}/recipients.csv`, `recipients-${b.id}.csv`)),
          }, t('bc.recipientsCsv')),
        ));
    })),
  )));
}

let seq = 0;
function field(label, input, hint) {
  const id = input.id || `f${++seq}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

function radios(name, options, onchange) {
  return h('fieldset', { class: 'radios' }, h('legend', {}, options.legend),
    options.items.map(([value, label], i) => h('label', {},
      h('input', { type: 'radio', name, value, checked: i === 0, onchange }), ' ', label)));
}

function createForm(onCreated) {
  const name = h('input', { required: true, maxlength: '200' });
  const channel = h('select', {}, h('option', { value: 'whatsapp' }, 'WhatsApp'), h('option', { value: 'instagram' }, 'Instagram'));
  const tplName = h('input', { autocomplete: 'off' });
  const tplLang = h('input', { value: 'id', maxlength: '16' });
  const tplParams = h('textarea', { rows: '2' });
  const text = h('textarea', { rows: '3' });
  const csvFile = h('input', { type: 'file', accept: '.csv,text/csv' });
  const csvText = h('textarea', { rows: '4', placeholder: 'to,name\n6281234567890,Budi' });
  const segLabel = h('input', {});
  const segDays = h('input', { type: 'number', min: '0', step: '1' });
  const segQueue = h('input', {});
  const segCsatMax = h('input', { type: 'number', min: '1', max: '5', step: '1' });
  const sendAt = h('input', { type: 'datetime-local' });
  const rate = h('input', { type: 'number', min: '0.1', max: '1000', step: 'any' });
  const errors = h('div', { class: 'row-errors', role: 'alert' });

  const templatePart = h('div', { class: 'part' }, field(t('bc.template'), tplName), field(t('bc.language'), tplLang), field(t('bc.params'), tplParams));
  const textPart = h('div', { class: 'part', hidden: true }, field(t('bc.text'), text));
  const csvPart = h('div', { class: 'part' }, field(t('bc.csvFile'), csvFile));
  const pastePart = h('div', { class: 'part', hidden: true }, field(t('bc.csvText'), csvText));
  const segPart = h('div', { class: 'part', hidden: true },
    field(t('bc.segLabel'), segLabel), field(t('bc.segDays'), segDays), field(t('bc.segQueue'), segQueue), field(t('bc.segCsatMax'), segCsatMax));

  let kind = 'template';
  let audience = 'csv';
  const kindRadios = radios('bc-kind', { legend: t('bc.message'), items: [['template', t('bc.kindTemplate')], ['text', t('bc.kindText')]] }, (e) => {
    kind = e.target.value;
    templatePart.hidden = kind !== 'template';
    textPart.hidden = kind !== 'text';
  });
  const audRadios = radios('bc-aud', { legend: t('bc.audience'), items: [['csv', t('bc.audCsv')], ['paste', t('bc.audPaste')], ['segment', t('bc.audSegment')]] }, (e) => {
    audience = e.target.value;
    csvPart.hidden = audience !== 'csv';
    pastePart.hidden = audience !== 'paste';
    segPart.hidden = audience !== 'segment';
  });
  channel.addEventListener('change', () => {
    // Instagram has no templates.
    const ig = channel.value === 'instagram';
    kindRadios.querySelector('input[value=template]').disabled = ig;
    if (ig && kind === 'template') kindRadios.querySelector('input[value=text]').click();
  });

  const showErrors = (title, lines) => fill(errors, h('p', {}, h('strong', {}, title)), h('ul', {}, lines.map((l) => h('li', {}, l))));

  const form = h('form', {
    class: 'bc-form',
    onsubmit: async (e) => {
      e.preventDefault();
      fill(errors);
      const message = kind === 'template'
        ? { template: { name: tplName.value.trim(), language: tplLang.value.trim() || 'id', body_parameters: tplParams.value.split('\n').map((s) => s.trim()).filter(Boolean) } }
        : { text: text.value };
      const body = { name: name.value.trim(), channel: channel.value, message };
      if (sendAt.value) body.send_at = new Date(sendAt.value).toISOString();
      if (rate.value) body.rate_per_sec = Number(rate.value);

      // Line numbers of recipients in the file, to translate the server's positions.
      let lines = null;
      if (audience === 'segment') {
        const seg = {};
        if (segLabel.value.trim()) seg.label = segLabel.value.trim();
        if (segDays.value) seg.last_inbound_within_days = Number(segDays.value);
        if (segQueue.value.trim()) seg.queue = segQueue.value.trim();
        if (segCsatMax.value) seg.csat_max = Number(segCsatMax.value);
        body.audience = { segment: seg };
      } else {
        const raw = audience === 'csv' ? (csvFile.files[0] ? await csvFile.files[0].text() : '') : csvText.value;
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
          showErrors(t('bc.rowErrors'), rowErrors(err.message, lines));
        } else {
          showErrors(err.message, []);
        }
        return;
      }
      toast(t('bc.created'));
      form.reset();
      onCreated();
    },
  },
  h('div', { class: 'grid' }, field(t('bc.name'), name), field(t('bc.channel'), channel)),
  kindRadios, templatePart, textPart,
  audRadios, csvPart, pastePart, segPart,
  h('div', { class: 'grid' }, field(t('bc.sendAt'), sendAt), field(t('bc.rate'), rate)),
  errors,
  h('button', { type: 'submit', class: 'primary' }, t('bc.create')));
  return form;
}

/**
 * The server reports `line N: message` with N the position in the recipients
 * list; show the line of the file instead.
 */
function rowErrors(message, lines) {
  const at = message.indexOf('line ');
  if (at === -1) return [message];
  const parts = message.slice(at).split(/;\s(?=line \d+: )/);
  return parts.map((p) => {
    const m = /^line (\d+): ([\s\S]*)$/.exec(p);
    if (!m) return p;
    const line = lines ? lines[Number(m[1]) - 1] ?? m[1] : m[1];
    return t('bc.csvLine', { line, message: m[2] });
  });
}
