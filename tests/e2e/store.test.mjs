// store.test.mjs - durable history (--store) end to end, with a real courant
// on real files: kill -9 and SIGTERM during a storm of concurrent publishers,
// then restart and check that every acknowledged event is there, in order,
// with its id, and that a client resuming from before the restart gets no gap
// and no duplicate; retention bounds the file; and the store's failures, each
// made by a real file-system condition (garbage, a directory that is a file,
// a read-only mount, a second courant, a full tmpfs).
//
//   node tests/e2e/store.test.mjs
//
// The mount-based cases need root (mount -t tmpfs); without it they are
// reported as skipped ("ok - ... # SKIP reason", counted as skipped by tests/run.sh). Env: as hub.test.mjs.

import crypto from 'node:crypto';
import http from 'node:http';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, courantBin, openStream, postForm, run, skip, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const TOPIC = 'https://example.com/storm';

const scratch = mkdtempSync(path.join(tmpdir(), 'courant-store-e2e-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => {
  const d = path.join(scratch, `d${++dirCount}`);
  mkdirSync(d);
  return d;
};

// ---- clients --------------------------------------------------------------------

const post = (base, data, agent, extra = '') => postForm(base, TOPIC, data, agent, extra);
const subscribe = (base, lastEventId) => openStream(base, TOPIC, lastEventId);

/** Resumes from `lastEventId` and returns the events once `want` arrived and 300 ms passed quietly. */
async function history(base, lastEventId, want) {
  const s = subscribe(base, lastEventId);
  await s.opened;
  await waitFor(() => s.events.length >= want, {
    timeout: 20000,
    message: () => `${want} events from Last-Event-ID ${lastEventId} (got ${s.events.length})`,
  });
  await sleep(300);
  s.close();
  return s.events;
}

/**
 * A storm: `n` publishers, each sending "p<k>-<i>" one after another on its
 * own keep-alive connection until `stop()` or a network error. Records what
 * was acknowledged (200: id -> data).
 */
function storm(base, n) {
  const st = { acked: [], other: 0, stopped: false, errors: 0 };
  const loops = [];
  for (let k = 0; k < n; k++) {
    loops.push((async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; !st.stopped; i++) {
        const data = `p${k}-${i}`;
        try {
          const r = await post(base, data, agent);
          if (r.status === 200) st.acked.push({ id: r.body, data, k, i });
          else st.other++;
        } catch {
          st.errors++;
          break; // the server is gone
        }
      }
      agent.destroy();
    })());
  }
  st.stop = async () => { st.stopped = true; await Promise.all(loops); };
  st.finished = Promise.all(loops);
  return st;
}

/** The checks after a restart, shared by the kill -9 and the SIGTERM test. */
async function checkAfterRestart(base, st, live) {
  const acked = st.acked;
  // Everything stored: ask from the start, wait until every acked id is in.
  const ackedIds = new Set(acked.map((a) => a.id));
  const s = subscribe(base, 'earliest');
  await s.opened;
  await waitFor(() => { const have = new Set(s.events.map((e) => e.id)); return [...ackedIds].every((id) => have.has(id)); },
    { timeout: 20000, message: () => `all ${acked.length} acknowledged events after the restart (history has ${s.events.length})` });
  await sleep(300);
  s.close();
  const all = s.events;
  // No id twice, and each event carries its data with its id.
  const byId = new Map();
  for (const e of all) {
    assert(!byId.has(e.id), `id ${e.id} is in history twice`);
    byId.set(e.id, e.data);
  }
  for (const a of acked) assert(byId.get(a.id) === a.data, `acked ${a.id} had data ${a.data}, history says ${byId.get(a.id)}`);
  // Each publisher's events appear in the order it sent them.
  const lastI = new Map();
  for (const e of all) {
    const m = /^p(\d+)-(\d+)$/.exec(e.data);
    assert(m, `unexpected data ${e.data}`);
    const k = Number(m[1]), i = Number(m[2]);
    assert(!lastI.has(k) || lastI.get(k) < i, `publisher ${k}: event ${i} after ${lastI.get(k)}`);
    lastI.set(k, i);
  }
  // What the live subscriber saw before the restart is a prefix of history:
  // nothing was delivered that is not stored, and in the same order.
  for (let j = 0; j < live.events.length; j++)
    assert(live.events[j].id === all[j].id, `live event ${j} was ${live.events[j].id}, history has ${all[j] && all[j].id}`);
  // Resume from the middle, and from the live client's last id: exactly the rest.
  const publishedAfter = await post(base, 'p99-0', undefined);
  assert(publishedAfter.status === 200, `publish after restart: ${publishedAfter.status}`);
  const full = [...all, { id: publishedAfter.body, data: 'p99-0' }];
  const points = [Math.floor(all.length / 2), live.events.length - 1].filter((x) => x >= 0 && x < all.length);
  for (const idx of points) {
    const got = await history(base, full[idx].id, full.length - idx - 1);
    const want = full.slice(idx + 1).map((e) => e.id);
    assert(JSON.stringify(got.map((e) => e.id)) === JSON.stringify(want),
      `resume from #${idx}: got ${got.length} events, want ${want.length} (first got ${got[0] && got[0].id}, want ${want[0]})`);
  }
  return { stored: all.length, acked: acked.length, live: live.events.length, resumedFrom: points };
}

