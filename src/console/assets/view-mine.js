// My conversations: the chats assigned to the signed-in agent, with unread counts.

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, attempt, channelName, dateTime } from './dom.js';
import { queueName } from './names.js';

export function mount(root, { me }) {
  const list = h('div', { 'aria-live': 'polite' });
  root.append(h('div', { class: 'toolbar' }, h('h1', {}, t('mine.title'))), list);

  let loading = false;
  const load = async () => {
    if (loading) return;
    loading = true;
    const res = await attempt(() => api('/conversations?agent=me&state=assigned'));
    loading = false;
    if (!res) return;
    const convs = res.conversations;
    if (!convs.length) {
      fill(list, h('p', { class: 'empty' }, t('mine.empty')));
      return;
    }
    fill(list, h('ul', { class: 'cards' }, convs.map((c) =>
      h('li', { class: 'card', 'data-conversation': c.id },
        h('a', { href: '#/c/' + encodeURIComponent(c.id), class: 'card-link' },
          h('span', { class: 'name' }, c.contact_name || c.contact_id),
          h('span', { class: 'meta' }, channelName(c.channel), c.queue ? ' · ' + queueName(c.queue) : '',
            c.snooze ? [' · ', h('span', { class: 'badge snoozed' }, t('mine.snoozed'))] : null),
        ),
        c.unread
          ? h('span', { class: 'badge unread', 'aria-label': t('mine.unread', { n: c.unread }) }, String(c.unread))
          : null,
        h('span', { class: 'wait' }, dateTime(c.last_customer_ms || c.opened_ms)),
      ))));
  };

  load();
  const poll = setInterval(load, 30_000);
  return {
    onEvent(ev) {
      if (ev.agent === me.id || ev.previous_agent === me.id) load();
    },
    unmount() {
      clearInterval(poll);
    },
  };
}
