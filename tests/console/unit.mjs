// Unit tests of the console's pure modules, in Node (no browser): the
// strings of both languages, durations, the CSV reader (comma or semicolon,
// byte order mark, line numbers), system lines, quiet hours and template
// previews. Run by tests/console_e2e.rs (`console_modules_in_node`).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The modules read the language from localStorage and set <html lang>.
const stored = new Map();
globalThis.localStorage = {
  getItem: (k) => stored.get(k) ?? null,
  setItem: (k, v) => stored.set(k, String(v)),
};
globalThis.document = { documentElement: {} };

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.join(here, '../../src/console/assets');
const load = (name) => import(path.join(assets, name));

const { t, setLang } = await load('i18n.js');
const { duration } = await load('dom.js');
const { parseCsv, recipientsFromCsv, detectDelimiter } = await load('csv.js');
const { systemLine, parseSystemText } = await load('system.js');
const { humanize, queueName, reasonName, previewText } = await load('names.js');
const { errorMessage } = await load('api.js');
const { inQuietHours, renderTemplate } = await load('view-broadcasts.js');

let failures = 0;
function test(name, fn) {
  try {
    fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures += 1;
    console.error(`FAIL ${name}\n${e.stack}`);
  }
}

test('every string exists in both languages, and every key used is defined', () => {
  const source = fs.readFileSync(path.join(assets, 'i18n.js'), 'utf8');
  const block = (l) => {
    const start = source.indexOf(`\n  ${l}: {`);
    const end = source.indexOf('\n  },', start);
    return new Set([...source.slice(source.indexOf('{', start) + 1, end).matchAll(/^\s+'?([\w.]+)'?:/gm)].map((m) => m[1]));
  };
  const id = block('id');
  const en = block('en');
  assert.deepEqual([...id].filter((k) => !en.has(k)), [], 'keys missing in English');
  assert.deepEqual([...en].filter((k) => !id.has(k)), [], 'keys missing in Indonesian');
  const used = new Set();
  for (const f of fs.readdirSync(assets).filter((f) => f.endsWith('.js') || f.endsWith('.html'))) {
    const text = fs.readFileSync(path.join(assets, f), 'utf8');
    for (const m of text.matchAll(/\bt\('([\w.]+)'/g)) used.add(m[1]);
    for (const m of text.matchAll(/data-i18n="([\w.]+)"/g)) used.add(m[1]);
    for (const m of text.matchAll(/message: '(bc\.[\w]+)'/g)) used.add(m[1]);
  }
  // Keys built at run time (`'state.' + x`) end in a dot and are not checked here.
  assert.deepEqual([...used].filter((k) => !k.endsWith('.') && !id.has(k)), [], 'keys used but not defined');
});

test('durations read as "54 dtk", "3 mnt", "2 jam" (and in English)', () => {
  setLang('id');
  assert.equal(duration(54), '54 dtk');
  assert.equal(duration(180), '3 mnt');
  assert.equal(duration(3 * 60 + 59), '3 mnt');
  assert.equal(duration(7200), '2 jam');
  assert.equal(duration(7200 + 5 * 60), '2 jam 5 mnt');
  assert.equal(duration(3 * 86400 + 7200), '3 hr 2 jam');
  assert.equal(duration(null), '–');
  setLang('en');
  assert.equal(duration(54), '54 s');
  assert.equal(duration(180), '3 min');
  assert.equal(duration(7200), '2 h');
  setLang('id');
});

test('CSV: comma or semicolon, with or without a byte order mark', () => {
  for (const text of [
    'to,name,order_id\n6281234567890,Budi,INV-1\n6281234567891,"Sari, S.E.",INV-2\n',
    '\uFEFFto;name;order_id\r\n6281234567890;Budi;INV-1\r\n6281234567891;Sari, S.E.;INV-2\r\n',
    'to;name;order_id\n6281234567890;Budi;INV-1\n\n6281234567891;"Sari, S.E.";INV-2',
  ]) {
    const parsed = recipientsFromCsv(parseCsv(text));
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.recipients, [
      { to: '6281234567890', variables: { name: 'Budi', order_id: 'INV-1' } },
      { to: '6281234567891', variables: { name: 'Sari, S.E.', order_id: 'INV-2' } },
    ], JSON.stringify(text));
  }
  assert.equal(detectDelimiter('"a;b",c\n'), ',');
  assert.equal(detectDelimiter('a;b;c\n1,5;2;3'), ';');
});

test('CSV errors name the file line and read in the interface language', () => {
  setLang('id');
  const bad = recipientsFromCsv(parseCsv('to;name\n6281234567890;Budi\n6281234567891\n6281234567892;Sari\n'));
  assert.deepEqual(bad.errors, [{ line: 3, message: 'bc.csvColumns' }]);
  assert.deepEqual(bad.lines, [2, 4]);
  assert.equal(t('bc.csvLine', { line: 3, message: t(bad.errors[0].message) }), 'baris 3: jumlah kolom berbeda dengan baris judul');
  const noColumn = recipientsFromCsv(parseCsv('nama;kota\nBudi;Bandung\n'));
  assert.deepEqual(noColumn.errors, [{ line: 1, message: 'bc.csvNoRecipient' }]);
  assert.deepEqual(parseCsv('to,name\n"6281,Budi\n').errors, [{ line: 2, message: 'bc.csvQuote' }]);
});

