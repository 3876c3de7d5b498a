// dashboard.test.mjs - the admin dashboard (/admin/): off by default, the
// admin token (mercure.admin, with --admin-jwt-key or the subscriber key;
// header, query or cookie), the snapshot stream, and the page itself in
// headless Chromium: it refuses without a token, its charts draw and move
// while a load runs, and its numbers match /metrics.
//
//   node tests/e2e/dashboard.test.mjs
//
// Env: COURANT_BIN (default build/asan/courant), CHROMIUM_BIN (/usr/bin/chromium),
//      DASHBOARD_SCREENSHOT=PATH to write the loaded page as a PNG, after
//      DASHBOARD_SCREENSHOT_WAIT_MS more of the load (default 2500); the README's
//      docs/dashboard.png is made with scripts/dashboard-screenshot.sh. COURANT_E2E_VERBOSE=1.

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, courantBin, launchChromium, onEventBlocks, postForm, run, skip, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const ADMIN_KEY = 'admin-secret-for-dashboard-tests-0123456789';
const SUB_KEY = 'subscriber-secret-for-dashboard-tests-98765';
const now = () => Math.floor(Date.now() / 1000);
const b64u = (b) => Buffer.from(b).toString('base64url');

function mint(claims, key) {
  const data = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${b64u(crypto.createHmac('sha256', key).update(data).digest())}`;
}
const adminToken = (key = ADMIN_KEY, extra = {}) => mint({ exp: now() + 600, mercure: { admin: true }, ...extra }, key);

const ADMIN_ARGS = ['--admin', '--admin-jwt-key', ADMIN_KEY, '--subscriber-jwt-key', SUB_KEY, '--anonymous'];

async function get(base, p, headers = {}) {
  const res = await fetch(base + p, { headers, cache: 'no-store' });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** /metrics as {name or name{labels}: number}. */
async function metrics(base) {
  const { body } = await get(base, '/metrics');
  const out = {};
  for (const line of body.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Holds a subscriber on `topics` (anonymous) until close(). Resolves once its head is in. */
function holdSubscriber(base, topics) {
  const qs = topics.map((t) => `topic=${encodeURIComponent(t)}`).join('&');
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${HUB}?${qs}`, { agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error('subscriber timed out')));
  });
}

/** Reads /admin/stream events until `count` stats events or `ms` pass. */
function readStream(base, pathAndQuery, { headers = {}, count = 2, ms = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const out = { status: 0, headers: null, events: [], ended: false, body: '' };
    const req = http.get(base + pathAndQuery, { headers, agent: false }, (res) => {
      out.status = res.statusCode;
      out.headers = res.headers;
      onEventBlocks(res, (block) => {
        const ev = /^event: (\w+)\ndata: (.*)$/m.exec(block);
        if (ev && ev[1] === 'stats') out.events.push(JSON.parse(ev[2]));
        if (out.events.length >= count) {
          req.destroy();
          resolve(out);
        }
      }, (chunk) => { out.body += chunk; });
      res.on('end', () => {
        out.ended = true;
        resolve(out);
      });
    });
    req.on('error', (err) => (out.status ? resolve(out) : reject(err)));
    setTimeout(() => {
      req.destroy();
      resolve(out);
    }, ms);
  });
}

// ---- the routes ------------------------------------------------------------------

test('off by default: /admin/ is 404 without --admin or --demo', async () => {
  const server = await startCourant(['--admin-jwt-key', ADMIN_KEY]);
  for (const p of ['/admin/', '/admin/stream', '/admin/stats.json', '/admin/dash.js']) {
    const r = await get(server.base, p, { authorization: `Bearer ${adminToken()}` });
    assert(r.status === 404, `${p}: want 404 with the dashboard off, got ${r.status}`);
  }
});