async function stormThenStop(how) {
  const dir = freshDir();
  const db = path.join(dir, 'courant.db');
  const args = ['--store', db, '--history', '100000', '--workers', '2'];
  const a = await startCourant(args);
  const live = subscribe(a.base);
  await live.opened;
  const st = storm(a.base, 8);
  await waitFor(() => st.acked.length >= 300, { timeout: 20000, message: () => `300 acks (have ${st.acked.length})` });
  await sleep(200);
  if (how === 'kill') {
    a.proc.kill('SIGKILL');
    await a.exited;
    await st.finished;
  } else {
    a.proc.kill('SIGTERM');
    await st.finished;
    const { code } = await a.exited;
    assert(code === 0, `SIGTERM exit code ${code}`);
  }
  await live.done;
  assert(!a.sanitizerReport(), () => a.sanitizerReport());
  const b = await startCourant(args);
  const loaded = b.stderrLines.find((l) => l.includes('events of history loaded'));
  const r = await checkAfterRestart(b.base, st, live);
  console.log(`# ${how}: ${r.acked} acknowledged (200) by 8 publishers, ${r.stored} in the store after restart,`
    + ` ${r.live} seen live before the ${how === 'kill' ? 'crash' : 'stop'}, ${st.errors} publishes cut off;`
    + ` resumed from #${r.resumedFrom.join(' and #')} with no gap and no duplicate; "${loaded}"`);
  return { a, b };
}

// ---- crash and restart ---------------------------------------------------------------

test('kill -9 during a publish storm: every acknowledged event survives, in order, with its id', async (ctx) => {
  const { a } = await stormThenStop('kill');
  ctx.servers.splice(ctx.servers.indexOf(a), 1); // killed on purpose; its sanitizer report was checked above
}, { timeout: 90000 });

test('SIGTERM during a publish storm: same guarantees after a graceful restart', async () => {
  await stormThenStop('term');
}, { timeout: 90000 });

// ---- retention -----------------------------------------------------------------------

test('retention by count bounds the file over a long publish run', async () => {
  const dir = freshDir();
  const db = path.join(dir, 'courant.db');
  const s = await startCourant(['--store', db, '--history', '200', '--sync', 'normal']);
  const payload = 'x'.repeat(1000);
  const sizes = [];
  let n = 0;
  for (let round = 0; round < 8; round++) {
    await Promise.all(Array.from({ length: 8 }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = 0; i < 125; i++) {
        const r = await post(s.base, `p0-${n++}`, agent, `&id=r${round}-${i}-${Math.random()}&type=x&retry=&junk=${payload}`);
        assert(r.status === 200, `publish: ${r.status} ${r.body}`);
      }
      agent.destroy();
    }));
    sizes.push(statSync(db).size);
  }
  // 8000 events of ~1 KB went through; 200 are kept.
  const max = Math.max(...sizes);
  assert(max < 1024 * 1024, `the store file reached ${max} bytes (sizes: ${sizes.join(', ')})`);
  assert(sizes[7] <= sizes[1] * 2 + 65536, `the file keeps growing: ${sizes.join(', ')}`);
  const m = await (await fetch(`${s.base}/metrics`)).text();
  const rows = Number(/courant_store_rows (\d+)/.exec(m)[1]);
  assert(rows <= 200 + 64, `store rows ${rows}`);
  console.log(`# retention: 8000 publishes, --history 200: file sizes after each 1000: ${sizes.join(', ')} bytes; rows ${rows}`);
}, { timeout: 120000 });

// ---- backup ----------------------------------------------------------------------------

