// hub.test.mjs - the Mercure hub end to end: publish, fan-out, order, resume,
// history, form edge cases and refusals, slow subscribers, heartbeats.
//
//   node tests/e2e/hub.test.mjs
//
// Clients: the real `eventsource` npm package where a spec client matters
// (fan-out, resume), raw node http/net where the exact bytes or headers do.
//
// Env: COURANT_BIN (default build/asan/courant), COURANT_E2E_VERBOSE=1,
//      COURANT_E2E_ONLY=<substring of a test name>, COURANT_E2E_SEED=<n>.

import { EventSource } from 'eventsource';
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const FORM = 'application/x-www-form-urlencoded';
const enc = encodeURIComponent;

// ---- small helpers -------------------------------------------------------------

// Deterministic randomness, so a failing run can be replayed with its seed.
const SEED = Number(process.env.COURANT_E2E_SEED || Date.now() % 100000);
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const short = (v, n = 300) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s;
};

/** POST a form. `fields` is [[name, value], ...] (URL-encoded here) or a raw body string. */
async function publish(base, fields, { contentType = FORM, headers = {} } = {}) {
  const body = typeof fields === 'string' ? fields : new URLSearchParams(fields).toString();
  const h = { ...headers };
  if (contentType !== null) h['content-type'] = contentType;
  const res = await fetch(`${base}${HUB}`, { method: 'POST', headers: h, body });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

async function publishOk(base, fields, opts) {
  const r = await publish(base, fields, opts);
  assert(r.status === 200, () => `publish ${short(fields)} answered ${r.status}: ${short(r.body)}`);
  return r.body;
}

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  m.text = text;
  m.refusedTotal = [...m].filter(([k]) => k.startsWith('courant_refused_requests_total')).reduce((a, [, v]) => a + v, 0);
  return m;
}

function metric(m, name) {
  assert(m.has(name), () => `/metrics has no ${name}:\n${m.text}`);
  return m.get(name);
}

/**
 * Incremental text/event-stream parser (the WHATWG algorithm: CR, LF and CRLF
 * end lines; one space after the colon is stripped; an event is dispatched on
 * a blank line when a data line was seen). Events: {id, lastEventId, event,
 * data, retry}; `id` is the id field of that event's block (undefined if none).
 */
class SSEParser {
  constructor({ keepData = true } = {}) {
    this.keepData = keepData;
    this.events = [];
    this.comments = [];
    this.retries = [];
    this.lastEventId = '';
    this.buf = '';
    this.reset();
  }
  reset() {
    this.dataLines = null;
    this.type = '';
    this.blockId = undefined;
    this.blockRetry = undefined;
  }
  feed(text) {
    this.buf += text;
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const hit = m.exec(this.buf);
      if (!hit) break;
      // A CR at the very end may be half of a CRLF: wait for the next byte.
      if (hit[0] === '\r' && hit.index === this.buf.length - 1) break;
      this.line(this.buf.slice(start, hit.index));
      start = hit.index + hit[0].length;
    }
    this.buf = this.buf.slice(start);
  }
  line(l) {
    if (l === '') {
      if (this.dataLines !== null) {
        const data = this.dataLines.join('\n');
        this.events.push({
          id: this.blockId,
          lastEventId: this.lastEventId,
          event: this.type || 'message',
          data: this.keepData ? data : undefined,
          dataLen: data.length,
          retry: this.blockRetry,
        });
      }
      this.reset();
      return;
    }
    if (l[0] === ':') {
      this.comments.push(l.slice(1));
      return;
    }
    const c = l.indexOf(':');
    const name = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'data') (this.dataLines ??= []).push(value);
    else if (name === 'event') this.type = value;
    else if (name === 'id' && !value.includes('\0')) this.blockId = this.lastEventId = value;
    else if (name === 'retry' && /^\d+$/.test(value)) {
      this.blockRetry = Number(value);
      this.retries.push(Number(value));
    }
  }
}

/**
 * GET a stream with raw node http (its own connection). Resolves once the
 * response head arrived: {status, headers, raw, sse, ended, close()}.
 * `raw` keeps every body byte as text unless keepRaw is false.
 */
function openStream(base, pathAndQuery, { headers = {}, keepRaw = true, keepData = true } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${pathAndQuery}`, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
      const s = {
        status: res.statusCode,
        headers: res.headers,
        raw: '',
        bytes: 0,
        sse: new SSEParser({ keepData }),
        ended: false,
        errored: null,
        close() {
          req.destroy();
        },
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (keepRaw) s.raw += d;
        s.bytes += Buffer.byteLength(d);
        s.sse.feed(d);
      });
      const end = () => {
        if (!s.ended) s.endedAt = Date.now();
        s.ended = true;
      };
      res.on('end', end);
      res.on('error', (e) => (s.errored = e));
      res.on('close', end);
      resolve(s);
    });
    req.on('error', reject);
  });
}

function withTimeout(promise, ms, what) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

const ids = (events) => events.map((e) => e.id);

// ---- (a) fan-out ------------------------------------------------------------------

test('fan-out: 60 subscribers over 2 workers get exactly their events, once each, in one global order', async () => {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0']);
  const base = server.base;
  const T = ['https://example.com/fan/a', 'https://example.com/fan/b', 'https://example.com/fan/c'];

  // Who listens to what.
  const groups = [];
  for (let i = 0; i < 14; i++) for (const t of T) groups.push([t]);
  for (let i = 0; i < 8; i++) groups.push(['*']);
  for (let i = 0; i < 6; i++) groups.push([T[0], '*']); // matched twice: must get each event once
  for (let i = 0; i < 4; i++) groups.push([T[1], T[2]]); // alternates below match both
  assert(groups.length === 60, 'group arithmetic');

  const subs = groups.map((sel, n) => {
    const url = `${base}${HUB}?${sel.map((s) => `topic=${enc(s)}`).join('&')}`;
    const sub = { n, sel, url, got: [], opened: 0, errors: [] };
    sub.es = new EventSource(url);
    sub.es.onopen = () => sub.opened++;
    sub.es.onmessage = (e) => sub.got.push({ id: e.lastEventId, data: e.data });
    sub.es.onerror = (e) => sub.errors.push(e.message ?? 'error');
    return sub;
  });

  try {
    await waitFor(() => subs.every((s) => s.opened === 1), {
      timeout: 10000,
      message: () => `all 60 EventSources open (${subs.filter((s) => s.opened).length} are; errors ${short(subs.flatMap((s) => s.errors))})`,
    });
    const m0 = await metrics(base);
    assert(metric(m0, 'courant_subscribers_open') === 60, () => `courant_subscribers_open ${m0.get('courant_subscribers_open')}, want 60`);

    // Three concurrent publishers, 100 events each, ids assigned here. Every
    // 7th event also goes to the next topic as an alternate.
    const events = new Map(); // id -> {topics, p, i, sendAt, respAt}
    const publisher = async (p) => {
      for (let i = 0; i < 100; i++) {
        const id = `p${p}-${i}`;
        const main = T[(i + p) % 3];
        const topics = i % 7 === 3 ? [main, T[(i + p + 1) % 3]] : [main];
        const ev = { id, topics, p, i, sendAt: performance.now() };
        events.set(id, ev);
        const body = await publishOk(base, [...topics.map((t) => ['topic', t]), ['id', id], ['data', `data of ${id}`]]);
        ev.respAt = performance.now();
        assert(body === id, `publish of ${id} answered with id ${JSON.stringify(body)}`);
      }
    };
    await Promise.all([0, 1, 2].map(publisher));

    const expected = (sub) =>
      [...events.values()].filter((e) => sub.sel.includes('*') || e.topics.some((t) => sub.sel.includes(t))).map((e) => e.id);
    for (const s of subs) s.want = new Set(expected(s));

    await waitFor(() => subs.every((s) => s.got.length >= s.want.size), {
      timeout: 15000,
      message: () =>
        `every subscriber to get its events; behind: ${short(subs.filter((s) => s.got.length < s.want.size).map((s) => `#${s.n} ${s.sel} ${s.got.length}/${s.want.size}`))}`,
    });
    await sleep(300); // anything extra (a duplicate) would have arrived by now

    for (const s of subs) {
      const seen = new Set();
      for (const e of s.got) {
        assert(!seen.has(e.id), () => `subscriber #${s.n} (${s.sel}) got ${e.id} twice`);
        seen.add(e.id);
        assert(s.want.has(e.id), () => `subscriber #${s.n} (${s.sel}) got ${e.id} (topics ${events.get(e.id)?.topics}) it did not ask for`);
        assert(e.data === `data of ${e.id}`, () => `subscriber #${s.n} got data ${JSON.stringify(e.data)} for ${e.id}`);
      }
      assert(seen.size === s.want.size, () => `subscriber #${s.n} (${s.sel}) got ${seen.size} of ${s.want.size} events; missing ${short([...s.want].filter((x) => !seen.has(x)))}`);
      assert(s.opened === 1 && s.errors.length === 0, () => `subscriber #${s.n} reconnected or errored: ${short(s.errors)}`);
    }

    // One global order: the first "*" subscriber's sequence is the reference;
    // everyone sees exactly that order restricted to what they subscribed to.
    const ref = subs.find((s) => s.sel.length === 1 && s.sel[0] === '*').got.map((e) => e.id);
    for (const s of subs) {
      const want = ref.filter((id) => s.want.has(id));
      const got = s.got.map((e) => e.id);
      const at = want.findIndex((id, k) => got[k] !== id);
      assert(at < 0, () => `subscriber #${s.n} (${s.sel}) disagrees with the global order at position ${at}: got ${short(got.slice(Math.max(0, at - 2), at + 3))}, the "*" subscriber saw ${short(want.slice(Math.max(0, at - 2), at + 3))}`);
    }
    // Each publisher's events in its own order...
    for (const p of [0, 1, 2]) {
      const mine = ref.filter((id) => id.startsWith(`p${p}-`));
      const want = Array.from({ length: 100 }, (_, i) => `p${p}-${i}`);
      assert(JSON.stringify(mine) === JSON.stringify(want), () => `publisher ${p}'s events out of order: ${short(mine)}`);
    }
    // ...and real-time order across publishers: an event whose 200 came back
    // before another was even sent must come first.
    const pos = new Map(ref.map((id, k) => [id, k]));
    for (const x of events.values()) {
      for (const y of events.values()) {
        if (x.respAt < y.sendAt) {
          assert(pos.get(x.id) < pos.get(y.id), () => `${x.id} was acknowledged before ${y.id} was sent, yet arrived after it`);
        }
      }
    }

    const m1 = await metrics(base);
    assert(metric(m1, 'courant_events_published_total') === 300, () => `courant_events_published_total ${m1.get('courant_events_published_total')}`);
    const deliveries = subs.reduce((a, s) => a + s.want.size, 0);
    assert(metric(m1, 'courant_deliveries_total') === deliveries, () => `courant_deliveries_total ${m1.get('courant_deliveries_total')}, want ${deliveries}`);
  } finally {
    for (const s of subs) s.es.close();
  }
}, { timeout: 40000 });

