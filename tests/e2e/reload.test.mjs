// reload.test.mjs - SIGHUP re-reads the --config file into a running
// courant: a new subscriber key takes effect (old tokens refused, new ones
// accepted), limits and CORS origins change, open streams keep receiving
// across the reload, options that need a restart are reported and kept, and a
// broken file keeps the running configuration.
//
//   node tests/e2e/reload.test.mjs

import crypto from 'node:crypto';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, onEventBlocks, postForm, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const KEY_A = 'reload-test-subscriber-key-A-0123456789abcdef';
const KEY_B = 'reload-test-subscriber-key-B-fedcba9876543210';
const HUB = '/.well-known/mercure';

const dir = mkdtempSync(path.join(tmpdir(), 'courant-reload-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const confPath = path.join(dir, 'courant.conf');

const b64u = (s) => Buffer.from(s).toString('base64url');
function token(key, subscribe = ['*']) {
  const data = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify({ mercure: { subscribe } }))}`;
  return `${data}.${crypto.createHmac('sha256', key).update(data).digest('base64url')}`;
}

/** GET a stream with headers; resolves its status (and closes it). */
function status(base, headers = {}, topic = 'urn:t') {
  return new Promise((resolve, reject) => {
    const u = new URL(`${base}${HUB}?topic=${encodeURIComponent(topic)}`);
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: false }, (res) => {
      resolve({ status: res.statusCode, headers: res.headers });
      req.destroy();
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
  });
}

const bearer = (t) => ({ authorization: `Bearer ${t}` });

/** Opens a stream with headers and collects its data lines. */
function streamWith(base, topic, headers) {
  const s = { status: 0, events: [], ended: false };
  const u = new URL(`${base}${HUB}?topic=${encodeURIComponent(topic)}`);
  s.req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: false }, (res) => {
    s.status = res.statusCode;
    onEventBlocks(res, (block) => {
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (data.length) s.events.push({ data: data.join('\n') });
    });
    res.on('end', () => { s.ended = true; });
  });
  s.req.on('error', () => { s.ended = true; });
  s.close = () => s.req.destroy();
  return s;
}

/** Sends SIGHUP and waits for the reload's log line. */
async function reload(srv, lines = 1) {
  const before = srv.stderrLines.filter((l) => l.includes('SIGHUP')).length;
  srv.proc.kill('SIGHUP');
  await waitFor(() => srv.stderrLines.filter((l) => l.includes('SIGHUP')).length >= before + lines,
    { timeout: 5000, message: 'the reload log line' });
}

test('a new subscriber key takes effect; an open stream keeps receiving across the reload', async () => {
  // anonymous: the open stream below has no token (a bad token is still a 401).
  writeFileSync(confPath, `subscriber-jwt-key = ${KEY_A}\ncors-origin = https://a.example\nanonymous = true\n`);
  const srv = await startCourant(['--config', confPath, '--workers', '2']);
  assert((await status(srv.base, bearer(token(KEY_A)))).status === 200, 'key A before the reload');
  assert((await status(srv.base, bearer(token(KEY_B)))).status === 401, 'key B before the reload');
  const s = streamWith(srv.base, 'urn:live', bearer(token(KEY_A)));
  await waitFor(() => s.status === 200, { message: () => `the stream to open (status ${s.status})` });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 5; i++) assert((await postForm(srv.base, 'urn:live', `before-${i}`, agent)).status === 200, 'publish');

  writeFileSync(confPath, `subscriber-jwt-key = ${KEY_B}\ncors-origin = https://b.example\nretry = 2500\nanonymous = true\n`);
  await reload(srv);
  assert(srv.stderrLines.some((l) => /SIGHUP: configuration re-read; applied: .*--subscriber-jwt-key/.test(l)),
    () => `the applied options are logged: ${srv.stderrLines.slice(-3).join(' | ')}`);
  assert(!srv.stderrLines.some((l) => l.includes(KEY_B)), 'a key reached the log');

  for (let i = 0; i < 5; i++) assert((await postForm(srv.base, 'urn:live', `after-${i}`, agent)).status === 200, 'publish');
  await waitFor(() => s.events.length === 10, { message: () => `10 events on the open stream, got ${s.events.length}` });
  assert(!s.ended, 'the open stream ended');
  assert(s.events.map((e) => e.data).join(',') === [0, 1, 2, 3, 4].map((i) => `before-${i}`).concat([0, 1, 2, 3, 4].map((i) => `after-${i}`)).join(','),
    'the events in order');
  assert((await status(srv.base, bearer(token(KEY_A)))).status === 401, 'key A is refused after the reload');
  assert((await status(srv.base, bearer(token(KEY_B)))).status === 200, 'key B is accepted after the reload');
  const cors = await status(srv.base, { ...bearer(token(KEY_B)), origin: 'https://b.example' });
  assert(cors.headers['access-control-allow-origin'] === 'https://b.example', `the new CORS origin: ${JSON.stringify(cors.headers)}`);
  const old = await status(srv.base, { ...bearer(token(KEY_B)), origin: 'https://a.example' });
  assert(!old.headers['access-control-allow-origin'], 'the old CORS origin is gone');
  s.close();
  agent.destroy();
});

