// hostile.test.mjs - hostile clients: no anonymous peer can stall, starve or
// bloat courant. Each attack of the issue runs against a real courant while
// an HONEST client measures what a user would notice: /healthz latency and
// the publish-to-delivery round trip (publish over HTTP, receive on a
// separate subscriber), plus the server's RSS and CPU where the attack
// targets them. Refusals are checked for their status and their reason in
// /metrics.
//
//   node tests/e2e/hostile.test.mjs
//
// The honest client runs in a worker thread (its own event loop), so the
// attack traffic this process generates does not delay its measurements.
// Per-worker attacks run with --workers 1, so attacker and honest client
// share the one event loop; attacks on shared state run with --workers 2.
//
// Options the binary does not know (an older courant, COURANT_BIN=...) are
// left out with a note: the attack itself still runs, so a test proves its
// defence by failing there. Env: COURANT_BIN (default build/asan/courant),
// COURANT_E2E_ONLY=<substring of a test name>, COURANT_E2E_VERBOSE=1
// (prints what the honest client measured).

import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assert, courantBin, openStream as openMercureStream, postForm, run, skip, sleep, startCourant, test, waitFor } from './lib.mjs';
import { BOOKS, bookTemplates, collidingTopics, costlyTemplates, fnv1a } from './attacks.mjs';

const HUB = '/.well-known/mercure';
const FORM = 'application/x-www-form-urlencoded';
const enc = encodeURIComponent;
const VERBOSE = !!process.env.COURANT_E2E_VERBOSE;
const note = (...a) => VERBOSE && console.error('  #', ...a);

// Bounds an honest client must see while an attack runs. Before the
// defences these attacks stalled it for 0.6 to 3.4 s (ASan build, the
// issue's 30 s with a longer flood); now it sees a few ms, up to ~150 ms on
// this 2-core machine when other engineers' jobs load it.
const HEALTHZ_MAX_MS = 300;
const RTT_MAX_MS = 300;

// ---- the binary's options ------------------------------------------------------

const HELP = (() => {
  const r = spawnSync(courantBin(), ['--help'], { encoding: 'utf8' });
  return `${r.stdout || ''}${r.stderr || ''}`;
})();
const knows = (opt) => new RegExp(`^\\s+${opt}(?=\\s)`, 'm').test(HELP);

/** argv plus the [option, value] pairs this binary knows; the others are noted once. */
function argv(base, extra = []) {
  const out = [...base];
  for (const [opt, value] of extra) {
    if (knows(opt)) out.push(opt, ...(value === undefined ? [] : [value]));
    else note(`this courant has no ${opt}: running without it`);
  }
  return out;
}

// A small quarantine, so memory ASan holds back after free() does not look like growth.
const ASAN_ENV = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:halt_on_error=1'}:quarantine_size_mb=16` };

// ---- /proc --------------------------------------------------------------------------

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** CPU seconds (user + system) the process has used. */
// The server's CPU time, summed over its threads from schedstat (nanoseconds
// of run time), not /proc/PID/stat's utime + stime: those are sampled at
// the clock tick (10 ms), and over 3 s of a server 5 % busy the sampling
// alone swings by a few ticks, 0.2 ms per honest event (a CI run failed a
// +0.2 ms bound on 0.50 against 0.21 ms that way).
function cpuSeconds(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch { /* the thread ended meanwhile */ }
  }
  return ns / 1e9;
}

// ---- small HTTP helpers ---------------------------------------------------------------

/** GET /metrics on a connection of its own (closed after), from `localAddress` if given. */
async function metrics(base, localAddress) {
  const r = await get(Number(new URL(base).port), '/metrics', { localAddress });
  const m = new Map();
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  m.text = r.body;
  return m;
}

const refused = (m, reason) => m.get(`courant_refused_requests_total{reason="${reason}"}`) || 0;

/** POSTs a form on `agent` (or a fresh connection). Resolves {status, body, headers}. */
function post(port, body, { headers = {}, agent = false, pathAndQuery = HUB, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: pathAndQuery, method: 'POST', agent,
        headers: { 'content-type': FORM, 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(timeout, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

const form = (fields) => new URLSearchParams(fields).toString();

/** GET; resolves {status, body, headers}. */
function get(port, pathAndQuery, { headers = {}, timeout = 10000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathAndQuery, headers, agent: false, localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeout, () => req.destroy(new Error(`GET ${pathAndQuery.slice(0, 80)} timed out`)));
  });
}

/**
 * Opens a stream on its own connection; resolves once the head is in:
 * {status, headers, events: [{id, data}], ended, closed (promise), close()}.
 * A refusal resolves too (status != 200, body in .body).
 */
function openStream(port, pathAndQuery, { headers = {}, localAddress, keep = true } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathAndQuery, headers, agent: false, localAddress }, (res) => {
      let buf = '';
      let cur = { id: null, data: [] };
      let endResolve;
      const s = {
        status: res.statusCode,
        headers: res.headers,
        body: '',
        events: [],
        count: 0,
        ended: false,
        closed: new Promise((r) => (endResolve = r)),
        close: () => req.destroy(),
        socket: req.socket,
      };
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (s.status !== 200) {
          s.body += chunk;
          return;
        }
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (cur.data.length) {
              s.count++;
              if (keep) s.events.push({ id: cur.id, data: cur.data.join('\n') });
            }
            cur = { id: null, data: [] };
          } else if (line.startsWith('id: ')) cur.id = line.slice(4);
          else if (line.startsWith('data: ')) cur.data.push(line.slice(6));
        }
      });
      const end = () => {
        s.ended = true;
        endResolve();
      };
      res.on('end', end);
      res.on('error', end);
      res.on('close', end);
      resolve(s);
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`stream ${pathAndQuery.slice(0, 80)} got no head`)));
  });
}

/** Publishes n events (fields from mk(i)) over `conns` keep-alive connections. */
async function publishMany(port, n, mk, { conns = 4 } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  let next = 0;
  const failures = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await post(port, form(mk(i)), { agent });
      if (r.status !== 200) failures.push(`${i}: ${r.status} ${r.body}`);
    }
  };
  await Promise.all(Array.from({ length: conns }, worker));
  agent.destroy();
  assert(failures.length === 0, () => `publishing ${n} events: ${failures.length} failed, e.g. ${failures.slice(0, 3).join('; ')}`);
}

/** A raw socket; resolves once connected. `data` collects what arrives (latin1). */
// `first`: bytes sent at once. courant's listeners accept a connection when
// its first bytes arrive (TCP_DEFER_ACCEPT), a silent one only after about a
// second, so a test of what happens at accept sends something.
function rawSocket(port, { localAddress, first } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    if (first) sock.write(first);
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.data = '';
    sock.closedBy = null;
    sock.gone = new Promise((r) => sock.on('close', () => r()));
    sock.on('data', (d) => (sock.data += d));
    sock.on('error', (e) => (sock.closedBy = sock.closedBy || e.code || String(e)));
    sock.on('end', () => (sock.closedBy = sock.closedBy || 'end'));
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

const statusOf = (raw) => {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : null;
};

// ---- the honest client (a worker thread) ---------------------------------------------
//
// Probes GET /healthz on a fresh connection every `healthzEveryMs` (one at a
// time: a stalled server shows as one long probe), and measures publish-to-
// delivery round trips on `topic`: each event is published on a keep-alive
// connection and the round trip ends when every honest subscriber has it.
// With `freshTopic` each event also has a topic of its own (as a real
// application's items do), so no match cache can help the fan-out.
// A probe or event that never comes counts as `timeoutMs`.

const HONEST_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, topic, subscribers, healthzEveryMs, rttEveryMs, timeoutMs, localAddress, freshTopic } = workerData;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let stopping = false;
const out = { healthz: [], rtt: [], publish: [], errors: [] };