test('backup: SIGUSR1 writes PATH.backup online; a courant started on it resumes its history', async () => {
  const dir = freshDir();
  const db = path.join(dir, 'courant.db');
  const s = await startCourant(['--store', db]);
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await post(s.base, `p0-${i}`)).body);
  s.proc.kill('SIGUSR1');
  await waitFor(() => s.stderrLines.some((l) => l.includes('backup written to')), { message: 'the backup log line' });
  // Publishing goes on after the backup; the backup holds what was committed before it.
  assert((await post(s.base, 'p0-5')).status === 200, 'publish after backup');
  const rows = execFileSync('sqlite3', [`${db}.backup`, 'SELECT count(*) FROM events']).toString().trim();
  assert(rows === '5', `backup has ${rows} rows`);
  const restored = path.join(freshDir(), 'restored.db');
  execFileSync('cp', [`${db}.backup`, restored]);
  const r = await startCourant(['--store', restored]);
  const got = await history(r.base, 'earliest', 5);
  assert(JSON.stringify(got.map((e) => e.id)) === JSON.stringify(ids), `restored history: ${got.map((e) => e.id)}`);
});

// ---- what the loader checks, what goes through the store ------------------------------------

test('a damaged row is skipped at start (logged, counted); the rest of history loads and resumes', async () => {
  const db = path.join(freshDir(), 'courant.db');
  const a = await startCourant(['--store', db]);
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await post(a.base, `p0-${i}`)).body);
  assert((await a.stop()) === 0, 'clean stop');
  // Row 3's wire bytes become two events, the second with an id of its own:
  // delivered as they are, they would move a client's Last-Event-ID to "forged".
  const nl = ' || char(10) || ';
  execFileSync('sqlite3', [db, `UPDATE events SET wire = CAST('id: ${ids[2]}'${nl}'data: p0-2'${nl}char(10)${nl}`
    + `'id: forged'${nl}'data: x'${nl}char(10) AS BLOB) WHERE id = '${ids[2]}'`]);
  const b = await startCourant(['--store', db]);
  const skipped = b.stderrLines.find((l) => l.includes('skipped row seq 3'));
  assert(skipped && /not one SSE event with that id/.test(skipped), () => `no line about the skipped row:\n${b.tail(10)}`);
  const loaded = b.stderrLines.find((l) => l.includes('events of history loaded'));
  assert(/: 4 events of history loaded, 1 damaged rows skipped/.test(loaded), `load line: ${loaded}`);
  const m = await (await fetch(`${b.base}/metrics`)).text();
  assert(/^courant_store_bad_rows_total 1$/m.test(m), `courant_store_bad_rows_total is not 1:\n${m}`);
  const got = await history(b.base, 'earliest', 4);
  const want = [ids[0], ids[1], ids[3], ids[4]];
  assert(JSON.stringify(got.map((e) => e.id)) === JSON.stringify(want), `history: ${got.map((e) => e.id)}`);
  const resumed = await history(b.base, ids[1], 2);
  assert(JSON.stringify(resumed.map((e) => e.id)) === JSON.stringify([ids[3], ids[4]]), `resumed: ${resumed.map((e) => e.id)}`);
  console.log(`# ${skipped.replace(/^.*\] /, '')}`);
});

test('an event whose data holds a NUL is delivered, stored, and loaded again after a restart', async () => {
  const db = path.join(freshDir(), 'courant.db');
  const a = await startCourant(['--store', db]);
  const live = subscribe(a.base);
  await live.opened;
  const r = await post(a.base, 'a\u0000b');
  assert(r.status === 200, `publish: ${r.status} ${r.body}`);
  await waitFor(() => live.events.length === 1, { message: 'the live event' });
  assert(live.events[0].data === 'a\u0000b', `live data: ${JSON.stringify(live.events[0].data)}`);
  live.close();
  assert((await a.stop()) === 0, 'clean stop');
  const b = await startCourant(['--store', db]);
  const got = await history(b.base, 'earliest', 1);
  assert(got.length === 1 && got[0].id === r.body && got[0].data === 'a\u0000b', `after restart: ${JSON.stringify(got)}`);
  assert(!b.stderrLines.some((l) => l.includes('skipped row')), 'the row was skipped');
});

