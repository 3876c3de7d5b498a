// browser.test.mjs - courant in a real browser (headless Debian Chromium).
//
//   node tests/e2e/browser.test.mjs
//
// Env: COURANT_BIN (default build/asan/courant), CHROMIUM_BIN (/usr/bin/chromium),
//      COURANT_E2E_SCREENSHOTS=DIR to keep a PNG of each page, COURANT_E2E_VERBOSE=1.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { assert, e2eDir, launchChromium, repoRoot, run, sleep, startCourant, test, waitFor } from './lib.mjs';

// "2026-11-26 10:45:51", and friends: a date with a year, then h:mm:ss.
const DATE_TIME_RE = /\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}.*\d{1,2}:\d{2}:\d{2}/;

// Everything the page said on its console, for failure messages (a CORS
// rejection shows up there and nowhere else).
function watchConsole(page) {
  const lines = [];
  page.on('console', (msg) => lines.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => lines.push(`pageerror: ${err.message}`));
  page.on('requestfailed', (req) => lines.push(`requestfailed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  return lines;
}

// The seed page appends `data + '<br>'` to #events: one visible line per event.
async function seedLines(page) {
  return page.$eval('#events', (el) =>
    el.innerText
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

async function screenshot(page, name) {
  const dir = process.env.COURANT_E2E_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

// (a) the article's page, opened from disk (origin "null"): proves CORS.
test('seed page copy from file:// (cross-origin) shows the clock', async () => {
  const server = await startCourant(['--demo']);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);

  const pageUrl = `${pathToFileURL(path.join(e2eDir, 'pages', 'seed-client.html')).href}?url=${encodeURIComponent(`${server.base}/events`)}`;
  await page.goto(pageUrl);

  const lines = await waitFor(async () => {
    const l = await seedLines(page);
    return l.length >= 3 && l;
  }, {
    timeout: 5500,
    message: async () => `3 lines on the seed page (have ${JSON.stringify(await seedLines(page))}); page log:\n${log.join('\n')}`,
  });
  for (const line of lines) {
    assert(DATE_TIME_RE.test(line), `seed page line ${JSON.stringify(line)} does not look like a date and time`);
  }
  await screenshot(page, 'seed-copy');
});

// (b) the real, unchanged seed page: it hard-codes http://localhost:8000/events.
test('the unchanged seed client.html gets a new line every second from localhost:8000', async () => {
  const seedPath = path.resolve(repoRoot, '..', 'shared', 'seed', 'client.html');
  if (!existsSync(seedPath)) {
    throw new Error(`the seed page is missing: expected ${seedPath} (shared/ must sit beside the repo, as in CI)`);
  }

  let server;
  try {
    server = await startCourant(['--demo', '--listen', '127.0.0.1:8000', '--listen', '[::1]:8000']);
  } catch (err) {
    err.message = `could not start courant on port 8000 (is something else listening there?): ${err.message}`;
    throw err;
  }

  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);
  await page.goto(pathToFileURL(seedPath).href);

  await waitFor(async () => (await seedLines(page)).length >= 1, {
    timeout: 5000,
    message: () => `a first line on the seed page; page log:\n${log.join('\n')}`,
  });
  // Then one more line in every ~second: four windows of 1.6 s each.
  for (let i = 0; i < 4; i++) {
    const before = (await seedLines(page)).length;
    const t0 = Date.now();
    await waitFor(async () => (await seedLines(page)).length > before, {
      timeout: 1600,
      interval: 50,
      message: () => `a new line within 1.6 s (window ${i + 1}, ${before} lines so far); page log:\n${log.join('\n')}`,
    });
    // Stay in step with the server's ticks, not ahead of them.
    await sleep(Math.max(0, 300 - (Date.now() - t0)));
  }
  const lines = await seedLines(page);
  for (const line of lines) {
    assert(DATE_TIME_RE.test(line), `seed page line ${JSON.stringify(line)} does not look like a date and time`);
  }
  await screenshot(page, 'seed-real');
});

// (c) courant's own demo page, across a server restart.
test('demo page: open, ticks, last id, then reconnects after a server restart', async () => {
  const server = await startCourant(['--demo']);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);

  const assets = new Map();
  page.on('response', (res) => {
    const p = new URL(res.url()).pathname;
    if (['/', '/app.js', '/style.css'].includes(p)) {
      assets.set(p, { status: res.status(), type: res.headers()['content-type'] || '' });
    }
  });

  const text = (sel) => page.$eval(sel, (el) => el.textContent.trim());
  const count = async () => Number(await text('#count'));
  const state = () => text('#state');

  await page.goto(`${server.base}/`);

  for (const [p, want] of [['/', 'text/html'], ['/app.js', 'javascript'], ['/style.css', 'text/css']]) {
    const got = assets.get(p);
    assert(got, `the page did not load ${p}`);
    assert(got.status === 200, `${p} answered ${got.status}`);
    assert(got.type.includes(want), `${p} has Content-Type ${JSON.stringify(got.type)}, want ${want}`);
  }

  await waitFor(async () => (await state()) === 'open', {
    timeout: 5000,
    message: async () => `#state "open" (it says ${JSON.stringify(await state())}); page log:\n${log.join('\n')}`,
  });
  const c0 = await count();
  await waitFor(async () => (await count()) >= c0 + 2, {
    timeout: 4000,
    message: async () => `#count to grow by 2 from ${c0} (it is ${await count()})`,
  });
  const lastId = await text('#last-id');
  assert(lastId !== '', '#last-id is empty: the demo events carry no id');
  const first = await page.$eval('#events', (el) => el.firstElementChild?.textContent ?? '');
  assert(DATE_TIME_RE.test(first), `newest clock line ${JSON.stringify(first)} does not look like a date and time`);
  await screenshot(page, 'demo-open');

  // Take the server away: the page must notice.
  const port = server.port;
  await server.stop();
  await waitFor(async () => ['reconnecting', 'connecting'].includes(await state()), {
    timeout: 5000,
    message: async () => `#state to leave "open" after the server stopped (it says ${JSON.stringify(await state())})`,
  });
  await screenshot(page, 'demo-reconnecting');

  // Bring it back on the same port: the browser reconnects by itself.
  let server2;
  try {
    server2 = await startCourant(['--demo', '--listen', `127.0.0.1:${port}`]);
  } catch (err) {
    err.message = `could not restart courant on port ${port} right after stopping it (SO_REUSEADDR?): ${err.message}`;
    throw err;
  }
  assert(server2.port === port, `restarted on port ${server2.port}, not ${port}`);
  await waitFor(async () => (await state()) === 'open', {
    timeout: 15000,
    message: async () => `#state back to "open" after the restart (it says ${JSON.stringify(await state())}); page log:\n${log.join('\n')}`,
  });
  const c1 = await count();
  await waitFor(async () => (await count()) >= c1 + 2, {
    timeout: 4000,
    message: async () => `ticks to continue after the restart (#count stuck at ${await count()})`,
  });
  assert((await text('#last-id')) !== '', '#last-id is empty after the restart');
  await screenshot(page, 'demo-restarted');
}, { timeout: 45000 });