test('limits change live: --subscribe-rate turns on for clients behind a trusted proxy', async () => {
  writeFileSync(confPath, 'trusted-proxy = 127.0.0.1\ntrusted-proxy-header = x-forwarded-for\nsubscribe-rate = 0\n');
  const srv = await startCourant(['--config', confPath, '--workers', '1']);
  const client = { 'x-forwarded-for': '203.0.113.50' };
  for (let i = 0; i < 6; i++) assert((await status(srv.base, client)).status === 200, 'no rate before the reload');
  writeFileSync(confPath, 'trusted-proxy = 127.0.0.1\ntrusted-proxy-header = x-forwarded-for\nsubscribe-rate = 1\n');
  await reload(srv);
  const codes = [];
  for (let i = 0; i < 6; i++) codes.push((await status(srv.base, client)).status);
  assert(codes.includes(429), `a 429 after the reload: ${codes}`);
});

test('what needs a restart is reported and kept; a broken file keeps the running configuration', async () => {
  writeFileSync(confPath, `subscriber-jwt-key = ${KEY_A}\nhistory = 100\n`);
  const srv = await startCourant(['--config', confPath, '--workers', '1']);
  writeFileSync(confPath, `subscriber-jwt-key = ${KEY_A}\nhistory = 5\n`);
  await reload(srv, 2);
  assert(srv.stderrLines.some((l) => /SIGHUP: not applied, a restart is needed: --history/.test(l)),
    () => `the restart-only change is named: ${srv.stderrLines.slice(-3).join(' | ')}`);
  // history stays 100: 20 events are all replayed
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t = bearer(token(KEY_A));
  for (let i = 0; i < 20; i++) await postForm(srv.base, 'urn:h', `e${i}`, agent);
  agent.destroy();

  writeFileSync(confPath, 'subscriber-jwt-key = \nno-such-option = 1\n');
  await reload(srv, 1);
  await sleep(100);
  assert(srv.stderrLines.some((l) => /keeping the running one/.test(l)), 'the broken file is refused');
  assert((await status(srv.base, t)).status === 200, 'the running key still works');
  const u = new URL(`${srv.base}${HUB}?topic=urn:h&lastEventID=earliest`);
  const replay = await new Promise((resolve) => {
    let text = '';
    const req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: t, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
    });
    setTimeout(() => { req.destroy(); resolve(text); }, 500);
  });
  const n = (replay.match(/^data: e\d+$/gm) || []).length;
  assert(n === 20, `history kept at 100 events: ${n} replayed`);
});

// ---- key rotation (static keys) ----------------------------------------------------------

