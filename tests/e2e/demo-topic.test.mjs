// demo-topic.test.mjs - the demo page's Topic panel against the real hub:
// headless Chromium subscribes through the page, curl publishes.
//
//   node tests/e2e/demo-topic.test.mjs
//
// Env: COURANT_BIN (default build/asan/courant), CHROMIUM_BIN (/usr/bin/chromium),
//      COURANT_E2E_VERBOSE=1.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { assert, launchChromium, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const execFileP = promisify(execFile);

function watchConsole(page) {
  const lines = [];
  page.on('console', (msg) => lines.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => lines.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => lines.push(`requestfailed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  return lines;
}

// curl -d: a form POST, every field URL-encoded by curl itself.
async function curlPublish(base, fields) {
  const args = ['-sS', '--max-time', '5', '-w', '\n%{http_code}'];
  for (const [k, v] of fields) args.push('--data-urlencode', `${k}=${v}`);
  args.push(`${base}/.well-known/mercure`);
  const { stdout } = await execFileP('curl', args);
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl) };
}

test('demo page: subscribe to a topic, events published with curl show up in order', async () => {
  const server = await startCourant(['--demo']);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);
  const hubRequests = [];
  page.on('request', (req) => {
    if (req.url().includes('/.well-known/mercure')) hubRequests.push(req.url());
  });

  await page.goto(`${server.base}/`);
  const topic = 'https://example.com/books/42?edition=2&lang=fr';
  await page.fill('#topic', topic);
  await page.click('#subscribe');

  const state = () => page.$eval('#topic-state', (el) => el.textContent.trim());
  await waitFor(async () => (await state()) === 'open', {
    timeout: 5000,
    message: async () => `#topic-state "open" (it says ${JSON.stringify(await state())}); hub requests ${JSON.stringify(hubRequests)}; page log:\n${log.join('\n')}`,
  });
  const url = new URL(hubRequests.at(-1));
  assert(url.searchParams.getAll('topic').length === 1 && url.searchParams.get('topic') === topic, `the page subscribed with ${url.search}`);

  // Something for another topic first: it must not show up.
  const other = await curlPublish(server.base, [['topic', 'https://example.com/elsewhere'], ['data', 'not for this panel']]);
  assert(other.status === 200, `publish to another topic: ${other.status} ${other.body}`);

  const data = ['first: <b>not bold</b>', 'second & more', 'third ☃ héllo'];
  const sentIds = [];
  for (const [i, d] of data.entries()) {
    const r = await curlPublish(server.base, [['topic', topic], ['id', `demo-${i + 1}`], ['data', d]]);
    assert(r.status === 200 && r.body === `demo-${i + 1}`, `publish ${i + 1}: ${r.status} ${JSON.stringify(r.body)}`);
    sentIds.push(r.body);
  }

  const items = () => page.$$eval('#topic-events > li', (els) => els.map((el) => ({ text: el.textContent, id: el.dataset.id ?? '' })));
  await waitFor(async () => (await items()).length >= 3, {
    timeout: 5000,
    message: async () => `3 events in #topic-events (have ${JSON.stringify(await items())}); page log:\n${log.join('\n')}`,
  });
  await sleep(300);
  const got = await items();
  // The panel puts the newest on top: read bottom-up for publish order.
  const inOrder = [...got].reverse();
  assert(
    JSON.stringify(inOrder.map((i) => i.text)) === JSON.stringify(data),
    `#topic-events (oldest first) is ${JSON.stringify(inOrder.map((i) => i.text))}, want ${JSON.stringify(data)}`,
  );
  assert(JSON.stringify(inOrder.map((i) => i.id)) === JSON.stringify(sentIds), `event ids ${JSON.stringify(inOrder.map((i) => i.id))}`);
  assert((await page.$$('#topic-events b')).length === 0, 'event data was rendered as HTML');
  assert((await state()) === 'open', `#topic-state went to ${await state()}`);
}, { timeout: 30000 });

await run();
