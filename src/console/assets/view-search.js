// Search results (GET /api/v1/conversations?q=): conversations whose phone
// number or IGSID, contact name, case id, order or tracking number or text
// contain every word, most recent first, a page at a time.

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, attempt, channelName, dateTime } from './dom.js';
import { agentName, previewText, queueName } from './names.js';

const PAGE = 20;

export function mount(root, ctx, [query = '']) {
  const list = h('ol', { class: 'cards results', id: 'results', 'aria-live': 'polite' });
  const status = h('p', { class: 'hint', id: 'search-status', role: 'status' });
  const more = h('button', { type: 'button', id: 'search-more', hidden: true, onclick: () => page() }, t('search.more'));
  root.append(
    h('div', { class: 'toolbar' }, h('h1', {}, t('search.title', { q: query }))),
    status, list, more,
  );

  let cursor = null;
  let shown = 0;
  let stopped = false;

  async function page() {
    more.disabled = true;
    const params = new URLSearchParams({ q: query, limit: String(PAGE) });
    if (cursor) params.set('cursor', cursor);
    const res = await attempt(() => api('/conversations?' + params));
    more.disabled = false;
    if (!res || stopped) return;
    list.append(...res.conversations.map(card));
    shown += res.conversations.length;
    cursor = res.next_cursor || null;
    more.hidden = !cursor;
    fill(status, shown ? t('search.count', { n: shown }) : t('search.none'));
  }

  if (query.trim()) page();
  else fill(status, t('search.placeholder'));
  return {
    unmount() {
      stopped = true;
    },
  };

  function card(c) {
    return h('li', { class: 'card', 'data-conversation': c.id },
      h('a', { href: '#/c/' + encodeURIComponent(c.id), class: 'card-link' },
        h('span', { class: 'name' }, c.contact_name || c.contact_id),
        h('span', { class: 'meta' },
          h('span', { class: 'badge state-' + c.state }, t('state.' + c.state)), ' ',
          channelName(c.channel), ' · ', c.contact_id,
          c.queue ? ' · ' + queueName(c.queue) : '',
          c.agent ? ' · ' + agentName(c.agent) : '',
          ' · ', h('code', {}, c.id))),
      h('span', { class: 'wait' }, dateTime(c.last_customer_ms || c.opened_ms)),
      c.preview ? h('p', { class: 'preview' }, previewText(c.preview)) : null,
    );
  }
}