function healthz() {
  return new Promise((resolve) => {
    const t0 = now();
    let done = false;
    const finish = (ms, err) => { if (done) return; done = true; if (err) out.errors.push('healthz: ' + err); resolve(ms); };
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, localAddress }, (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode === 200 ? now() - t0 : timeoutMs, res.statusCode === 200 ? null : 'status ' + res.statusCode));
    });
    req.on('error', (e) => finish(timeoutMs, e.code || e.message));
    req.setTimeout(timeoutMs, () => { req.destroy(); finish(timeoutMs, 'timed out'); });
  });
}

async function probeLoop() {
  while (!stopping) {
    out.healthz.push(await healthz());
    await sleep(healthzEveryMs);
  }
}

const waiting = new Map(); // data -> {t0, left, resolve}
function subscribe() {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/.well-known/mercure?topic=' + encodeURIComponent(topic), agent: false, localAddress }, (res) => {
      if (res.statusCode !== 200) return reject(new Error('honest subscribe answered ' + res.statusCode));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        buf += c;
        let nl;
        while ((nl = buf.indexOf('\\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.startsWith('data: ')) continue;
          const w = waiting.get(line.slice(6));
          if (w && --w.left === 0) { waiting.delete(line.slice(6)); w.resolve(now() - w.t0); }
        }
      });
      res.on('close', () => { if (!stopping) out.errors.push('honest stream ended'); });
      resolve(req);
    });
    req.on('error', (e) => reject(e));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
function publish(data, n) {
  return new Promise((resolve) => {
    let body = 'topic=' + encodeURIComponent(topic) + '&data=' + encodeURIComponent(data);
    if (freshTopic) body += '&topic=' + encodeURIComponent('https://honest.example/items/' + n);
    const t0 = now();
    const req = http.request({ host: '127.0.0.1', port, path: '/.well-known/mercure', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => { out.publish.push(now() - t0); if (res.statusCode !== 200) out.errors.push('publish answered ' + res.statusCode); resolve(); });
    });
    req.on('error', (e) => { out.errors.push('publish: ' + (e.code || e.message)); resolve(); });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timed out')));
    req.end(body);
  });
}

async function rttLoop() {
  for (let n = 0; !stopping; n++) {
    const data = 'rtt-' + n + '-' + Math.random().toString(36).slice(2);
    const arrived = new Promise((resolve) => waiting.set(data, { t0: now(), left: subscribers, resolve }));
    const timer = new Promise((resolve) => setTimeout(() => resolve(timeoutMs), timeoutMs));
    await publish(data, n);
    const ms = await Promise.race([arrived, timer]);
    if (ms >= timeoutMs) { waiting.delete(data); out.errors.push('event ' + n + ' not delivered within ' + timeoutMs + ' ms'); }
    out.rtt.push(ms);
    await sleep(rttEveryMs);
  }
}

