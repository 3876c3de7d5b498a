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
