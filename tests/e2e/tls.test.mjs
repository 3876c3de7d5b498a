// tls.test.mjs - HTTPS: courant with --tls-cert/--tls-key against curl, the
// openssl CLI, Node's https and TLS clients and a spec-compliant EventSource.
// Every certificate is made here, in a temporary directory, with `openssl req`.
//
//   node tests/e2e/tls.test.mjs
//
// Env: COURANT_BIN (default build/asan/courant; the TSan build works too),
// COURANT_E2E_VERBOSE=1, COURANT_E2E_ONLY=<part of a test name>.

import { EventSource } from 'eventsource';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { assert, collectEvents, courantBin, run, sh, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const dir = mkdtempSync(path.join(os.tmpdir(), 'courant-tls-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ---- tools ----------------------------------------------------------------------

/** A self-signed certificate for localhost and 127.0.0.1: {cert, key, serial}
 * paths and the serial number. `name` keeps several apart; `kind` rsa or ec. */
async function makeCert(name, { serial, cn = 'localhost', kind = 'ec' } = {}) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const keyArgs = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const r = await sh('openssl', [
    'req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-set_serial', String(serial),
  ]);
  assert(r.code === 0, `openssl req failed: ${r.stderr}`);
  chmodSync(key, 0o600);
  return { cert, key, serial };
}

/** Starts courant over TLS with the pair; returns the server with `ca` (PEM). */
async function startTls(pair, args = []) {
  const server = await startCourant(['--tls-cert', pair.cert, '--tls-key', pair.key, ...args]);
  assert(server.base.startsWith('https://'), `base ${server.base}: the listener should say https`);
  server.ca = readFileSync(pair.cert);
  return server;
}

/** One HTTPS request (a new connection each time); resolves {status, body}. */
function request(server, method, urlPath, body = null, { ca = server.ca } = {}) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {};
    const req = https.request({ host: '127.0.0.1', port: server.port, path: urlPath, method, headers, ca, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text, version: res.httpVersion }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

const publish = (server, topic, data) => request(server, 'POST', HUB, `topic=${encodeURIComponent(topic)}&data=${encodeURIComponent(data)}`);

/** A raw event stream over HTTPS: collects {id, data}; `res` can be paused. */
function stream(server, topic) {
  const sub = { events: [], ended: false, res: null, socket: null };
  sub.done = new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port: server.port, path: `${HUB}?topic=${encodeURIComponent(topic)}`, ca: server.ca, agent: false }, (res) => {
      sub.res = res;
      sub.status = res.statusCode;
      collectEvents(res, sub);
      const end = () => { sub.ended = true; resolve(); };
      res.on('end', end);
      res.on('error', end);
      res.on('close', end);
    });
    req.on('socket', (s) => (sub.socket = s));
    req.on('error', () => { sub.ended = true; resolve(); });
    sub.req = req;
  });
  sub.close = () => sub.req.destroy();
  sub.opened = waitFor(() => sub.status, { timeout: 5000, message: 'the stream to open' });
  return sub;
}

/** The certificate a new TLS handshake sees: {serial (hex), cn}. */
function peerCert(server) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve({ serial: parseInt(c.serialNumber, 16), cn: c.subject && c.subject.CN });
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('handshake timed out')));
  });
}

/** A fetch for EventSource that trusts `ca` (Node's own fetch takes no CA). */
function fetchWithCa(ca) {
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const u = new URL(input instanceof Request ? input.url : String(input)); // a string or a URL
      const headers = Object.fromEntries(new Headers(init.headers ?? {}).entries());
      const req = https.request(u, { method: init.method || 'GET', headers, ca, agent: false }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve(new Response(Readable.toWeb(res), { status: res.statusCode, headers: h }));
      });
      req.on('error', reject);
      if (init.signal) init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
      req.end();
    });
}

const S_CLIENT_ENV = { OPENSSL_CONF: '/dev/null' }; // Debian's file raises the client's own minimum to TLS 1.2

/** openssl s_client sending one request; resolves its output (stdout + stderr). */
async function sClient(server, args, { request: req = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' } = {}) {
  const r = await sh('openssl', ['s_client', '-connect', `127.0.0.1:${server.port}`, '-servername', 'localhost', '-ign_eof', ...args], { input: req, env: S_CLIENT_ENV });
  return { code: r.code, out: r.stdout + r.stderr };
}

async function metric(server, name) {
  const r = await request(server, 'GET', '/metrics');
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body);
  return m ? Number(m[1]) : NaN;
}