(async () => {
  const streams = [];
  try {
    for (let i = 0; i < subscribers; i++) streams.push(await subscribe());
  } catch (e) {
    parentPort.postMessage({ type: 'error', error: String(e) });
    return;
  }
  await sleep(50);
  parentPort.postMessage({ type: 'ready' });
  const stopped = new Promise((r) => parentPort.on('message', (m) => { if (m === 'stop') { stopping = true; r(); } }));
  const loops = [probeLoop(), rttLoop()];
  await stopped;
  await Promise.all(loops);
  for (const s of streams) s.destroy();
  agent.destroy();
  parentPort.postMessage({ type: 'done', out });
})();
`;

/**
 * Starts the honest client against `server`; resolves once its subscribers
 * are in. stop() resolves its measurements.
 */
async function honestClient(server, { topic = 'urn:honest:rtt', subscribers = 1, healthzEveryMs = 40, rttEveryMs = 60,
  timeoutMs = 5000, localAddress, freshTopic = false } = {}) {
  const w = new Worker(HONEST_SRC, {
    eval: true,
    workerData: { port: server.port, topic, subscribers, healthzEveryMs, rttEveryMs, timeoutMs, localAddress, freshTopic },
  });
  const msgs = [];
  let wake = null;
  w.on('message', (m) => {
    msgs.push(m);
    if (wake) wake();
  });
  w.on('error', (e) => {
    msgs.push({ type: 'error', error: String(e) });
    if (wake) wake();
  });
  const next = async (type, ms) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = msgs.findIndex((m) => m.type === type || m.type === 'error');
      if (i >= 0) {
        const m = msgs.splice(i, 1)[0];
        if (m.type === 'error') throw new Error(`honest client: ${m.error}`);
        return m;
      }
      if (Date.now() > deadline) throw new Error(`honest client: no ${type} within ${ms} ms`);
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  await next('ready', 10000);
  return {
    async stop() {
      w.postMessage('stop');
      try {
        return (await next('done', timeoutMs * 2 + 2000)).out;
      } finally {
        await w.terminate();
      }
    },
  };
}

const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * p))];
};
const fmt = (xs) => `n=${xs.length} p50=${pct(xs, 0.5).toFixed(1)} p99=${pct(xs, 0.99).toFixed(1)} max=${Math.max(...xs).toFixed(1)} ms`;

/** What the honest client saw must stay within the bounds. */
function assertHonest(out, label, { healthzMax = HEALTHZ_MAX_MS, rttMax = RTT_MAX_MS, minSamples = 5 } = {}) {
  const summary = `${label}: healthz ${fmt(out.healthz)}; round trip ${fmt(out.rtt)}; publish answer ${fmt(out.publish)}` +
    (out.errors.length ? `; errors: ${out.errors.slice(0, 5).join(', ')}` : '');
  note(summary);
  assert(!(Math.max(...out.healthz) >= healthzMax), () => `/healthz took up to ${Math.max(...out.healthz).toFixed(0)} ms (bound ${healthzMax}): ${summary}`);
  assert(!(Math.max(...out.rtt) >= rttMax), () => `publish-to-delivery took up to ${Math.max(...out.rtt).toFixed(0)} ms (bound ${rttMax}): ${summary}`);
  assert(out.errors.length === 0, () => `the honest client had errors: ${summary}`);
  assert(out.healthz.length >= minSamples && out.rtt.length >= minSamples, () => `too few honest samples: ${summary}`);
}

/** Runs `attack()` while the honest client measures; returns [attack result, honest stats]. */
async function underAttack(server, attack, honestOpts = {}) {
  const honest = await honestClient(server, honestOpts);
  let result;
  let error = null;
  try {
    await sleep(150); // a few samples before the attack
    result = await attack();
  } catch (e) {
    error = e;
  }
  const out = await honest.stop();
  if (error) throw error;
  return [result, out];
}

// ==== 1. Freeze: template matching over a long history ====================================

test('freeze: 64 URI templates with lastEventID=earliest over 10,000 events stall nobody', async () => {
  const HISTORY = 10000;
  const server = await startCourant(argv(['--workers', '1', '--history', String(HISTORY + 2000), '--heartbeat', '0'], [
    ['--max-topics-per-subscribe', '64'], ['--max-templates-per-subscriber', '64'], ['--max-replay', '0'],
  ]));
  await publishMany(server.port, HISTORY, (i) => ({ topic: `${BOOKS}${i}`, data: `book ${i}` }));
  const q = `${HUB}?${bookTemplates(64).map((t) => `topic=${enc(t)}`).join('&')}&lastEventID=earliest`;

  const [got, out] = await underAttack(server, async () => {
    // Three attackers one after the other, each replaying the whole history.
    const counts = [];
    for (let a = 0; a < 3; a++) {
      const s = await openStream(server.port, q, { keep: false });
      assert(s.status === 200, () => `the attacker (limits raised) was refused: ${s.status} ${s.body}`);
      await waitFor(() => s.count >= HISTORY, { timeout: 30000, interval: 20, message: () => `the replay (${s.count}/${HISTORY})` });
      counts.push(s.count);
      s.close();
    }
    return counts;
  });
  assert(got.every((c) => c === HISTORY), () => `replayed ${got.join(', ')} of ${HISTORY}`);
  assertHonest(out, 'during the replays');
}, { timeout: 90000 });

test('freeze (default limits): 16 costly templates per subscribe over the default history stall nobody', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0']);
  await publishMany(server.port, 1000, (i) => ({ topic: `${BOOKS}${i}`, data: `book ${i}` }));
  const q = `${HUB}?${costlyTemplates(15).map((t) => `topic=${enc(t)}`).join('&')}&topic=${enc(`${BOOKS}{id}`)}&lastEventID=earliest`;
  const [got, out] = await underAttack(server, async () => {
    // The attacker subscribes again as soon as a replay is done, for 1.5 s
    // at least: with lazy DFAs one replay takes 5 to 40 ms (ASan, each with
    // its templates compiled and their DFAs built anew; 1.8 s as NFAs), too
    // short for the honest client to take enough samples.
    const t0 = Date.now();
    const ms = [];
    while (Date.now() - t0 < 1500) {
      const t1 = Date.now();
      const s = await openStream(server.port, q, { keep: false });
      assert(s.status === 200, () => `the attacker was refused: ${s.status} ${s.body}`);
      await waitFor(() => s.count >= 900, { timeout: 30000, interval: 20, message: () => `the replay (${s.count})` });
      s.close();
      ms.push(Date.now() - t1);
    }
    return ms;
  });
  note(`${got.length} replays took ${got.join(', ')} ms`);
  assertHonest(out, 'during the replays');
}, { timeout: 90000 });

test('freeze: by default 64 templates are refused (400) and counted as bad_request', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0']); // the default limits
  const before = refused(await metrics(server.base), 'bad_request');
  const q64 = `${HUB}?${bookTemplates(64).map((t) => `topic=${enc(t)}`).join('&')}&lastEventID=earliest`;
  const r = await get(server.port, q64);
  assert(r.status === 400 && /too many/.test(r.body), () => `64 selectors answered ${r.status}: ${r.body}`);
  const q17 = `${HUB}?${bookTemplates(17).map((t) => `topic=${enc(t)}`).join('&')}`;
  const r17 = await get(server.port, q17);
  assert(r17.status === 400 && /templates/.test(r17.body), () => `17 templates answered ${r17.status}: ${r17.body}`);
  const s16 = await openStream(server.port, `${HUB}?${bookTemplates(16).map((t) => `topic=${enc(t)}`).join('&')}`);
  assert(s16.status === 200, () => `16 templates answered ${s16.status}`);
  s16.close();
  const after = refused(await metrics(server.base), 'bad_request');
  assert(after - before === 2, () => `bad_request refusals went ${before} -> ${after}, expected +2`);
});

// ==== 2. Fan-out cost set by attackers ====================================================

/** Opens `conns` streams with the given selectors; asserts each was accepted. */
async function holdStreams(port, conns, selectorsFor) {
  const streams = [];
  for (let c = 0; c < conns; c++) {
    const s = await openStream(port, `${HUB}?${selectorsFor(c).map((t) => `topic=${enc(t)}`).join('&')}`, { keep: false });
    if (s.status !== 200) {
      streams.forEach((x) => x.close());
      throw new Error(`attacker stream ${c} was refused: ${s.status} ${s.body}`);
    }
    streams.push(s);
  }
  return streams;
}

/** Server CPU per honest event over 3 s of honest traffic: {cpuMsPerEvent, events, out}. */
async function fanoutCost(server, honestOpts = {}) {
  const pid = server.proc.pid;
  const honest = await honestClient(server, { freshTopic: true, rttEveryMs: 20, ...honestOpts });
  const cpu0 = cpuSeconds(pid);
  await sleep(3000);
  const cpu1 = cpuSeconds(pid);
  const out = await honest.stop();
  const events = out.rtt.length;
  return { cpuMsPerEvent: events ? ((cpu1 - cpu0) * 1000) / events : NaN, events, out };
}

test('fan-out: four connections with 64 templates each do not make every event expensive', async () => {
  const server = await startCourant(argv(['--workers', '1', '--heartbeat', '0'], [
    ['--max-topics-per-subscribe', '64'], ['--max-templates-per-subscriber', '64'],
  ]));
  const base = await fanoutCost(server);
  // Templates under the honest site's origin, but not under its items: a
  // literal-prefix index never tries them on the honest topics.
  const streams = await holdStreams(server.port, 4, (c) => Array.from({ length: 64 },
    (_, k) => `https://honest.example/chapters/{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}/${c}/${k}`));
  const attacked = await fanoutCost(server);
  streams.forEach((s) => s.close());
  note(`CPU per honest event: ${base.cpuMsPerEvent.toFixed(2)} ms without templates, ${attacked.cpuMsPerEvent.toFixed(2)} ms with 4 x 64`);
  assertHonest(attacked.out, 'with 4 x 64 templates held');
  assert(attacked.cpuMsPerEvent < base.cpuMsPerEvent + 0.2,
    () => `one event costs ${attacked.cpuMsPerEvent.toFixed(2)} ms of server CPU with 256 templates held, ${base.cpuMsPerEvent.toFixed(2)} ms without`);
}, { timeout: 60000 });