const SUB_KEY = 'subscriber-secret-for-store-tests-0123';
const SUBS = '/.well-known/mercure/subscriptions';
/** An HS256 token with `claims`, signed here with node's crypto. */
function hs256(claims, key) {
  const b64u = (x) => Buffer.from(x).toString('base64url');
  const data = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${b64u(crypto.createHmac('sha256', key).update(data).digest())}`;
}

test('--subscriptions: subscription events are stored like any event, so the API\'s lastEventID resumes after a restart', async () => {
  const db = path.join(freshDir(), 'courant.db');
  const args = ['--store', db, '--subscriptions', '--subscriber-jwt-key', SUB_KEY, '--anonymous'];
  const token = hs256({ exp: Math.floor(Date.now() / 1000) + 600, mercure: { subscribe: [`${SUBS}{/topic}{/subscriber}`] } }, SUB_KEY);
  const lastEventID = async (base) => {
    const res = await fetch(`${base}${SUBS}`, { headers: { authorization: `Bearer ${token}` } });
    assert(res.status === 200, `GET ${SUBS}: ${res.status}`);
    return JSON.parse(await res.text()).lastEventID;
  };
  const a = await startCourant(args);
  const s = subscribe(a.base); // its "active" subscription event goes through the store
  await s.opened;
  const last = await waitFor(async () => { const id = await lastEventID(a.base); return id !== 'earliest' && id; },
    { message: 'the subscription event to be committed and in history' });
  const p = await post(a.base, 'p0-0');
  assert(p.status === 200, `publish: ${p.status}`);
  s.close(); // "active": false, stored too
  await waitFor(async () => /^courant_store_events_total 3$/m.test(await (await fetch(`${a.base}/metrics`)).text()),
    { message: 'three events committed (active, publish, inactive)' });
  assert((await a.stop()) === 0, 'clean stop');
  const rows = execFileSync('sqlite3', [db, `SELECT count(*) FROM events WHERE topics LIKE '${SUBS}/%' AND private = 1`]).toString().trim();
  assert(rows === '2', `subscription events in the file: ${rows}, want 2 (active and inactive)`);
  const b = await startCourant(args);
  // The id the API gave before the restart is known after it: resuming from
  // it replays exactly what came after (the anonymous subscriber gets the
  // public publish, not the private subscription events).
  const r = subscribe(b.base, last);
  await r.opened;
  assert(r.headers['last-event-id'] === last, `resumed from ${last}, the hub answered Last-Event-ID ${r.headers['last-event-id']}`);
  await waitFor(() => r.events.length >= 1, { message: 'the publish after the subscription event' });
  await sleep(300);
  assert(r.events.length === 1 && r.events[0].id === p.body, `replayed: ${JSON.stringify(r.events)}`);
  r.close();
});

// ---- faults at start-up -----------------------------------------------------------------

/** Runs courant expecting a refusal: non-zero exit and one line on stderr matching `re`. */
function expectRefusal(args, re) {
  const r = spawnSync(courantBin(), ['--listen', '127.0.0.1:0', ...args], { encoding: 'utf8', timeout: 15000 });
  const lines = r.stderr.trim().split('\n').filter(Boolean);
  assert(r.status !== 0 && r.status !== null, `exit status ${r.status} (signal ${r.signal}); stderr: ${r.stderr}`);
  assert(lines.length === 1, `want one line of reason, got: ${r.stderr}`);
  assert(re.test(lines[0]), `reason "${lines[0]}" does not match ${re}`);
  return lines[0];
}

test('a store that is a file of garbage: refused at start-up with a reason', async () => {
  const db = path.join(freshDir(), 'garbage.db');
  const junk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
  writeFileSync(db, junk);
  const line = expectRefusal(['--store', db], /cannot use --store .*not a database/);
  console.log(`# ${line}`);
});

test('a store whose directory is a file: refused at start-up (fails for root too)', async () => {
  const f = path.join(freshDir(), 'plainfile');
  writeFileSync(f, 'x');
  const line = expectRefusal(['--store', path.join(f, 'courant.db')], /Not a directory/);
  console.log(`# ${line}`);
});

test('a second courant on the same store: refused; the first keeps serving', async () => {
  const db = path.join(freshDir(), 'courant.db');
  const a = await startCourant(['--store', db]);
  const line = expectRefusal(['--store', db], /in use by another process/);
  const r = await post(a.base, 'p0-0');
  assert(r.status === 200, `first courant publish: ${r.status}`);
  console.log(`# ${line}`);
});

// ---- faults that need mounts (root) -----------------------------------------------------------

