// demo-auth.test.mjs - the demo page's publish form and private-update
// example in headless Chromium, against courant --demo --demo-auth (port 0).
//
//   node tests/e2e/demo-auth.test.mjs

import { spawnSync } from 'node:child_process';
import { assert, courantBin, launchChromium, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const texts = (page, id) => page.$$eval(`#${id} li`, (els) => els.map((e) => e.textContent));

test('--demo-auth: the page publishes with the demo token; a private update reaches only the token holder', async () => {
  const server = await startCourant(['--demo', '--demo-auth']);
  await waitFor(() => server.stderrLines.some((l) => /DEMO ONLY/.test(l)), { message: 'the DEMO ONLY warning in the log' });
  const tokens = await (await fetch(`${server.base}/demo/tokens.json`)).json();
  assert(tokens.publisher && tokens.subscriber && /DEMO ONLY/.test(tokens.note), `tokens ${JSON.stringify(tokens)}`);

  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = [];
  page.on('console', (m) => log.push(m.text()));
  await page.goto(`${server.base}/`);
  await waitFor(async () => (await page.textContent('#private-state')) === 'open' && (await page.textContent('#anon-state')) === 'open',
    { message: async () => `both private-panel streams open; page log: ${log.join('\n')}` });

  await page.fill('#publish-topic', tokens.privateTopic);
  await page.fill('#publish-data', 'for token holders only');
  await page.check('#publish-private');
  await page.click('#publish');
  await waitFor(async () => /^published urn:uuid:/.test(await page.textContent('#publish-result')),
    { message: async () => `publish result (${await page.textContent('#publish-result')})` });
  await waitFor(async () => (await texts(page, 'private-events')).includes('for token holders only'),
    { message: 'the private update in the token panel' });

  await page.uncheck('#publish-private');
  await page.fill('#publish-data', 'for everyone');
  await page.click('#publish');
  await waitFor(async () => (await texts(page, 'anon-events')).includes('for everyone'), { message: 'the public update in the anonymous panel' });
  await sleep(200);
  const anon = await texts(page, 'anon-events');
  assert(!anon.includes('for token holders only'), `the private update leaked to the anonymous stream: ${anon}`);
  assert((await texts(page, 'private-events')).includes('for everyone'), 'the public update missing in the token panel');
  // The seed's /events still works anonymously under --demo-auth.
  const ev = await fetch(`${server.base}/events`);
  assert(ev.status === 200, `/events with --demo-auth: ${ev.status}`);
  await ev.body.cancel();
});

test('the Mercure 1.0 panel: a URL pattern, a token in a header, private updates across dialects', async () => {
  const server = await startCourant(['--demo', '--demo-auth']);
  const tokens = await (await fetch(`${server.base}/demo/tokens.json`)).json();
  assert(tokens.publisherV1 && tokens.subscriberV1 && tokens.resource === `${server.base}/.well-known/mercure`,
    `1.0 tokens: ${JSON.stringify(Object.keys(tokens))} ${tokens.resource}`);
  const browser = await launchChromium();
  const page = await browser.newPage();
  const log = [];
  page.on('console', (m) => log.push(m.text()));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(`${server.base}/`);
  await waitFor(async () => (await page.textContent('#v1-state')) === 'open' && (await page.textContent('#v1-token-state')) === 'open',
    { message: async () => `both 1.0 streams open; page log: ${log.join('\n')}` });
  const publish = async (topic, data, { priv = false, dialect = 'v1' } = {}) => {
    await page.fill('#publish-topic', topic);
    await page.fill('#publish-data', data);
    if (priv) await page.check('#publish-private');
    else await page.uncheck('#publish-private');
    await page.selectOption('#publish-dialect', dialect);
    await page.click('#publish');
    await waitFor(async () => /^published /.test(await page.textContent('#publish-result')) &&
      (await page.getAttribute('#publish-result', 'data-ok')) === 'yes',
      { message: async () => `publish ${data}: ${await page.textContent('#publish-result')}` });
  };
  await publish('https://example.com/demo/alice', 'pattern match (1.0 token)');
  await publish(tokens.privateTopic, 'private, draft-07 publisher', { priv: true, dialect: 'classic' });
  await publish(tokens.privateTopic, 'private, 1.0 publisher', { priv: true });
  await waitFor(async () => (await texts(page, 'v1-events')).includes('pattern match (1.0 token)'), { message: 'the URL-pattern event (anonymous)' });
  await waitFor(async () => {
    const t = await texts(page, 'v1-token-events');
    return t.includes('pattern match (1.0 token)') && t.includes('private, draft-07 publisher') && t.includes('private, 1.0 publisher');
  }, { message: async () => `the token stream: ${await texts(page, 'v1-token-events')}` });
  await waitFor(async () => (await texts(page, 'private-events')).includes('private, 1.0 publisher'),
    { message: 'the draft-07 token panel gets the 1.0-published private update' });
  await sleep(200);
  const anon = [...await texts(page, 'v1-events'), ...await texts(page, 'anon-events')];
  assert(!anon.some((t) => t.startsWith('private')), `a private update leaked to an anonymous stream: ${anon}`);
});

test('without --demo-auth there are no tokens; --demo-auth needs --demo and no keys', async () => {
  const server = await startCourant(['--demo']);
  const r = await fetch(`${server.base}/demo/tokens.json`);
  assert(r.status === 404, `/demo/tokens.json without --demo-auth: ${r.status}`);
  for (const args of [['--demo-auth'], ['--demo', '--demo-auth', '--publisher-jwt-key', 'k']]) {
    const p = spawnSync(courantBin(), [...args, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000 });
    assert(p.status === 2 && /--demo-auth/.test(p.stderr), `${args.join(' ')}: exit ${p.status} ${p.stderr}`);
  }
});

await run();