test('system lines: typed events and the English texts read back, in both languages', () => {
  setLang('id');
  const english = [
    ['handoff to complaints (complaint), priority 1', 'Diserahkan ke antrean Keluhan (Keluhan), prioritas 1'],
    ['claim: assigned to siti', 'Diambil oleh siti'],
    ['transfer: assigned to dewi', 'Dialihkan ke dewi'],
    ['release → queue general', 'Dikembalikan ke antrean Umum'],
    ['reply_timeout → queue general', 'Agen tidak membalas tepat waktu: kembali ke antrean Umum'],
    ['resolved by bot', 'Diselesaikan oleh bot'],
    ['snoozed by siti until the customer writes', 'Ditunda oleh siti sampai pelanggan membalas'],
    ['woke up (message)', 'Pelanggan membalas: tidak ditunda lagi'],
    ['reacted 👍 to wamid.X', 'Pelanggan memberi reaksi 👍'],
    ['customer opted out of automated messages', 'Pelanggan berhenti menerima pesan otomatis'],
    ['something new', 'something new'],
  ];
  for (const [text, shown] of english) assert.equal(systemLine({ text }), shown, text);
  assert.equal(systemLine({ text: 'x', event: { code: 'requeued', how: 'agent_offline', queue: 'refunds' } }),
    'Agen offline sebelum membalas: kembali ke antrean Pengembalian dana');
  assert.equal(parseSystemText('handoff to a b (human_agent), priority 0').queue, 'a b');
  setLang('en');
  assert.equal(systemLine({ text: 'handoff to complaints (human_agent), priority 0' }), 'Handed to queue Complaints (Asked for an agent), priority 0');
  setLang('id');
});

test('raw ids are shown by name', () => {
  setLang('id');
  assert.equal(queueName('complaints'), 'Keluhan');
  assert.equal(reasonName('human_agent'), 'Minta bicara dengan agen');
  assert.equal(queueName('b2b_wholesale'), 'B2b wholesale');
  assert.equal(humanize('after-sales_team'), 'After sales team');
  assert.equal(previewText('[image] ini fotonya'), 'Gambar: ini fotonya');
  assert.equal(previewText('[document: nota.pdf]'), 'Dokumen (nota.pdf)');
  assert.equal(previewText('halo [image]'), 'halo [image]');
});

test('server errors by code in both languages', () => {
  setLang('id');
  assert.equal(errorMessage(409, 'agent_full', 'the agent already holds …'), 'Kapasitas penuh: selesaikan atau kembalikan satu percakapan dulu.');
  assert.equal(errorMessage(400, 'bad_request', 'until "x" is not an RFC 3339 time'), 'Permintaan tidak valid.');
  assert.equal(errorMessage(418, 'teapot', 'short and stout'), 'Server menolak permintaan ini (HTTP 418).');
  setLang('en');
  assert.equal(errorMessage(409, 'agent_full', 'x'), 'At capacity: resolve or release a conversation first.');
  assert.equal(errorMessage(400, 'bad_request', 'until "x" is not an RFC 3339 time'), 'until "x" is not an RFC 3339 time');
  setLang('id');
});

test('quiet hours across midnight in the shop time zone', () => {
  const at = (iso) => Date.parse(iso);
  assert.equal(inQuietHours(at('2026-12-01T22:30:00+07:00'), '21:00-08:00', 'Asia/Jakarta'), true);
  assert.equal(inQuietHours(at('2026-12-01T07:59:00+07:00'), '21:00-08:00', 'Asia/Jakarta'), true);
  assert.equal(inQuietHours(at('2026-12-01T08:00:00+07:00'), '21:00-08:00', 'Asia/Jakarta'), false);
  assert.equal(inQuietHours(at('2026-12-01T20:59:00+07:00'), '21:00-08:00', 'Asia/Jakarta'), false);
  assert.equal(inQuietHours(at('2026-12-01T13:00:00+07:00'), '12:00-14:00', 'Asia/Jakarta'), true);
  assert.equal(inQuietHours(at('2026-12-01T22:30:00+07:00'), '', 'Asia/Jakarta'), false);
});

test('template previews fill {{1}} … and the first recipient\'s {{variables}}', () => {
  const body = 'Halo {{1}}, pesanan {{2}} dapat diskon {{3}}.';
  assert.equal(renderTemplate(body, ['{{name}}', '{{order_id}}', 'DISKON10'], { name: 'Budi', order_id: 'INV-1' }),
    'Halo Budi, pesanan INV-1 dapat diskon DISKON10.');
  assert.equal(renderTemplate(body, ['{{name}}'], {}), 'Halo {{name}}, pesanan {{2}} dapat diskon {{3}}.');
});

if (failures) {
  console.error(`${failures} console unit test(s) failed`);
  process.exit(1);
}
console.log('console unit tests passed');
