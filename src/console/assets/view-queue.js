// Queue: waiting conversations per queue with wait time, priority and the
// last customer message, refreshed by live events; "claim next".

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, duration, toast, attempt, channelName } from './dom.js';
import { previewText, queueName, reasonName } from './names.js';

/** Claims the next conversation (optionally from one queue) and opens it. */
export async function claim(navigate, queue) {
  const conv = await attempt(() => api('/queue/claim', { method: 'POST', body: queue ? { queue } : {} }));
  if (conv === undefined) return;
  if (conv === null) {
    toast(t('queue.none'));
    return;
  }
  navigate('c/' + encodeURIComponent(conv.id));
}

/** Events that change who waits where. */
const QUEUE_EVENTS = new Set([
  'handoff', 'claim', 'release', 'transfer', 'transfer_to_queue', 'transfer_to_agent', 'reply_timeout',
  'priority', 'resolve', 'agent_timeout', 'message',
]);

export function mount(root, { navigate }) {
  const list = h('div', { class: 'queues', 'aria-live': 'polite', 'aria-busy': 'true' });
  root.append(
    h('div', { class: 'toolbar' },
      h('h1', {}, t('queue.title')),
      h('button', { type: 'button', class: 'primary', id: 'claim-next', onclick: () => claim(navigate) },
        t('queue.claimNext')),
    ),
    list,
  );

  let fetchedAt = 0;
  let data = null;
  let loading = null;
  let again = false;

  const draw = () => {
    if (!data) return;
    const elapsed = Math.floor((Date.now() - fetchedAt) / 1000);
    const names = Object.keys(data.queues);
    if (!names.length) {
      fill(list, h('p', { class: 'empty' }, t('queue.empty')));
      return;
    }
    fill(list, names.map((name) => {
      const items = data.queues[name];
      return h('section', { class: 'queue', 'aria-labelledby': 'q-' + name },
        h('div', { class: 'queue-head' },
          h('h2', { id: 'q-' + name }, queueName(name), ' ', h('span', { class: 'count' }, t('queue.count', { n: items.length }))),
          items.length
            ? h('button', { type: 'button', onclick: () => claim(navigate, name) }, t('queue.claimFrom', { queue: queueName(name) }))
            : null,
        ),
        items.length
          ? h('ol', { class: 'cards' }, items.map((it) => card(it, elapsed)))
          : h('p', { class: 'empty' }, t('queue.empty')),
      );
    }));
  };

  const load = async () => {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      const res = await attempt(() => api('/queue'));
      if (res) {
        data = res;
        fetchedAt = Date.now();
        list.setAttribute('aria-busy', 'false');
        draw();
      }
    })();
    await loading;
    loading = null;
    if (again) {
      again = false;
      load();
    }
  };

  load();
  const tick = setInterval(draw, 1000);
  const poll = setInterval(load, 30_000); // Safety net; events do the real work.

  return {
    onEvent(ev) {
      if (QUEUE_EVENTS.has(ev.type) && (ev.type !== 'message' || ev.state === 'queued')) load();
    },
    unmount() {
      clearInterval(tick);
      clearInterval(poll);
    },
  };
}

function card(it, elapsed) {
  const wait = it.wait_seconds === null || it.wait_seconds === undefined ? null : it.wait_seconds + elapsed;
  return h('li', { class: 'card' + (it.priority > 0 ? ' urgent' : ''), 'data-conversation': it.conversation_id },
    h('a', { href: '#/c/' + encodeURIComponent(it.conversation_id), class: 'card-link' },
      h('span', { class: 'name' }, it.contact_name || it.conversation_id),
      h('span', { class: 'meta' },
        channelName(it.channel),
        it.reason ? ' · ' + reasonName(it.reason) : '',
        it.priority ? [' ', h('span', { class: 'badge prio' }, t('queue.priority', { n: it.priority }))] : null,
      ),
    ),
    h('span', { class: 'wait' }, t('queue.waiting', { time: duration(wait) })),
    h('p', { class: 'preview' }, previewText(it.preview)),
  );
}