/** A raw TCP connection: {sock, closed}; `closed` resolves with the ms from
 * connect to the server's close, or rejects after `ms`. */
function rawConnect(port, ms) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    const closed = new Promise((res, rej) => {
      const timer = setTimeout(() => { sock.destroy(); rej(new Error(`still open after ${ms} ms`)); }, ms);
      sock.on('close', () => { clearTimeout(timer); res(Date.now() - t0); });
    });
    closed.catch(() => {});
    sock.on('error', () => {});
    sock.resume(); // drain whatever comes (an alert)
    sock.on('connect', () => resolve({ sock, closed }));
    sock.on('error', reject);
  });
}

const pairA = await makeCert('a', { serial: 1001, cn: 'localhost' });

// ---- tests ----------------------------------------------------------------------

test('curl subscribes and publishes over HTTPS (HTTP/1.1), the certificate verified', async () => {
  const server = await startTls(pairA);
  const sub = spawn('curl', ['-sS', '-N', '--http1.1', '--max-time', '8', '--cacert', pairA.cert, '-w', '%{http_version}', `https://localhost:${server.port}${HUB}?topic=t1`]);
  let out = '';
  sub.stdout.on('data', (d) => (out += d));
  await waitFor(async () => (await metric(server, 'courant_subscribers_open')) === 1, { message: 'the curl subscriber' });
  const pub = await sh('curl', ['-sS', '--http1.1', '--cacert', pairA.cert, '-d', 'topic=t1', '-d', 'data=over tls', '-w', ' %{http_version}', `https://127.0.0.1:${server.port}${HUB}`]);
  assert(pub.code === 0 && /^urn:uuid:\S+ 1\.1$/.test(pub.stdout), `publish: ${JSON.stringify(pub)}`);
  await waitFor(() => out.includes('data: over tls'), { message: () => `the event on the curl stream, got ${JSON.stringify(out)}` });
  sub.kill();
  const bad = await sh('curl', ['-sS', '-o', '/dev/null', `https://127.0.0.1:${server.port}/healthz`]); // no --cacert
  assert(bad.code !== 0 && /certificate/i.test(bad.stderr), `curl without the CA must refuse the certificate: ${JSON.stringify(bad)}`);
});

test('ALPN: h2 is selected when offered, http/1.1 otherwise; curl over HTTPS speaks HTTP/2', async () => {
  const server = await startTls(pairA);
  const both = await sClient(server, ['-alpn', 'h2,http/1.1']);
  assert(/ALPN protocol: h2/.test(both.out), `ALPN h2,http/1.1 -> ${both.out.slice(0, 2000)}`);
  const h1 = await sClient(server, ['-alpn', 'http/1.1']);
  assert(/ALPN protocol: http\/1\.1/.test(h1.out), `ALPN http/1.1 -> ${h1.out.slice(0, 2000)}`);
  assert(/HTTP\/1\.1 200 OK/.test(h1.out), 'the request after the handshake is answered');
  const pub = await sh('curl', ['-sS', '--cacert', pairA.cert, '-d', 'topic=t2', '-d', 'data=h2', '-w', ' %{http_version}', `https://127.0.0.1:${server.port}${HUB}`]);
  assert(pub.code === 0 && /^urn:uuid:\S+ 2$/.test(pub.stdout), `publish over h2: ${JSON.stringify(pub)}`);
});

test('EventSource (npm eventsource) over https receives events', async () => {
  const server = await startTls(pairA);
  const got = [];
  const es = new EventSource(`https://127.0.0.1:${server.port}${HUB}?topic=es`, { fetch: fetchWithCa(server.ca) });
  es.onmessage = (e) => got.push({ id: e.lastEventId, data: e.data });
  try {
    await waitFor(async () => (await metric(server, 'courant_subscribers_open')) === 1, { message: 'the EventSource to connect' });
    for (let i = 0; i < 3; i++) assert((await publish(server, 'es', `m${i}`)).status === 200, 'publish');
    await waitFor(() => got.length === 3, { message: () => `3 events, got ${JSON.stringify(got)}` });
    assert(got.map((e) => e.data).join() === 'm0,m1,m2', `in order: ${JSON.stringify(got)}`);
    assert(got.every((e) => e.id.startsWith('urn:uuid:')), 'ids');
  } finally {
    es.close();
  }
});