test('fan-out: a spent matching budget defers template subscribers to history; nothing lost, doubled or reordered', async () => {
  // One step a turn: almost every template match is deferred, so these
  // subscribers read nearly every event from history instead of live.
  const server = await startCourant(['--workers', '1', '--heartbeat', '0', '--match-turn-budget', '1']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const topicOf = (i) => `https://honest.example/items/${i % 3}`;
  const subs = [
    openMercureStream(server.base, 'https://honest.example/items/{id}'),
    openMercureStream(server.base, '{+any}'),
    openMercureStream(server.base, 'https://honest.example/items/1'), // exact: never deferred
  ];
  await Promise.all(subs.map((s) => s.opened));
  const N = 60;
  for (let i = 0; i < N; i++) {
    const r = await postForm(server.base, topicOf(i), `e${i}`, agent);
    assert(r.status === 200, `publish ${i}: ${r.status}`);
  }
  const all = Array.from({ length: N }, (_, i) => `e${i}`);
  const ones = all.filter((_, i) => i % 3 === 1);
  for (const [s, want] of [[subs[0], all], [subs[1], all], [subs[2], ones]]) {
    await waitFor(() => s.events.length >= want.length, { timeout: 10000, message: () => `got ${s.events.length} of ${want.length}` });
    await sleep(100); // nothing more may come
    assert(s.events.map((e) => e.data).join() === want.join(), () => `order or count: ${s.events.map((e) => e.data).join()}`);
  }
  assert(server.stderrLines.some((l) => /matching budget of a turn spent/.test(l)), 'the budget was spent (logged)');
  subs.forEach((s) => s.close());
  agent.destroy();
}, { timeout: 60000 });

// With the default limits, anyone may hold templates with no literal prefix
// (candidates for every topic). One that keeps ~300 NFA states alive per
// byte cost ~30 us per 31-byte topic as an NFA simulation (release build),
// so 16 connections x 16 of them made every event cost 8.5 ms of CPU
// (release; 28 ms with ASan, against 0.14 ms without them), and
// --max-templates-per-worker (10,000) x 30 us would be ~0.3 s per event per
// worker. Honest topics are fresh per event here, so no match cache helps.
// What this proves: each template's lazy DFA (selector.c) learns the few
// states such topics lead through, after which a match is one table load
// per topic byte (43 ns release), so the 256 templates add what their
// DFAs cost to build, amortized, plus a walk of each topic per template:
// measured over 16 runs, 0.07 to 0.23 ms per event with ASan (typically
// 0.28 ms against 0.14 ms without them), once 0.37 ms with another
// engineer's attack tests loading both cores; none measurable in a release
// build (0.14 against 0.14 ms). The bound, base + 0.5 ms, is the one this
// test always had: it leaves room for a loaded machine and still fails
// against the plain NFA by a factor of 50 (main before the DFA: 28 ms).
test('fan-out (default limits): costly unprefixed templates on many connections', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0']);
  const base = await fanoutCost(server);
  const streams = await holdStreams(server.port, 16, (c) => costlyTemplates(16).map((t) => `${t}/${c}`));
  const attacked = await fanoutCost(server);
  streams.forEach((s) => s.close());
  note(`CPU per honest event: ${base.cpuMsPerEvent.toFixed(2)} ms without templates (${base.events} events), ${attacked.cpuMsPerEvent.toFixed(2)} ms with 16 x 16 costly (${attacked.events} events)`);
  assertHonest(attacked.out, 'with 16 x 16 costly templates held');
  assert(attacked.cpuMsPerEvent < base.cpuMsPerEvent + 0.5,
    () => `one event costs ${attacked.cpuMsPerEvent.toFixed(2)} ms of server CPU with 256 costly templates held, ${base.cpuMsPerEvent.toFixed(2)} ms without`);
}, { timeout: 60000 });

// ==== 3. Read starvation: a subscriber that keeps sending =================================

/** Writes `chunk` as fast as the socket takes it until stopped or closed; resolves the bytes written. */
function flood(sock, chunk, stopAt) {
  return new Promise((resolve) => {
    let sent = 0;
    const pump = () => {
      while (!sock.destroyed && Date.now() < stopAt) {
        sent += chunk.length;
        if (!sock.write(chunk)) return sock.once('drain', pump);
      }
      resolve(sent);
    };
    sock.on('close', () => resolve(sent));
    pump();
  });
}

test('read starvation: subscribers that keep sending bytes are cut off and starve nobody', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0']);
  const ATTACK_MS = 3000;
  const [results, out] = await underAttack(server, async () => {
    // Four attackers; each subscribes, then sends as fast as the socket
    // takes it, and when cut off comes back and does it again.
    const stopAt = Date.now() + ATTACK_MS;
    const chunk = Buffer.alloc(8 * 1024, 'x');
    const attacker = async (i) => {
      const r = { rounds: 0, cut: 0, sent: 0, statuses: new Set() };
      while (Date.now() < stopAt) {
        const sock = await rawSocket(server.port);
        sock.write(`GET ${HUB}?topic=urn:attacker:${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
        await waitFor(() => /\r\n\r\n/.test(sock.data) || sock.closedBy, { timeout: 5000, interval: 5, message: 'the attacker stream head' });
        r.statuses.add(statusOf(sock.data));
        r.sent += await flood(sock, chunk, stopAt);
        r.rounds++;
        if (sock.closedBy !== null || sock.destroyed) r.cut++;
        sock.destroy();
      }
      return r;
    };
    return Promise.all([0, 1, 2, 3].map(attacker));
  });
  const summary = results.map((r) => `${r.rounds} rounds, ${r.cut} cut off, ${(r.sent / 1048576).toFixed(1)} MiB sent, statuses ${[...r.statuses]}`).join('; ');
  note(`attackers: ${summary}`);
  assertHonest(out, 'while subscribers flood their connections');
  assert(results.every((r) => r.statuses.size === 1 && r.statuses.has(200)), () => `attacker streams: ${summary}`);
  assert(results.every((r) => r.cut >= 1), () => `an attacker that kept sending was never cut off: ${summary}`);
}, { timeout: 30000 });

// ==== 4. Body bloat ===========================================================================

const MiB = 1048576;

/** Samples the server's RSS every 50 ms until stopped; stop() resolves the largest, in KiB. */
function rssSampler(pid) {
  let max = rssKb(pid);
  const t = setInterval(() => {
    try {
      max = Math.max(max, rssKb(pid));
    } catch {
      /* the process is gone: the test sees that elsewhere */
    }
  }, 50);
  return { stop: () => (clearInterval(t), max) };
}

/** Sends `head` and then `bodyBytes` of body on a fresh socket and holds it open; resolves the socket once all was written or the server closed. */
async function sendBody(port, head, bodyBytes, body) {
  const sock = await rawSocket(port);
  sock.write(head);
  for (let left = bodyBytes; left > 0 && !sock.destroyed; left -= body.length) sock.write(left >= body.length ? body : body.subarray(0, left));
  await new Promise((resolve) => {
    if (sock.writableLength === 0) return resolve();
    sock.once('drain', resolve);
    sock.once('close', resolve);
    setTimeout(resolve, 10000);
  });
  return sock;
}

test('body bloat: 400 GET /healthz with 1 MiB bodies are refused at the head (413); RSS stays flat', async () => {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0'], { env: ASAN_ENV });
  const pid = server.proc.pid;
  await sleep(300);
  const idle = rssKb(pid);
  const before = await metrics(server.base);
  const body = Buffer.alloc(MiB, 'b');
  let peak = 0;
  let cpu = 0;
  const [socks, out] = await underAttack(server, async () => {
    const rss = rssSampler(pid);
    const cpu0 = cpuSeconds(pid);
    const socks = [];
    for (let batch = 0; batch < 8; batch++) {
      socks.push(...(await Promise.all(Array.from({ length: 50 }, () =>
        sendBody(server.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB}\r\n\r\n`, MiB, body)))));
    }
    await sleep(300);
    cpu = cpuSeconds(pid) - cpu0;
    peak = rss.stop();
    return socks;
  });
  const statuses = socks.map((s) => statusOf(s.data));
  socks.forEach((s) => s.destroy());
  const after = await metrics(server.base);
  const grew = (peak - idle) / 1024;
  note(`RSS idle ${(idle / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (+${grew.toFixed(1)} MiB); statuses ${[...new Set(statuses)]}; server CPU ${cpu.toFixed(2)} s`);
  assertHonest(out, 'while 400 MiB of bodies arrive');
  assert(grew <= 64, () => `RSS grew by ${grew.toFixed(1)} MiB (idle ${(idle / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB) under 400 x 1 MiB bodies`);
  assert(statuses.every((st) => st === 413), () => `answers to GET with a body: ${JSON.stringify(statuses.reduce((m, st) => ((m[st] = (m[st] || 0) + 1), m), {}))}`);
  const n = refused(after, 'body_too_large') - refused(before, 'body_too_large');
  assert(n === 400, () => `body_too_large refusals went up by ${n}, expected 400`);
}, { timeout: 60000 });

