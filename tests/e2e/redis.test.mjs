// redis.test.mjs - --redis end to end: a real redis-server on a free loopback
// port, several real courant nodes sharing its stream. Publish on any node,
// receive on every node in one order, resume on another node, Redis stopped
// and started again mid-stream, a node killed with kill -9 and restarted.
//
//   node tests/e2e/redis.test.mjs
//
// Needs redis-server (Debian's redis-server; scripts/setup.sh installs it).
// The system's Redis service is never used: each test starts its own, with
// its data in a scratch directory. Env: as hub.test.mjs.

import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, freePort, openStream, postForm, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const TOPIC = 'https://example.com/shared';

const scratch = mkdtempSync(path.join(tmpdir(), 'courant-redis-e2e-'));
const redises = [];
process.on('exit', () => {
  for (const r of redises) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});
let dirCount = 0;

// ---- Redis ------------------------------------------------------------------------

/** Sends PING; resolves true on +PONG. */
function ping(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (v) => { c.destroy(); resolve(v); };
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
    c.on('error', () => done(false));
    c.setTimeout(1000, () => done(false));
  });
}

/**
 * Starts redis-server on `port` (a new free one if not given) with its files
 * in `dir`: append-only file fsynced at every write, so a Redis that is
 * stopped and started again still holds every entry it acknowledged (as a
 * production Redis behind --redis should be configured).
 */
async function startRedis({ port, dir } = {}) {
  port = port || (await freePort());
  dir = dir || path.join(scratch, `r${++dirCount}`);
  mkdirSync(dir, { recursive: true });
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--protected-mode', 'no'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { proc, port, dir, url: `redis://127.0.0.1:${port}`, out: '' };
  proc.stdout.on('data', (d) => { r.out += d; });
  proc.stderr.on('data', (d) => { r.out += d; });
  r.exited = new Promise((resolve) => proc.on('exit', resolve));
  redises.push(r);
  await waitFor(() => ping(port), { timeout: 10000, message: () => `redis-server on ${port} to answer PING; its output:\n${r.out}` });
  r.stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await r.exited;
  };
  return r;
}

// ---- clients -------------------------------------------------------------------------

const post = (base, data, agent, extra = '') => postForm(base, TOPIC, data, agent, extra);
const subscribe = (base, lastEventId) => openStream(base, TOPIC, lastEventId);

/**
 * `n` publishers on `base`, each posting "<tag><k>-<i>" one after another on
 * its own keep-alive connection until stop(), or `count` each. Records
 * acknowledged (200) events and the other statuses; a 503 is retried after
 * a short pause (the event is new each time: its data names a new i).
 */
function publishers(base, n, tag, { count = Infinity } = {}) {
  const st = { acked: [], statuses: {}, stopped: false, errors: 0 };
  const loops = [];
  for (let k = 0; k < n; k++) {
    loops.push((async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; !st.stopped && i < count; i++) {
        const data = `${tag}${k}-${i}`;
        try {
          const r = await post(base, data, agent);
          st.statuses[r.status] = (st.statuses[r.status] || 0) + 1;
          if (r.status === 200) st.acked.push({ id: r.body, data });
          else await sleep(20);
        } catch {
          st.errors++;
          await sleep(50);
        }
      }
      agent.destroy();
    })());
  }
  st.stop = async () => { st.stopped = true; await Promise.all(loops); };
  st.finished = Promise.all(loops);
  return st;
}