test('the page is public, its data needs an admin token (every refusal)', async () => {
  const server = await startCourant(ADMIN_ARGS);
  const page = await get(server.base, '/admin/');
  assert(page.status === 200 && /<svg id="chart-rates"/.test(page.body), `GET /admin/: ${page.status}`);
  assert(/default-src 'self'/.test(page.headers.get('content-security-policy') || ''), 'the page has a CSP');
  const js = await get(server.base, '/admin/dash.js');
  assert(js.status === 200 && /javascript/.test(js.headers.get('content-type')), `dash.js: ${js.status}`);

  const cases = [
    ['no token', {}, 401, /needs an admin token/],
    ['a token signed with another key', { authorization: `Bearer ${adminToken('another-key-entirely-0123456789abcdef')}` }, 401, /signature/],
    ['a subscriber token without the claim', { authorization: `Bearer ${mint({ exp: now() + 60, mercure: { subscribe: ['*'] } }, SUB_KEY)}` }, 403, /mercure\.admin/],
    ['an admin-key token without the claim', { authorization: `Bearer ${mint({ exp: now() + 60 }, ADMIN_KEY)}` }, 403, /mercure\.admin/],
    ['mercure.admin as a string', { authorization: `Bearer ${mint({ exp: now() + 60, mercure: { admin: 'true' } }, ADMIN_KEY)}` }, 403, /mercure\.admin/],
    ['an expired admin token', { authorization: `Bearer ${adminToken(ADMIN_KEY, { exp: now() - 10 })}` }, 401, /expired/],
    ['not a Bearer header', { authorization: `Basic ${adminToken()}` }, 401, /Bearer/],
  ];
  for (const [what, headers, status, why] of cases) {
    for (const p of ['/admin/stats.json', '/admin/stream']) {
      const r = await get(server.base, p, headers);
      assert(r.status === status, `${what} on ${p}: want ${status}, got ${r.status} (${r.body.trim()})`);
      assert(why.test(r.body), `${what} on ${p}: the reason ${JSON.stringify(r.body.trim())} should match ${why}`);
      if (status === 401) assert(/Bearer/.test(r.headers.get('www-authenticate') || ''), `${what}: a 401 has a challenge`);
    }
  }
  // Admitted: the admin key or the subscriber key, by header, query or cookie.
  const ok = [
    ['admin key, header', '/admin/stats.json', { authorization: `Bearer ${adminToken()}` }],
    ['subscriber key, header', '/admin/stats.json', { authorization: `Bearer ${adminToken(SUB_KEY)}` }],
    ['admin key, query', `/admin/stats.json?authorization=${adminToken()}`, {}],
    ['admin key, cookie', '/admin/stats.json', { cookie: `mercureAuthorization=${adminToken()}` }],
  ];
  for (const [what, p, headers] of ok) {
    const r = await get(server.base, p, headers);
    assert(r.status === 200, `${what}: want 200, got ${r.status} (${r.body.trim()})`);
    const s = JSON.parse(r.body);
    assert(typeof s.published === 'number' && Array.isArray(s.per_worker), `${what}: a snapshot, got ${r.body.slice(0, 200)}`);
    assert(r.headers.get('cache-control') === 'no-store', `${what}: no-store`);
  }
  const m = await metrics(server.base);
  assert(m['courant_refused_requests_total{reason="unauthorized"}'] >= 8, 'the 401s are counted by reason');
  assert(m['courant_refused_requests_total{reason="forbidden"}'] >= 6, 'the 403s are counted by reason');
});

test('courant token --admin makes a token the dashboard takes', async () => {
  const server = await startCourant(ADMIN_ARGS);
  const r = spawnSync(courantBin(), ['token', '--key', ADMIN_KEY, '--admin', '--exp', '5m'], { encoding: 'utf8', timeout: 10000 });
  assert(r.status === 0, `courant token --admin: ${r.status} ${r.stderr}`);
  const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1], 'base64url').toString());
  assert(claims.mercure.admin === true && claims.exp > now(), `the claims: ${JSON.stringify(claims)}`);
  const ok = await get(server.base, '/admin/stats.json', { authorization: `Bearer ${r.stdout.trim()}` });
  assert(ok.status === 200, `the dashboard takes it: ${ok.status} ${ok.body}`);
});

test('without an admin or subscriber key nobody can be admin (403 says why)', async () => {
  const server = await startCourant(['--admin']);
  const r = await get(server.base, '/admin/stats.json', { authorization: `Bearer ${adminToken()}` });
  assert(r.status === 403 && /--admin-jwt-key/.test(r.body), `want 403 naming --admin-jwt-key, got ${r.status} ${r.body}`);
});