/** Closes the attacker's stalled sockets; what they were answered (status
 * or null each, and a count per status) and the RSS growth in MiB. */
function closeStalled(socks, idleKb, peakKb) {
  const statuses = socks.map((s) => statusOf(s.data));
  socks.forEach((s) => s.destroy());
  const counts = JSON.stringify(statuses.reduce((m, st) => ((m[st] = (m[st] || 0) + 1), m), {}));
  return { statuses, counts, grew: (peakKb - idleKb) / 1024 };
}

test('body bloat: publish bodies in flight are capped by --max-body-bytes-total (32 MiB here, 503); RSS stays bounded', async () => {
  const CAP = 32 * MiB;
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0'], [['--max-body-bytes-total', String(CAP)]]), { env: ASAN_ENV });
  const pid = server.proc.pid;
  await sleep(300);
  const idle = rssKb(pid);
  const before = await metrics(server.base);
  const body = Buffer.alloc(64 * 1024, 'd');
  let peak = 0;
  let inFlight = 0;
  // 200 publishers each send 900 KiB of a 1 MiB body and stall: 175 MiB
  // would sit in buffers without a global cap.
  const [socks, out] = await underAttack(server, async () => {
    const rss = rssSampler(pid);
    const socks = [];
    for (let batch = 0; batch < 4; batch++) {
      socks.push(...(await Promise.all(Array.from({ length: 50 }, () =>
        sendBody(server.port, `POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${MiB}\r\n\r\n`, 900 * 1024, body)))));
    }
    await sleep(500);
    inFlight = (await metrics(server.base)).get('courant_request_body_bytes');
    peak = rss.stop();
    return socks;
  });
  const { statuses, counts, grew } = closeStalled(socks, idle, peak);
  const after = await metrics(server.base);
  note(`RSS idle ${(idle / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (+${grew.toFixed(1)} MiB); answers ${counts}; body bytes in flight ${inFlight}`);
  assertHonest(out, 'while 200 stalled publish bodies arrive');
  assert(grew <= 64, () => `RSS grew by ${grew.toFixed(1)} MiB (idle ${(idle / 1024).toFixed(1)}, peak ${(peak / 1024).toFixed(1)}); answers ${counts}`);
  const n503 = statuses.filter((st) => st === 503).length;
  assert(n503 > 0 && statuses.every((st) => st === 503 || st === null), () => `answers to the stalled publishes: ${counts}`);
  assert(inFlight <= CAP, () => `courant_request_body_bytes = ${inFlight}, cap ${CAP}`);
  const n = refused(after, 'unavailable') - refused(before, 'unavailable');
  assert(n === n503, () => `unavailable refusals went up by ${n}, ${n503} answers were 503`);
}, { timeout: 60000 });

