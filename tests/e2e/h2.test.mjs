// h2.test.mjs - HTTP/2 end to end: h2c with prior knowledge, many streams on
// one connection, flow control as the slow-subscriber policy, GOAWAY on
// SIGTERM, and the known HTTP/2 floods (each asserting that the attacker is
// cut off or bounded AND that an honest client keeps its latency and the
// server its memory).
//
//   node tests/e2e/h2.test.mjs
//
// Clients: curl --http2-prior-knowledge (Debian's curl links libnghttp2),
// node's http2 module (a real client: windows, settings, GOAWAY), and a raw
// frame writer over node:net for the floods (hand-made frames and HPACK).
//
// Env: COURANT_BIN (default build/asan/courant), COURANT_E2E_VERBOSE=1,
//      COURANT_E2E_ONLY=<substring of a test name>.

import http2 from 'node:http2';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { assert, collectEvents, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const enc = encodeURIComponent;

// ---- node http2 helpers -----------------------------------------------------------

function connect(base, options = {}) {
  const session = http2.connect(base, options);
  session.on('error', () => {});
  return session;
}

/** One request on `session`; resolves {status, headers, body}. */
function request(session, headers, body) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let resHeaders = null;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      resHeaders = h;
      status = h[':status'];
    });
    req.on('data', (c) => (text += c));
    req.on('end', () => resolve({ status, headers: resHeaders, body: text }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

const get = (session, path) => request(session, { ':method': 'GET', ':path': path });

function publish(session, topic, data) {
  const body = `topic=${enc(topic)}&data=${enc(data)}`;
  return request(session, { ':method': 'POST', ':path': HUB, 'content-type': 'application/x-www-form-urlencoded' }, body);
}

/** Subscribes to `topic` on `session`; collects {id, data} events. */
function subscribe(session, topic) {
  const sub = { events: [], ended: false, reset: null, headers: null, bytes: 0 };
  const req = session.request({ ':method': 'GET', ':path': `${HUB}?topic=${enc(topic)}` });
  sub.req = req;
  req.on('response', (h) => (sub.headers = h));
  req.on('data', (chunk) => (sub.bytes += chunk.length));
  collectEvents(req, sub);
  sub.done = new Promise((resolve) => {
    req.on('end', () => { sub.ended = true; resolve(); });
    req.on('close', () => { sub.ended = true; sub.reset = req.rstCode; resolve(); });
    req.on('error', () => {});
  });
  sub.opened = waitFor(() => sub.headers, { timeout: 5000, message: `the stream on ${topic} to open` });
  return sub;
}

async function metrics(session) {
  const r = await get(session, '/metrics');
  const m = new Map();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  m.text = r.body;
  return m;
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/**
 * An honest client on its own connection, during an attack: /healthz answers
 * and a published event arrives, each within `boundMs`. Returns the latencies.
 */
async function honestProbe(base, boundMs, label) {
  const s = connect(base);
  try {
    const t0 = performance.now();
    const h = await get(s, '/healthz');
    const healthMs = performance.now() - t0;
    assert(h.status === 200 && h.body === 'ok\n', `${label}: /healthz answered ${h.status} ${h.body}`);
    const topic = `probe-${Math.random()}`;
    const sub = subscribe(s, topic);
    await sub.opened;
    const t1 = performance.now();
    const p = await publish(s, topic, 'still-here');
    assert(p.status === 200, `${label}: publish answered ${p.status} ${p.body}`);
    await waitFor(() => sub.events.length === 1, { timeout: boundMs * 4, message: `${label}: the probe's event` });
    const eventMs = performance.now() - t1;
    assert(healthMs < boundMs, `${label}: /healthz took ${healthMs.toFixed(0)} ms (bound ${boundMs} ms)`);
    assert(eventMs < boundMs, `${label}: an event took ${eventMs.toFixed(0)} ms (bound ${boundMs} ms)`);
    sub.req.close();
    return { healthMs, eventMs };
  } finally {
    s.destroy();
  }
}

// ---- raw frames and HPACK, for the floods -----------------------------------------

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };
const ENHANCE_YOUR_CALM = 0xb;

function frame(type, flags, id, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an N-bit prefix and the given high bits. */
function hpackInt(value, prefixBits, high) {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const out = [high | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 127) | 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}
const hpackStr = (s) => {
  const b = Buffer.from(s);
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
};
// Indexed field (static table: 2 = :method GET, 3 = :method POST, 4 = :path /, 6 = :scheme http).
const hIndexed = (i) => hpackInt(i, 7, 0x80);
// Literal without indexing, name from the static table (1 = :authority, 4 = :path).
const hLitIdxName = (i, value) => Buffer.concat([hpackInt(i, 4, 0), hpackStr(value)]);
// Literal with incremental indexing, new name (goes into the dynamic table).
const hLitIndexed = (name, value) => Buffer.concat([Buffer.from([0x40]), hpackStr(name), hpackStr(value)]);
// Literal without indexing, new name.
const hLit = (name, value) => Buffer.concat([Buffer.from([0x00]), hpackStr(name), hpackStr(value)]);

const requestBlock = (path) => Buffer.concat([hIndexed(2), hIndexed(6), hLitIdxName(4, path), hLitIdxName(1, 'localhost')]);

/**
 * A raw HTTP/2 connection: sends the preface and an empty SETTINGS, then
 * parses what the server sends (frames by type, GOAWAY's error code).
 */
function rawConn(port) {
  const rc = { frames: [], goaway: null, closed: false, sock: null, buf: Buffer.alloc(0), bytesIn: 0 };
  rc.sock = net.connect(port, '127.0.0.1');
  rc.sock.on('error', () => {});
  rc.ready = new Promise((resolve) => rc.sock.on('connect', resolve));
  rc.sock.on('data', (d) => {
    rc.bytesIn += d.length;
    rc.buf = Buffer.concat([rc.buf, d]);
    while (rc.buf.length >= 9) {
      const len = rc.buf.readUIntBE(0, 3);
      if (rc.buf.length < 9 + len) break;
      const f = { type: rc.buf[3], flags: rc.buf[4], id: rc.buf.readUInt32BE(5) & 0x7fffffff, payload: rc.buf.subarray(9, 9 + len) };
      rc.buf = rc.buf.subarray(9 + len);
      if (rc.frames.length < 100000) rc.frames.push(f);
      if (f.type === T.GOAWAY) rc.goaway = { lastId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
    }
  });
  rc.closedP = new Promise((resolve) => rc.sock.on('close', () => { rc.closed = true; resolve(); }));
  rc.write = (b) => new Promise((resolve) => {
    if (rc.closed || rc.sock.destroyed) return resolve(false);
    rc.sock.write(b, () => resolve(true));
  });
  rc.start = async () => {
    await rc.ready;
    await rc.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
  };
  return rc;
}

/** Writes `count` copies of what make(i) returns, in batches, until the server closes. */
async function flood(rc, count, make, batch = 50) {
  let sent = 0;
  for (let i = 0; i < count && !rc.closed; i += batch) {
    const bufs = [];
    for (let k = i; k < Math.min(count, i + batch); k++) bufs.push(make(k));
    if (!(await rc.write(Buffer.concat(bufs)))) break;
    sent += bufs.length;
  }
  return sent;
}

// ---- the server ----------------------------------------------------------------------

const start = (args = []) => startCourant(['--workers', '1', ...args]);

// ---- tests -----------------------------------------------------------------------------

test('curl --http2-prior-knowledge: /healthz, subscribe and publish over HTTP/2', async () => {
  const srv = await start();
  const curl = (args) => new Promise((resolve) => {
    const p = spawn('curl', ['-sS', '--http2-prior-knowledge', '--max-time', '10', ...args]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
    resolve.proc = p;
  });
  const h = await curl(['-w', '%{http_version} %{http_code}', `${srv.base}/healthz`]);
  assert(h.code === 0 && h.out === 'ok\n2 200', `curl /healthz over h2: code ${h.code}, out ${JSON.stringify(h.out)}, err ${h.err}`);
  // A subscriber (curl -N, stopped by --max-time) and a publisher, both h2.
  const subP = curl(['-N', '--max-time', '4', `${srv.base}${HUB}?topic=${enc('urn:curl')}`]);
  await sleep(700);
  const pub = await curl(['-w', ' %{http_version}', '-d', 'topic=urn:curl', '-d', 'data=over-h2', `${srv.base}${HUB}`]);
  assert(pub.code === 0 && /^urn:uuid:\S+ 2$/.test(pub.out), `curl publish over h2: ${JSON.stringify(pub)}`);
  const id = pub.out.split(' ')[0];
  const sub = await subP;
  assert(sub.out.includes(`id: ${id}\ndata: over-h2\n\n`), `the h2 subscriber got: ${JSON.stringify(sub.out)}`);
  // HTTP/1.1 on the same listener is untouched.
  const h1 = await fetch(`${srv.base}/healthz`);
  assert(h1.status === 200, 'HTTP/1.1 still answers on the same listener');
});

test('node http2: 16 subscriptions and the publishes share ONE connection; every stream gets its events', async () => {
  const srv = await start();
  const s = connect(srv.base);
  const topics = Array.from({ length: 16 }, (_, i) => `urn:h2:many:${i}`);
  const subs = topics.map((t) => subscribe(s, t));
  await Promise.all(subs.map((x) => x.opened));
  for (const x of subs) {
    assert(x.headers[':status'] === 200 && x.headers['content-type'] === 'text/event-stream', `stream head: ${JSON.stringify(x.headers)}`);
    assert(!('connection' in x.headers) && !('transfer-encoding' in x.headers), 'no connection-specific fields over h2');
  }
  for (let round = 0; round < 3; round++)
    for (let i = 0; i < topics.length; i++) {
      const r = await publish(s, topics[i], `e${round}-${i}`);
      assert(r.status === 200, `publish on the shared connection: ${r.status} ${r.body}`);
    }
  await waitFor(() => subs.every((x) => x.events.length === 3), { timeout: 5000, message: () => `3 events on every stream: ${subs.map((x) => x.events.length)}` });
  subs.forEach((x, i) => assert(x.events.map((e) => e.data).join(',') === `e0-${i},e1-${i},e2-${i}`, `stream ${i}: ${JSON.stringify(x.events)}`));
  const m = await metrics(s);
  assert(m.get('courant_connections_accepted_total') === 1, `one TCP connection for all of it: ${m.get('courant_connections_accepted_total')}`);
  assert(m.get('courant_h2_connections_total') === 1 && m.get('courant_subscribers_open') === 16, `h2 metrics: ${m.text}`);
  s.destroy();
  await waitFor(async () => {
    const s2 = connect(srv.base);
    try { return (await metrics(s2)).get('courant_subscribers_open') === 0; } finally { s2.destroy(); }
  }, { timeout: 3000, message: 'the 16 streams to be detached once the connection is gone' });
});

test('node http2: more streams than --h2-max-streams are refused; the others keep working', async () => {
  const srv = await start(['--h2-max-streams', '4']);
  const s = connect(srv.base);
  const subs = Array.from({ length: 4 }, (_, i) => subscribe(s, `urn:cap:${i}`));
  await Promise.all(subs.map((x) => x.opened));
  assert(s.remoteSettings.maxConcurrentStreams === 4, `SETTINGS_MAX_CONCURRENT_STREAMS: ${JSON.stringify(s.remoteSettings)}`);
  assert(s.remoteSettings.maxHeaderListSize === 16384, `SETTINGS_MAX_HEADER_LIST_SIZE: ${JSON.stringify(s.remoteSettings)}`);
  // node queues a fifth request locally until a slot frees: close one, it goes through.
  const fifth = get(s, '/healthz');
  await sleep(300);
  subs[0].req.close();
  const r = await fifth;
  assert(r.status === 200, `the fifth request after a slot freed: ${r.status}`);
  const s2 = connect(srv.base);
  const p = await publish(s2, 'urn:cap:1', 'x');
  assert(p.status === 200, 'publish');
  await waitFor(() => subs[1].events.length === 1, { message: 'an event on a capped connection' });
  s.destroy();
  s2.destroy();
});

test('flow control: a stream that stops reading is cut at --max-pending-bytes; its siblings on the same connection keep receiving', async () => {
  const srv = await start(['--max-pending-bytes', '32768']);
  const s = connect(srv.base, { settings: { initialWindowSize: 16384 } });
  const slow = subscribe(s, 'urn:fc:slow');
  const fast = subscribe(s, 'urn:fc:fast');
  await Promise.all([slow.opened, fast.opened]);
  slow.req.pause(); // node stops reading it: no WINDOW_UPDATE for it once its buffer fills
  const pubS = connect(srv.base);
  const payload = 'x'.repeat(2000);
  const t0 = performance.now();
  for (let i = 0; i < 80; i++) {
    const a = await publish(pubS, 'urn:fc:slow', `${i}-${payload}`);
    const b = await publish(pubS, 'urn:fc:fast', `${i}-${payload}`);
    assert(a.status === 200 && b.status === 200, 'publishes');
  }
  await waitFor(() => fast.events.length === 80, { timeout: 10000, message: () => `80 events on the fast sibling (got ${fast.events.length})` });
  const elapsed = performance.now() - t0;
  const m = await metrics(pubS);
  assert(m.get('courant_slow_subscriber_disconnects_total') === 1, `the slow stream is counted: ${m.get('courant_slow_subscriber_disconnects_total')}`);
  // Its stream ends (END_STREAM after what it was sent, or RST after the grace): never the connection.
  slow.req.resume();
  await waitFor(() => slow.ended, { timeout: 9000, message: 'the slow stream to end' });
  assert(slow.events.length < 80, `the slow stream did not get everything: ${slow.events.length}`);
  assert(!s.destroyed && !s.closed, 'the connection stays up');
  const p = await publish(pubS, 'urn:fc:fast', 'after');
  assert(p.status === 200, 'publish');
  await waitFor(() => fast.events.length === 81, { message: 'the sibling still receives after the cut' });
  assert(elapsed < 8000, `the fast sibling kept pace: ${elapsed.toFixed(0)} ms`);
  s.destroy();
  pubS.destroy();
});

test('GOAWAY on SIGTERM: streams end gracefully within the jittered drain', async () => {
  const srv = await start();
  const s = connect(srv.base);
  let goaway = null;
  s.on('goaway', (code, lastId) => (goaway = { code, lastId }));
  const subs = Array.from({ length: 6 }, (_, i) => subscribe(s, `urn:stop:${i}`));
  await Promise.all(subs.map((x) => x.opened));
  const t0 = performance.now();
  srv.proc.kill('SIGTERM');
  await waitFor(() => goaway, { timeout: 3000, message: 'a GOAWAY frame' });
  assert(goaway.code === 0 && goaway.lastId >= 11, `GOAWAY NO_ERROR with the last stream id: ${JSON.stringify(goaway)}`);
  await Promise.all(subs.map((x) => x.done));
  const ms = performance.now() - t0;
  assert(subs.every((x) => x.ended && !x.reset), `every stream ended with END_STREAM: ${subs.map((x) => x.reset)}`);
  assert(ms < 3500, `drained in ${ms.toFixed(0)} ms`);
  const { code } = await srv.exited;
  assert(code === 0, `exit code ${code}`);
});

test('rapid reset (CVE-2023-44487): a client opening and resetting streams gets GOAWAY ENHANCE_YOUR_CALM; honest clients are unaffected', async () => {
  const srv = await start();
  const rss0 = rssKiB(srv.proc.pid);
  const rc = rawConn(srv.port);
  await rc.start();
  const path = `${HUB}?topic=${enc('urn:rr')}`;
  const sent = await flood(rc, 5000, (k) => {
    const id = 2 * k + 1;
    return Buffer.concat([
      frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, requestBlock(path)),
      frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])), // CANCEL
    ]);
  });
  await Promise.race([rc.closedP, sleep(5000)]);
  assert(rc.goaway && rc.goaway.code === ENHANCE_YOUR_CALM, `GOAWAY ENHANCE_YOUR_CALM after ${sent} resets: ${JSON.stringify(rc.goaway)}`);
  assert(rc.closed, 'the attacker connection is closed');
  await honestProbe(srv.base, 1000, 'after rapid reset');
  const s = connect(srv.base);
  const m = await metrics(s);
  s.destroy();
  assert(m.get('courant_h2_enhance_your_calm_total') === 1, `counted: ${m.get('courant_h2_enhance_your_calm_total')}`);
  assert(m.get('courant_subscribers_open') === 0, `no subscriber left behind: ${m.get('courant_subscribers_open')}`);
  assert(m.get('courant_h2_streams_total') < 1000, `the attacker got few streams handled: ${m.get('courant_h2_streams_total')}`);
  const grew = rssKiB(srv.proc.pid) - rss0;
  assert(grew < 64 * 1024, `RSS grew by ${grew} KiB`);
});

for (const [name, make, count] of [
  ['SETTINGS flood', () => frame(T.SETTINGS, 0, 0), 200000],
  ['PING flood', (k) => frame(T.PING, 0, 0, Buffer.alloc(8, k & 255)), 200000],
  ['PRIORITY flood', (k) => frame(T.PRIORITY, 0, 2 * k + 1, Buffer.from([0, 0, 0, 0, 15])), 200000],
  ['empty DATA flood', () => frame(T.DATA, 0, 1), 200000],
]) {
  test(`${name}: GOAWAY ENHANCE_YOUR_CALM and close; honest clients keep their latency`, async () => {
    const srv = await start();
    const rss0 = rssKiB(srv.proc.pid);
    const rc = rawConn(srv.port);
    await rc.start();
    if (name === 'empty DATA flood') await rc.write(frame(T.HEADERS, F.END_HEADERS, 1, Buffer.concat([hIndexed(3), hIndexed(6), hLitIdxName(4, HUB), hLitIdxName(1, 'localhost')])));
    if (name === 'PING flood') rc.sock.pause(); // and never read the ACKs
    const probe = honestProbe(srv.base, 1000, `during the ${name}`);
    const t0 = performance.now();
    const sent = await flood(rc, count, make, 1000);
    rc.sock.resume();
    await Promise.race([rc.closedP, sleep(5000)]);
    // The server stops reading the flood at its budget (a few hundred
    // frames), sends GOAWAY and closes within the linger bound (2 s).
    assert(rc.closed, `the flooding connection is closed (sent ${sent})`);
    assert(rc.goaway && rc.goaway.code === ENHANCE_YOUR_CALM, `GOAWAY ENHANCE_YOUR_CALM: ${JSON.stringify(rc.goaway)}`);
    assert(performance.now() - t0 < 4500, `closed within ${(performance.now() - t0).toFixed(0)} ms`);
    await probe;
    await honestProbe(srv.base, 1000, `after the ${name}`);
    const grew = rssKiB(srv.proc.pid) - rss0;
    assert(grew < 64 * 1024, `RSS grew by ${grew} KiB`);
  });
}

test('HPACK bomb: a small header block that decodes past --max-header-bytes gets 431, costs bounded memory', async () => {
  const srv = await start();
  const rss0 = rssKiB(srv.proc.pid);
  const rc = rawConn(srv.port);
  await rc.start();
  // One 4000-byte value into the dynamic table, then 3000 two-byte references
  // to it: 6 KB on the wire, 12 MB once decoded.
  const refs = Buffer.alloc(3000 * 2);
  for (let i = 0; i < 3000; i++) { refs[2 * i] = 0xbe; refs[2 * i + 1] = 0xbe; } // index 62 (the newest entry), twice
  const block = Buffer.concat([requestBlock('/healthz'), hLitIndexed('x-bomb', 'b'.repeat(4000)), refs]);
  // Split into frames of 16384 at most (HEADERS + CONTINUATION).
  const parts = [];
  for (let off = 0; off < block.length; off += 16384) parts.push(block.subarray(off, off + 16384));
  await rc.write(Buffer.concat(parts.map((p, i) => frame(i === 0 ? T.HEADERS : T.CONTINUATION, (i === parts.length - 1 ? F.END_HEADERS : 0) | (i === 0 ? F.END_STREAM : 0), 1, p))));
  await waitFor(() => rc.frames.some((f) => f.id === 1 && (f.type === T.HEADERS || f.type === T.RST_STREAM)), { timeout: 3000, message: 'an answer on stream 1' });
  const s = connect(srv.base);
  const m = await metrics(s);
  s.destroy();
  assert(m.get('courant_refused_requests_total{reason="headers_too_large"}') === 1, `refused as 431: ${m.text}`);
  // The same connection still serves a normal request.
  await rc.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, requestBlock('/healthz')));
  await waitFor(() => rc.frames.some((f) => f.id === 3 && f.type === T.DATA), { timeout: 3000, message: 'a normal answer after the bomb' });
  await honestProbe(srv.base, 1000, 'after the HPACK bomb');
  const grew = rssKiB(srv.proc.pid) - rss0;
  assert(grew < 32 * 1024, `RSS grew by ${grew} KiB`);
  rc.sock.destroy();
});

