// End-to-end test of the agent console in a real headless Chromium.
//
// Run by tests/console_e2e.rs, which starts Balas and a Graph API mock and
// passes: BASE_URL, USERNAME and PASSWORD (an admin), APP_SECRET, GRAPH_URL
// (the mock, with GET /__requests), ARTIFACTS (directory for screenshots),
// CHROMIUM (optional).
//
// The admin signs in through the form (an HttpOnly cookie, shared by a second
// tab); a customer complains over a signed WhatsApp webhook; the conversation
// shows up in the Queue live; the agent claims it and replies; the reply
// reaches the Graph mock; the customer's answer appears live; a message that
// looks like HTML stays text; the customer's photo shows as a thumbnail that
// opens in a viewer; the agent attaches a PDF, sees the upload progress, and
// it reaches the Graph mock as a document; the agent resolves the case. Then
// the admin adds a user, gives them queues, issues an API token (shown once,
// and it works), disables them (the token stops working), and signs out.

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

const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
const deadline = setTimeout(() => {
  console.error('e2e: took longer than 90 s');
  process.exit(2);
}, 90_000);

/** A signed WhatsApp text webhook, shaped like the platform fixture wa_text.json. */
async function customerSays(text) {
  await customerSends({ type: 'text', text: { body: text } });
}

/** A signed WhatsApp webhook carrying `message` (its `type` and content). */
async function customerSends(message) {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '104857600012345',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '6281190001234', phone_number_id: PHONE_NUMBER_ID },
          contacts: [{ profile: { name: 'Budi Santoso' }, wa_id: CUSTOMER }],
          messages: [{
            from: CUSTOMER,
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
  const until = Date.now() + timeoutMs;
  let seen = [];
  while (Date.now() < until) {
    const res = await fetch(`${GRAPH_URL}/__requests`);
    seen = await res.json();
    if (seen.some((r) => r.body?.to === CUSTOMER && r.body?.text?.body === text)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the Graph mock never received ${JSON.stringify(text)}; it got: ${JSON.stringify(seen.map((r) => r.body))}`);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'balas-e2e-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const problems = [];
let expected401 = 0;
const dialogs = [];
let exitCode = 0;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('dialog', (d) => {
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

  step('a second tab is signed in too (one cookie for every tab)');
  const tab = await context.newPage();
  await tab.goto(BASE_URL + '/console/');
  await tab.getByRole('heading', { name: 'Antrean', level: 1 }).waitFor();
  if (await tab.locator('#signin').isVisible()) throw new Error('the second tab asks to sign in again');
  await tab.close();

  step('a customer complains; the conversation appears in the queue without a reload');
  const navigationsBefore = navigations;
  const complaint = 'barang saya rusak, saya mau komplain';
  await customerSays(complaint);
  const card = page.locator('.card', { hasText: complaint });
  await card.waitFor();
  await card.getByText('Budi Santoso').waitFor();
  if (navigations !== navigationsBefore) throw new Error('the page reloaded to show the queue');

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
  await page.setViewportSize({ width: 380, height: 800 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-conversation-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 860 });

  step('resolve');
  await page.getByRole('button', { name: 'Selesaikan' }).click();
  await page.locator('.conv-status .state-resolved').waitFor();
  await page.waitForFunction(() => document.querySelector('#reply').disabled);

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
  await row.getByText('complaints, refunds').waitFor();
  await row.getByRole('button', { name: 'Buat token API' }).click();
  await page.locator('.user-editor').getByLabel('Untuk apa token ini?').fill('CRM');
  await page.locator('.user-editor').getByRole('button', { name: 'Buat token' }).click();
  const tokenText = (await page.locator('.secret-value').textContent()).trim();
  if (!/^blk_[0-9a-f]{64}$/.test(tokenText)) throw new Error(`unexpected token: ${tokenText}`);
  const me = async () => (await fetch(`${BASE_URL}/api/v1/me`, { headers: { Authorization: `Bearer ${tokenText}` } })).status;
  if ((await me()) !== 200) throw new Error('the new token does not work');
  await row.getByText('CRM').waitFor();

  step('the admin disables the user: the token stops working at once');
  await row.getByRole('button', { name: 'Nonaktifkan' }).click();
  await row.getByText('nonaktif', { exact: true }).waitFor();
  if ((await me()) !== 401) throw new Error('the token of a disabled user still works');
  await page.screenshot({ path: path.join(ARTIFACTS, 'console-users.png') });

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