test('TLS 1.0 and 1.1 are refused, 1.2 and 1.3 accepted (same client, same options)', async () => {
  const server = await startTls(pairA);
  const loose = ['-cipher', 'DEFAULT@SECLEVEL=0']; // the client could speak the old versions
  for (const v of ['-tls1', '-tls1_1']) {
    const r = await sClient(server, [v, ...loose]);
    assert(!/HTTP\/1\.1 200/.test(r.out) && /alert protocol version|no protocols available|unsupported protocol|wrong version/i.test(r.out),
      `${v} must fail with a version alert: ${r.out.slice(0, 1500)}`);
  }
  for (const [v, name] of [['-tls1_2', 'TLSv1.2'], ['-tls1_3', 'TLSv1.3']]) {
    const r = await sClient(server, [v, ...loose]);
    assert(/HTTP\/1\.1 200 OK/.test(r.out) && r.out.includes(`Protocol  : ${name}`), `${v} must work: ${r.out.slice(0, 1500)}`);
  }
  const r12 = await sClient(server, ['-tls1_2', '-cipher', 'AES128-SHA:ECDHE-RSA-AES128-SHA@SECLEVEL=0']);
  assert(!/HTTP\/1\.1 200/.test(r12.out), `TLS 1.2 with only CBC-SHA1 ciphers must fail: ${r12.out.slice(0, 1500)}`);
  assert((await metric(server, 'courant_tls_handshake_failures_total')) >= 3, 'failures counted');
});

test('session resumption: a ticket from one connection resumes the next (TLS 1.3 and 1.2)', async () => {
  const server = await startTls(pairA);
  for (const v of ['-tls1_3', '-tls1_2']) {
    const sess = path.join(dir, `sess${v}.pem`);
    const first = await sClient(server, [v, '-sess_out', sess]);
    assert(/^New, /m.test(first.out), `first handshake is new (${v}): ${first.out.slice(0, 1500)}`);
    const again = await sClient(server, [v, '-sess_in', sess]);
    assert(/^Reused, /m.test(again.out) && /HTTP\/1\.1 200 OK/.test(again.out), `second handshake reuses the session (${v}): ${again.out.slice(0, 2000)}`);
  }
  assert((await metric(server, 'courant_tls_resumed_total')) >= 2, 'resumed handshakes are counted');
});

test('SIGHUP reloads the certificate: new handshakes see it, an open stream keeps receiving; a bad pair is refused and the old kept', async () => {
  const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  writeFileSync(live.cert, readFileSync(pairA.cert));
  writeFileSync(live.key, readFileSync(pairA.key), { mode: 0o600 });
  const server = await startTls(live);
  const sub = stream(server, 'reload');
  await sub.opened;
  assert((await peerCert(server)).serial === 1001, 'the first certificate');
  assert((await publish(server, 'reload', 'before')).status === 200, 'publish');

  const pairB = await makeCert('b', { serial: 2002, cn: 'renewed.localhost', kind: 'rsa' });
  writeFileSync(live.cert, readFileSync(pairB.cert));
  writeFileSync(live.key, readFileSync(pairB.key), { mode: 0o600 });
  server.proc.kill('SIGHUP');
  await waitFor(() => server.stderrLines.some((l) => /SIGHUP: TLS certificate .*renewed\.localhost/.test(l)), { message: 'the reload log line' });
  const seen = await peerCert(server);
  assert(seen.serial === 2002 && seen.cn === 'renewed.localhost', `new handshakes see the new certificate: ${JSON.stringify(seen)}`);
  server.ca = Buffer.concat([readFileSync(pairA.cert), readFileSync(pairB.cert)]);
  assert((await publish(server, 'reload', 'after')).status === 200, 'publish after the reload');
  await waitFor(() => sub.events.length === 2, { message: () => `both events on the stream opened before the reload: ${JSON.stringify(sub.events)}` });
  assert(!sub.ended && sub.events[1].data === 'after', 'the old stream goes on');

  // A key that does not match the certificate: refused, the old pair kept.
  const pairC = await makeCert('c', { serial: 3003 });
  writeFileSync(live.key, readFileSync(pairC.key), { mode: 0o600 }); // live.crt is still B's
  server.proc.kill('SIGHUP');
  await waitFor(() => server.stderrLines.some((l) => /not reloaded.*does not match/.test(l)), { message: 'the refusal log line' });
  // A file that is not PEM at all.
  writeFileSync(live.cert, 'garbage\n');
  server.proc.kill('SIGHUP');
  await waitFor(() => server.stderrLines.filter((l) => /not reloaded/.test(l)).length === 2, { message: 'the second refusal' });
  assert((await peerCert(server)).serial === 2002, 'still the last good certificate');
  assert((await publish(server, 'reload', 'still')).status === 200, 'still serving');
  await waitFor(() => sub.events.length === 3, { message: 'the third event' });
  sub.close();
});