test('head bloat: unfinished request heads are capped by --max-head-bytes-total (4 MiB here, 503); RSS stays bounded', async () => {
  const CAP = 4 * MiB;
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0'], [['--max-head-bytes-total', String(CAP)]]), { env: ASAN_ENV });
  const pid = server.proc.pid;
  await sleep(300);
  const idle = rssKb(pid);
  const before = await metrics(server.base);
  // 2,000 connections each send 15 KiB of a head (within --max-header-bytes,
  // 16 KiB) and stall: ~32 MiB of read buffers without a global cap.
  const part = Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(15 * 1024)}`);
  let peak = 0;
  let inFlight = 0;
  const [socks, out] = await underAttack(server, async () => {
    const rss = rssSampler(pid);
    const socks = [];
    for (let batch = 0; batch < 20; batch++) {
      socks.push(...(await Promise.all(Array.from({ length: 100 }, async () => {
        const sock = await rawSocket(server.port);
        sock.write(part);
        return sock;
      }))));
    }
    await sleep(800);
    inFlight = (await metrics(server.base)).get('courant_request_head_bytes');
    peak = rss.stop();
    return socks;
  });
  const { statuses, counts, grew } = closeStalled(socks, idle, peak);
  const after = await metrics(server.base);
  note(`RSS idle ${(idle / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (+${grew.toFixed(1)} MiB); answers ${counts}; head bytes in flight ${inFlight}`);
  assertHonest(out, 'while 2,000 stalled request heads arrive');
  const n503 = statuses.filter((st) => st === 503).length;
  assert(n503 >= 1000 && statuses.every((st) => st === 503 || st === null), () => `answers to the stalled heads: ${counts}`);
  assert(inFlight <= CAP && inFlight > CAP / 2, () => `courant_request_head_bytes = ${inFlight}, cap ${CAP}`);
  // Measured here (ASan, 16 MiB quarantine): +66 MiB without the cap, +27
  // MiB with it (the 2,000 connections themselves and freed buffers in the
  // quarantine make up the rest).
  assert(grew <= 40, () => `RSS grew by ${grew.toFixed(1)} MiB (idle ${(idle / 1024).toFixed(1)}, peak ${(peak / 1024).toFixed(1)}); answers ${counts}`);
  const n = refused(after, 'unavailable') - refused(before, 'unavailable');
  assert(n === n503, () => `unavailable refusals went up by ${n}, ${n503} answers were 503`);
  const drained = await waitFor(async () => (await metrics(server.base)).get('courant_request_head_bytes') === 0, { timeout: 5000, message: 'head bytes back to 0 once the attackers left' });
  assert(drained, 'head bytes back to 0');
}, { timeout: 60000 });

// ==== 5. Quadratic heads ======================================================================

/** Writes `total` bytes of a request head in `seg`-byte segments, one segment per timer tick. */
async function trickleHead(port, total, seg) {
  const sock = await rawSocket(port);
  const start = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: `;
  const end = '\r\n\r\n';
  const head = Buffer.from(start + 'p'.repeat(total - start.length - end.length) + end);
  for (let off = 0; off < head.length && !sock.destroyed; off += seg) {
    sock.write(head.subarray(off, off + seg));
    await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor(() => statusOf(sock.data) || sock.closedBy, { timeout: 10000, interval: 10, message: 'the answer to a trickled head' });
  sock.destroy();
  return statusOf(sock.data);
}

test('quadratic heads: 20 connections trickling 256 KiB heads in 128-byte segments cost linear CPU', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0', '--max-header-bytes', String(MiB)]);
  const pid = server.proc.pid;
  let cpu = 0;
  let wall = 0;
  const [statuses, out] = await underAttack(server, async () => {
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    const st = await Promise.all(Array.from({ length: 20 }, () => trickleHead(server.port, 256 * 1024, 128)));
    cpu = cpuSeconds(pid) - cpu0;
    wall = Date.now() - t0;
    return st;
  });
  note(`trickled 20 x 256 KiB heads in ${wall} ms; server CPU ${cpu.toFixed(2)} s`);
  assertHonest(out, 'while heads trickle in');
  assert(statuses.every((st) => st === 200), () => `answers to the trickled heads: ${statuses}`);
  const bound = 0.8; // measured: 0.2 s (ASan or not); the old parser spent 1.7 s (2.1 s with ASan)
  assert(cpu < bound, () => `the server spent ${cpu.toFixed(2)} s of CPU on 20 trickled 256 KiB heads (bound ${bound} s)`);
}, { timeout: 60000 });

// ==== 6. Hash flooding ========================================================================
//
// 60,000 topics with one FNV-1a-32 hash (attacks.mjs builds them by chaining
// colliding block pairs): what a table hashed with FNV-1a probes
// quadratically, a keyed hash spreads.

/** Subscribes `topics` in groups of `per` over as many connections (`parallel` at a time); resolves {streams, ms}. */
async function subscribeAll(port, topics, per, parallel = 32) {
  const groups = [];
  for (let i = 0; i < topics.length; i += per) groups.push(topics.slice(i, i + per));
  const streams = [];
  let next = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (next < groups.length) {
      const g = groups[next++];
      const s = await openStream(port, `${HUB}?${g.map((t) => `topic=${enc(t)}`).join('&')}`, { keep: false });
      streams.push(s);
      if (s.status !== 200) throw new Error(`a subscribe was refused: ${s.status} ${s.body}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } catch (e) {
    streams.forEach((s) => s.close());
    throw e;
  }
  return { streams, ms: Date.now() - t0 };
}

test('hash flooding: 60,000 FNV-1a-colliding topics subscribe as fast as random ones and stall nobody', async () => {
  const N = 60000;
  const t0 = Date.now();
  const evil = collidingTopics('https://example.com/t/', N);
  const built = Date.now() - t0;
  assert(new Set(evil).size === N, 'the colliding topics are distinct');
  const h0 = fnv1a(2166136261, Buffer.from(evil[0]));
  assert(evil.every((t) => fnv1a(2166136261, Buffer.from(t)) === h0), 'the topics all have one FNV-1a hash');
  const random = evil.map((t, i) => `https://example.com/t/${crypto.createHash('sha256').update(`${i}`).digest('hex').slice(0, t.length - 22)}`);

  const server = await startCourant(['--workers', '1', '--heartbeat', '0']);
  const control = await subscribeAll(server.port, random, 64);
  control.streams.forEach((s) => s.close());
  await waitFor(async () => (await metrics(server.base)).get('courant_subscribers_open') === 0, { timeout: 10000, message: 'the control streams to close' });

  const [attack, out] = await underAttack(server, () => subscribeAll(server.port, evil, 64));
  attack.streams.forEach((s) => s.close());
  note(`built ${N} colliding topics in ${built} ms; subscribing them took ${attack.ms} ms, ${N} random ones ${control.ms} ms`);
  assertHonest(out, 'while colliding topics subscribe');
  assert(attack.ms < 2 * control.ms + 1000, () => `subscribing ${N} colliding topics took ${attack.ms} ms, random ones ${control.ms} ms`);
}, { timeout: 120000 });

// ==== 7. Open relay: keyless publish only from the host itself ==============================

const b64u = (b) => Buffer.from(b).toString('base64url');
function hs256(claims, key) {
  const data = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${b64u(crypto.createHmac('sha256', key).update(data).digest())}`;
}
const PUB_KEY = 'hostile-test-publisher-secret-0123456789';
const SUB_KEY = 'hostile-test-subscriber-secret-9876543210';

test('open relay: without a publisher key, loopback peers relaying for browsers or proxies may not publish', async () => {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0']);
  const watcher = await openStream(server.port, `${HUB}?topic=*`);
  const before = await metrics(server.base);
  const host = `127.0.0.1:${server.port}`;
  const cases = [
    ['plain loopback publish', {}, 200],
    ['Origin of the request\'s own host', { origin: `http://${host}` }, 200],
    ['Origin of another site', { origin: 'http://evil.example' }, 403],
    ['Origin "null"', { origin: 'null' }, 403],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, 403],
    ['Forwarded', { forwarded: 'for=203.0.113.9' }, 403],
    ['X-Forwarded-For', { 'x-forwarded-for': '203.0.113.9' }, 403],
    ['Via', { via: '1.1 proxy.example' }, 403],
  ];
  const wrong = [];
  for (const [what, headers, want] of cases) {
    const r = await post(server.port, form({ topic: 'urn:relay', data: what }), { headers });
    if (r.status !== want) wrong.push(`${what}: ${r.status} (want ${want}) ${r.body.trim()}`);
  }
  await sleep(200);
  watcher.close();
  const after = await metrics(server.base);
  assert(wrong.length === 0, () => `keyless publishes:\n  ${wrong.join('\n  ')}`);
  const published = watcher.events.map((e) => e.data);
  assert(published.length === 2 && published.includes('plain loopback publish'), () => `events published: ${JSON.stringify(published)}`);
  const n = refused(after, 'forbidden') - refused(before, 'forbidden');
  assert(n === 6, () => `forbidden refusals went up by ${n}, expected 6`);
});

test('open relay: a cookie token is checked against --publish-origin even when it lists "*" (CSRF)', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0', '--publisher-jwt-key', PUB_KEY, '--publish-origin', '*']);
  const token = hs256({ exp: Math.floor(Date.now() / 1000) + 600, mercure: { publish: ['*'] } }, PUB_KEY);
  const body = form({ topic: 'urn:csrf', data: 'x' });
  const byCookie = await post(server.port, body, { headers: { cookie: `mercureAuthorization=${token}`, origin: 'http://evil.example' } });
  assert(byCookie.status === 403, () => `a cross-site publish carrying the cookie answered ${byCookie.status}: ${byCookie.body}`);
  const byHeader = await post(server.port, body, { headers: { authorization: `Bearer ${token}`, origin: 'http://evil.example' } });
  assert(byHeader.status === 200, () => `a publish with the token in Authorization answered ${byHeader.status}: ${byHeader.body}`);
});

// ==== 8. Rate limits ==========================================================================

// The attacker plays 127.0.0.1; the honest client 127.0.0.2 (loopback,
// limited only with --limit-loopback, as a remote client is).
const HONEST_ADDR = '127.0.0.2';

