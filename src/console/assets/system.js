// System lines of a transcript (handoff, claim, transfer, resolve, snooze …)
// in the interface's language. Servers with typed lines send `event` (a
// `code` and its fields); older lines carry only the English text, which is
// read back by its known shapes. A line of neither kind is shown as written.

import { t } from './i18n.js';
import { agentName, queueName, reasonName } from './names.js';
import { dateTime } from './dom.js';

/** The English shapes of system lines, as the server writes them. */
const SHAPES = [
  [/^handoff to (.+) \((.*)\), priority (-?\d+)$/, (m) => ({ code: 'handoff', queue: m[1], reason: m[2], priority: Number(m[3]) })],
  [/^(claim|transfer|push|transfer_to_agent): assigned to (.+)$/, (m) => ({ code: 'assigned', how: m[1] === 'transfer_to_agent' ? 'transfer' : m[1], agent: m[2] })],
  [/^(release|transfer_to_queue|reply_timeout|agent_offline|agent_timeout) → queue (.*)$/, (m) => ({ code: 'requeued', how: m[1], queue: m[2] })],
  [/^resolved by (.+)$/, (m) => ({ code: 'resolved', by: m[1] })],
  [/^snoozed by (.+) until the customer writes$/, (m) => ({ code: 'snoozed', by: m[1], until_ms: null })],
  [/^snoozed by (.+) until (\S+)$/, (m) => ({ code: 'snoozed', by: m[1], until_ms: Date.parse(m[2]) || null })],
  [/^woke up \((.+)\)$/, (m) => ({ code: 'woke', why: m[1] })],
  [/^reopens case (.+)$/, (m) => ({ code: 'reopened', of: m[1] })],
  [/^reacted (.+) to (\S+)$/, (m) => ({ code: 'reaction', emoji: m[1], message_id: m[2] })],
  [/^removed a reaction from (\S+)$/, (m) => ({ code: 'reaction', emoji: null, message_id: m[1] })],
  [/^the customer deleted message (\S+)$/, (m) => ({ code: 'deleted', message_id: m[1] })],
  [/^customer opted out of automated messages$/, () => ({ code: 'opt_out', out: true })],
  [/^customer opted in again$/, () => ({ code: 'opt_out', out: false })],
];

/** The typed event of an English system line, or null. */
export function parseSystemText(text) {
  for (const [re, make] of SHAPES) {
    const m = re.exec(String(text ?? '').trim());
    if (m) return make(m);
  }
  return null;
}

function who(by) {
  if (by === 'bot' || by === 'auto' || by === 'customer') return t('sys.by.' + by);
  return agentName(by);
}

/** The line to show for a transcript entry of the system. */
export function systemLine(entry) {
  const ev = entry.event && entry.event.code ? entry.event : parseSystemText(entry.text);
  if (!ev) return entry.text;
  switch (ev.code) {
    case 'handoff':
      return t('sys.handoff', { queue: queueName(ev.queue), reason: reasonName(ev.reason), priority: ev.priority ?? 0 });
    case 'assigned':
      return t('sys.assigned.' + (['claim', 'transfer', 'push'].includes(ev.how) ? ev.how : 'claim'), { agent: agentName(ev.agent) });
    case 'requeued': {
      const how = ['release', 'transfer_to_queue', 'reply_timeout', 'agent_offline', 'agent_timeout'].includes(ev.how) ? ev.how : 'release';
      return t('sys.requeued.' + how, { queue: queueName(ev.queue) });
    }
    case 'resolved':
      return t('sys.resolved', { by: who(ev.by) });
    case 'snoozed':
      return ev.until_ms
        ? t('sys.snoozedUntil', { by: who(ev.by), time: dateTime(ev.until_ms) })
        : t('sys.snoozedReply', { by: who(ev.by) });
    case 'woke':
      return t(ev.why === 'time' ? 'sys.wokeTime' : ev.why === 'agent' ? 'sys.wokeAgent' : 'sys.wokeMessage');
    case 'reopened':
      return t('sys.reopened', { of: ev.of });
    case 'reaction':
      return ev.emoji ? t('sys.reacted', { emoji: ev.emoji }) : t('sys.unreacted');
    case 'deleted':
      return t('sys.deleted');
    case 'opt_out':
      return t(ev.out ? 'sys.optedOut' : 'sys.optedIn');
    default:
      return entry.text;
  }
}