function canMount() {
  if (process.getuid && process.getuid() !== 0) return false;
  const d = freshDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d], { stdio: 'ignore' });
    execFileSync('umount', [d], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const MOUNT_OK = canMount();

async function withTmpfs(size, fn) {
  const d = freshDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', d]);
  try {
    return await fn(d);
  } finally {
    for (let i = 0; i < 50; i++) {
      try { execFileSync('umount', [d], { stdio: 'ignore' }); break; } catch { await sleep(100); }
    }
  }
}

/** Fills the file system holding `dir` with one file until ENOSPC. */
function fillDisk(dir) {
  const f = path.join(dir, 'filler');
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return f;
}

test('a store on a read-only mount: refused at start-up', async () => {
  if (!MOUNT_OK) skip('cannot mount tmpfs here (needs root or CAP_SYS_ADMIN)');
  await withTmpfs('4m', async (d) => {
    const db = path.join(d, 'courant.db');
    const s = await startCourant(['--store', db]);
    assert((await post(s.base, 'p0-0')).status === 200, 'publish before');
    assert((await s.stop()) === 0, 'stop');
    execFileSync('mount', ['-o', 'remount,ro', d]);
    const line = expectRefusal(['--store', db], /read-only/);
    console.log(`# ${line}`);
  });
});

test('a store on a full disk: refused at start-up', async () => {
  if (!MOUNT_OK) skip('cannot mount tmpfs here (needs root or CAP_SYS_ADMIN)');
  await withTmpfs('1m', async (d) => {
    fillDisk(d);
    const line = expectRefusal(['--store', path.join(d, 'courant.db')], /full|No space/);
    console.log(`# ${line}`);
  });
});

test('the disk fills while running: 503 for publishes, subscribers still served, nothing unacknowledged delivered, recovery', async () => {
  if (!MOUNT_OK) skip('cannot mount tmpfs here (needs root or CAP_SYS_ADMIN)');
  await withTmpfs('2m', async (d) => {
    const db = path.join(d, 'courant.db');
    const args = ['--store', db, '--history', '100000', '--max-event-bytes', '200000'];
    const s = await startCourant(args);
    const live = subscribe(s.base);
    await live.opened;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const acked = [];
    const big = 'y'.repeat(20000);
    const first = await post(s.base, 'p0-0', agent);
    assert(first.status === 200, `first publish ${first.status}`);
    acked.push(first.body);
    const filler = fillDisk(d);
    let refused = 0;
    for (let i = 1; i <= 200 && refused < 5; i++) {
      const r = await post(s.base, `p0-${i}`, agent, `&junk=${big}`);
      if (r.status === 200) acked.push(r.body);
      else {
        assert(r.status === 503, `publish on a full disk answered ${r.status}: ${r.body}`);
        refused++;
      }
    }
    assert(refused >= 5, `the full disk never refused a publish (${acked.length} acked)`);
    // Subscribers are still served: health, a new subscription with replay.
    assert((await (await fetch(`${s.base}/healthz`)).text()) === 'ok\n', 'healthz');
    const replay = await history(s.base, 'earliest', acked.length);
    assert(replay.length === acked.length, `replay while full: ${replay.length} events, ${acked.length} acked`);
    await sleep(300);
    // Nothing the publisher did not get a 200 for was delivered.
    const ackedSet = new Set(acked);
    for (const e of live.events) assert(ackedSet.has(e.id), `delivered ${e.id}, which was not acknowledged`);
    assert(live.events.length === acked.length, `live subscriber got ${live.events.length}, ${acked.length} acked`);
    // Space comes back: publishes work again, the subscriber gets them.
    rmSync(filler);
    const again = await waitFor(async () => { const r = await post(s.base, 'p0-1000', agent); return r.status === 200 && r; },
      { timeout: 10000, message: 'a publish to succeed once space is back' });
    acked.push(again.body);
    await waitFor(() => live.events.some((e) => e.id === again.body), { message: 'the live subscriber to get the event after recovery' });
    agent.destroy();
    live.close();
    assert((await s.stop()) === 0, 'clean stop');
    const s2 = await startCourant(args);
    const after = await history(s2.base, 'earliest', acked.length);
    assert(JSON.stringify(after.map((e) => e.id)) === JSON.stringify(acked),
      `after restart history is ${after.length} events, want exactly the ${acked.length} acknowledged`);
    await s2.stop();
    console.log(`# full disk: ${acked.length} acknowledged, ${refused} refused with 503, all acknowledged ones kept`);
  });
}, { timeout: 90000 });

await run();