// (d) the Topic panel, with the hub answered by the browser itself (so it does
// not depend on the Mercure hub): right URL, data shown as text, never as HTML.
test('demo page: Topic panel subscribes to the hub URL and shows data as text', async () => {
  const server = await startCourant(['--demo']);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);

  const hubRequests = [];
  // The private-updates panel opens its own streams on its fixed topic, the
  // Mercure 1.0 panel its own with match_urlpattern: the Topic panel's
  // request is the one with another topic.
  const isTopicPanel = (u) => {
    const t = new URL(u).searchParams.get('topic');
    return t !== null && t !== 'https://example.com/demo/private';
  };
  const payload = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
  await page.route('**/.well-known/mercure?*', (route) => {
    hubRequests.push(route.request().url());
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      body: `retry: 60000\n\nid: u1\ndata: first\n\nid: u2\ndata: ${payload}\ndata: second line\n\n`,
    });
  });

  await page.goto(`${server.base}/`);
  assert((await page.inputValue('#topic')) === 'https://example.com/demo', 'the #topic input does not default to https://example.com/demo');
  await page.fill('#topic', 'https://example.com/books/1?x=a&y');
  await page.click('#subscribe');

  await waitFor(async () => (await page.$$('#topic-events > *')).length >= 2 &&
      hubRequests.some(isTopicPanel), {
    timeout: 5000,
    message: () => `two events in #topic-events; hub requests: ${JSON.stringify(hubRequests)}; page log:\n${log.join('\n')}`,
  });
  const url = new URL(hubRequests.find(isTopicPanel));
  assert(url.pathname === '/.well-known/mercure', `hub request to ${url.pathname}`);
  assert(url.searchParams.get('topic') === 'https://example.com/books/1?x=a&y', `hub request topic=${url.searchParams.get('topic')}`);

  const items = await page.$$eval('#topic-events > *', (els) => els.map((el) => el.textContent));
  assert(items.includes('first'), `#topic-events has ${JSON.stringify(items)}, no "first"`);
  assert(items.includes(`${payload}\nsecond line`), `#topic-events has ${JSON.stringify(items)}, not the HTML payload as text`);
  assert((await page.$$('#topic-events img, #topic-events b')).length === 0, 'event data was parsed as HTML');
  assert(!(await page.evaluate(() => window.__pwned)), 'event data ran a script');
  await waitFor(async () => (await page.textContent('#topic-state')).trim() !== '', { message: '#topic-state text' });
  await screenshot(page, 'demo-topic');
});

await run();