test('plain HTTP, garbage and a silent client on the TLS port are closed within --header-timeout; others are served meanwhile', async () => {
  const server = await startTls(pairA, ['--header-timeout', '2']);
  const sub = stream(server, 'bystander');
  await sub.opened;
  const plain = await rawConnect(server.port, 1500);
  plain.sock.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const garbage = await rawConnect(server.port, 1500);
  garbage.sock.write(Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) & 0xff)));
  const silent = await rawConnect(server.port, 4000);
  const half = await rawConnect(server.port, 4000);
  half.sock.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a ClientHello that never ends
  const times = Promise.all([plain.closed, garbage.closed, silent.closed, half.closed]);
  const health = await request(server, 'GET', '/healthz');
  assert(health.body.trim() === 'ok', `served meanwhile: ${JSON.stringify(health)}`);
  assert((await publish(server, 'bystander', 'x')).status === 200, 'publish meanwhile');
  const [tPlain, tGarbage, tSilent, tHalf] = await times;
  assert(tSilent >= 1500 && tHalf >= 1500, `the silent ones get their --header-timeout first (${tSilent}, ${tHalf} ms)`);
  await waitFor(() => sub.events.length === 1, { message: 'the bystander got its event' });
  assert((await metric(server, 'courant_tls_handshake_failures_total')) >= 4, 'the four are counted as failed handshakes');
  assert(!server.stderrLines.some((l) => / (warn|error) /.test(l) && /TLS|handshake/.test(l)), 'failed handshakes are not logged above debug');
  void tPlain;
  void tGarbage;
});

test('a paused subscriber: records interrupted by a full socket are retried intact (large and small events)', async () => {
  const server = await startTls(pairA, ['--max-pending-bytes', '67108864']);
  const sub = stream(server, 'burst');
  await sub.opened;
  sub.res.pause(); // the socket fills, courant's SSL_write gets WANT_WRITE
  const big = (i) => `${i}:`.padEnd(200000, String.fromCharCode(97 + (i % 26)));
  const small = (i) => `s${i}`;
  const expect = [];
  for (let i = 0; i < 40; i++) {
    const data = i % 2 ? small(i) : big(i);
    expect.push(data);
    assert((await publish(server, 'burst', data)).status === 200, 'publish');
  }
  await sleep(300);
  sub.res.resume();
  await waitFor(() => sub.events.length === expect.length, { timeout: 20000, message: () => `${expect.length} events, got ${sub.events.length}` });
  for (let i = 0; i < expect.length; i++) assert(sub.events[i].data === expect[i], `event ${i} is intact`);
  const records = await metric(server, 'courant_tls_records_total');
  assert(records >= 20 * 12, `each 200 KB event spans at least 12 records of 16 KiB (${records} records)`);
  sub.close();
});

test('start-up refusals: one line each', async () => {
  const pairOther = await makeCert('other', { serial: 4004 });
  const unreadable = path.join(dir, 'nope.pem');
  const cases = [
    [['--tls-cert', pairA.cert], /--tls-cert and --tls-key go together \(--tls-key is missing\)/],
    [['--tls-key', pairA.key], /--tls-cert and --tls-key go together \(--tls-cert is missing\)/],
    [['--tls-cert', unreadable, '--tls-key', pairA.key], /cannot read --tls-cert .*nope\.pem: No such file/],
    [['--tls-cert', pairA.cert, '--tls-key', pairOther.key], /--tls-key .* does not match the certificate/],
    [['--tls-cert', pairA.key, '--tls-key', pairA.key], /--tls-cert .*: not a PEM certificate chain/],
  ];
  for (const [args, re] of cases) {
    const r = await sh(courantBin(), ['--listen', '127.0.0.1:0', ...args], { timeout: 10000 });
    const lines = r.stderr.trim().split('\n');
    assert(r.code === 2 && lines.length === 1 && re.test(lines[0]), `${args.join(' ')}: exit ${r.code}, stderr ${JSON.stringify(r.stderr)}`);
  }
});

await run();
