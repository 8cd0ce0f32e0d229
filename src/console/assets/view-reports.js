// Reports for supervisors: totals for a date range with the service
// measures supervisors are judged by (resolution rate, reopen rate,
// first-contact resolution, SLA attainment), a per-day chart drawn as inline
// SVG, tables per agent, queue and channel, and the CSV downloads.

import { api, download } from './api.js';
import { t } from './i18n.js';
import { h, fill, svg, duration, attempt, channelName } from './dom.js';
import { agentName, queueName } from './names.js';

function isoDay(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

const pct = (x) => (x === null || x === undefined ? '–' : `${Math.round(x * 10) / 10}%`);
const num = (x) => (x === null || x === undefined ? '–' : String(Math.round(x * 10) / 10));
const spread = (s) => (s ? `${duration(s.median_s)} / ${duration(s.p90_s)}` : '–');

export function mount(root) {
  const today = new Date();
  const weekAgo = new Date(Date.now() - 6 * 86_400_000);
  const from = h('input', { type: 'date', id: 'rep-from', value: isoDay(weekAgo), required: true });
  const to = h('input', { type: 'date', id: 'rep-to', value: isoDay(today), required: true });
  const out = h('div', { class: 'report', 'aria-live': 'polite' });
  const range = () => `from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;

  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('label', { for: 'rep-from' }, t('reports.from')), from,
    h('label', { for: 'rep-to' }, t('reports.to')), to,
    h('button', { type: 'submit', class: 'primary' }, t('reports.show')),
    h('button', {
      type: 'button',
      onclick: () => attempt(() => download(`/reports/surveys.csv?${range()}`, `surveys-${from.value}-${to.value}.csv`)),
    }, t('reports.csv')),
    h('button', {
      type: 'button', id: 'summary-csv',
      onclick: () => attempt(() => download(`/reports/summary.csv?${range()}&group_by=day`, `summary-${from.value}-${to.value}.csv`)),
    }, t('reports.summaryCsv')),
  );
  root.append(h('div', { class: 'toolbar' }, h('h1', {}, t('reports.title'))), form, out);

  async function load() {
    out.setAttribute('aria-busy', 'true');
    const results = await attempt(() => Promise.all(['day', 'agent', 'queue', 'channel'].map((g) =>
      api(`/reports/summary?${range()}&group_by=${g}`))));
    out.setAttribute('aria-busy', 'false');
    if (!results) return;
    const [byDay, byAgent, byQueue, byChannel] = results;
    const total = byDay.total;
    fill(out,
      h('div', { class: 'tiles' },
        tile(t('reports.cases'), String(total.cases), `${t('reports.botOnly')} ${total.bot_only} · ${t('reports.handedOff')} ${total.handed_off}`),
        tile(t('reports.csat'), pct(total.csat_pct), total.csat_avg !== null ? `⌀ ${num(total.csat_avg)}/5` : ''),
        tile(t('reports.nps'), num(total.nps), ''),
        tile(t('reports.response'), total.response_rate === null ? '–' : pct(total.response_rate * 100), `${total.surveys_answered}/${total.surveys_sent}`),
        tile(t('reports.first'), total.first_response ? duration(total.first_response.median_s) : '–',
          total.first_response ? `${t('reports.p90')} ${duration(total.first_response.p90_s)}` : ''),
        tile(t('reports.resolution'), total.resolution ? duration(total.resolution.median_s) : '–',
          total.resolution ? `${t('reports.p90')} ${duration(total.resolution.p90_s)}` : ''),
        tile(t('reports.resolutionRate'), pct(total.resolution_rate_pct), t('reports.ofOpened', { n: total.opened })),
        tile(t('reports.reopenRate'), pct(total.reopen_rate_pct), t('reports.reopened', { n: total.reopened })),
        tile(t('reports.fcr'), pct(total.first_contact_resolution_pct), t('reports.fcrHint')),
        tile(t('reports.sla'), pct(total.sla_attainment_pct),
          t('reports.slaHint', { met: total.sla_met, of: total.sla_cases, target: duration(byDay.first_response_target_s) })),
      ),
      total.cases === 0 ? h('p', { class: 'empty' }, t('reports.noData')) : null,
      h('section', {}, h('h2', {}, t('reports.perDay')), chart(byDay.groups)),
      h('section', {}, h('h2', {}, t('reports.perAgent')), table(byAgent.groups, agentName)),
      h('section', {}, h('h2', {}, t('reports.perQueue')), table(byQueue.groups, queueName)),
      h('section', {}, h('h2', {}, t('reports.perChannel')), table(byChannel.groups, channelName)),
    );
  }

  load();
  return {};
}

function tile(label, value, sub) {
  return h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, label), h('strong', {}, value), h('small', {}, sub));
}

function table(groups, name) {
  if (!groups.length) return h('p', { class: 'empty' }, t('reports.noData'));
  const cols = [
    [t('reports.group'), (g) => (g.group === 'bot' ? t('sys.by.bot') : g.group === 'none' ? '–' : name(g.group))],
    [t('reports.cases'), (g) => g.cases],
    [t('reports.resolutionRate'), (g) => pct(g.resolution_rate_pct)],
    [t('reports.reopenRate'), (g) => pct(g.reopen_rate_pct)],
    [t('reports.fcr'), (g) => pct(g.first_contact_resolution_pct)],
    [t('reports.sla'), (g) => pct(g.sla_attainment_pct)],
    [t('reports.csat'), (g) => pct(g.csat_pct)],
    [t('reports.nps'), (g) => num(g.nps)],
    [t('reports.response'), (g) => (g.response_rate === null ? '–' : pct(g.response_rate * 100))],
    [`${t('reports.first')} (${t('reports.median')} / ${t('reports.p90')})`, (g) => spread(g.first_response)],
    [`${t('reports.resolution')} (${t('reports.median')} / ${t('reports.p90')})`, (g) => spread(g.resolution)],
  ];
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, cols.map(([c]) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, groups.map((g) => h('tr', {}, cols.map(([, f], i) => (i === 0 ? h('th', { scope: 'row' }, f(g)) : h('td', {}, f(g))))))),
  ));
}

/** Bars: resolved cases per day; line: CSAT % (0–100) per day. */
function chart(groups) {
  if (!groups.length) return h('p', { class: 'empty' }, t('reports.noData'));
  const W = 640, H = 220, padL = 36, padR = 36, padT = 12, padB = 34;
  const maxCases = Math.max(1, ...groups.map((g) => g.cases));
  const slot = (W - padL - padR) / groups.length;
  const y = (v) => padT + (H - padT - padB) * (1 - v / maxCases);
  const yPct = (v) => padT + (H - padT - padB) * (1 - v / 100);
  const children = [
    svg('title', {}, t('reports.chart')),
    svg('line', { x1: padL, y1: H - padB, x2: W - padR, y2: H - padB, class: 'axis' }),
    svg('text', { x: padL - 6, y: y(maxCases) + 4, class: 'label', 'text-anchor': 'end' }, maxCases),
    svg('text', { x: padL - 6, y: H - padB + 4, class: 'label', 'text-anchor': 'end' }, 0),
    svg('text', { x: W - padR + 6, y: yPct(100) + 4, class: 'label pct' }, '100%'),
  ];
  const points = [];
  const every = Math.ceil(groups.length / 10);
  groups.forEach((g, i) => {
    const x = padL + i * slot;
    const bw = Math.max(2, slot * 0.6);
    children.push(svg('rect', { x: x + (slot - bw) / 2, y: y(g.cases), width: bw, height: H - padB - y(g.cases), class: 'bar' },
      svg('title', {}, `${g.group}: ${g.cases} · CSAT ${pct(g.csat_pct)}`)));
    if (i % every === 0) {
      children.push(svg('text', { x: x + slot / 2, y: H - padB + 16, class: 'label', 'text-anchor': 'middle' }, g.group.slice(5)));
    }
    if (g.csat_pct !== null && g.csat_pct !== undefined) points.push(`${x + slot / 2},${yPct(g.csat_pct)}`);
  });
  if (points.length > 1) children.push(svg('polyline', { points: points.join(' '), class: 'line' }));
  for (const p of points) {
    const [cx, cy] = p.split(',');
    children.push(svg('circle', { cx, cy, r: 3, class: 'dot' }));
  }
  return h('figure', { class: 'chart' },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': t('reports.chart') }, children),
    h('figcaption', {}, t('reports.chart')));
}
