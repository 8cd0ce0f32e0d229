// End-to-end test of the agent console in a real headless Chromium.
//
// Run by tests/console_e2e.rs, which starts Balas and a Graph API mock and
// passes: BASE_URL, USERNAME and PASSWORD (an admin), APP_SECRET, GRAPH_URL
// (the mock, with GET /__requests), MEDIA_ID / MEDIA_SHA256 (a photo the mock
// serves), UPLOAD_FILE, AGENT2 / AGENT2_NAME / AGENT2_TOKEN (a second agent),
// ARTIFACTS (directory for screenshots), DOCS_DIR (screenshots for
// docs/console.md), CHROMIUM (optional).
//
// One admin works through the whole desk at 1280×800 and 390×844: sign in,
// presence, the live queue with names instead of ids, claim, reply, system
// lines in both languages, rendered canned responses, files, the phone layout
// (Send tappable at its centre, the contact drawer, nothing wider than the
// screen), a waiting chat opened read-only and claimed, "Kembali", transfer
// from a list, the live board (a second agent claims through the API;
// reassign by menu and by dragging), search (order number, phone, pages),
// snooze, resolve, every screen's width, reports, users, broadcasts
// (quiet hours, semicolon CSV with a BOM, synced template with preview and
// the server's refusal, line errors in Indonesian, truthful progress, form
// defaults, cancel), sign out. docs/console.md lists every step.

import { chromium } from 'playwright-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE_URL = env('BASE_URL');
const USERNAME = env('USERNAME');
const PASSWORD = env('PASSWORD');
const APP_SECRET = env('APP_SECRET');
const GRAPH_URL = env('GRAPH_URL');
const ARTIFACTS = env('ARTIFACTS');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CUSTOMER = '6281234567890';
const PHONE_NUMBER_ID = process.env.PHONE_NUMBER_ID || '112233445566778';
const MEDIA_ID = env('MEDIA_ID');
const MEDIA_SHA256 = env('MEDIA_SHA256');
const UPLOAD_FILE = env('UPLOAD_FILE');
// A second agent (with an API token) for the desk steps.
const AGENT2 = process.env.AGENT2 || 'rudi';
const AGENT2_NAME = process.env.AGENT2_NAME || 'Rudi Hartono';
const AGENT2_TOKEN = process.env.AGENT2_TOKEN || '';

/** Calls the API as the second agent (their bearer token). */
async function asAgent2(method, route, body) {
  const res = await fetch(`${BASE_URL}/api/v1${route}`, {
    method,
    headers: { Authorization: `Bearer ${AGENT2_TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok && res.status !== 204) throw new Error(`${method} ${route} as ${AGENT2}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
const deadline = setTimeout(() => {
  console.error('e2e: took longer than 90 s');
  process.exit(2);
}, 90_000);

/** A signed WhatsApp text webhook, shaped like the platform fixture wa_text.json. */
async function customerSays(text, who = { wa_id: CUSTOMER, name: 'Budi Santoso' }) {
  await customerSends({ type: 'text', text: { body: text } }, who);
}

/** A signed WhatsApp webhook carrying `message` (its `type` and content). */
async function customerSends(message, who = { wa_id: CUSTOMER, name: 'Budi Santoso' }) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '104857600012345',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '6281190001234', phone_number_id: PHONE_NUMBER_ID },
          contacts: [{ profile: { name: who.name }, wa_id: who.wa_id }],
          messages: [{
            from: who.wa_id,
            id: 'wamid.E2E' + crypto.randomBytes(12).toString('hex').toUpperCase(),
            timestamp: String(Math.floor(Date.now() / 1000)),
            ...message,
          }],
        },
      }],
    }],
  });
  const bytes = Buffer.from(body, 'utf8');
  const signature = crypto.createHmac('sha256', APP_SECRET).update(bytes).digest('hex');
  const res = await fetch(`${BASE_URL}/webhooks/whatsapp`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': `sha256=${signature}` },
    body: bytes,
  });
  if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
}

/** Waits until the Graph mock received a text message with `text` to the customer. */
async function graphReceived(text, timeoutMs = 15_000) {
  await graphSaw((r) => r.body?.to === CUSTOMER && r.body?.text?.body === text, JSON.stringify(text), timeoutMs);
}

/** Waits until the Graph mock received a request that `test` accepts; returns it. */
async function graphSaw(test, what, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  let seen = [];
  while (Date.now() < until) {
    const res = await fetch(`${GRAPH_URL}/__requests`);
    seen = await res.json();
    const found = seen.find(test);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the Graph mock never received ${what}; it got: ${JSON.stringify(seen.map((r) => r.body))}`);
}

/**
 * Polls `check` (an async function in Node) until it is true, every 100 ms
 * for up to 15 s. (page.waitForFunction does not await an async predicate.)
 */
async function eventually(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Nothing on the page is wider than the window (tables scroll inside their card). */
async function noHorizontalOverflow(page, where) {
  const wide = await page.evaluate(() => {
    const root = document.documentElement;
    if (root.scrollWidth <= root.clientWidth) return null;
    // Name the widest culprits for the failure message.
    const clipped = (el) => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== 'visible') return true;
      }
      return false;
    };
    const culprits = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 1 && !clipped(el))
      .slice(0, 5)
      .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
    // The first culprit's ancestors with their widths: where the width leaks.
    const chain = [];
    for (let el = [...document.querySelectorAll('body *')].find((e) => e.getBoundingClientRect().right > root.clientWidth + 1 && !clipped(e)); el; el = el.parentElement) {
      chain.push(`${el.tagName.toLowerCase()}.${el.className}:${Math.round(el.getBoundingClientRect().width)}`);
    }
    const all = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > root.clientWidth + 1)
      .slice(0, 12)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className}:${Math.round(el.getBoundingClientRect().right)}`);
    return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, culprits, chain, all };
  });
  if (wide) throw new Error(`${where}: the page overflows horizontally: ${JSON.stringify(wide)}`);
}