async function metric(base, name) {
  const text = await new Promise((resolve, reject) => {
    http.get(`${base}/metrics`, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const nodeArgs = (redis, extra = []) => ['--redis', redis.url, '--workers', '1', '--history', '100000', ...extra];

/** Waits until every subscriber holds every acked id; then checks they agree exactly. */
async function checkSameSequence(subs, acked, what) {
  const want = new Set(acked.map((a) => a.id));
  for (const [i, s] of subs.entries()) {
    await waitFor(() => { const have = new Set(s.events.map((e) => e.id)); return [...want].every((id) => have.has(id)); },
      { timeout: 30000, message: () => `subscriber ${i} (${what}) to hold all ${want.size} acknowledged events (has ${s.events.length})` });
  }
  await sleep(300); // anything else in flight arrives too
  const first = subs[0].events.map((e) => e.id);
  assert(new Set(first).size === first.length, `${what}: subscriber 0 received a duplicate`);
  for (const [i, s] of subs.entries()) {
    const ids = s.events.map((e) => e.id);
    assert(ids.length === first.length && ids.every((id, j) => id === first[j]),
      () => `${what}: subscriber ${i} saw ${ids.length} events, subscriber 0 saw ${first.length}; first difference at #${ids.findIndex((id, j) => id !== first[j])}`);
  }
  const byId = new Map(subs[0].events.map((e) => [e.id, e.data]));
  for (const a of acked) assert(byId.get(a.id) === a.data, `acked ${a.id} carried ${a.data}, delivered ${byId.get(a.id)}`);
  // Each publisher's own events in the order it sent them.
  const last = new Map();
  for (const e of subs[0].events) {
    const m = /^(\w+?)(\d+)-(\d+)$/.exec(e.data);
    if (!m) continue;
    const k = m[1] + m[2], i = Number(m[3]);
    assert(!last.has(k) || last.get(k) < i, `publisher ${k}: event ${i} after ${last.get(k)}`);
    last.set(k, i);
  }
  return first;
}

// ---- tests ---------------------------------------------------------------------------

test('three nodes, publishers and subscribers on each: every subscriber gets the same sequence', async () => {
  const redis = await startRedis();
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startCourant(nodeArgs(redis)));
  const subs = [];
  for (const n of nodes) for (let j = 0; j < 2; j++) subs.push(subscribe(n.base));
  await Promise.all(subs.map((s) => s.opened));
  const pubs = nodes.map((n, i) => publishers(n.base, 4, `n${i}p`, { count: 60 }));
  await Promise.all(pubs.map((p) => p.finished));
  const acked = pubs.flatMap((p) => p.acked);
  assert(acked.length === 3 * 4 * 60, `acked ${acked.length} of 720: ${JSON.stringify(pubs.map((p) => p.statuses))}`);
  const seq = await checkSameSequence(subs, acked, 'three nodes');
  assert(seq.length === 720, `delivered ${seq.length}, want 720`);
  const xadd = await Promise.all(nodes.map((n) => metric(n.base, 'courant_backplane_xadd_total')));
  const xread = await Promise.all(nodes.map((n) => metric(n.base, 'courant_backplane_xread_total')));
  const up = await Promise.all(nodes.map((n) => metric(n.base, 'courant_backplane_up')));
  assert(xadd.every((x) => x === 240), `xadd per node ${xadd}`);
  assert(xread.every((x) => x === 720), `xread per node ${xread}`);
  assert(up.every((x) => x === 1), `up ${up}`);
  // A node started now loads the same history, in the same order.
  const late = await startCourant(nodeArgs(redis));
  const h = subscribe(late.base, 'earliest');
  await waitFor(() => h.events.length >= 720, { timeout: 10000, message: () => `history on a late node (${h.events.length})` });
  assert(JSON.stringify(h.events.map((e) => e.id)) === JSON.stringify(seq), 'a late node\'s history differs');
  h.close();
  for (const s of subs) s.close();
  await redis.stop();
  console.log(`# 720 events from 12 publishers on 3 nodes: 6 subscribers got the same 720 in the same order; xadd ${xadd}, xread ${xread}`);
}, { timeout: 90000 });

test('resume across nodes: received on A, reconnect to B with Last-Event-ID: no gap, no duplicate', async () => {
  const redis = await startRedis();
  const a = await startCourant(nodeArgs(redis));
  const b = await startCourant(nodeArgs(redis));
  const all = subscribe(b.base);
  const onA = subscribe(a.base);
  await Promise.all([all.opened, onA.opened]);
  // Phase 1 while the client is on A; phase 2 after it left A.
  const p1 = [publishers(a.base, 2, 'x', { count: 25 }), publishers(b.base, 2, 'y', { count: 25 })];
  await Promise.all(p1.map((p) => p.finished));
  await waitFor(() => onA.events.length >= 100, { timeout: 20000, message: () => `100 events on A (${onA.events.length})` });
  onA.close();
  const seen = onA.events.slice();
  const p2 = [publishers(a.base, 2, 'v', { count: 25 }), publishers(b.base, 2, 'w', { count: 25 })];
  await Promise.all(p2.map((p) => p.finished));
  await waitFor(() => all.events.length >= 200, { timeout: 20000, message: () => `200 events on B (${all.events.length})` });
  assert(seen.length === 100, `A's client saw ${seen.length} events, want 100`);
  const last = seen[seen.length - 1].id;
  const onB = subscribe(b.base, last);
  await onB.opened;
  assert(onB.headers['last-event-id'] === last, `B answered Last-Event-ID ${onB.headers['last-event-id']}, want ${last}`);
  const rest = all.events.length - seen.length;
  await waitFor(() => onB.events.length >= rest, { timeout: 10000, message: () => `${rest} events resumed on B (${onB.events.length})` });
  await sleep(300);
  const joined = [...seen, ...onB.events].map((e) => e.id);
  const want = all.events.map((e) => e.id);
  assert(JSON.stringify(joined) === JSON.stringify(want),
    `A then B: ${joined.length} events, B's live subscriber: ${want.length}; first difference at #${joined.findIndex((id, j) => id !== want[j])}`);
  onB.close();
  all.close();
  await redis.stop();
  console.log(`# ${seen.length} events on A, then ${onB.events.length} resumed on B: the same ${want.length} as B's live subscriber`);
}, { timeout: 60000 });

test('an event whose data holds a NUL is read back and delivered on every node, its own included', async () => {
  const redis = await startRedis();
  const a = await startCourant(nodeArgs(redis));
  const b = await startCourant(nodeArgs(redis));
  const onA = subscribe(a.base);
  const onB = subscribe(b.base);
  await Promise.all([onA.opened, onB.opened]);
  const r = await post(a.base, 'a\u0000b', undefined);
  assert(r.status === 200, `publish: ${r.status} ${r.body}`);
  for (const s of [onA, onB])
    await waitFor(() => s.events.some((e) => e.id === r.body), { timeout: 5000, message: 'the event read back from the stream' });
  assert([onA, onB].every((s) => s.events.find((e) => e.id === r.body).data === 'a\u0000b'), 'the data changed on the way');
  assert((await metric(a.base, 'courant_backplane_bad_entries_total')) === 0, 'an entry was skipped');
  onA.close();
  onB.close();
  await redis.stop();
});

test('Redis stopped mid-stream and started again: 503 meanwhile, every 200 reaches every subscriber', async () => {
  const redis = await startRedis();
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await startCourant(nodeArgs(redis)));
  const subs = nodes.map((n) => subscribe(n.base));
  await Promise.all(subs.map((s) => s.opened));
  const pubs = nodes.map((n, i) => publishers(n.base, 2, `s${i}p`));
  await waitFor(() => pubs.every((p) => p.acked.length >= 50), { timeout: 20000, message: 'acks before the outage' });
  await redis.stop();
  for (const n of nodes)
    await waitFor(async () => (await metric(n.base, 'courant_backplane_up')) === 0, { timeout: 10000, message: `${n.base} to see Redis down` });
  // Down: a publish is refused at once, never queued.
  for (const n of nodes) {
    const r = await post(n.base, 'during-outage', undefined);
    assert(r.status === 503, `publish during the outage on ${n.base}: ${r.status} ${r.body}`);
  }
  const ackedBefore = pubs.map((p) => p.acked.length);
  await sleep(500);
  const again = await startRedis({ port: redis.port, dir: redis.dir });
  for (const n of nodes)
    await waitFor(async () => (await metric(n.base, 'courant_backplane_up')) === 1, { timeout: 10000, message: `${n.base} to reconnect` });
  await waitFor(() => pubs.every((p, i) => p.acked.length >= ackedBefore[i] + 30), { timeout: 20000, message: 'acks after the outage' });
  await Promise.all(pubs.map((p) => p.stop()));
  const acked = pubs.flatMap((p) => p.acked);
  const refused = pubs.reduce((s, p) => s + (p.statuses[503] || 0), 0);
  assert(refused > 0, 'no publish got 503 during the outage');
  await checkSameSequence(subs, acked, 'across the outage');
  const lost = nodes.map((n) => n.stderrLines.filter((l) => l.includes('backplane: lost')).length);
  const back = nodes.map((n) => n.stderrLines.filter((l) => l.includes('backplane: reconnected')).length);
  assert(lost.every((x) => x === 1) && back.every((x) => x === 1), `state lines: lost ${lost}, reconnected ${back}`);
  const perRequest = nodes.map((n) => n.stderrLines.filter((l) => l.includes('refused 503')).length);
  assert(perRequest.every((x) => x === 0), `refused publishes logged one by one during the outage: ${perRequest}`);
  const counted = await Promise.all(nodes.map((n) => metric(n.base, 'courant_refused_requests_total{reason="unavailable"}')));
  assert(counted.reduce((a, b) => a + b, 0) >= refused + 3, `refusals counted in /metrics: ${counted}, answered 503: ${refused + 3}`);
  for (const s of subs) s.close();
  await again.stop();
  console.log(`# ${acked.length} acknowledged across a Redis restart, ${refused} publishes got 503 during it; 3 subscribers agree; one "lost" and one "reconnected" line per node`);
}, { timeout: 90000 });

test('a node killed with kill -9 and restarted: its clients resume without a gap', async (ctx) => {
  const redis = await startRedis();
  const port = await freePort();
  const argsA = nodeArgs(redis, ['--listen', `127.0.0.1:${port}`]);
  const a = await startCourant(argsA);
  const b = await startCourant(nodeArgs(redis));
  const all = subscribe(b.base);
  const onA = subscribe(a.base);
  await Promise.all([all.opened, onA.opened]);
  const p = publishers(b.base, 2, 'k');
  await waitFor(() => onA.events.length >= 40, { timeout: 20000, message: 'events on A before the kill' });
  a.proc.kill('SIGKILL');
  await a.exited;
  await onA.done;
  assert(!a.sanitizerReport(), () => a.sanitizerReport());
  ctx.servers.splice(ctx.servers.indexOf(a), 1); // killed on purpose
  const seen = onA.events.slice();
  await sleep(300); // publishes go on while A is down
  const a2 = await startCourant(argsA);
  const onA2 = subscribe(a2.base, seen[seen.length - 1].id);
  await onA2.opened;
  assert(onA2.headers['last-event-id'] === seen[seen.length - 1].id, `restarted A did not know ${seen[seen.length - 1].id}`);
  await sleep(300);
  await p.stop();
  await checkSameSequence([all], p.acked, 'B');
  await waitFor(() => seen.length + onA2.events.length >= all.events.length, { timeout: 10000, message: 'the rest on the restarted A' });
  await sleep(300);
  const joined = [...seen, ...onA2.events].map((e) => e.id);
  const want = all.events.map((e) => e.id);
  assert(JSON.stringify(joined) === JSON.stringify(want),
    `before the kill then after: ${joined.length}, B's subscriber: ${want.length}; first difference at #${joined.findIndex((id, j) => id !== want[j])}`);
  onA2.close();
  all.close();
  await redis.stop();
  console.log(`# ${seen.length} events before kill -9, ${onA2.events.length} after the restart: the same ${want.length} as on B`);
}, { timeout: 60000 });

test('Redis unreachable at start: courant starts, serves subscribers, 503 for publishes, then catches up', async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const n = await startCourant(['--redis', url, '--workers', '1']);
  assert(n.stderrLines.some((l) => l.includes('backplane: redis') && l.includes('unreachable')), 'no "unreachable" line');
  const s = subscribe(n.base);
  await s.opened;
  const r = await post(n.base, 'too-early', undefined);
  assert(r.status === 503, `publish with Redis down: ${r.status}`);
  assert((await metric(n.base, 'courant_backplane_up')) === 0, 'up should be 0');
  const redis = await startRedis({ port });
  await waitFor(async () => (await metric(n.base, 'courant_backplane_up')) === 1, { timeout: 10000, message: 'reconnect' });
  const ok = await post(n.base, 'k0-0', undefined);
  assert(ok.status === 200, `publish once connected: ${ok.status}`);
  await waitFor(() => s.events.some((e) => e.id === ok.body), { timeout: 5000, message: 'the event delivered' });
  s.close();
  const unreachable = n.stderrLines.filter((l) => l.includes('backplane: redis') && l.includes('unreachable')).length;
  assert(unreachable === 1, `"unreachable" logged ${unreachable} times, want once`);
  await redis.stop();
}, { timeout: 30000 });

test('--redis with --store is refused at start with one line; a bad URL too', async () => {
  const { spawnSync } = await import('node:child_process');
  const { courantBin } = await import('./lib.mjs');
  const both = spawnSync(courantBin(), ['--redis', 'redis://127.0.0.1:1', '--store', path.join(scratch, 'x.db'), '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000 });
  assert(both.status === 2, `exit ${both.status}`);
  assert(/--store and --redis exclude each other/.test(both.stderr) && both.stderr.trim().split('\n').length === 1, `stderr: ${both.stderr}`);
  const bad = spawnSync(courantBin(), ['--redis', 'rediss://h:1', '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000 });
  assert(bad.status === 1 && /TLS/.test(bad.stderr), `bad URL: exit ${bad.status}, ${bad.stderr}`);
});

await run();