const ISS = 'https://app.example';
const RES = 'https://hub.example/.well-known/mercure';
function signEs(privateKey, header, claims) {
  const data = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${crypto.sign('sha256', Buffer.from(data), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
const esClassic = (k, mercure) => signEs(k, { alg: 'ES256', typ: 'JWT' }, { exp: Math.floor(Date.now() / 1000) + 600, mercure });
const esV1 = (k, actions, topics) => signEs(k, { alg: 'ES256', typ: 'at+jwt' }, {
  iss: ISS, aud: RES, exp: Math.floor(Date.now() / 1000) + 600,
  authorization_details: [{ type: 'https://mercure.rocks/authorization-detail', actions, topics }],
});

/** A stream opened with a bearer token and a raw query; events' data collected. */
function tokenStream(base, query, tok) {
  const s = { status: 0, events: [], ended: false };
  s.opened = new Promise((resolve) => {
    const u = new URL(`${base}${HUB}?${query}`);
    s.req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: bearer(tok), agent: false }, (res) => {
      s.status = res.statusCode;
      res.setEncoding('utf8');
      res.on('data', (c) => { for (const m of c.matchAll(/^data: (.*)$/gm)) s.events.push(m[1]); });
      res.on('close', () => { s.ended = true; });
      resolve();
    });
    s.req.on('error', () => { s.ended = true; resolve(); });
  });
  s.close = () => s.req.destroy();
  return s;
}

test('a rotated key file takes effect on SIGHUP, in both dialects, without dropping open streams', async () => {
  const one = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const two = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = path.join(dir, 'es.pem');
  const pem = (kp) => kp.publicKey.export({ type: 'spki', format: 'pem' });
  writeFileSync(keyFile, pem(one));
  writeFileSync(confPath, `publisher-jwt-key-file = ${keyFile}\nsubscriber-jwt-key-file = ${keyFile}\njwt-issuer = ${ISS}\n` +
    `resource-identifier = ${RES}\n`);
  const srv = await startCourant(['--config', confPath, '--workers', '2']);
  const classic = tokenStream(srv.base, 'topic=urn:rot', esClassic(one.privateKey, { subscribe: ['urn:rot'] }));
  const v1 = tokenStream(srv.base, 'match=urn:rot', esV1(one.privateKey, ['subscribe'], [{ match: 'urn:rot' }]));
  await Promise.all([classic.opened, v1.opened]);
  assert(classic.status === 200 && v1.status === 200, `streams: ${classic.status} ${v1.status}`);
  const pub = (tok, data) => fetch(`${srv.base}${HUB}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...bearer(tok) },
    body: `topic=urn:rot&private=on&data=${data}` }).then((r) => r.status);
  assert(await pub(esClassic(one.privateKey, { publish: ['*'] }), 'c1') === 200, 'key one, draft-07');
  assert(await pub(esV1(one.privateKey, ['publish'], [{ match: '*' }]), 'v1') === 200, 'key one, 1.0');

  writeFileSync(keyFile, pem(two)); // the same file, a new key
  await reload(srv);
  assert(await pub(esClassic(one.privateKey, { publish: ['*'] }), 'x') === 401, 'key one refused after the rotation (draft-07)');
  assert(await pub(esV1(one.privateKey, ['publish'], [{ match: '*' }]), 'x') === 401, 'key one refused after the rotation (1.0)');
  assert(await pub(esClassic(two.privateKey, { publish: ['*'] }), 'c2') === 200, 'key two, draft-07');
  assert(await pub(esV1(two.privateKey, ['publish'], [{ match: '*' }]), 'v2') === 200, 'key two, 1.0');
  await waitFor(() => classic.events.length === 4 && v1.events.length === 4,
    { message: () => `open streams after the rotation: ${classic.events} / ${v1.events}` });
  assert(classic.events.join() === 'c1,v1,c2,v2' && v1.events.join() === 'c1,v1,c2,v2', `${classic.events} / ${v1.events}`);
  assert(!classic.ended && !v1.ended, 'the streams stayed open');
  const fresh = tokenStream(srv.base, 'match=urn:rot', esV1(two.privateKey, ['subscribe'], [{ match: 'urn:rot' }]));
  await fresh.opened;
  assert(fresh.status === 200, `a new subscriber with key two: ${fresh.status}`);
  for (const s of [classic, v1, fresh]) s.close();
});

await run();