test('/admin/stream: a snapshot at once, then one a second; it ends when the token expires', async () => {
  const server = await startCourant(ADMIN_ARGS);
  const s = await readStream(server.base, '/admin/stream', { headers: { authorization: `Bearer ${adminToken()}` }, count: 3, ms: 6000 });
  assert(s.status === 200 && /text\/event-stream/.test(s.headers['content-type']), `stream: ${s.status}`);
  assert(s.events.length === 3, `want 3 snapshots within 6 s, got ${s.events.length}`);
  const gap = s.events[2].t - s.events[1].t;
  assert(gap >= 700 && gap <= 1600, `snapshots about a second apart, got ${gap} ms`);
  for (const k of ['connections', 'subscribers', 'published', 'deliveries', 'bytes', 'slow_disconnects', 'refused', 'journal', 'latency', 'top', 'per_worker']) {
    assert(k in s.events[0], `a snapshot has ${k}`);
  }
  assert(s.events[0].journal.name === 'memory' && s.events[0].journal.up === 1, 'the journal is memory, up');
  assert(s.events[0].latency.le_us.length === 19 && s.events[0].latency.publish_enqueue.counts.length === 20, 'histogram buckets');

  const t0 = Date.now();
  const short = await readStream(server.base, `/admin/stream?authorization=${adminToken(ADMIN_KEY, { exp: now() + 2 })}`, { count: 1000, ms: 8000 });
  assert(short.status === 200 && short.ended, `a stream with a token expiring in 2 s ends by itself (ended=${short.ended})`);
  assert(Date.now() - t0 < 5000, `it ended ${Date.now() - t0} ms later`);
});

test('/metrics: the two latency histograms count publishes and live deliveries', async () => {
  const server = await startCourant(['--workers', '2']);
  const subs = [];
  for (let i = 0; i < 3; i++) subs.push(await holdSubscriber(server.base, ['lat']));
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < 10; i++) assert((await postForm(server.base, 'lat', `e${i}`, agent)).status === 200, 'publish');
  await waitFor(async () => (await metrics(server.base)).courant_enqueue_written_seconds_count === 30, {
    timeout: 5000,
    message: async () => `30 timed deliveries, /metrics says ${(await metrics(server.base)).courant_enqueue_written_seconds_count}`,
  });
  const m = await metrics(server.base);
  for (const name of ['courant_publish_enqueue_seconds', 'courant_enqueue_written_seconds']) {
    const want = name.includes('publish') ? 10 : 30;
    assert(m[`${name}_count`] === want, `${name}_count: want ${want}, got ${m[`${name}_count`]}`);
    assert(m[`${name}_bucket{le="+Inf"}`] === want, `${name} +Inf bucket equals the count`);
    let prev = 0;
    for (const le of ['0.00001', '0.0001', '0.001', '0.01', '0.1', '1', '10']) {
      const v = m[`${name}_bucket{le="${le}"}`];
      assert(v >= prev && v <= want, `${name} buckets are cumulative (le=${le}: ${v})`);
      prev = v;
    }
    assert(m[`${name}_sum`] >= 0 && m[`${name}_sum`] < want, `${name}_sum in seconds (${m[`${name}_sum`]})`);
    assert(m[`${name}_bucket{le="1"}`] === want, `${name}: all under a second on loopback`);
  }
  // A replay is not a live delivery: a late subscriber reading history adds nothing.
  const late = await new Promise((resolve) => {
    const req = http.get(`${server.base}${HUB}?topic=lat`, { headers: { 'last-event-id': 'earliest' }, agent: false }, (res) => {
      res.resume();
      resolve(req);
    });
  });
  await waitFor(async () => (await metrics(server.base)).courant_events_replayed_total >= 10, { message: 'the replay' });
  await sleep(300);
  assert((await metrics(server.base)).courant_enqueue_written_seconds_count === 30, 'replayed events are not timed');
  late.destroy();
  for (const s of subs) s.close();
  agent.destroy();
});

