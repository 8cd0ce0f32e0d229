// What people read instead of the ids the server speaks in: queue, label and
// handoff-reason names (`[names]` in the config, served by GET /api/v1/names
// where the server has it; else a built-in list for the shipped rules; else
// the id made readable), agents' names (GET /api/v1/agents), and the
// one-line summaries of files ("[image] caption") in previews.

import { api } from './api.js';
import { t, lang } from './i18n.js';

/** Names for the queues and intents shipped in `intents/`: [Indonesian, English]. */
const BUILT_IN = {
  queues: {
    general: ['Umum', 'General'],
    complaints: ['Keluhan', 'Complaints'],
    refunds: ['Pengembalian dana', 'Refunds'],
    after_sales: ['Purna jual', 'After sales'],
    sales: ['Penjualan', 'Sales'],
    orders: ['Pesanan', 'Orders'],
    recovery: ['Pemulihan (CSAT rendah)', 'Recovery (low CSAT)'],
  },
  labels: {
    vip: ['VIP', 'VIP'],
  },
  reasons: {
    human_agent: ['Minta bicara dengan agen', 'Asked for an agent'],
    fallback: ['Bot tidak paham', 'Bot did not understand'],
    complaint: ['Keluhan', 'Complaint'],
    refund_return: ['Pengembalian / refund', 'Return / refund'],
    warranty: ['Garansi', 'Warranty'],
    repair_service: ['Servis', 'Repair'],
    spare_parts: ['Suku cadang', 'Spare parts'],
    order_status: ['Status pesanan', 'Order status'],
    payment: ['Pembayaran', 'Payment'],
    product_info: ['Info produk', 'Product info'],
    business_hours: ['Jam buka', 'Opening hours'],
    greeting: ['Salam', 'Greeting'],
    thanks: ['Terima kasih', 'Thanks'],
    media_received: ['Kirim file', 'Sent a file'],
    voice_note: ['Pesan suara', 'Voice note'],
    voice_note_after_hours: ['Pesan suara di luar jam', 'Voice note after hours'],
    opt_out: ['Berhenti berlangganan', 'Opted out'],
    opt_in: ['Berlangganan lagi', 'Opted in'],
    angry: ['Pelanggan marah', 'Angry customer'],
    repeat: ['Keluhan berulang', 'Repeated complaint'],
  },
};

let configured = { queues: {}, labels: {}, reasons: {} };
const agents = new Map();

/** `snake_case-id` → "Snake case id". */
export function humanize(id) {
  const s = String(id ?? '').replace(/[_-]+/g, ' ').trim();
  return s ? s[0].toUpperCase() + s.slice(1) : '';
}

function pick(kind, id) {
  if (id === null || id === undefined || id === '') return '';
  const own = configured[kind]?.[id];
  if (own) return (lang() === 'en' && own.en) || own.id || humanize(id);
  const built = BUILT_IN[kind][id];
  if (built) return built[lang() === 'en' ? 1 : 0];
  return humanize(id);
}

/** A queue's display name. */
export const queueName = (id) => pick('queues', id);
/** A contact label's display name. */
export const labelName = (id) => pick('labels', id);
/** A handoff reason's (intent's) display name. */
export const reasonName = (id) => pick('reasons', id);

/** An agent's name (their id until the list is loaded). */
export function agentName(id) {
  if (!id) return '';
  return agents.get(id)?.name || id;
}

/** The desk people as GET /api/v1/agents gave them, by id. */
export function knownAgents() {
  return [...agents.values()];
}

/** Reads the configured names (the built-in ones serve until then, or if it fails). */
export async function loadNames() {
  try {
    const res = await api('/names', { quiet: true });
    configured = { queues: res.queues || {}, labels: res.labels || {}, reasons: res.reasons || {} };
  } catch {
    // Names are a nicety: the built-in ones and readable ids remain.
  }
}

/** Reads the desk people (names, and presence and load where the server has them). */
export async function loadAgents() {
  const res = await api('/agents');
  agents.clear();
  for (const a of res.agents || []) agents.set(a.id, a);
  return res;
}

/** Kinds of file summaries the server writes as `[kind …] caption`. */
export const MEDIA_KINDS = ['image', 'video', 'audio', 'voice', 'document', 'sticker', 'location', 'contacts', 'file', 'story', 'unsupported'];
const MEDIA = /^\[([a-z_]+)((?:[ :][^\]]*)?)\]\s?([\s\S]*)$/;

/** `{label, extra, caption}` of a file summary like "[image] foto", or null. */
export function mediaSummary(text) {
  const m = MEDIA.exec(String(text ?? ''));
  if (!m || !MEDIA_KINDS.includes(m[1])) return null;
  const key = 'media.' + m[1];
  return { label: t(key) !== key ? t(key) : t('media.other'), extra: m[2].replace(/^[ :]+/, ''), caption: m[3] };
}

/** A message preview with its file summary translated ("Gambar: foto"). */
export function previewText(text) {
  const m = mediaSummary(text);
  if (!m) return text || '';
  const head = m.extra ? `${m.label} (${m.extra})` : m.label;
  return m.caption ? `${head}: ${m.caption}` : head;
}