test('rate limits: connections per client address (429 at accept, Retry-After), others still get in', async () => {
  const LIMIT = 16;
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0'], [['--limit-loopback'], ['--max-connections-per-ip', String(LIMIT)]]));
  const before = await metrics(server.base, HONEST_ADDR);
  const [res, out] = await underAttack(server, async () => {
    // Each sends the first byte of a request, as a client does at once.
    const socks = await Promise.all(Array.from({ length: 200 }, () => rawSocket(server.port, { first: 'G' })));
    await sleep(300);
    const answered = socks.map((s) => s.data);
    const held = socks.filter((s) => !s.data && !s.closedBy && !s.destroyed);
    // One held connection leaves: one more may come in.
    held[0].destroy();
    await sleep(100);
    const again = await rawSocket(server.port, { first: 'G' });
    await sleep(200);
    const againRefused = !!again.data;
    socks.forEach((s) => s.destroy());
    again.destroy();
    return { answered, held: held.length, againRefused };
  }, { localAddress: HONEST_ADDR });
  const after = await metrics(server.base, HONEST_ADDR);
  const refusals = res.answered.filter((d) => d);
  note(`${res.held} held, ${refusals.length} refused at accept`);
  assertHonest(out, 'while one address opens 200 connections');
  assert(res.held === LIMIT, () => `${res.held} connections held from one address, limit ${LIMIT}`);
  assert(refusals.length === 200 - LIMIT && refusals.every((d) => statusOf(d) === 429 && /\r\nRetry-After: \d+\r\n/i.test(d)),
    () => `refusals: ${refusals.length}, e.g. ${JSON.stringify(refusals[0])}`);
  assert(!res.againRefused, 'a connection after one left was refused');
  const n = refused(after, 'rate_limited') - refused(before, 'rate_limited');
  assert(n === 200 - LIMIT, () => `rate_limited refusals went up by ${n}, expected ${200 - LIMIT}`);
  assert(before.get('courant_limit_keys{table="connections_per_ip"}') !== undefined, 'courant_limit_keys is in /metrics');
}, { timeout: 30000 });

test('rate limits: publishes per second per address (429, Retry-After); another address is not slowed', async () => {
  const RATE = 5;
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0'], [['--limit-loopback'], ['--publish-rate', String(RATE)]]));
  const before = await metrics(server.base, HONEST_ADDR);
  let elapsed = 0;
  const [statuses, out] = await underAttack(server, async () => {
    // As fast as one keep-alive connection goes, for 1.5 s.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const st = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) {
      const r = await post(server.port, form({ topic: 'urn:flood', data: `${st.length}` }), { agent });
      st.push(r.status === 429 ? `429 retry-after=${r.headers['retry-after']}` : String(r.status));
    }
    elapsed = (Date.now() - t0) / 1000;
    agent.destroy();
    return st;
  }, { localAddress: HONEST_ADDR, rttEveryMs: 300 }); // the honest publisher stays under the rate
  const after = await metrics(server.base, HONEST_ADDR);
  assertHonest(out, 'while one address floods publishes', { minSamples: 4 });
  const ok = statuses.filter((s) => s === '200').length;
  const limited = statuses.filter((s) => /^429 retry-after=[1-9]/.test(s)).length;
  const most = 2 * RATE + Math.ceil(RATE * elapsed) + 1; // the burst, plus what refills meanwhile
  note(`${statuses.length} publishes in ${elapsed} s: ${ok} accepted, ${limited} refused`);
  assert(ok >= 2 * RATE && ok <= most && ok + limited === statuses.length && limited > 0,
    () => `${statuses.length} publishes in ${elapsed} s at --publish-rate ${RATE}: ${ok} accepted (at most ${most}), ${limited} refused; ${[...new Set(statuses)].join(', ')}`);
  const n = refused(after, 'rate_limited') - refused(before, 'rate_limited');
  assert(n === limited, () => `rate_limited went up by ${n}, ${limited} publishes got 429`);
  assert(after.get('courant_limit_keys{table="publish_rate"}') >= 2, () => `publish_rate keys: ${after.get('courant_limit_keys{table="publish_rate"}')}`);
}, { timeout: 30000 });

/** `n` subscribes in a row from one address; resolves their statuses ('429 retry-after=N' for refusals). */
async function subscribeBurst(port, n, { headers = {}, localAddress } = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const s = await openStream(port, `${HUB}?topic=urn:burst`, { headers, localAddress });
    out.push(s.status === 429 ? `429 retry-after=${s.headers['retry-after']}` : String(s.status));
    s.close();
  }
  return out;
}

test('rate limits: subscribes per second per address (429, Retry-After)', async () => {
  const RATE = 5;
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0'], [['--limit-loopback'], ['--subscribe-rate', String(RATE)]]));
  const before = await metrics(server.base, HONEST_ADDR);
  let elapsed = 0;
  const [statuses, out] = await underAttack(server, async () => {
    const st = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 1500) {
      st.push(...(await subscribeBurst(server.port, 1)));
      await sleep(5); // a few hundred connections, not thousands of ports in TIME_WAIT
    }
    elapsed = (Date.now() - t0) / 1000;
    return st;
  }, { localAddress: HONEST_ADDR });
  const after = await metrics(server.base, HONEST_ADDR);
  assertHonest(out, 'while one address floods subscribes');
  const ok = statuses.filter((s) => s === '200').length;
  const limited = statuses.filter((s) => /^429 retry-after=[1-9]/.test(s)).length;
  const most = 2 * RATE + Math.ceil(RATE * elapsed) + 1;
  note(`${statuses.length} subscribes in ${elapsed} s: ${ok} accepted, ${limited} refused`);
  assert(ok >= 2 * RATE && ok <= most && ok + limited === statuses.length && limited > 0,
    () => `${statuses.length} subscribes in ${elapsed} s at --subscribe-rate ${RATE}: ${ok} accepted (at most ${most}), ${limited} refused`);
  const n = refused(after, 'rate_limited') - refused(before, 'rate_limited');
  assert(n === limited, () => `rate_limited went up by ${n}, ${limited} subscribes got 429`);
}, { timeout: 30000 });

test('rate limits: the client address comes from X-Forwarded-For only behind --trusted-proxy', async () => {
  const xff = (a) => ({ 'x-forwarded-for': a });
  // Behind the proxy (127.0.0.1): each forwarded client has its own budget;
  // the proxy's own requests (no header) are loopback, exempt.
  const proxied = await startCourant(argv(['--workers', '1', '--heartbeat', '0'], [['--subscribe-rate', '2'],
    ['--trusted-proxy', '127.0.0.1'], ['--trusted-proxy-header', 'x-forwarded-for']]));
  const a = await subscribeBurst(proxied.port, 12, { headers: xff('203.0.113.7') });
  const b = await subscribeBurst(proxied.port, 4, { headers: xff('198.51.100.8') });
  const own = await subscribeBurst(proxied.port, 12);
  assert(a.filter((s) => s === '200').length === 4 && a.slice(4).every((s) => s.startsWith('429')), () => `client 203.0.113.7 behind the proxy: ${a.join(' ')}`);
  assert(b.every((s) => s === '200'), () => `client 198.51.100.8 behind the proxy: ${b.join(' ')}`);
  assert(own.every((s) => s === '200'), () => `the proxy's own (loopback) subscribes: ${own.join(' ')}`);
  // The header from a peer that is not a trusted proxy is ignored: a new
  // forwarded address per request buys no new budget.
  const direct = await startCourant(argv(['--workers', '1', '--heartbeat', '0'], [['--subscribe-rate', '2'], ['--limit-loopback'],
    ['--trusted-proxy', '192.0.2.1']]));
  const spoof = [];
  for (let i = 0; i < 12; i++) spoof.push(...(await subscribeBurst(direct.port, 1, { headers: xff(`203.0.113.${i + 1}`) })));
  assert(spoof.filter((s) => s === '200').length === 4 && spoof.slice(4).every((s) => s.startsWith('429')),
    () => `a direct client rotating X-Forwarded-For: ${spoof.join(' ')}`);
}, { timeout: 30000 });