test('--store: the journal in the snapshot, and publish->enqueue timed at the commit', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'courant-dash-'));
  try {
    const server = await startCourant([...ADMIN_ARGS, '--store', path.join(dir, 'h.db')]);
    const agent = new http.Agent({ keepAlive: true });
    for (let i = 0; i < 5; i++) assert((await postForm(server.base, 'stored', `e${i}`, agent)).status === 200, 'publish');
    agent.destroy();
    const r = await get(server.base, '/admin/stats.json', { authorization: `Bearer ${adminToken()}` });
    const s = JSON.parse(r.body);
    assert(s.journal.name === 'store' && s.journal.up === 1 && s.journal.events === 5, `journal: ${JSON.stringify(s.journal)}`);
    const pe = s.latency.publish_enqueue.counts.reduce((a, b) => a + b, 0);
    assert(pe === 5, `five publishes timed through the journal's ack, got ${pe}`);
    const m = await metrics(server.base);
    assert(m.courant_publish_enqueue_seconds_count === 5 && m.courant_journal_queued === 0, '/metrics agrees');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the page in Chromium ------------------------------------------------------------

function chromiumOrSkip() {
  const bin = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
  if (!existsSync(bin)) skip(`${bin} not found (scripts/setup.sh installs Debian's chromium)`);
}

function watchConsole(page) {
  const lines = [];
  page.on('console', (msg) => lines.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => lines.push(`pageerror: ${err.message}`));
  return lines;
}

test('the page refuses without the admin token, and with a token that is not one', async () => {
  chromiumOrSkip();
  const server = await startCourant(ADMIN_ARGS);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = watchConsole(page);
  await page.goto(`${server.base}/admin/`);
  await waitFor(async () => (await page.getAttribute('#state', 'data-state')) === 'refused', {
    message: async () => `the refused state (page log: ${log.join('; ')})`,
  });
  const reason = await page.textContent('#reason');
  assert(/401/.test(reason) && /admin token/.test(reason), `the page says why: ${reason}`);
  assert(await page.$eval('#board', (b) => b.hidden), 'no chart is shown');

  await page.fill('#token', mint({ exp: now() + 60, mercure: { subscribe: ['*'] } }, SUB_KEY));
  await page.click('#login button[type=submit]');
  await waitFor(async () => /403/.test(await page.textContent('#reason')), { message: 'a 403 for a token without the claim' });
  assert(await page.$eval('#board', (b) => b.hidden), 'still no chart');
  assert(!log.some((l) => l.startsWith('pageerror')), `no script error: ${log.join('; ')}`);
});

test('the charts draw and move under load; the numbers match /metrics', async () => {
  chromiumOrSkip();
  const server = await startCourant([...ADMIN_ARGS, '--workers', '2']);
  const base = server.base;
  // Subscribers held by the test: 12 on "hot" (one also on "warm"), 5 on "warm", 3 on "cold".
  const subs = [];
  for (let i = 0; i < 12; i++) subs.push(await holdSubscriber(base, i === 0 ? ['https://example.com/hot', 'https://example.com/warm'] : ['https://example.com/hot']));
  for (let i = 0; i < 4; i++) subs.push(await holdSubscriber(base, ['https://example.com/warm']));
  for (let i = 0; i < 3; i++) subs.push(await holdSubscriber(base, ['https://example.com/cold']));
  assert(subs.every((s) => s.status === 200), 'subscribers are in');

  // A publisher in a loop (keyless from loopback), 30 to 60 events a second.
  let publishing = true;
  let published = 0;
  const agent = new http.Agent({ keepAlive: true });
  const loop = (async () => {
    const topics = ['https://example.com/hot', 'https://example.com/warm', 'https://example.com/cold'];
    while (publishing) {
      const r = await postForm(base, topics[published % 3], `event ${published}`, agent);
      if (r.status === 200) published++;
      await sleep(published % 300 < 150 ? 12 : 30); // a rate that changes, so the lines do
    }
  })();
  // Refusals of two kinds, for the table.
  await get(base, '/no/such/path');
  await get(base, '/admin/stats.json');

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  const log = watchConsole(page);
  await page.goto(`${base}/admin/`);
  await page.fill('#token', adminToken());
  await page.click('#login button[type=submit]');
  await waitFor(async () => (await page.getAttribute('#state', 'data-state')) === 'live', {
    timeout: 8000,
    message: async () => `the live state (reason: ${await page.textContent('#reason')}; log: ${log.join('; ')})`,
  });
  const samples = () => page.evaluate(() => Number(document.body.dataset.samples || 0));
  await waitFor(async () => (await samples()) >= 4, { timeout: 8000, message: 'four snapshots on the page' });

  // The charts draw, and move from one second to the next.
  const points = (chart, series) => page.getAttribute(`#${chart} polyline[data-series="${series}"]`, 'points');
  const before = await points('chart-rates', 'publishes');
  assert(before && before.split(' ').length >= 2, `the publishes/s line has points: ${before}`);
  await waitFor(async () => (await points('chart-rates', 'publishes')) !== before, { timeout: 4000, message: 'the rates chart to move' });
  const rateText = await page.textContent('#v-publish-rate');
  assert(Number(rateText) > 10, `publishes/s on the page under a ~50/s load: ${rateText}`);
  assert(Number((await page.textContent('#v-delivery-rate')).replace(/[^\d.]/g, '')) > 10, 'deliveries/s too');
  for (const [chart, series] of [['chart-conns', 'subscribers'], ['chart-bytes', 'bytes'], ['chart-lat-pe', 'p50'], ['chart-lat-ew', 'p99']]) {
    const p = await points(chart, series);
    assert(p && p.split(' ').length >= 2, `${chart} draws ${series}: ${p}`);
  }
  // Top topics: exact, from the bounded scan.
  await waitFor(async () => {
    const top = await page.$$eval('#top li', (lis) => lis.map((li) => [li.querySelector('.name').textContent, li.querySelector('.n').textContent]));
    return top.length === 3 && top[0][0] === 'https://example.com/hot' && top[0][1] === '12' && top[1][1] === '5' && top[2][1] === '3';
  }, { timeout: 6000, message: async () => `hot 12, warm 5, cold 3 (have ${await page.textContent('#top')})` });
  assert((await page.$$('#workers tbody tr')).length === 2, 'one row per worker');
  const refusals = await page.textContent('#refusals');
  assert(/not found/.test(refusals) && /unauthorized/.test(refusals), `refusals by reason: ${refusals}`);
  const journal = await page.textContent('#journal-badge');
  assert(/memory/.test(journal) && /up/.test(journal), `the journal badge: ${journal}`);

  // While the load runs: the page's totals trail /metrics by at most a snapshot's worth.
  const num = async (id) => Number((await page.textContent(id)).replace(/,/g, ''));
  const mLive = await metrics(base);
  const pagePublished = await num('#v-published');
  assert(pagePublished <= mLive.courant_events_published_total && pagePublished >= mLive.courant_events_published_total - 150,
    `published: page ${pagePublished}, /metrics ${mLive.courant_events_published_total}`);

  if (process.env.DASHBOARD_SCREENSHOT) {
    const file = path.resolve(process.env.DASHBOARD_SCREENSHOT);
    mkdirSync(path.dirname(file), { recursive: true });
    await sleep(Number(process.env.DASHBOARD_SCREENSHOT_WAIT_MS || 2500)); // more points on the charts
    await page.screenshot({ path: file, fullPage: true });
  }

  // Load off: after the next snapshot, the numbers equal /metrics.
  publishing = false;
  await loop;
  const settled = await samples();
  await waitFor(async () => (await samples()) >= Math.min(settled + 2, 121), { timeout: 5000, message: 'two more snapshots' });
  const m = await metrics(base);
  assert(await num('#v-published') === m.courant_events_published_total, `published: page ${await num('#v-published')}, /metrics ${m.courant_events_published_total}`);
  assert(await num('#v-deliveries') === m.courant_deliveries_total, `deliveries: page ${await num('#v-deliveries')}, /metrics ${m.courant_deliveries_total}`);
  assert(await num('#v-subscribers') === m.courant_subscribers_open, `subscribers: page ${await num('#v-subscribers')}, /metrics ${m.courant_subscribers_open}`);
  assert(Math.abs(await num('#v-connections') - m.courant_connections_open) <= 2, `connections: page ${await num('#v-connections')}, /metrics ${m.courant_connections_open}`);
  assert(m.courant_events_published_total === published, `every publish counted (${published})`);
  assert(!log.some((l) => l.startsWith('pageerror')), `no script error: ${log.join('; ')}`);
  for (const s of subs) s.close();
  agent.destroy();
}, { timeout: 60000 + Number(process.env.DASHBOARD_SCREENSHOT_WAIT_MS || 0) });

test('--demo --demo-auth: the page offers the demo admin token', async () => {
  chromiumOrSkip();
  const server = await startCourant(['--demo', '--demo-auth']);
  const tokens = JSON.parse((await get(server.base, '/demo/tokens.json')).body);
  assert(typeof tokens.admin === 'string', 'tokens.json has an admin token');
  const browser = await launchChromium();
  const page = await browser.newPage();
  await page.goto(`${server.base}/admin/`);
  await page.waitForSelector('#demo-token:not([hidden])', { timeout: 5000 });
  await page.click('#demo-token');
  await waitFor(async () => (await page.getAttribute('#state', 'data-state')) === 'live', { message: 'live with the demo token' });
  await waitFor(async () => Number((await page.textContent('#v-published')).replace(/,/g, '')) >= 1, { message: 'the demo clock counted' });
});

run();