/** `selector` is on screen and is the element a tap at its centre reaches. */
async function tappable(page, selector, where) {
  const r = await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return { missing: true };
    const box = el.getBoundingClientRect();
    const x = box.left + box.width / 2;
    const y = box.top + box.height / 2;
    const hit = document.elementFromPoint(x, y);
    return {
      ok: Boolean(hit) && (hit === el || el.contains(hit)),
      hit: hit ? `${hit.tagName.toLowerCase()}#${hit.id}.${hit.className}` : null,
      box: [Math.round(box.left), Math.round(box.top), Math.round(box.width), Math.round(box.height)],
      viewport: [innerWidth, innerHeight],
    };
  }, selector);
  if (!r.ok) throw new Error(`${where}: ${selector} cannot be tapped at its centre: ${JSON.stringify(r)}`);
}

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const DOCS = process.env.DOCS_DIR || path.join(ARTIFACTS, 'docs');

/** A screenshot for docs/console.md (`DOCS_DIR`), at the current viewport. */
async function docShot(page, name) {
  fs.mkdirSync(DOCS, { recursive: true });
  const phone = page.viewportSize().width < 600;
  await page.evaluate(() => {
    scrollTo(0, 0);
    document.getElementById('toast').classList.remove('show');
  });
  await page.screenshot({ path: path.join(DOCS, `${name}-${phone ? 'phone' : 'desktop'}.png`) });
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'balas-e2e-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: DESKTOP,
  // Quiet hours are in the shop's time zone; the browser is there too.
  timezoneId: 'Asia/Jakarta',
  locale: 'id-ID',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const problems = [];
let expected401 = 0;
const expectedErrors = {};
const dialogs = [];
let expectedConfirm = null;
let exitCode = 0;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('dialog', (d) => {
    // A confirmation the test expects is accepted; any other dialog is a failure.
    if (expectedConfirm && d.message().includes(expectedConfirm)) {
      expectedConfirm = null;
      d.accept().catch(() => {});
      return;
    }
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error' || /the server responded with a status of 204/.test(m.text())) return;
    // The wrong password is refused with 401 on purpose; anything else is a problem.
    if (expected401 > 0 && /status of 401/.test(m.text())) {
      expected401 -= 1;
      return;
    }
    // So are the other refusals the test provokes (409, 422).
    const status = /status of (\d{3})/.exec(m.text())?.[1];
    if (status && expectedErrors[status] > 0) {
      expectedErrors[status] -= 1;
      return;
    }
    problems.push(`console error: ${m.text()}`);
  });
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations += 1;
  });

  step('open / (redirects to /console/); a wrong password is refused');
  await page.goto(BASE_URL + '/');
  if (!page.url().startsWith(BASE_URL + '/console/')) throw new Error(`/ did not redirect to the console: ${page.url()}`);
  await page.getByLabel('Nama pengguna', { exact: true }).fill(USERNAME);
  await page.getByLabel('Kata sandi', { exact: true }).fill('not the password');
  expected401 = 1;
  await page.getByRole('button', { name: 'Masuk' }).click();
  await page.getByText('Nama pengguna atau kata sandi salah.').waitFor();

  step('sign in through the form');
  await page.getByLabel('Kata sandi', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Masuk' }).click();
  await page.getByRole('heading', { name: 'Antrean', level: 1 }).waitFor();
  if (page.url().includes(PASSWORD)) throw new Error('the password leaked into the URL');
  await page.locator('#live[data-connected="true"]').waitFor();
  const scriptView = await page.evaluate(() => ({
    cookie: document.cookie,
    stored: JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }),
  }));
  if (scriptView.cookie.includes('balas_session')) throw new Error('the session cookie is readable by scripts');
  if (scriptView.stored.includes(PASSWORD) || /blk_|[0-9a-f]{64}/.test(scriptView.stored)) {
    throw new Error(`a secret is kept in web storage: ${scriptView.stored}`);
  }
  const cookies = await context.cookies(BASE_URL);
  const session = cookies.find((c) => c.name === 'balas_session');
  if (!session || !session.httpOnly || session.sameSite !== 'Strict') {
    throw new Error(`unexpected session cookie: ${JSON.stringify(cookies)}`);
  }

  step('presence: opening the console brings the agent online; the switch sets away and back');
  const presence = page.locator('#presence');
  await page.locator('#presence-wrap').waitFor();
  await page.waitForFunction(() => document.querySelector('#presence').value === 'online');
  const serverSays = () => page.evaluate(async () => (await (await fetch('/api/v1/me/presence')).json()).status);
  if ((await serverSays()) !== 'online') throw new Error('the console did not report online');
  await presence.selectOption('away');
  await eventually(async () => (await serverSays()) === 'away', 'presence away');
  await presence.selectOption('online');
  await eventually(async () => (await serverSays()) === 'online', 'presence online');

  step('a second tab is signed in too (one cookie for every tab)');
  const tab = await context.newPage();
  await tab.goto(BASE_URL + '/console/');
  await tab.getByRole('heading', { name: 'Antrean', level: 1 }).waitFor();
  if (await tab.locator('#signin').isVisible()) throw new Error('the second tab asks to sign in again');
  // Closing one tab does not leave the agent offline while another is
  // open. A closing tab says offline (a keepalive request on pagehide,
  // which Playwright's close does not reliably fire), so that request is
  // made here as the closing tab would; the open tab hears it on the
  // event stream and says online again.
  await tab.close();
  const isPut = (r, status) => r.url().endsWith('/api/v1/me/presence') && r.method() === 'PUT' && (r.postData() || '').includes(status);
  const openSaysOnline = page.waitForResponse((res) => isPut(res.request(), 'online'));
  await page.evaluate(async () => {
    const { authHeaders } = await import('/console/api.js');
    await fetch('/api/v1/me/presence', {
      method: 'PUT',
      headers: authHeaders({ 'Content-Type': 'application/json' }, 'PUT'),
      body: JSON.stringify({ status: 'offline' }),
    });
  });
  await openSaysOnline;
  if ((await page.evaluate(async () => (await (await fetch('/api/v1/me/presence')).json()).status)) !== 'online') {
    throw new Error('the agent is not online after closing the second tab');
  }

  step('a customer complains; the conversation appears in the queue without a reload');
  const navigationsBefore = navigations;
  const complaint = 'barang saya rusak, saya mau komplain';
  await customerSays(complaint);
  const card = page.locator('.card', { hasText: complaint });
  await card.waitFor();
  await card.getByText('Budi Santoso').waitFor();
  if (navigations !== navigationsBefore) throw new Error('the page reloaded to show the queue');

  step('the queue shows names, not ids, and waits as "N dtk"');
  const queueText = await page.locator('#view').textContent();
  for (const raw of ['complaints', 'complaint', 'human_agent', 'fallback']) {
    if (new RegExp(`\\b${raw}\\b`).test(queueText)) throw new Error(`the queue shows the raw id ${raw}: ${queueText}`);
  }
  await page.getByRole('heading', { name: /^Keluhan/, level: 2 }).waitFor();
  await card.getByText(/menunggu \d+ dtk/).waitFor();
  await docShot(page, 'queue');
  await page.setViewportSize(PHONE);
  await docShot(page, 'queue');
  await page.setViewportSize(DESKTOP);

  step('claim next; the conversation opens');
  await page.getByRole('button', { name: 'Ambil berikutnya' }).click();
  const reply = page.locator('#reply');
  await page.locator('.entry.customer', { hasText: complaint }).waitFor();
  await reply.waitFor();
  await page.waitForFunction(() => !document.querySelector('#reply').disabled);
  const windowText = await page.locator('#window-info').textContent();
  if (!/Jendela 24 jam: sisa 2[0-3]:/.test(windowText)) throw new Error(`unexpected window text: ${windowText}`);

  step('reply; the Graph mock receives it');
  const answer = 'Mohon maaf kak, boleh kirim foto barangnya?';
  await reply.fill(answer);
  await reply.press('Enter');
  await page.locator('.entry.agent', { hasText: answer }).waitFor();
  await graphReceived(answer);

  step('system lines are in Indonesian with names (and in English after the switch)');
  await page.locator('.entry.system', { hasText: 'Diserahkan ke antrean Keluhan' }).waitFor();
  await page.locator('.entry.system', { hasText: 'Diambil oleh Siti Aminah' }).waitFor();
  await page.locator('#lang').selectOption('en');
  await page.locator('.entry.system', { hasText: 'Handed to queue Complaints' }).waitFor();
  await page.locator('.entry.system', { hasText: 'Claimed by Siti Aminah' }).waitFor();
  await page.getByRole('button', { name: 'Send' }).waitFor();
  await page.locator('#lang').selectOption('id');
  await page.getByRole('button', { name: 'Kirim' }).waitFor();
  await page.waitForFunction(() => !document.querySelector('#reply').disabled);

  step('a canned response is inserted rendered for this customer, previewed, and sent as shown');
  await reply.fill('/salam');
  const option = page.locator('#canned-list [role=option]', { hasText: '/salam' });
  await option.waitFor();
  const previewShown = await option.locator('.canned-text').textContent();
  if (!previewShown.includes('Budi Santoso') || previewShown.includes('{{')) {
    throw new Error(`the canned preview is not rendered: ${previewShown}`);
  }
  await reply.press('Enter');
  const inserted = await reply.inputValue();
  if (inserted !== previewShown || inserted.includes('{{')) throw new Error(`inserted ${JSON.stringify(inserted)}, previewed ${JSON.stringify(previewShown)}`);
  await reply.press('Enter');
  await page.locator('.entry.agent', { hasText: 'Halo kak Budi Santoso' }).waitFor();
  await graphReceived(inserted);

  step('a {{placeholder}} typed by hand never reaches the customer as written');
  await reply.fill('Halo {{contact.name}}, ada yang bisa dibantu?');
  await page.locator('#placeholder-note').waitFor();
  await reply.press('Enter');
  await graphReceived('Halo Budi Santoso, ada yang bisa dibantu?');

  step('the customer answers; it appears live in the open conversation');
  const followUp = 'sudah saya foto, layarnya retak';
  const beforeAnswer = navigations;
  await customerSays(followUp);
  await page.locator('.entry.customer', { hasText: followUp }).waitFor();
  if (navigations !== beforeAnswer) throw new Error('the page reloaded to show the answer');

  step('a message that looks like HTML is shown as text');
  const evil = '<img src=x onerror=alert(1)>';
  await customerSays(evil);
  const evilBubble = page.locator('.entry.customer .text', { hasText: evil });
  await evilBubble.waitFor();
  const shown = await evilBubble.textContent();
  if (shown !== evil) throw new Error(`the bubble shows ${JSON.stringify(shown)}`);
  const images = await page.locator('#transcript img, .entry img').count();
  if (images !== 0) throw new Error(`${images} <img> element(s) were created from customer text`);

  step('the customer sends a photo; its thumbnail appears and opens in the viewer');
  await customerSends({ type: 'image', image: { id: MEDIA_ID, mime_type: 'image/png', sha256: MEDIA_SHA256, caption: 'ini fotonya kak' } });
  const thumb = page.locator('.entry.customer .thumb-img');
  await thumb.waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector('.entry.customer .thumb-img');
    return img && img.complete && img.naturalWidth === 48;
  });
  await page.locator('.entry.customer', { hasText: 'ini fotonya kak' }).waitFor();
  await page.locator('.entry.customer .thumb').click();
  const viewer = page.locator('dialog#viewer[open]');
  await viewer.waitFor();
  await page.waitForFunction(() => document.querySelector('#viewer .viewer-img')?.naturalWidth === 48);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-photo-viewer.png') });
  await page.keyboard.press('Escape');
  await viewer.waitFor({ state: 'detached' });

  step('attach a PDF with a caption; the upload shows progress and reaches the Graph mock as a document');
  await page.locator('#attach-input').setInputFiles(UPLOAD_FILE);
  await page.locator('#staged .file-name', { hasText: 'nota-servis.pdf' }).waitFor();
  await reply.fill('Ini nota servisnya kak');
  await page.getByRole('button', { name: 'Kirim' }).click();
  await page.locator('.entry.agent .file-chip', { hasText: 'nota-servis.pdf' }).waitFor();
  if (!(await page.locator('#staged').isHidden())) throw new Error('the staged file was not cleared after the upload');
  const until = Date.now() + 15_000;
  let doc = null;
  while (!doc && Date.now() < until) {
    const seen = await (await fetch(`${GRAPH_URL}/__requests`)).json();
    doc = seen.find((r) => r.body?.to === CUSTOMER && r.body?.type === 'document');
    if (!doc) await new Promise((r) => setTimeout(r, 100));
  }
  if (!doc) throw new Error('the Graph mock never received the document');
  if (doc.body.document.caption !== 'Ini nota servisnya kak') throw new Error(`caption: ${JSON.stringify(doc.body.document)}`);

  step('screenshot of the conversation screen');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-conversation.png') });
  await tappable(page, '#send', 'conversation at 1280×800');
  await noHorizontalOverflow(page, 'conversation at 1280×800');
  await docShot(page, 'conversation');

  step('on a phone (390×844) the reply box and Send stay reachable; the contact panel is a drawer');
  await page.setViewportSize(PHONE);
  await page.locator('#contact-toggle').waitFor();
  await tappable(page, '#send', 'conversation at 390×844');
  await tappable(page, '#reply', 'conversation at 390×844');
  await noHorizontalOverflow(page, 'conversation at 390×844');
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-conversation-phone.png') });
  await docShot(page, 'conversation');
  await page.locator('#contact-toggle').click();
  await page.locator('#side.open').getByRole('heading', { name: 'Catatan' }).waitFor();
  // It slides in.
  await page.waitForFunction(() => Math.abs(document.querySelector('#side').getBoundingClientRect().right - innerWidth) < 1);
  await tappable(page, '#note-text', 'the contact drawer');
  await docShot(page, 'contact-drawer');
  await page.locator('#side .drawer-close').click();
  await page.waitForFunction(() => !document.querySelector('#side').classList.contains('open'));
  await tappable(page, '#send', 'conversation at 390×844 after the drawer closed');
  const fromPhone = 'Baik kak, kami cek dulu ya.';
  await reply.fill(fromPhone);
  await page.locator('#send').tap().catch(() => page.locator('#send').click());
  await graphReceived(fromPhone);
  await page.locator('#actions-toggle').click();
  await page.locator('#actions.open #resolve').waitFor();
  await noHorizontalOverflow(page, 'conversation actions at 390×844');
  await page.locator('#actions-toggle').click();
  await page.setViewportSize(DESKTOP);

  step('another customer waits: their chat opens read-only from the queue, and "Kembali" goes back to the queue');
  const other = { wa_id: '6281298765432', name: 'Sari Wulandari' };
  await customerSays('barang saya rusak, saya mau komplain', other);
  await page.locator('#nav button[data-route=queue]').click();
  const otherCard = page.locator('.card', { hasText: 'Sari Wulandari' });
  await otherCard.waitFor();
  await otherCard.locator('.card-link').click();
  await page.getByRole('heading', { name: 'Sari Wulandari', level: 1 }).waitFor();
  await page.locator('#window-info', { hasText: 'Menunggu di antrean Keluhan' }).waitFor();
  if (!(await page.locator('#reply').isDisabled())) throw new Error('the reply box of a waiting chat is enabled');
  await page.setViewportSize(PHONE);
  await noHorizontalOverflow(page, 'a waiting conversation at 390×844');
  await tappable(page, '#claim', 'the claim button at 390×844');
  await page.setViewportSize(DESKTOP);
  await page.locator('#back').click();
  await page.getByRole('heading', { name: 'Antrean', level: 1 }).waitFor();
  if (!page.url().endsWith('#/queue')) throw new Error(`"Kembali" went to ${page.url()}`);
  step('claim this specific conversation from its read-only view');
  await otherCard.locator('.card-link').click();
  await page.locator('#claim').click();
  await page.waitForFunction(() => !document.querySelector('#reply').disabled);
  await page.locator('.entry.system', { hasText: 'Diambil oleh Siti Aminah' }).waitFor();
  await page.locator('#back').click();
  await page.getByRole('heading', { name: 'Antrean', level: 1 }).waitFor();
  await page.locator('#nav button[data-route=mine]').click();
  await page.locator('.card', { hasText: 'Budi Santoso' }).locator('.card-link').click();
  await page.getByRole('heading', { name: 'Budi Santoso', level: 1 }).waitFor();

  step('transfer to a person chosen from a list that shows presence and load');
  await asAgent2('PUT', '/me/presence', { status: 'online' });
  await page.locator('#nav button[data-route=mine]').click();
  await page.locator('.card', { hasText: 'Sari Wulandari' }).locator('.card-link').click();
  await page.getByRole('heading', { name: 'Sari Wulandari', level: 1 }).waitFor();
  await page.locator('#transfer-kind').selectOption('agent');
  const choice = page.locator('#transfer-target option', { hasText: AGENT2_NAME });
  const label = await choice.textContent();
  if (!/Online · 0\/5/.test(label)) throw new Error(`the transfer list does not show presence and load: ${label}`);
  await page.locator('#transfer-target').selectOption(AGENT2);
  await page.locator('.transfer').getByRole('button', { name: 'Alihkan' }).click();
  await page.locator('.conv-status', { hasText: AGENT2_NAME }).waitFor();
  await page.locator('.entry.system', { hasText: `Dialihkan ke ${AGENT2_NAME}` }).waitFor();

  step('the supervisor board updates live when an agent claims; reassign by menu and by dragging; click through');
  await page.locator('#nav button[data-route=board]').click();
  await page.getByRole('heading', { name: 'Papan supervisor', level: 1 }).waitFor();
  const agent2Row = page.locator(`tr[data-agent="${AGENT2}"]`);
  await agent2Row.locator('.load-text', { hasText: '1/5' }).waitFor();
  await agent2Row.getByText('Sari Wulandari').waitFor();
  const keluhan = page.locator('.board-queue[data-queue="complaints"]');
  const boardNavigations = navigations;
  const third = { wa_id: '6281211112222', name: 'Tono Prasetyo' };
  await customerSays('barang saya rusak, saya mau komplain', third);
  await keluhan.locator('.waiting', { hasText: '1' }).waitFor();
  await keluhan.getByText('Tono Prasetyo').waitFor();
  await docShot(page, 'board');
  await asAgent2('POST', '/queue/claim', {});
  await agent2Row.locator('.load-text', { hasText: '2/5' }).waitFor();
  await agent2Row.getByText('Tono Prasetyo').waitFor();
  await keluhan.locator('.waiting', { hasText: '0' }).waitFor();
  if (navigations !== boardNavigations) throw new Error('the board reloaded the page');
  await page.setViewportSize(PHONE);
  await noHorizontalOverflow(page, 'board at 390×844');
  await docShot(page, 'board');
  await page.setViewportSize(DESKTOP);
  const tono = await agent2Row.locator('li', { hasText: 'Tono Prasetyo' }).getAttribute('data-conversation');
  await agent2Row.locator(`select.reassign[data-conversation="${tono}"]`).selectOption(USERNAME);
  const meRow = page.locator(`tr[data-agent="${USERNAME}"]`);
  await meRow.getByText('Tono Prasetyo').waitFor();
  await agent2Row.locator('.load-text', { hasText: '1/5' }).waitFor();
  // And back by dragging it onto their row.
  await meRow.locator('li', { hasText: 'Tono Prasetyo' }).locator('small').dragTo(agent2Row);
  await agent2Row.getByText('Tono Prasetyo').waitFor();
  await agent2Row.locator('.load-text', { hasText: '2/5' }).waitFor();
  await agent2Row.getByRole('link', { name: 'Tono Prasetyo' }).click();
  await page.getByRole('heading', { name: 'Tono Prasetyo', level: 1 }).waitFor();
  await page.locator('#back').click();
  await page.getByRole('heading', { name: 'Papan supervisor', level: 1 }).waitFor();

  step('search finds a chat by order number and by phone number');
  await customerSays('pesanan saya INV-20261130-0077 belum sampai kak');
  const search = page.locator('#search');
  await search.fill('6281298765432');
  await search.press('Enter');
  await page.locator('#results .card', { hasText: 'Sari Wulandari' }).waitFor();
  await search.fill('INV-20261130-0077');
  await search.press('Enter');
  const found = page.locator('#results .card', { hasText: 'Budi Santoso' });
  await found.waitFor();
  await page.locator('#search-status', { hasText: '1 percakapan' }).waitFor();
  await docShot(page, 'search');
  await page.setViewportSize(PHONE);
  await noHorizontalOverflow(page, 'search at 390×844');
  await docShot(page, 'search');
  await page.setViewportSize(DESKTOP);

  step('search results come a page at a time');
  await Promise.all(Array.from({ length: 21 }, (_, i) =>
    customerSays('jam buka toko kapan ya? kode voucher XQ77', { wa_id: String(6281300000000 + i), name: `Pelanggan ${i + 1}` })));
  await eventually(async () => (await page.evaluate(async () =>
    (await (await fetch('/api/v1/conversations?q=XQ77&limit=50')).json()).conversations.length)) === 21, '21 conversations to search');
  await search.fill('XQ77');
  await search.press('Enter');
  await page.locator('#search-status', { hasText: '20 percakapan' }).waitFor();
  await page.locator('#search-more').click();
  await page.locator('#search-status', { hasText: '21 percakapan' }).waitFor();
  await page.locator('#search-more').waitFor({ state: 'hidden' });
  if ((await page.locator('#results .card').count()) !== 21) throw new Error('the second page did not add the last result');

  await search.fill('INV-20261130-0077');
  await search.press('Enter');
  await found.locator('.card-link').click();
  await page.getByRole('heading', { name: 'Budi Santoso', level: 1 }).waitFor();

  step('snooze until the customer writes; their message wakes it');
  await page.locator('#snooze-until').selectOption('reply');
  await page.locator('#snooze').click();
  await page.locator('#snooze-badge', { hasText: 'ditunda sampai pelanggan membalas' }).waitFor();
  await page.locator('.entry.system', { hasText: 'Ditunda oleh Siti Aminah sampai pelanggan membalas' }).waitFor();
  await customerSays('halo kak, jadi bagaimana?');
  await page.locator('#snooze-badge').waitFor({ state: 'detached' });
  await page.locator('.entry.system', { hasText: 'Pelanggan membalas: tidak ditunda lagi' }).waitFor();

  step('snooze for an hour, then unsnooze');
  await page.locator('#snooze-until').selectOption('1h');
  await page.locator('#snooze').click();
  await page.locator('#snooze-badge', { hasText: /ditunda sampai \d/ }).waitFor();
  await page.locator('.entry.system', { hasText: /Ditunda oleh Siti Aminah sampai \d/ }).waitFor();
  await page.locator('#wake').click();
  await page.locator('#snooze-badge').waitFor({ state: 'detached' });
  await page.locator('.entry.system', { hasText: /^Tidak ditunda lagi/ }).waitFor();
  await page.locator('#snooze').waitFor();

  step('resolve');
  await page.getByRole('button', { name: 'Selesaikan' }).click();
  await page.locator('.conv-status .state-resolved').waitFor();
  await page.waitForFunction(() => document.querySelector('#reply').disabled);

  step('every screen fits a phone (390×844) and a desktop (1280×800) without horizontal overflow');
  // Each screen with what shows it has loaded.
  const screens = {
    queue: '.queue',
    mine: '.cards, #view .empty',
    reports: '.tiles',
    broadcasts: '.broadcasts > *',
    users: 'tr[data-user]',
    board: '.board-table',
    'search/Budi': '#search-status:not(:empty)',
  };
  for (const [route, ready] of Object.entries(screens)) {
    await page.evaluate((r) => { location.hash = '#/' + r; }, route);
    await page.locator('#view h1').waitFor();
    await page.locator(ready).first().waitFor();
    if (route === 'reports') {
      // The service measures supervisors are judged by.
      for (const label of ['Tingkat penyelesaian', 'Dibuka kembali', 'Selesai sekali kontak', 'SLA respons pertama']) {
        await page.locator('.tile .tile-label').getByText(label, { exact: true }).waitFor();
      }
      await page.getByRole('heading', { name: 'Per kanal' }).waitFor();
    }
    for (const size of [PHONE, DESKTOP]) {
      await page.setViewportSize(size);
      await noHorizontalOverflow(page, `${route} at ${size.width}×${size.height}`);
      if (['reports', 'broadcasts', 'users', 'board'].includes(route)) await docShot(page, route);
    }
  }

  step('the admin adds a user, gives them a queue and an API token');
  await page.getByRole('button', { name: 'Pengguna' }).click();
  await page.getByRole('heading', { name: 'Pengguna', level: 1 }).waitFor();
  await page.getByLabel('ID (nama pengguna)').fill('dewi');
  await page.getByLabel('Nama', { exact: true }).fill('Dewi Lestari');
  await page.getByLabel('Kata sandi awal (opsional)').fill('teh tarik tanpa gula');
  await page.getByRole('button', { name: 'Tambah', exact: true }).click();
  const row = page.locator('tr[data-user="dewi"]');
  await row.waitFor();
  await row.getByRole('button', { name: 'Ubah' }).click();
  await page.locator('.user-editor').getByLabel('Antrean').fill('complaints, refunds');
  await page.locator('.user-editor').getByRole('button', { name: 'Simpan' }).click();
  await row.getByText('Keluhan, Pengembalian dana').waitFor();
  await row.getByRole('button', { name: 'Buat token API' }).click();
  await page.locator('.user-editor').getByLabel('Untuk apa token ini?').fill('CRM');
  await page.locator('.user-editor').getByRole('button', { name: 'Buat token' }).click();
  const tokenText = (await page.locator('.secret-value').textContent()).trim();
  if (!/^blk_[0-9a-f]{64}$/.test(tokenText)) throw new Error(`unexpected token: ${tokenText}`);
  const me = async () => (await fetch(`${BASE_URL}/api/v1/me`, { headers: { Authorization: `Bearer ${tokenText}` } })).status;
  if ((await me()) !== 200) throw new Error('the new token does not work');
  await row.getByText('CRM').waitFor();

  step('a server error reads in Indonesian (by its code)');
  await page.getByLabel('ID (nama pengguna)').fill('dewi');
  await page.getByLabel('Nama', { exact: true }).fill('Dewi lagi');
  expectedErrors[409] = 1;
  await page.getByRole('button', { name: 'Tambah', exact: true }).click();
  await page.getByText('Sudah ada.', { exact: true }).waitFor();

  step('the admin disables the user: the token stops working at once');
  await row.getByRole('button', { name: 'Nonaktifkan' }).click();
  await row.getByText('nonaktif', { exact: true }).waitFor();
  if ((await me()) !== 401) throw new Error('the token of a disabled user still works');
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-users.png') });

  step('broadcasts: a send time in quiet hours is warned about');
  await page.locator('#nav button[data-route=broadcasts]').click();
  await page.getByRole('heading', { name: 'Siaran', level: 1 }).waitFor();
  const sendAt = page.locator('#bc-send-at');
  await sendAt.fill('2031-12-24T22:30');
  await page.locator('#quiet-warning', { hasText: 'jam tenang (21:00–08:00' }).waitFor();
  await sendAt.fill('2031-12-24T10:00');
  await page.locator('#quiet-warning').waitFor({ state: 'hidden' });
  await sendAt.fill('');

  step('broadcasts: a semicolon CSV saved by Excel (with a byte order mark) is read; errors name the file line in Indonesian');
  await page.locator('#bc-name').fill('Promo Desember');
  step('broadcasts: templates synced from Meta are picked from a list with a rendered preview');
  await page.locator('#tpl-sync').click();
  await page.locator('#tpl-info', { hasText: 'Disinkronkan' }).waitFor();
  const pending = page.locator('#tpl-pick option', { hasText: 'info_baru' });
  if (!(await pending.isDisabled())) throw new Error('a template waiting for approval can be picked');
  await page.locator('#tpl-pick').selectOption({ label: 'promo_akhir_tahun (id) · Pemasaran' });
  if ((await page.locator('#tpl-name').inputValue()) !== 'promo_akhir_tahun') throw new Error('picking did not fill the name');
  await page.locator('#tpl-params').fill('{{name}}');
  await page.locator('#tpl-params-check', { hasText: 'butuh 2 parameter; terisi 1' }).waitFor();
  await page.locator('#tpl-params').fill('{{name}}\n{{order_id}}');
  await page.getByLabel('Tempel CSV').check();
  await page.locator('#bc-csv-text').fill('to;name;order_id\n6281234567890;Budi;INV-1\n6281234567891;Sari;INV-2;extra\n');
  await page.locator('#bc-create').click();
  await page.locator('#bc-errors', { hasText: 'baris 3: jumlah kolom berbeda dengan baris judul' }).waitFor();
  await page.locator('#bc-csv-text').fill('to;name;order_id\n6281234567890;Budi;INV-1\n12ab;Sari;INV-2\n');
  expectedErrors[422] = 1;
  await page.locator('#bc-create').click();
  await page.locator('#bc-errors', { hasText: 'baris 3: "12ab" bukan nomor telepon' }).waitFor();
  await page.getByLabel('Berkas CSV', { exact: true }).check();
  await page.locator('#bc-csv-file').setInputFiles({
    name: 'pelanggan.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('\uFEFFto;name;order_id\r\n6281234567890;Budi;INV-1\r\n6281234567891;"Sari; S.E.";INV-2\r\n', 'utf8'),
  });
  await page.locator('#tpl-preview-body', { hasText: 'Halo Budi, pesanan INV-1' }).waitFor();
  await page.locator('#tpl-params-check', { hasText: 'Parameter sesuai: 2' }).waitFor();
  await docShot(page, 'broadcast-template');
  // The server refuses the wrong number of parameters before scheduling (422, by code).
  await page.locator('#tpl-params').fill('{{name}}');
  expectedErrors[422] = (expectedErrors[422] || 0) + 1;
  await page.locator('#bc-create').click();
  await page.locator('#bc-errors', { hasText: 'Jumlah parameter tidak sesuai dengan template.' }).waitFor();
  await page.locator('#tpl-params').fill('{{name}}\n{{order_id}}');
  // Scheduled, so that it is still there to cancel below (sent now, two
  // messages can be out before the click).
  await sendAt.fill('2031-12-24T10:00');
  await page.locator('#bc-create').click();
  const bcRow = page.locator('tr[data-broadcast]', { hasText: 'Promo Desember' });
  await bcRow.waitFor();
  await bcRow.getByText('2 penerima').waitFor();

  step('broadcasts: the form is back at its defaults after creating');
  if ((await page.locator('#bc-name').inputValue()) !== '') throw new Error('the name was kept');
  if ((await sendAt.inputValue()) !== '') throw new Error('the send time was kept');
  if ((await page.locator('#tpl-lang').inputValue()) !== 'id') throw new Error('the template language lost its default');
  if (!(await page.locator('input[name=bc-kind][value=template]').isChecked())) throw new Error('the message kind lost its default');
  if (!(await page.locator('#tpl-name').isVisible())) throw new Error('the template fields are hidden after creating');
  if (!(await page.locator('#bc-csv-file').isVisible())) throw new Error('the CSV file field is hidden after creating');

  step('broadcasts: progress is drawn per outcome; dry runs and cancelled ones never look sent');
  const bars = await page.evaluate(async () => {
    const { progressBar } = await import('/console/view-broadcasts.js');
    const green = (el) => [...el.querySelectorAll('rect')].filter((r) => /seg-(read|delivered|sent)\b/.test(r.getAttribute('class'))).length;
    const draw = (counts) => progressBar({ name: 'x', counts: { total: 10, pending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, dry_run: 0, cancelled: 0, ...counts } });
    const dry = draw({ dry_run: 10 });
    const cancelled = draw({ read: 2, cancelled: 8 });
    const mixed = draw({ read: 3, delivered: 2, sent: 1, failed: 1, skipped: 1, pending: 2 });
    return {
      dry: { green: green(dry), text: dry.textContent },
      cancelled: { green: green(cancelled), text: cancelled.textContent },
      mixed: { text: mixed.textContent, segments: mixed.querySelectorAll('rect').length },
    };
  });
  if (bars.dry.green !== 0 || !bars.dry.text.includes('uji coba (tidak dikirim) 10')) throw new Error(`dry run bar: ${JSON.stringify(bars.dry)}`);
  if (bars.cancelled.green !== 1 || !bars.cancelled.text.includes('dibatalkan 8')) throw new Error(`cancelled bar: ${JSON.stringify(bars.cancelled)}`);
  for (const part of ['dibaca 3', 'diterima 2', 'terkirim 1', 'gagal 1', 'dilewati 1', 'menunggu 2']) {
    if (!bars.mixed.text.includes(part)) throw new Error(`mixed bar lacks ${part}: ${bars.mixed.text}`);
  }
  expectedConfirm = 'Promo Desember';
  await bcRow.getByRole('button', { name: 'Batalkan' }).click();
  await bcRow.locator('.badge', { hasText: 'dibatalkan' }).waitFor();
  const cancelledRow = await bcRow.evaluate((tr) => ({
    text: tr.textContent,
    green: [...tr.querySelectorAll('rect')].filter((r) => /seg-(read|delivered|sent)\b/.test(r.getAttribute('class'))).length,
  }));
  if (!/dibatalkan \d/.test(cancelledRow.text) && !/terkirim \d|dibaca \d|diterima \d/.test(cancelledRow.text)) {
    throw new Error(`the cancelled broadcast does not say what happened: ${cancelledRow.text}`);
  }
  for (const size of [PHONE, DESKTOP]) {
    await page.setViewportSize(size);
    await noHorizontalOverflow(page, `broadcasts at ${size.width}×${size.height}`);
    await docShot(page, 'broadcasts');
  }

  step('sign out: back to the form, and a reload stays signed out');
  await page.getByRole('button', { name: 'Keluar' }).click();
  await page.getByLabel('Nama pengguna', { exact: true }).waitFor();
  await page.reload();
  await page.getByLabel('Nama pengguna', { exact: true }).waitFor();
  if (await page.locator('#nav').isVisible()) throw new Error('still signed in after signing out');

  if (dialogs.length) throw new Error(`a dialog fired: ${dialogs.join(' | ')}`);
  if (problems.length) throw new Error(problems.join('\n'));
  step('all good');
} catch (e) {
  exitCode = 1;
  console.error('e2e FAILED:', e && e.stack ? e.stack : e);
  if (problems.length) console.error('browser problems:\n' + problems.join('\n'));
  try {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await context.pages()[0]?.screenshot({ path: path.join(ARTIFACTS, 'console-failure.png'), fullPage: true });
    console.error(`screenshot of the failure: ${path.join(ARTIFACTS, 'console-failure.png')}`);
  } catch {
    // best effort
  }
} finally {
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  clearTimeout(deadline);
}
process.exit(exitCode);