test('CONTINUATION flood: an endless header block is cut with GOAWAY and the connection closed', async () => {
  const srv = await start();
  const rss0 = rssKiB(srv.proc.pid);
  const rc = rawConn(srv.port);
  await rc.start();
  await rc.write(frame(T.HEADERS, 0, 1, requestBlock('/healthz')));
  const probe = honestProbe(srv.base, 1000, 'during the CONTINUATION flood');
  const sent = await flood(rc, 20000, (k) => frame(T.CONTINUATION, 0, 1, hLit(`x-c${k % 100}`, 'c'.repeat(100))));
  await Promise.race([rc.closedP, sleep(5000)]);
  assert(rc.closed && rc.goaway && rc.goaway.code === ENHANCE_YOUR_CALM, `GOAWAY ENHANCE_YOUR_CALM and close after ${sent} CONTINUATION frames: ${JSON.stringify(rc.goaway)}`);
  await probe;
  const grew = rssKiB(srv.proc.pid) - rss0;
  assert(grew < 32 * 1024, `RSS grew by ${grew} KiB`);
});

test('zero-window stall: a client that grants no window at all has its streams cut and reset; memory stays bounded', async () => {
  const srv = await start(['--max-pending-bytes', '16384']);
  const rss0 = rssKiB(srv.proc.pid);
  const rc = rawConn(srv.port);
  await rc.ready;
  // SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may receive a byte of DATA.
  await rc.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0, 0, 0, 0]))]));
  for (let i = 0; i < 20; i++) await rc.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2 * i + 1, requestBlock(`${HUB}?topic=${enc('urn:zw')}`)));
  const s = connect(srv.base);
  await waitFor(async () => (await metrics(s)).get('courant_subscribers_open') === 20, { message: '20 stalled subscribers' });
  const payload = 'z'.repeat(4000);
  for (let i = 0; i < 10; i++) assert((await publish(s, 'urn:zw', payload)).status === 200, 'publish');
  await waitFor(async () => (await metrics(s)).get('courant_slow_subscriber_disconnects_total') === 20, { message: 'the 20 stalled streams counted slow' });
  // After the 5 s grace they are reset: RST_STREAM for each.
  await waitFor(() => rc.frames.filter((f) => f.type === T.RST_STREAM).length === 20, { timeout: 9000, message: () => `20 RST_STREAM frames (got ${rc.frames.filter((f) => f.type === T.RST_STREAM).length})` });
  await waitFor(async () => (await metrics(s)).get('courant_subscribers_open') === 0, { message: 'no subscriber left' });
  await honestProbe(srv.base, 1000, 'after the stall');
  s.destroy();
  rc.sock.destroy();
  const grew = rssKiB(srv.proc.pid) - rss0;
  assert(grew < 32 * 1024, `RSS grew by ${grew} KiB`);
}, { timeout: 40000 });

test('a POST body over --max-event-bytes on one stream gets 413; the connection goes on', async () => {
  const srv = await start(['--max-event-bytes', '1024']);
  const s = connect(srv.base);
  const big = await request(s, { ':method': 'POST', ':path': HUB, 'content-type': 'application/x-www-form-urlencoded' }, `topic=a&data=${'x'.repeat(5000)}`);
  assert(big.status === 413, `413 for a large body: ${big.status} ${big.body}`);
  const ok = await publish(s, 'a', 'small');
  assert(ok.status === 200, `a small publish afterwards: ${ok.status}`);
  const m = await metrics(s);
  assert(m.get('courant_request_body_bytes') === 0, `the body budget is released: ${m.get('courant_request_body_bytes')}`);
  s.destroy();
});

test('--h2c=0: the preface is not taken as HTTP/2', async () => {
  const srv = await start(['--h2c=0']);
  const rc = rawConn(srv.port);
  await rc.start();
  await Promise.race([rc.closedP, sleep(3000)]);
  assert(!rc.frames.length, 'no HTTP/2 frames');
  assert(rc.closed, 'the connection is closed (HTTP/1 refuses the preface)');
});

await run();
