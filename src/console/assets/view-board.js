// The supervisors' board (GET /api/v1/board), live: per queue the waiting
// count, the longest wait and first-response SLA breaches; per person their
// presence, load against capacity, open chats and the time since their last
// reply. Every chat opens with a click; a menu beside it, or dragging it
// onto a person's row, reassigns it to someone online with room.

import { api } from './api.js';
import { t } from './i18n.js';
import { h, fill, duration, toast, attempt, channelName } from './dom.js';
import { knownAgents, loadAgents, queueName, reasonName } from './names.js';

/** Events after which the board is read again. */
const BOARD_EVENTS = new Set([
  'handoff', 'claim', 'release', 'transfer', 'transfer_to_queue', 'transfer_to_agent', 'reply_timeout',
  'priority', 'resolve', 'agent_timeout', 'agent_message', 'presence', 'snooze', 'wake', 'assign', 'message',
]);

export function mount(root) {
  const queuesOut = h('div', { class: 'board-queues', id: 'board-queues', 'aria-live': 'polite' });
  const agentsOut = h('div', { class: 'table-wrap board-agents', id: 'board-agents' });
  const mode = h('small', { class: 'hint', id: 'board-mode' });
  root.append(
    h('div', { class: 'toolbar' }, h('h1', {}, t('board.title')), mode),
    h('section', { class: 'board-section', 'aria-labelledby': 'board-q' }, h('h2', { id: 'board-q' }, t('board.queues')), queuesOut),
    h('section', { class: 'board-section', 'aria-labelledby': 'board-a' }, h('h2', { id: 'board-a' }, t('board.agents')), agentsOut),
  );

  let data = null;
  let fetchedAt = 0;
  let timer = null;
  let stopped = false;

  const load = async () => {
    const [res] = await Promise.all([attempt(() => api('/board')), loadAgents().catch(() => null)]);
    if (!res || stopped) return;
    data = res;
    fetchedAt = Date.now();
    draw();
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  };

  /** Moves a chat to `agent` (a supervisor may move any chat). */
  async function reassign(conversationId, agent) {
    const res = await attempt(() => api(`/conversations/${encodeURIComponent(conversationId)}/transfer`, { method: 'POST', body: { agent } }));
    if (res) toast(t('board.moved'));
    load();
  }

  function menu(c, holder) {
    const people = knownAgents().filter((a) => a.id !== holder);
    return h('select', {
      class: 'reassign', 'data-conversation': c.id, 'aria-label': t('board.reassignLabel', { name: c.contact_name || c.id }),
      onchange: (e) => { if (e.target.value) reassign(c.id, e.target.value); },
    }, h('option', { value: '' }, t('board.reassign')),
    people.map((a) => h('option', { value: a.id, disabled: a.available === false },
      `${a.name || a.id} — ${t('presence.' + (a.presence || 'offline'))} · ${a.load ?? 0}/${a.capacity ?? '?'}`)));
  }

  // Drag and drop: a chat onto a person who is online with room.
  const DRAG_TYPE = 'application/x-balas-conversation';
  const drag = (c) => (e) => {
    e.dataTransfer.setData(DRAG_TYPE, c.id);
    e.dataTransfer.effectAllowed = 'move';
  };
  const dropAllowed = (e, a) => e.dataTransfer.types.includes(DRAG_TYPE)
    && knownAgents().find((x) => x.id === a.id)?.available !== false;

  const chatLink = (c) => h('a', { href: '#/c/' + encodeURIComponent(c.id), class: 'chat-link' }, c.contact_name || c.id);

  // Waits tick in place, so an open menu is not redrawn under the pointer.
  const since = (s) => (s === null || s === undefined ? '–' : h('span', { class: 'ticking', 'data-s': String(s) }, duration(s)));
  function tickWaits() {
    const elapsed = Math.floor((Date.now() - fetchedAt) / 1000);
    for (const el of root.querySelectorAll('.ticking')) el.textContent = duration(Number(el.dataset.s) + elapsed);
  }

  function draw() {
    if (!data) return;
    fill(mode, t('board.mode.' + data.assignment), ' · ', t('board.target', { time: duration(data.first_response_target_s) }));
    fill(queuesOut, data.queues.length ? data.queues.map((q) => h('article', {
      class: 'board-queue' + (q.sla_breaches ? ' breach' : '') + (q.waiting ? '' : ' idle'), 'data-queue': q.queue,
    },
    h('h3', {}, queueName(q.queue), ' ', h('span', { class: 'count idle-count' }, t('queue.count', { n: q.waiting }))),
    h('dl', { class: 'stats' },
      h('div', {}, h('dt', {}, t('board.waiting')), h('dd', { class: 'waiting' }, String(q.waiting))),
      h('div', {}, h('dt', {}, t('board.longest')), h('dd', {}, since(q.longest_wait_s))),
      h('div', {}, h('dt', {}, t('board.breaches')), h('dd', { class: 'breaches' }, String(q.sla_breaches)))),
    q.conversations.length ? h('ul', { class: 'board-chats' }, q.conversations.map((c) => h('li', { 'data-conversation': c.id, draggable: 'true', ondragstart: drag(c) },
      chatLink(c),
      h('small', {}, channelName(c.channel), c.reason ? ' · ' + reasonName(c.reason) : '', ' · ', since(c.wait_s),
        c.sla_breached ? [' ', h('span', { class: 'badge prio' }, t('board.late'))] : null),
      menu(c, null)))) : null))
      : h('p', { class: 'empty' }, t('queue.empty')));

    fill(agentsOut, h('table', { class: 'board-table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('board.agent')),
        h('th', { scope: 'col' }, t('board.presence')),
        h('th', { scope: 'col' }, t('board.load')),
        h('th', { scope: 'col' }, t('board.lastReply')),
        h('th', { scope: 'col' }, t('board.chats')))),
      h('tbody', {}, data.agents.map((a) => h('tr', {
        'data-agent': a.id,
        ondragover: (e) => { if (dropAllowed(e, a)) { e.preventDefault(); e.currentTarget.classList.add('drop'); } },
        ondragleave: (e) => e.currentTarget.classList.remove('drop'),
        ondrop: (e) => {
          e.currentTarget.classList.remove('drop');
          const id = e.dataTransfer.getData(DRAG_TYPE);
          if (id && dropAllowed(e, a)) {
            e.preventDefault();
            reassign(id, a.id);
          }
        },
      },
        h('th', { scope: 'row' }, a.name || a.id, h('small', {}, t('role.' + a.role))),
        h('td', {}, h('span', { class: 'presence-badge p-' + a.presence }, t('presence.' + a.presence))),
        h('td', { class: 'load' },
          h('meter', { min: '0', max: String(a.capacity || 1), value: String(a.load), 'aria-label': t('board.loadOf', { name: a.name || a.id }) }),
          ' ', h('span', { class: 'load-text' }, `${a.load}/${a.capacity}`)),
        h('td', {}, since(a.since_last_reply_s)),
        h('td', {}, a.conversations.length
          ? h('ul', { class: 'board-chats' }, a.conversations.map((c) => h('li', { 'data-conversation': c.id, draggable: 'true', ondragstart: drag(c) },
            chatLink(c),
            h('small', {}, queueName(c.queue), c.unread ? ' · ' + t('mine.unread', { n: c.unread }) : '',
              c.snoozed ? ' · ' + t('mine.snoozed') : '',
              c.sla_breached ? [' ', h('span', { class: 'badge prio' }, t('board.late'))] : null),
            menu(c, a.id))))
          : h('span', { class: 'empty' }, '–')),
      ))),
    ));
  }

  load();
  const tick = setInterval(tickWaits, 1000);
  const poll = setInterval(load, 30_000); // Safety net; events do the real work.
  return {
    onEvent(ev) {
      if (BOARD_EVENTS.has(ev.type)) soon();
    },
    unmount() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(tick);
      clearInterval(poll);
    },
  };
}