// ---- (b) resume ------------------------------------------------------------------

/**
 * An EventSource whose fetch cuts the response body after `cutAt(attempt)`
 * bytes (anywhere, usually mid-event), so the client reconnects with its
 * Last-Event-ID. Records every attempt and every event.
 */
function resumingClient(url, cutAt) {
  const rec = { attempts: [], events: [], errors: [], cuts: [], lastId: null };
  const cuttingFetch = async (input, init) => {
    const headers = new Headers(init?.headers ?? {});
    const attempt = rec.attempts.length + 1;
    rec.attempts.push({ lastEventId: headers.get('last-event-id'), lastIdBefore: rec.lastId, eventsBefore: rec.events.length });
    const res = await fetch(input, init);
    const limit = cutAt(attempt);
    if (!res.body || res.status !== 200 || !Number.isFinite(limit)) return res;
    const reader = res.body.getReader();
    let seen = 0;
    const body = new ReadableStream({
      async pull(ctrl) {
        const { done, value } = await reader.read();
        if (done) return ctrl.close();
        if (seen + value.length >= limit) {
          ctrl.enqueue(value.subarray(0, limit - seen));
          ctrl.close();
          rec.cuts.push({ attempt, at: limit, eventsSoFar: rec.events.length });
          reader.cancel().catch(() => {});
          return;
        }
        seen += value.length;
        ctrl.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  rec.es = new EventSource(url, { fetch: cuttingFetch });
  rec.es.onmessage = (e) => {
    rec.events.push({ id: e.lastEventId, data: e.data, attempt: rec.attempts.length });
    rec.lastId = e.lastEventId;
  };
  rec.es.onerror = (e) => rec.errors.push(e.message ?? 'error');
  return rec;
}

function checkResume(rec, published, label) {
  const info = () =>
    `${label}: ${rec.attempts.length} connections, cuts ${short(rec.cuts, 400)}, attempts ${short(rec.attempts, 600)}, errors ${short(rec.errors)}`;
  const got = rec.events.map((e) => e.id);
  const seen = new Map();
  rec.events.forEach((e, k) => {
    assert(!seen.has(e.id), () => `${e.id} received twice (connections ${rec.events[seen.get(e.id)].attempt} and ${e.attempt}); ${info()}`);
    seen.set(e.id, k);
  });
  const at = published.findIndex((id, k) => got[k] !== id);
  assert(at < 0 && got.length === published.length, () => {
    const k = at < 0 ? published.length : at;
    return `received ${got.length} events, published ${published.length}; first difference at ${k}: got ${short(got.slice(Math.max(0, k - 2), k + 3))}, published ${short(published.slice(Math.max(0, k - 2), k + 3))}; ${info()}`;
  });
  for (const e of rec.events) assert(e.data === `payload ${e.id} ${'.'.repeat(60)}`, () => `${e.id} carried ${short(e.data)}`);
  for (let i = 1; i < rec.attempts.length; i++) {
    const a = rec.attempts[i];
    assert(a.lastEventId === a.lastIdBefore, () => `connection ${i + 1} sent Last-Event-ID ${a.lastEventId}, last event before it was ${a.lastIdBefore}; ${info()}`);
  }
}

// Publishes n events one after the other; with spreadMs, no faster than
// n per spreadMs (so that it lasts at least that long).
async function publishMany(base, topic, prefix, n, { spreadMs = 0 } = {}) {
  const published = [];
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`;
    await publishOk(base, [['topic', topic], ['id', id], ['data', `payload ${id} ${'.'.repeat(60)}`]]);
    published.push(id);
    const ahead = t0 + ((i + 1) * spreadMs) / n - Date.now();
    if (ahead >= 10) await sleep(ahead);
  }
  return published;
}

test('resume: a client cut mid-stream (mid-event) many times while 2000 events are published gets each exactly once, in order', async () => {
  const server = await startCourant(['--retry', '10', '--history', '5000', '--heartbeat', '0']);
  const topic = 'https://example.com/resume/cut';
  const random = rng(SEED);
  let publishing = true;
  // Cut every connection opened while publishing after 3..40 KB.
  const rec = resumingClient(`${server.base}${HUB}?topic=${enc(topic)}`, () => (publishing ? 3000 + Math.floor(random() * 37000) : Infinity));
  try {
    await waitFor(() => rec.es.readyState === EventSource.OPEN, { message: 'the EventSource to open' });
    const published = await publishMany(server.base, topic, 'cut-', 2000);
    publishing = false;
    await waitFor(() => rec.lastId === published.at(-1) && rec.es.readyState === EventSource.OPEN, {
      timeout: 15000,
      message: () => `the client to catch up (${rec.events.length} events, last ${rec.lastId}, ${rec.attempts.length} connections, seed ${SEED})`,
    });
    await sleep(200);
    assert(rec.cuts.length >= 3, () => `only ${rec.cuts.length} cuts happened (seed ${SEED})`);
    checkResume(rec, published, `seed ${SEED}`);
  } finally {
    rec.es.close();
  }
}, { timeout: 30000 });

test('resume: --max-lifetime 1 ends streams while 2000 events are published; /events alias; nothing lost or doubled', async () => {
  const server = await startCourant(['--max-lifetime', '1', '--retry', '10', '--history', '5000', '--heartbeat', '0']);
  const topic = 'https://example.com/resume/lifetime';
  const rec = resumingClient(`${server.base}/events?topic=${enc(topic)}`, () => Infinity);
  try {
    await waitFor(() => rec.es.readyState === EventSource.OPEN, { message: 'the EventSource to open' });
    // 5 s of publishing: at least 4 stream ends (each after 0.8 to 1.2 s).
    const published = await publishMany(server.base, topic, 'life-', 2000, { spreadMs: 5000 });
    await waitFor(() => rec.lastId === published.at(-1), {
      timeout: 15000,
      message: () => `the client to catch up (${rec.events.length} events, last ${rec.lastId}, ${rec.attempts.length} connections)`,
    });
    await sleep(200);
    const during = rec.attempts.filter((a) => a.eventsBefore > 0 && a.eventsBefore < published.length).length;
    assert(during >= 3, () => `only ${during} reconnections in the middle of the stream (${rec.attempts.length} connections)`);
    checkResume(rec, published, 'max-lifetime');
  } finally {
    rec.es.close();
  }
}, { timeout: 30000 });

// ---- (c) Last-Event-ID ---------------------------------------------------------------

// Reconciliation as draft-dunglas-mercure-07 has it (and courant since
// b4397f9): a Last-Event-ID response header only when the client sent an id;
// its value is that id when known, else "earliest" (asked for, or unknown).
test('Last-Event-ID: response header and replay for none, known, earliest, unknown; lastEventID query; header wins', async () => {
  const server = await startCourant(['--heartbeat', '0']);
  const base = server.base;
  const T = 'https://example.com/lei/t';
  const U = 'https://example.com/lei/u';
  const open = [];
  const sub = async (q, headers, path = HUB) => {
    const s = await openStream(base, `${path}?${q}`, { headers });
    open.push(s);
    assert(s.status === 200, () => `GET ${path}?${q}: ${s.status}`);
    return s;
  };
  const header = (s) => s.headers['last-event-id'];
  // Replay is written with the head: wait for `n` events, then a bit more
  // for anything that should not be there.
  const settle = async (s, n, what) => {
    await waitFor(() => s.sse.events.length >= n, { timeout: 3000, message: () => `${n} replayed events for ${what} (have ${short(ids(s.sse.events))}; raw ${short(s.raw)})` });
    await sleep(150);
  };
  const expectReplay = async (s, want, what) => {
    await settle(s, want.length, what);
    assert(ids(s.sse.events).join(',') === want.join(','), () => `${what} replayed ${ids(s.sse.events).join(',') || 'nothing'}, want ${want.join(',') || 'nothing'}`);
  };

  try {
    // Subscribing needs a topic.
    for (const q of ['', '?lastEventID=x', '?topic=']) {
      const r = await fetch(`${base}${HUB}${q}`);
      assert(r.status === 400, () => `GET ${HUB}${q} answered ${r.status}, want 400`);
      await r.text();
    }

    // Empty history. No id sent: no header. earliest / unknown: "earliest".
    const s0 = await sub(`topic=${enc(T)}`);
    assert((s0.headers['content-type'] || '').startsWith('text/event-stream'), `content-type ${s0.headers['content-type']}`);
    assert(header(s0) === undefined, () => `no id sent: a Last-Event-ID header ${header(s0)} came back`);
    assert(/(^|,\s*)Last-Event-ID(\s*,|$)/i.test(s0.headers['access-control-expose-headers'] || ''), () => `Access-Control-Expose-Headers ${s0.headers['access-control-expose-headers']}: browsers cannot read Last-Event-ID`);
    await waitFor(() => s0.raw.startsWith(':\n'), { timeout: 2000, message: () => `the first ":" comment (raw ${short(s0.raw)})` });
    const e0 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'earliest' });
    assert(header(e0) === 'earliest', () => `earliest on an empty history: header ${header(e0)}`);
    const u0 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'nothing-yet' });
    assert(header(u0) === 'earliest', () => `unknown id on an empty history: header ${header(u0)}, want earliest`);

    for (const [topic, id] of [[T, 'e1'], [T, 'e2'], [U, 'x1'], [T, 'e3'], [U, 'x2']]) await publishOk(base, [['topic', topic], ['id', id], ['data', `d-${id}`]]);
    await waitFor(() => s0.sse.events.length >= 3, { timeout: 3000, message: () => `live events on the first stream (${short(s0.raw)})` });
    await sleep(100);
    assert(ids(s0.sse.events).join(',') === 'e1,e2,e3', () => `live: ${ids(s0.sse.events)}`);
    assert(s0.sse.events[0].data === 'd-e1', `live data ${s0.sse.events[0].data}`);

    // No id, non-empty history: no header, nothing replayed.
    const s1 = await sub(`topic=${enc(T)}`);
    assert(header(s1) === undefined, () => `no id sent: a Last-Event-ID header ${header(s1)} came back`);

    // Known id: echoed, what follows is replayed (subscribed topics only).
    const s2 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'e1' });
    assert(header(s2) === 'e1', () => `Last-Event-ID e1: header ${header(s2)}`);
    await expectReplay(s2, ['e2', 'e3'], 'Last-Event-ID e1');
    assert(s2.sse.events[0].data === 'd-e2', `replayed data ${s2.sse.events[0].data}`);

    // A known id from another topic than the ones replayed.
    const s2b = await sub(`topic=${enc(T)}&topic=${enc(U)}`, { 'Last-Event-ID': 'x1' });
    assert(header(s2b) === 'x1', () => `Last-Event-ID x1: header ${header(s2b)}`);
    await expectReplay(s2b, ['e3', 'x2'], 'Last-Event-ID x1 on T and U');

    // earliest: all of history for the topic.
    const s3 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'earliest' });
    assert(header(s3) === 'earliest', () => `earliest: header ${header(s3)}`);
    await expectReplay(s3, ['e1', 'e2', 'e3'], 'earliest');

    // Unknown id: nothing replayed, and the header differs from what was sent.
    const s4 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'no-such-id' });
    assert(header(s4) === 'earliest', () => `unknown id: header ${header(s4)}, want earliest`);
    await sleep(300);
    assert(s4.sse.events.length === 0, () => `unknown id replayed ${ids(s4.sse.events)}`);

    // The lastEventID query parameter; the header winning over it; empty values count as none.
    const s5 = await sub(`topic=${enc(T)}&lastEventID=e2`);
    assert(header(s5) === 'e2', () => `?lastEventID=e2: header ${header(s5)}`);
    await expectReplay(s5, ['e3'], '?lastEventID=e2');
    const s6 = await sub(`lastEventID=e2&topic=${enc(T)}`, { 'Last-Event-ID': 'e1' });
    assert(header(s6) === 'e1', () => `header e1 + ?lastEventID=e2: header ${header(s6)}, want e1 (the header wins)`);
    await expectReplay(s6, ['e2', 'e3'], 'header e1 + ?lastEventID=e2');
    const s7 = await sub(`topic=${enc(T)}&lastEventID=earliest`);
    assert(header(s7) === 'earliest', () => `?lastEventID=earliest: header ${header(s7)}`);
    await expectReplay(s7, ['e1', 'e2', 'e3'], '?lastEventID=earliest');
    const s9 = await sub(`topic=${enc(T)}&lastEventID=e2`, { 'Last-Event-ID': '' });
    assert(header(s9) === 'e2', () => `empty Last-Event-ID header + ?lastEventID=e2: header ${header(s9)}, want e2`);
    await expectReplay(s9, ['e3'], 'empty header + ?lastEventID=e2');
    const s10 = await sub(`topic=${enc(T)}&lastEventID=`);
    assert(header(s10) === undefined, () => `?lastEventID= (empty): header ${header(s10)}, want none`);

    // The /events alias behaves the same.
    const s8 = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'e2' }, '/events');
    assert(header(s8) === 'e2', () => `/events: header ${header(s8)}`);
    await expectReplay(s8, ['e3'], '/events with Last-Event-ID e2');

    // Then live, after the replay, no gap and no duplicate, for everyone.
    await publishOk(base, [['topic', T], ['id', 'e4'], ['data', 'd-e4']]);
    const want = new Map([
      [s0, 'e1,e2,e3,e4'], [e0, 'e1,e2,e3,e4'], [u0, 'e1,e2,e3,e4'], [s1, 'e4'], [s2, 'e2,e3,e4'], [s2b, 'e3,x2,e4'],
      [s3, 'e1,e2,e3,e4'], [s4, 'e4'], [s5, 'e3,e4'], [s6, 'e2,e3,e4'], [s7, 'e1,e2,e3,e4'], [s8, 'e3,e4'], [s9, 'e3,e4'], [s10, 'e4'],
    ]);
    await waitFor(() => [...want].every(([s, w]) => s.sse.events.length >= w.split(',').length), { timeout: 3000, message: 'the live event e4 everywhere' });
    await sleep(150);
    for (const [s, w] of want) assert(ids(s.sse.events).join(',') === w, () => `a stream saw ${ids(s.sse.events).join(',')}, want ${w}`);

    // A reused id resumes after its oldest use still in history: a client may
    // get events again, but never misses those published between the uses.
    for (const [id, d] of [['dup', 'first dup'], ['f1', 'f1'], ['dup', 'second dup'], ['f2', 'f2']]) await publishOk(base, [['topic', T], ['id', id], ['data', d]]);
    const sd = await sub(`topic=${enc(T)}`, { 'Last-Event-ID': 'dup' });
    assert(header(sd) === 'dup', () => `Last-Event-ID dup: header ${header(sd)}`);
    await expectReplay(sd, ['f1', 'dup', 'f2'], 'Last-Event-ID of a reused id');
    assert(sd.sse.events[1].data === 'second dup', `replayed ${sd.sse.events[1].data}`);
  } finally {
    for (const s of open) s.close();
  }
}, { timeout: 20000 });

// ---- (d) history bound ------------------------------------------------------------------

test('history: --history 5 keeps the last 5 events; an evicted id is unknown', async () => {
  const server = await startCourant(['--history', '5', '--heartbeat', '0']);
  const base = server.base;
  const T = 'https://example.com/history';
  for (let i = 1; i <= 10; i++) await publishOk(base, [['topic', T], ['id', `h${i}`], ['data', `${i}`]]);
  const m = await metrics(base);
  assert(metric(m, 'courant_history_events') === 5, () => `courant_history_events ${m.get('courant_history_events')}`);

  const s = await openStream(base, `${HUB}?topic=*`, { headers: { 'Last-Event-ID': 'earliest' } });
  const s2 = await openStream(base, `${HUB}?topic=${enc(T)}`, { headers: { 'Last-Event-ID': 'h3' } });
  const s3 = await openStream(base, `${HUB}?topic=${enc(T)}`, { headers: { 'Last-Event-ID': 'h7' } });
  try {
    await waitFor(() => s.sse.events.length >= 5 && s3.sse.events.length >= 3, { timeout: 3000, message: () => `replays (${short(s.raw)})` });
    await sleep(200);
    assert(ids(s.sse.events).join(',') === 'h6,h7,h8,h9,h10', () => `earliest replayed ${ids(s.sse.events).join(',')}, want h6..h10`);
    assert(s.headers['last-event-id'] === 'earliest', `earliest: header ${s.headers['last-event-id']}`);
    assert(s2.headers['last-event-id'] === 'earliest', () => `evicted id h3: header ${s2.headers['last-event-id']}, want earliest (unknown)`);
    assert(s3.headers['last-event-id'] === 'h7', () => `h7: header ${s3.headers['last-event-id']}`);
    assert(s2.sse.events.length === 0, () => `evicted id h3 replayed ${ids(s2.sse.events)}`);
    assert(ids(s3.sse.events).join(',') === 'h8,h9,h10', () => `h7 replayed ${ids(s3.sse.events).join(',')}`);
    const m2 = await metrics(base);
    assert(metric(m2, 'courant_events_replayed_total') === 8, () => `courant_events_replayed_total ${m2.get('courant_events_replayed_total')}, want 8`);
  } finally {
    s.close();
    s2.close();
    s3.close();
  }
});

// hub.h: "When the same id is published twice the index points at the
// oldest one still in history". Once the oldest use is evicted, the newer one
// is still in history and must still be found.
test('history: a reused id is still found after its oldest use is evicted', async () => {
  const server = await startCourant(['--history', '3', '--heartbeat', '0']);
  const base = server.base;
  for (const [id, d] of [['dup', 'A'], ['x', 'x'], ['dup', 'B'], ['y', 'y']]) await publishOk(base, [['topic', 't'], ['id', id], ['data', d]]);
  // History now: x, dup (B), y. The first "dup" (A) was evicted.
  const all = await openStream(base, `${HUB}?topic=t`, { headers: { 'Last-Event-ID': 'earliest' } });
  const s = await openStream(base, `${HUB}?topic=t`, { headers: { 'Last-Event-ID': 'dup' } });
  try {
    await waitFor(() => all.sse.events.length >= 3, { timeout: 3000, message: () => `the earliest replay (${short(all.raw)})` });
    await sleep(200);
    assert(all.sse.events.map((e) => `${e.id}=${e.data}`).join(',') === 'x=x,dup=B,y=y', () => `history holds ${all.sse.events.map((e) => `${e.id}=${e.data}`)}`);
    assert(s.headers['last-event-id'] === 'dup' && ids(s.sse.events).join(',') === 'y', () =>
      `Last-Event-ID dup, with an event "dup" still in history: header ${s.headers['last-event-id']}, replayed ${ids(s.sse.events).join(',') || 'nothing'}; ` +
      'want header dup and y replayed (the id index lost "dup" when its oldest use was evicted)');
  } finally {
    all.close();
    s.close();
  }
});

// ---- (e) publish: the form, field by field ----------------------------------------------

test('publish: data lines (LF, CR, CRLF, trailing, empty), spaces, UTF-8, encodings, alternates, type, retry, ids', async () => {
  const server = await startCourant(['--heartbeat', '0']);
  const base = server.base;
  const X = 'https://example.com/form/x';
  const Y = 'https://example.com/form/y?lang=fr&q=1';
  const all = await openStream(base, `${HUB}?topic=*`);
  const onY = await openStream(base, `${HUB}?topic=${enc(Y)}`);
  const onXY = await openStream(base, `${HUB}?topic=${enc(X)}&topic=${enc(Y)}`);
  const onXX = await openStream(base, `${HUB}?topic=${enc(X)}&topic=${enc(X)}&topic=*&topic=*`);
  const spec = new EventSource(`${base}${HUB}?topic=*`);
  const specEvents = [];
  spec.onmessage = (e) => specEvents.push({ type: 'message', id: e.lastEventId, data: e.data });
  spec.addEventListener('ping', (e) => specEvents.push({ type: 'ping', id: e.lastEventId, data: e.data }));
  await waitFor(() => spec.readyState === EventSource.OPEN, { message: 'the EventSource to open' });

  // [name, body (fields or raw), wire bytes after the id line, data as an EventSource reads it]
  const cases = [
    ['LF', [['data', 'one\ntwo\nthree']], 'data: one\ndata: two\ndata: three\n', 'one\ntwo\nthree'],
    ['CR', [['data', 'one\rtwo']], 'data: one\ndata: two\n', 'one\ntwo'],
    ['CRLF', [['data', 'one\r\ntwo\r\n\r\nfour']], 'data: one\ndata: two\ndata: \ndata: four\n', 'one\ntwo\n\nfour'],
    ['LF then CR is two breaks', [['data', 'a\n\rb']], 'data: a\ndata: \ndata: b\n', 'a\n\nb'],
    ['trailing newline', [['data', 'last\n']], 'data: last\ndata: \n', 'last\n'],
    ['empty data', 'data=', 'data: \n', ''],
    ['leading spaces', [['data', '   three spaces\n two']], 'data:    three spaces\ndata:  two\n', '   three spaces\n two'],
    ['UTF-8', [['data', 'héllo ☃ 😀']], 'data: héllo ☃ 😀\n', 'héllo ☃ 😀'],
    ['percent-encoding and +', 'data=a+b%2Bc%20d%26e%3Df%25g%0Ah%C3%A9', 'data: a b+c d&e=f%g\ndata: hé\n', 'a b+c d&e=f%g\nhé'],
    ['a colon and no space', [['data', ':x: y']], 'data: :x: y\n', ':x: y'],
  ];

  const wire = []; // expected raw body of the "*" stream, after ":\n"
  const spec_ = [];
  let k = 0;
  for (const [name, fields, bytes, data] of cases) {
    const id = `form-${++k}`;
    const body = typeof fields === 'string' ? `topic=${enc(X)}&id=${id}&${fields}` : [['topic', X], ['id', id], ...fields];
    const r = await publishOk(base, body);
    assert(r === id, `${name}: publish answered ${r}`);
    wire.push({ name, text: `id: ${id}\n${bytes}\n` });
    spec_.push({ type: 'message', id, data });
  }

  // type, retry, everything at once (wire order: id, event, retry, data).
  await publishOk(base, [['topic', X], ['id', 'typed'], ['type', 'ping'], ['data', 'pong']]);
  wire.push({ name: 'type', text: 'id: typed\nevent: ping\ndata: pong\n\n' });
  spec_.push({ type: 'ping', id: 'typed', data: 'pong' });
  await publishOk(base, [['topic', X], ['id', 'retried'], ['retry', '5000'], ['data', 'r']]);
  wire.push({ name: 'retry', text: 'id: retried\nretry: 5000\ndata: r\n\n' });
  spec_.push({ type: 'message', id: 'retried', data: 'r' });
  await publishOk(base, [['data', 'all'], ['retry', '0'], ['type', 'ping'], ['id', 'all-fields'], ['topic', X]]);
  wire.push({ name: 'all fields', text: 'id: all-fields\nevent: ping\nretry: 0\ndata: all\n\n' });
  spec_.push({ type: 'ping', id: 'all-fields', data: 'all' });

  // Ids are kept exactly, spaces and UTF-8 included.
  const oddId = ' urn:x: ünï cödé  ✓ ';
  assert((await publishOk(base, [['topic', X], ['id', oddId], ['data', 'odd id']])) === oddId, 'odd id not echoed');
  wire.push({ name: 'odd id', text: `id: ${oddId}\ndata: odd id\n\n` });
  spec_.push({ type: 'message', id: oddId, data: 'odd id' });

  // No id: the hub makes a UUIDv7 URN and answers with it.
  const made = await publishOk(base, [['topic', X], ['data', 'made id']]);
  assert(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(made), `generated id ${JSON.stringify(made)} is not urn:uuid:<UUIDv7>`);
  wire.push({ name: 'generated id', text: `id: ${made}\ndata: made id\n\n` });
  spec_.push({ type: 'message', id: made, data: 'made id' });

  // An empty id counts as none (the hub makes one); an empty retry as no retry.
  const made2 = await publishOk(base, `topic=${enc(X)}&id=&retry=&data=empty+id`);
  assert(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(made2) && made2 !== made, `id= answered ${JSON.stringify(made2)}`);
  wire.push({ name: 'empty id and retry', text: `id: ${made2}\ndata: empty id\n\n` });
  spec_.push({ type: 'message', id: made2, data: 'empty id' });

  // Alternates: published to X and Y (Y percent-encoded on the wire), reaching
  // subscribers of Y; a subscriber of both gets it once.
  await publishOk(base, `topic=${enc(X)}&topic=${enc(Y)}&id=alt&data=alternate`);
  wire.push({ name: 'alternate', text: 'id: alt\ndata: alternate\n\n' });
  spec_.push({ type: 'message', id: 'alt', data: 'alternate' });
  await publishOk(base, [['topic', Y], ['id', 'only-y'], ['data', 'y']]);
  wire.push({ name: 'canonical Y', text: 'id: only-y\ndata: y\n\n' });
  spec_.push({ type: 'message', id: 'only-y', data: 'y' });

  // A Content-Type with parameters is still a form.
  await publishOk(base, [['topic', X], ['id', 'charset'], ['data', 'cs']], { contentType: `${FORM}; charset=UTF-8` });
  wire.push({ name: 'content type with charset', text: 'id: charset\ndata: cs\n\n' });
  spec_.push({ type: 'message', id: 'charset', data: 'cs' });

  // Private updates reach nobody (no authorization yet), not even on replay.
  await publishOk(base, [['topic', X], ['topic', Y], ['id', 'secret'], ['data', 'hidden'], ['private', 'on']]);
  await publishOk(base, [['topic', X], ['id', 'end'], ['data', 'end']]);
  wire.push({ name: 'after private', text: 'id: end\ndata: end\n\n' });
  spec_.push({ type: 'message', id: 'end', data: 'end' });

  const late = await openStream(base, `${HUB}?topic=*`, { headers: { 'Last-Event-ID': 'earliest' } });
  try {
    await waitFor(() => all.sse.events.length >= wire.length && specEvents.length >= spec_.length && late.sse.events.length >= wire.length, {
      timeout: 5000,
      message: () => `all ${wire.length} events (raw ${all.sse.events.length}, EventSource ${specEvents.length}, replay ${late.sse.events.length})`,
    });
    await sleep(200);

    // Byte for byte.
    const body = all.raw;
    assert(body.startsWith(':\n'), `stream does not start with ":\\n": ${short(body)}`);
    let at = 2;
    for (const w of wire) {
      const got = body.slice(at, at + w.text.length);
      assert(got === w.text, () => `${w.name}: wire ${JSON.stringify(got)}, want ${JSON.stringify(w.text)}`);
      at += w.text.length;
    }
    assert(at === body.length, () => `extra bytes on the "*" stream: ${JSON.stringify(body.slice(at))}`);
    assert(late.raw === `:\n${wire.map((w) => w.text).join('')}`, () => `the earliest replay differs from the live bytes:\n${JSON.stringify(late.raw)}`);

    // What a spec EventSource makes of them.
    for (let i = 0; i < spec_.length; i++) {
      const g = specEvents[i];
      const w = spec_[i];
      assert(g && g.type === w.type && g.id === w.id && g.data === w.data, () => `EventSource event ${i} (${wire[i].name}): ${JSON.stringify(g)}, want ${JSON.stringify(w)}`);
    }
    assert(specEvents.length === spec_.length, () => `EventSource got ${specEvents.length} events, want ${spec_.length}`);

    // Alternates reach Y's subscribers, once.
    assert(ids(onY.sse.events).join(',') === 'alt,only-y', () => `subscriber of Y got ${ids(onY.sse.events)}`);
    assert(ids(onXY.sse.events).filter((i) => i === 'alt').length === 1, () => `subscriber of X and Y got ${ids(onXY.sse.events)}`);
    assert(!ids(onXY.sse.events).includes('secret'), 'a private update was delivered');
    assert(ids(onXX.sse.events).join(',') === ids(all.sse.events).join(','), () => `subscriber of X, X, *, * got ${ids(onXX.sse.events)}`);
    // Replay matches each event once too, alternates included.
    const lateXY = await openStream(base, `${HUB}?topic=${enc(Y)}&topic=${enc(X)}`, { headers: { 'Last-Event-ID': 'form-1' } });
    late.close();
    await waitFor(() => lateXY.sse.events.length >= wire.length - 1, { timeout: 3000, message: () => `the replay on X and Y (${ids(lateXY.sse.events)})` });
    await sleep(150);
    lateXY.close();
    const wantReplay = all.sse.events.slice(1).map((e) => e.id);
    assert(ids(lateXY.sse.events).join(',') === wantReplay.join(','), () => `replay on Y, X after form-1: ${ids(lateXY.sse.events)}, want ${wantReplay}`);
  } finally {
    spec.close();
    for (const s of [all, onY, onXY, onXX, late]) s.close();
  }
}, { timeout: 20000 });

// Raw request on its own socket: resolves with the whole answer (the server
// closes after a refusal that came before the request was read).
function rawRequest(port, chunks, { timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, timeout);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      out += d;
      if (/\r\n\r\n/.test(out)) {
        const m = /content-length: (\d+)/i.exec(out);
        const head = out.indexOf('\r\n\r\n') + 4;
        if (m && out.length - head >= Number(m[1])) {
          clearTimeout(t);
          sock.destroy();
          resolve(out);
        }
      }
    });
    sock.on('error', (e) => {
      clearTimeout(t);
      out ? resolve(out) : reject(e);
    });
    sock.on('end', () => {
      clearTimeout(t);
      resolve(out);
    });
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

test('publish: every refusal has its status and publishes nothing', async () => {
  const server = await startCourant(['--max-event-bytes', '4096', '--heartbeat', '0']);
  const base = server.base;
  const star = await openStream(base, `${HUB}?topic=*`);
  const onA = await openStream(base, `${HUB}?topic=a`);
  try {
    const before = await metrics(base);
    const cases = [
      ['no topic', 'id=r1&data=x', 400],
      ['no topic, empty body', '', 400],
      ['empty topic', 'topic=&data=x', 400],
      ['empty alternate topic', 'topic=a&topic=&data=x', 400],
      ['control char in topic', 'topic=a%01b&data=x', 400],
      ['LF in topic', 'topic=a%0Ab&data=x', 400],
      ['CR in alternate topic', 'topic=a&topic=b%0D&data=x', 400],
      ['DEL in topic', 'topic=a%7Fb&data=x', 400],
      ['LF in id', 'topic=a&id=x%0Ay&data=x', 400],
      ['CR in id', 'topic=a&id=x%0D&data=x', 400],
      ['tab in id', 'topic=a&id=x%09y&data=x', 400],
      ['NUL in id', 'topic=a&id=x%00y&data=x', 400],
      ['LF in type', 'topic=a&type=x%0Ay&data=x', 400],
      ['CR in type', 'topic=a&type=%0D&data=x', 400],
      ['id starting with #', 'topic=a&id=%23frag&data=x', 400],
      ['id starting with # (raw)', 'topic=a&id=#x&data=x', 400],
      ['id "earliest"', 'topic=a&id=earliest&data=x', 400],
      ['retry with letters', 'topic=a&retry=12a&data=x', 400],
      ['retry negative', 'topic=a&retry=-1&data=x', 400],
      ['retry decimal', 'topic=a&retry=1.5&data=x', 400],
      ['retry with a space', 'topic=a&retry=+5&data=x', 400],
      ['data twice', 'topic=a&data=1&data=2', 400],
      ['empty data twice', 'topic=a&data=&data=', 400],
      ['id twice', 'topic=a&id=1&id=2&data=x', 400],
      ['type twice', 'topic=a&type=t&type=u&data=x', 400],
      ['retry twice', 'topic=a&retry=1&retry=2&data=x', 400],
      ['bad percent-encoding %zz', 'topic=a&data=%zz', 400],
      ['truncated percent-encoding %4', 'topic=a&data=%4', 400],
      ['lone %', 'topic=a&data=%', 400],
      ['bad percent-encoding in a name', 'topic=a&d%ata=x', 400],
      ['bad percent-encoding in an unknown field', 'topic=a&data=x&foo=%G0', 400],
      ['reserved topic', `topic=${enc('/.well-known/mercure')}&data=x`, 403],
      ['reserved sub-topic', 'topic=/.well-known/mercure/subscriptions&data=x', 403],
      ['reserved alternate topic', `topic=a&topic=${enc('/.well-known/mercure/x')}&data=x`, 403],
      ['reserved path inside a URL', `topic=${enc('https://example.com/.well-known/mercure/subscriptions/a/b')}&data=x`, 403],
    ];
    const bad = [];
    for (const [name, body, want] of cases) {
      const r = await publish(base, body);
      if (r.status !== want) bad.push(`${name} (${JSON.stringify(body)}): ${r.status} ${r.body.trim()}, want ${want}`);
    }
    for (const ct of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencodedx']) {
      const r = await publish(base, 'topic=a&data=x', { contentType: ct });
      if (r.status !== 415) bad.push(`Content-Type ${ct}: ${r.status}, want 415`);
    }
    // Too big: announced by Content-Length (refused before the body), or chunked.
    const big = `topic=a&data=${'x'.repeat(5000)}`;
    const r413a = await rawRequest(server.port, [`POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${big.length}\r\n\r\n`]);
    if (!r413a.startsWith('HTTP/1.1 413')) bad.push(`Content-Length ${big.length} > 4096: ${short(r413a)}, want 413`);
    const r413b = await rawRequest(server.port, [`POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n`]);
    if (!r413b.startsWith('HTTP/1.1 413')) bad.push(`chunked body of ${big.length} > 4096: ${short(r413b)}, want 413`);
    const r413c = await rawRequest(server.port, [`POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: 4097\r\n\r\n`]);
    if (!r413c.startsWith('HTTP/1.1 413')) bad.push(`Content-Length 4097 > 4096: ${short(r413c)}, want 413`);
    const refusals = cases.length + 4 + 3;
    assert(bad.length === 0, () => `wrong answers:\n${bad.join('\n')}`);

    // Nothing was published: the counter did not move and the next event is
    // the first thing subscribers see.
    const after = await metrics(base);
    assert(metric(after, 'courant_events_published_total') === metric(before, 'courant_events_published_total'),
      () => `courant_events_published_total went from ${before.get('courant_events_published_total')} to ${after.get('courant_events_published_total')}`);
    assert(after.refusedTotal - before.refusedTotal === refusals, () => `courant_refused_requests_total grew by ${after.refusedTotal - before.refusedTotal}, want ${refusals}`);
    // Exactly --max-event-bytes is fine.
    const atLimit = `topic=a&id=sentinel&data=${'o'.repeat(4096 - 'topic=a&id=sentinel&data='.length)}`;
    assert(atLimit.length === 4096, 'arithmetic');
    await publishOk(base, atLimit);
    await waitFor(() => star.sse.events.length >= 1 && onA.sse.events.length >= 1, { timeout: 3000, message: 'the sentinel' });
    await sleep(100);
    const sentinel = `:\nid: sentinel\ndata: ${'o'.repeat(4096 - 'topic=a&id=sentinel&data='.length)}\n\n`;
    assert(star.raw === sentinel, () => `the "*" subscriber saw ${short(star.raw)}`);
    assert(onA.raw === sentinel, () => `the topic subscriber saw ${short(onA.raw)}`);
    const h = await openStream(base, `${HUB}?topic=*`, { headers: { 'Last-Event-ID': 'earliest' } });
    await waitFor(() => h.sse.events.length >= 1, { timeout: 3000, message: 'the replay' });
    await sleep(100);
    h.close();
    assert(ids(h.sse.events).join(',') === 'sentinel', () => `history holds ${ids(h.sse.events)}`);
  } finally {
    star.close();
    onA.close();
  }
}, { timeout: 20000 });

// ---- (f) slow subscriber ----------------------------------------------------------------

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

test('slow subscriber: one that never reads is cut at --max-pending-bytes, memory stays bounded, others get everything', async () => {
  const asan = process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:halt_on_error=1';
  // A small quarantine, so freed memory ASan holds back does not look like growth.
  const server = await startCourant(['--workers', '2', '--max-pending-bytes', '65536', '--history', '10', '--heartbeat', '0'], {
    env: { ASAN_OPTIONS: `${asan}:quarantine_size_mb=16` },
  });
  const base = server.base;
  const pid = server.proc.pid;

  // The stuck one: a raw socket that is paused before it connects, so node
  // never reads from it.
  const stuck = net.connect({ port: server.port, host: '127.0.0.1', noDelay: true });
  stuck.pause();
  let stuckClosedAt = 0;
  stuck.on('error', () => {});
  await new Promise((resolve, reject) => {
    stuck.once('connect', resolve);
    stuck.once('error', reject);
  });
  stuck.write(`GET ${HUB}?topic=*&topic=t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
  // The reading one runs in its own process (curl), so that this process
  // publishing flat out cannot make it slow.
  const dir = mkdtempSync(path.join(tmpdir(), 'courant-slow-'));
  const outFile = path.join(dir, 'normal.sse');
  const curl = spawn('curl', ['-sS', '-N', '--max-time', '40', '-o', outFile, `${base}${HUB}?topic=*`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let curlErr = '';
  curl.stderr.on('data', (d) => (curlErr += d));
  const curlExit = new Promise((resolve) => curl.on('exit', (code, signal) => resolve({ code, signal })));
  let curlDone = null;
  curlExit.then((r) => (curlDone = r));
  const normalEvents = () => {
    const p = new SSEParser({ keepData: false });
    try {
      p.feed(readFileSync(outFile, 'utf8'));
    } catch {}
    return p.events;
  };
  await waitFor(async () => metric(await metrics(base), 'courant_subscribers_open') === 2, { message: 'two subscribers' });
  await sleep(300);
  const baseline = rssKb(pid);
  let peak = baseline;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssKb(pid));
    } catch {}
  }, 50);

  const N = 2000;
  const payload = 'z'.repeat(10 * 1024);
  const published = [];
  let disconnectedDuring = -1;
  try {
    const t0 = Date.now();
    // One publisher, one request at a time: so every event reaches the
    // workers on its own and the reading subscriber is never handed a burst
    // (bursts have a test of their own below).
    for (let i = 0; i < N; i++) published.push(await publishOk(base, `topic=t&id=slow-${i}&data=${payload}`));
    const publishMs = Date.now() - t0;
    const m = await metrics(base);
    disconnectedDuring = metric(m, 'courant_slow_subscriber_disconnects_total');

    let normal = [];
    await waitFor(() => (normal = normalEvents()).length >= N || curlDone, {
      timeout: 15000,
      interval: 300,
      message: () => `the reading subscriber (curl) to get all ${N} events (has ${normal.length})`,
    });
    if (curlDone) {
      const cuts = metric(await metrics(base), 'courant_slow_subscriber_disconnects_total');
      throw new Error(`the reading subscriber (curl) was disconnected after ${normal.length} of ${N} events (curl ${JSON.stringify(curlDone)} ${curlErr.trim()}; ` +
        `courant_slow_subscriber_disconnects_total ${cuts}): it reads as fast as it can, so it was cut as slow because of a burst of events ` +
        `queued in one worker turn (see the burst test)`);
    }
    clearInterval(sampler);
    peak = Math.max(peak, rssKb(pid));

    assert(disconnectedDuring >= 1, () => `courant_slow_subscriber_disconnects_total is ${disconnectedDuring} after ${N} x 10 KB (${publishMs} ms) to a subscriber that never reads`);
    // Within the 5 s grace the stuck connection is closed for good.
    await waitFor(async () => metric(await metrics(base), 'courant_subscribers_open') === 1, {
      timeout: 8000,
      message: 'the stuck subscriber to be closed (courant_subscribers_open back to 1)',
    });
    const m2 = await metrics(base);
    assert(metric(m2, 'courant_slow_subscriber_disconnects_total') === 1, () => `courant_slow_subscriber_disconnects_total ${m2.get('courant_slow_subscriber_disconnects_total')}: the reading subscriber was cut too?`);
    assert(server.stderrLines.some((l) => /max-pending-bytes/.test(l)), () => `no log line about the slow subscriber:\n${server.tail(10)}`);

    // The reading subscriber: every event, once, still connected.
    await sleep(200);
    normal = normalEvents();
    const got = ids(normal);
    const gotSet = new Set(got);
    assert(got.length === N && gotSet.size === N && published.every((id) => gotSet.has(id)), () => `the reading subscriber got ${got.length} events, ${gotSet.size} distinct, of ${N}`);
    assert(normal.every((e) => e.dataLen === payload.length), 'an event arrived with the wrong data length');
    assert(!curlDone, () => `the reading subscriber was disconnected: ${JSON.stringify(curlDone)} ${curlErr}`);

    const growthMb = (peak - baseline) / 1024;
    assert(growthMb < 100, () => `RSS grew by ${growthMb.toFixed(1)} MB (baseline ${(baseline / 1024).toFixed(1)} MB, peak ${(peak / 1024).toFixed(1)} MB)`);
    if (process.env.COURANT_E2E_VERBOSE) console.error(`  rss baseline ${(baseline / 1024).toFixed(1)} MB, peak ${(peak / 1024).toFixed(1)} MB, publish ${publishMs} ms`);

    // What the stuck one had been given is a clean prefix of the stream (the
    // last event may be cut short by the close): it can resume right after.
    const chunks = [];
    stuck.on('data', (d) => chunks.push(d));
    const closed = new Promise((resolve) => stuck.once('close', resolve));
    stuck.resume();
    await withTimeout(closed, 10000, 'the stuck socket to reach its end');
    stuckClosedAt = Date.now();
    const text = Buffer.concat(chunks).toString('utf8');
    const head = text.indexOf('\r\n\r\n');
    assert(text.startsWith('HTTP/1.1 200') && head > 0, () => `stuck subscriber's answer: ${short(text)}`);
    const p = new SSEParser({ keepData: false });
    p.feed(text.slice(head + 4));
    const prefix = ids(p.events);
    assert(prefix.length > 0 && prefix.length < N, () => `the stuck subscriber got ${prefix.length} events`);
    assert(prefix.every((id, k) => id === got[k]), () => `the stuck subscriber's events are not a prefix of the stream: ${short(prefix.slice(0, 5))} vs ${short(got.slice(0, 5))}`);
    assert(p.events.every((e) => e.dataLen === payload.length), 'the stuck subscriber got a truncated event that parsed as complete');
  } finally {
    clearInterval(sampler);
    if (!stuckClosedAt) stuck.destroy();
    if (!curlDone) curl.kill('SIGTERM');
    await withTimeout(curlExit, 3000, 'curl to exit').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 45000 });

// One worker, ten 10 KB publishes arriving together on ten connections: the
// worker takes them in one turn, so its next turn fans out a burst of ~100 KB
// to a subscriber whose socket is empty and which reads everything at once.
// The kernel takes most of it; what stays queued is far below 64 KB. Such a
// subscriber is not slow and must not be disconnected.
test('slow subscriber: a reader that keeps up is not cut by one burst of events bigger than --max-pending-bytes', async () => {
  const server = await startCourant(['--workers', '1', '--max-pending-bytes', '65536', '--heartbeat', '0']);
  const base = server.base;
  const reader = await openStream(base, `${HUB}?topic=*`, { keepRaw: false, keepData: false });
  const socks = [];
  try {
    await waitFor(async () => metric(await metrics(base), 'courant_subscribers_open') === 1, { message: 'the subscriber' });
    const payload = 'b'.repeat(10 * 1024);
    for (let i = 0; i < 10; i++) {
      const sock = net.connect({ port: server.port, host: '127.0.0.1', noDelay: true });
      const st = { sock, out: '' };
      sock.setEncoding('latin1');
      sock.on('data', (d) => (st.out += d));
      sock.on('error', () => {});
      socks.push(st);
      await new Promise((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
    }
    await sleep(200); // all accepted and idle
    // All ten requests written in the same tick.
    socks.forEach((st, i) => {
      const body = `topic=burst&id=burst-${i}&data=${payload}`;
      st.sock.write(`POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    await waitFor(() => socks.every((st) => /\r\n\r\nburst-\d+$/.test(st.out)), {
      timeout: 5000,
      message: () => `ten 200 answers (${short(socks.map((st) => st.out.split('\r\n')[0]))})`,
    });
    assert(socks.every((st) => st.out.startsWith('HTTP/1.1 200')), () => `answers: ${short(socks.map((st) => st.out.split('\r\n')[0]))}`);
    await waitFor(() => reader.sse.events.length >= 10 || reader.ended, { timeout: 5000, message: () => `the burst (${reader.sse.events.length} events)` });
    await sleep(300);
    const m = await metrics(base);
    const cut = metric(m, 'courant_slow_subscriber_disconnects_total');
    assert(cut === 0 && !reader.ended && reader.sse.events.length === 10,
      () => `a subscriber reading as fast as it can was ${reader.ended ? 'disconnected' : 'kept'} after ${reader.sse.events.length} of 10 events ` +
        `(courant_slow_subscriber_disconnects_total ${cut}): a burst of 10 x 10 KB events fanned out in one turn is counted ` +
        `as pending output before any of it is offered to the socket; server log:\n${server.tail(4)}`);
  } finally {
    for (const st of socks) st.sock.destroy();
    reader.close();
  }
}, { timeout: 20000 });

// Same root cause, on replay: a fresh subscriber asking for `earliest` gets
// 100 KB of history queued before a single byte is offered to its socket.
test('slow subscriber: a fresh reader replaying more history than --max-pending-bytes is not cut as slow', async () => {
  const server = await startCourant(['--workers', '1', '--max-pending-bytes', '65536', '--heartbeat', '0']);
  const base = server.base;
  const payload = 'r'.repeat(10 * 1024);
  for (let i = 0; i < 10; i++) await publishOk(base, `topic=replay&id=replay-${i}&data=${payload}`);
  const s = await openStream(base, `${HUB}?topic=replay`, { headers: { 'Last-Event-ID': 'earliest' }, keepRaw: false, keepData: false });
  try {
    await waitFor(() => s.sse.events.length >= 10 || s.ended, { timeout: 5000, message: () => `the replay (${s.sse.events.length} events)` });
    await sleep(300);
    const cut = metric(await metrics(base), 'courant_slow_subscriber_disconnects_total');
    assert(cut === 0 && !s.ended && s.sse.events.length === 10,
      () => `a fresh subscriber replaying 10 x 10 KB was ${s.ended ? 'disconnected' : 'kept'} after ${s.sse.events.length} of 10 events ` +
        `(courant_slow_subscriber_disconnects_total ${cut}): the whole replay is queued before any of it is offered to the socket`);
  } finally {
    s.close();
  }
});

// ---- (g) heartbeat and retry ------------------------------------------------------------

test('--heartbeat 1 --retry 1234: retry at the start, a comment on idle streams', async () => {
  const server = await startCourant(['--heartbeat', '1', '--retry', '1234']);
  const t0 = Date.now();
  const s = await openStream(server.base, `${HUB}?topic=hb`);
  try {
    await waitFor(() => s.raw.length >= 16, { timeout: 2000, message: () => `the stream start (${JSON.stringify(s.raw)})` });
    // no blank line after retry: some clients would hand an empty event to the application
    assert(s.raw.startsWith(':\nretry: 1234\n') && !s.raw.startsWith(':\nretry: 1234\n\n'),
      () => `stream starts ${JSON.stringify(s.raw)}, want ":\\nretry: 1234\\n" and no blank line`);
    await waitFor(() => s.sse.comments.length >= 2, { timeout: 2500, interval: 25, message: () => `a heartbeat within 2.5 s (raw ${JSON.stringify(s.raw)})` });
    const first = Date.now() - t0;
    assert(first >= 800, `first heartbeat after ${first} ms: too soon for --heartbeat 1`);
    await waitFor(() => s.sse.comments.length >= 3, { timeout: 2500, interval: 25, message: () => `a second heartbeat (raw ${JSON.stringify(s.raw)})` });
    await publishOk(server.base, [['topic', 'hb'], ['id', 'h'], ['data', 'x']]);
    await waitFor(() => s.sse.events.length === 1, { message: 'the event' });
    const c = s.sse.comments.length;
    await waitFor(() => s.sse.comments.length > c, { timeout: 2500, interval: 25, message: 'a heartbeat after the event' });
    assert(/^:\nretry: 1234\n(:\n)+id: h\ndata: x\n\n(:\n)+$/.test(s.raw), () => `stream ${JSON.stringify(s.raw)}`);
    assert(s.sse.retries.length === 1 && s.sse.retries[0] === 1234, `retries ${s.sse.retries}`);
  } finally {
    s.close();
  }
}, { timeout: 15000 });

test('--max-lifetime 2: idle streams end after 1.6 to 2.4 s (plus a tick)', async () => {
  const server = await startCourant(['--max-lifetime', '2', '--heartbeat', '0']);
  const t0 = Date.now();
  const streams = await Promise.all([1, 2, 3, 4].map(() => openStream(server.base, `${HUB}?topic=life`)));
  try {
    await waitFor(() => streams.every((s) => s.ended), { timeout: 4000, interval: 20, message: () => `every stream to end (${streams.map((s) => s.ended)})` });
    const took = streams.map((s) => s.endedAt - t0);
    assert(took.every((ms) => ms >= 1500 && ms <= 2900), () => `streams ended after ${took} ms; want 1600..2400 (+ a 250 ms tick)`);
    const m = await metrics(server.base);
    assert(metric(m, 'courant_subscribers_open') === 0, () => `courant_subscribers_open ${m.get('courant_subscribers_open')} after the streams ended`);
    for (const s of streams) assert(s.raw === ':\n', () => `an idle stream carried ${JSON.stringify(s.raw)}`);
  } finally {
    for (const s of streams) s.close();
  }
}, { timeout: 15000 });

// The descriptor table is grown at start, while the process has one thread:
// grown later, each doubling waits for an RCU grace period (main.c,
// presize_fd_table), and accepts stall with it. /proc says how big it is.
function fdTableSize(pid) {
  return Number(/FDSize:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

test('descriptor table: sized for --max-connections at start (capped at 65,536), not grown by connecting', async () => {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0', '--max-connections', '3000']);
  const before = fdTableSize(server.proc.pid);
  assert(before >= 3000 + 64 && before <= 8192, () => `FDSize ${before} with --max-connections 3000; want room for 3,064 (a power of two up to 8,192)`);
  const streams = [];
  try {
    for (let i = 0; i < 300; i++) streams.push(await openStream(server.base, `${HUB}?topic=fdtable`, { keepRaw: false, keepData: false }));
    const after = fdTableSize(server.proc.pid);
    assert(after === before, () => `FDSize grew from ${before} to ${after} while 300 subscribers connected`);
  } finally {
    for (const s of streams) s.close();
  }
  const big = await startCourant(['--workers', '1', '--max-connections', '500000']);
  const size = fdTableSize(big.proc.pid);
  assert(size === 65536 || (size >= 4096 && size < 65536), () => `FDSize ${size} with --max-connections 500000; want the 65,536 cap (or the descriptor limit, if lower)`);
}, { timeout: 30000 });

// Publish pacing: a burst to many subscribers, with bounds low enough that
// the fan-out (under ASan) passes them. Held answers still come, each event
// is delivered once; refused publishes say when to retry and publish nothing.
async function pacedBurst(args, { subscribers = 300, publishers = 8, each = 60 } = {}) {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0', '--fanout-batch-us', '0', ...args]);
  const base = server.base;
  const streams = [];
  try {
    for (let i = 0; i < subscribers; i++) streams.push(await openStream(base, `${HUB}?topic=pace`, { keepRaw: false, keepData: false }));
    const answers = [];
    const publisher = async (p) => {
      for (let i = 0; i < each; i++) {
        const id = `pace-${p}-${i}`;
        const r = await publish(base, [['topic', 'pace'], ['id', id], ['data', `${id} ${'x'.repeat(100)}`]]);
        answers.push({ id, status: r.status, body: r.body, retryAfter: r.headers.get('retry-after') });
      }
    };
    await Promise.all([...Array(publishers).keys()].map(publisher));
    const ok = answers.filter((a) => a.status === 200);
    await waitFor(() => streams.every((s) => s.sse.events.length >= ok.length), {
      timeout: 20000,
      message: () => `every subscriber has the ${ok.length} accepted events (fewest ${Math.min(...streams.map((s) => s.sse.events.length))})`,
    });
    await sleep(200); // nothing more may come
    const ids = new Set(ok.map((a) => a.id));
    for (const s of streams) {
      assert(s.sse.events.length === ok.length, () => `a subscriber got ${s.sse.events.length} events, want ${ok.length}`);
      assert(s.sse.events.every((e) => ids.has(e.id)), 'a subscriber got an event whose publish was refused');
    }
    return { answers, ok, m: await metrics(base) };
  } finally {
    for (const s of streams) s.close();
  }
}

test('pacing: past --publish-wait-lag answers are held (counted), all come, every event delivered once', async () => {
  const { answers, ok, m } = await pacedBurst(['--publish-wait-lag', '1', '--publish-refuse-lag', '0']);
  assert(ok.length === answers.length, () => `refusals without --publish-refuse-lag: ${short(answers.filter((a) => a.status !== 200))}`);
  assert(ok.every((a) => a.body === a.id), 'an answer does not name its event');
  const held = metric(m, 'courant_publish_answers_held_total');
  assert(held > 0, () => `no answer was held at a 1 ms bound (writes ${m.get('courant_writes_total')}, deliveries ${m.get('courant_deliveries_total')})`);
  assert(metric(m, 'courant_publish_lag_refusals_total') === 0, 'refusals counted');
  assert(metric(m, 'courant_fanout_lag_seconds') >= 0, 'lag gauge');
}, { timeout: 60000 });

test('pacing: past --publish-refuse-lag a publish is refused (503, Retry-After: 1) and not published', async () => {
  const { answers, ok, m } = await pacedBurst(['--publish-wait-lag', '0', '--publish-refuse-lag', '1'], { publishers: 16, each: 40 });
  const refused = answers.filter((a) => a.status !== 200);
  assert(refused.length > 0, 'no publish was refused at a 1 ms bound');
  assert(ok.length > 0, 'every publish was refused');
  assert(refused.every((a) => a.status === 503 && a.retryAfter === '1' && /publish-refuse-lag/.test(a.body)),
    () => `refusals: ${short(refused.slice(0, 3))}`);
  assert(metric(m, 'courant_publish_lag_refusals_total') === refused.length,
    () => `courant_publish_lag_refusals_total ${m.get('courant_publish_lag_refusals_total')}, ${refused.length} refused`);
  assert(metric(m, 'courant_publish_answers_held_total') === 0, 'answers held with --publish-wait-lag 0');
}, { timeout: 60000 });

test('pipelining: 50 publishes sent in one write are answered in order, each with its id, all delivered', async () => {
  const server = await startCourant(['--workers', '2', '--heartbeat', '0']);
  const s = await openStream(server.base, `${HUB}?topic=pipe`);
  try {
    let batch = '';
    for (let i = 0; i < 50; i++) {
      const body = `topic=pipe&id=pipe-${i}&data=${i}`;
      batch += `POST ${HUB} HTTP/1.1\r\nHost: x\r\nContent-Type: ${FORM}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    }
    const sock = net.connect(server.port, '127.0.0.1');
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => (got += d));
    await new Promise((resolve) => sock.on('connect', resolve));
    sock.write(batch);
    const answers = () => (got.match(/HTTP\/1\.1 \d{3} /g) || []).length; // bodies have no newline: an answer follows one
    await waitFor(() => answers() === 50, { message: () => `50 answers (${answers()})` });
    sock.destroy();
    const ids = [...got.matchAll(/\r\n\r\n(pipe-\d+)/g)].map((m) => m[1]);
    assert(ids.length === 50 && ids.every((id, i) => id === `pipe-${i}`), () => `answers out of order: ${short(ids)}`);
    assert(!/HTTP\/1\.1 (?!200)\d{3} /.test(got), () => `a refusal: ${short(got)}`);
    await waitFor(() => s.sse.events.length === 50, { message: () => `50 events (${s.sse.events.length})` });
    assert(s.sse.events.every((e, i) => e.id === `pipe-${i}`), 'events out of order');
  } finally {
    s.close();
  }
});

test('metrics: every documented series is there and counts', async () => {
  const server = await startCourant(['--heartbeat', '0']);
  const base = server.base;
  const res = await fetch(`${base}/metrics`);
  assert(res.status === 200 && (res.headers.get('content-type') || '').startsWith('text/plain'), `GET /metrics: ${res.status} ${res.headers.get('content-type')}`);
  await res.text();
  const m0 = await metrics(base);
  for (const name of ['courant_connections_open', 'courant_subscribers_open', 'courant_events_published_total', 'courant_deliveries_total',
    'courant_bytes_written_total', 'courant_events_replayed_total', 'courant_slow_subscriber_disconnects_total', 'courant_history_events',
    'courant_writes_total', 'courant_publish_answers_held_total', 'courant_publish_lag_refusals_total', 'courant_fanout_lag_seconds']) {
    assert(Number.isFinite(metric(m0, name)), `${name} is not a number`);
  }
  assert([...m0.keys()].some((k) => /^courant_refused_requests_total\{reason="[a-z_]+"\}$/.test(k)), () => `no courant_refused_requests_total{reason=...}:\n${m0.text}`);

  await publishOk(base, [['topic', 'm'], ['id', 'm1'], ['data', 'one']]);
  const s = await openStream(base, `${HUB}?topic=m`, { headers: { 'Last-Event-ID': 'earliest' } });
  const s2 = await openStream(base, `${HUB}?topic=*`);
  try {
    await waitFor(() => s.sse.events.length === 1, { message: 'the replay' });
    await publishOk(base, [['topic', 'm'], ['id', 'm2'], ['data', 'two']]);
    await waitFor(() => s.sse.events.length === 2 && s2.sse.events.length === 1, { message: 'the live event' });
    const before = (await metrics(base)).get('courant_refused_requests_total{reason="bad_request"}');
    assert((await publish(base, 'data=no-topic')).status === 400, 'refusal');
    const m = await metrics(base);
    const want = {
      courant_subscribers_open: 2,
      courant_events_published_total: 2,
      courant_events_replayed_total: 1,
      courant_deliveries_total: 2,
      courant_history_events: 2,
      courant_slow_subscriber_disconnects_total: 0,
    };
    for (const [k, v] of Object.entries(want)) assert(metric(m, k) === v, () => `${k} ${m.get(k)}, want ${v}`);
    assert(metric(m, 'courant_connections_open') >= 2, () => `courant_connections_open ${m.get('courant_connections_open')}`);
    assert(metric(m, 'courant_bytes_written_total') >= s.bytes + s2.bytes, () => `courant_bytes_written_total ${m.get('courant_bytes_written_total')} < ${s.bytes + s2.bytes} read by the subscribers`);
    assert(metric(m, 'courant_refused_requests_total{reason="bad_request"}') === before + 1, 'the 400 was not counted as bad_request');
  } finally {
    s.close();
    s2.close();
  }
  await waitFor(async () => metric(await metrics(base), 'courant_subscribers_open') === 0, { message: 'courant_subscribers_open back to 0 after the clients left' });
});

await run();