// ==== 9. Smaller defects ========================================================================

test('subscriptions: anonymous connects and disconnects do not flush history', async () => {
  const server = await startCourant(argv(['--workers', '2', '--heartbeat', '0', '--history', '500',
    '--subscriber-jwt-key', SUB_KEY, '--anonymous', '--subscriptions'], []));
  await publishMany(server.port, 10, (i) => ({ topic: 'urn:keep', data: `kept ${i}` }), { conns: 1 });
  // 300 anonymous subscribers come and go: 600 subscription events without a budget.
  let next = 0;
  const churn = async () => {
    while (next < 300) {
      next++;
      const s = await openStream(server.port, `${HUB}?topic=${enc(`urn:churn:${next}`)}`, { keep: false });
      s.close();
      await s.closed;
    }
  };
  await Promise.all(Array.from({ length: 8 }, churn));
  await sleep(300);
  const replay = await openStream(server.port, `${HUB}?topic=urn:keep&lastEventID=earliest`);
  await sleep(500);
  replay.close();
  const m = await metrics(server.base);
  const got = replay.events.map((e) => e.data);
  assert(got.length === 10 && got[0] === 'kept 0', () => `replayed after 300 anonymous connects: ${JSON.stringify(got)} (history holds ${m.get('courant_history_events')})`);
  if (knows('--anonymous-subscription-rate')) {
    assert(m.get('courant_subscription_events_dropped_total') > 0, () => `courant_subscription_events_dropped_total = ${m.get('courant_subscription_events_dropped_total')}`);
  }
}, { timeout: 60000 });

test('subscriptions API: the path is percent-decoded by the one decoder', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0', '--subscriber-jwt-key', SUB_KEY, '--subscriptions']);
  const token = hs256({ exp: Math.floor(Date.now() / 1000) + 600, mercure: { subscribe: ['*'] } }, SUB_KEY);
  const auth = { authorization: `Bearer ${token}` };
  const topic = 'https://example.com/books/1?a=b c';
  const sub = await openStream(server.port, `${HUB}?topic=${enc(topic)}`, { headers: auth });
  assert(sub.status === 200, () => `subscribe: ${sub.status}`);
  const api = `${HUB}/subscriptions`;
  const cases = [
    [`${api}/${enc(topic)}`, 200],
    [`${api}/${enc(topic).replace(/%2F/g, '%2f').replace(/%3A/g, '%3a')}`, 200], // lower-case hex
    [`${api}/abc%zz`, 400],
    [`${api}/abc%4`, 400],
    [`${api}/abc%00def`, 400],
    [`${api}/abc%`, 400],
  ];
  const wrong = [];
  for (const [p, want] of cases) {
    const r = await get(server.port, p, { headers: auth });
    if (r.status !== want) wrong.push(`${p}: ${r.status} (want ${want}) ${r.body.slice(0, 100)}`);
    else if (want === 200 && !r.body.includes(JSON.stringify(topic).slice(1, -1))) wrong.push(`${p}: the document does not list the subscription: ${r.body.slice(0, 300)}`);
  }
  sub.close();
  assert(wrong.length === 0, () => wrong.join('\n'));
});

test('HTTP: "Connection: close, keep-alive" closes after the answer', async () => {
  const server = await startCourant(['--workers', '1', '--heartbeat', '0']);
  for (const value of ['close, keep-alive', 'keep-alive, close', 'Keep-Alive,Close']) {
    const sock = await rawSocket(server.port);
    sock.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: ${value}\r\n\r\n`);
    await waitFor(() => sock.closedBy, { timeout: 3000, message: () => `the server to close after "Connection: ${value}" (got ${JSON.stringify(sock.data)})` });
    assert(statusOf(sock.data) === 200 && /\r\nConnection: close\r\n/i.test(sock.data), () => `answer to "Connection: ${value}": ${JSON.stringify(sock.data)}`);
    sock.destroy();
  }
});

test('JWT: HMAC secrets shorter than the hash output are refused at start', () => {
  for (const [alg, bytes] of [['HS256', 32], ['HS384', 48], ['HS512', 64]]) {
    const short = 'k'.repeat(bytes - 1);
    const r = spawnSync(courantBin(), ['--listen', '127.0.0.1:0', '--jwt-alg', alg, '--publisher-jwt-key', short],
      { encoding: 'utf8', timeout: 5000 });
    assert(r.status !== 0 && r.status !== null, () => `${alg} with a ${bytes - 1}-byte secret: exit ${r.status} ${r.signal || ''}; ${r.stderr.slice(-300)}`);
  }
});

test('store: the loader applies the wire check to every row (a damaged row is skipped, counted)', async () => {
  const sqlite = spawnSync('sqlite3', ['-version'], { encoding: 'utf8' });
  if (sqlite.status !== 0) skip('no sqlite3 command-line tool');
  const dir = mkdtempSync(path.join(tmpdir(), 'courant-hostile-'));
  const db = path.join(dir, 'h.db');
  try {
    const first = await startCourant(['--workers', '1', '--heartbeat', '0', '--store', db, '--sync', 'off']);
    await publishMany(first.port, 3, (i) => ({ topic: 'urn:stored', data: `row ${i}`, id: `row-${i}` }), { conns: 1 });
    await first.stop();
    const tables = spawnSync('sqlite3', [db, '.tables'], { encoding: 'utf8' }).stdout.trim();
    const cols = spawnSync('sqlite3', [db, `PRAGMA table_info(events)`], { encoding: 'utf8' }).stdout;
    if (!/\bevents\b/.test(tables) || !/\|wire\|/.test(cols)) skip(`unexpected store schema (tables: ${tables})`);
    // Row 1's wire bytes now hold an extra event: a record that is not exactly one event with its id.
    const upd = spawnSync('sqlite3', [db, "UPDATE events SET wire = CAST('id: row-1' || char(10) || 'data: x' || char(10) || char(10) || 'id: forged' || char(10) || 'data: y' || char(10) || char(10) AS BLOB) WHERE id = 'row-1'"], { encoding: 'utf8' });
    assert(upd.status === 0, () => `sqlite3 update: ${upd.stderr}`);
    const second = await startCourant(['--workers', '1', '--heartbeat', '0', '--store', db, '--sync', 'off']);
    const s = await openStream(second.port, `${HUB}?topic=urn:stored&lastEventID=earliest`);
    await sleep(400);
    s.close();
    const m = await metrics(second.base);
    const ids = s.events.map((e) => e.id);
    assert(JSON.stringify(ids) === JSON.stringify(['row-0', 'row-2']), () => `replayed after restart: ${JSON.stringify(s.events)}`);
    assert(m.get('courant_store_bad_rows_total') === 1, () => `courant_store_bad_rows_total = ${m.get('courant_store_bad_rows_total')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 30000 });

await run();
