// bench/attack.mjs - one hostile client for bench/attack.sh: runs one attack
// of the "hostile clients" issue against a courant on loopback until
// SIGTERM (or --seconds), while bench/loadgen measures honest subscribers.
//
//   node bench/attack.mjs --port P --mode MODE [--pid PID] [--seconds S]
//
// Prints "ready" once the attack runs (after any setup, e.g. filling the
// history), and on exit one line
//   ATTACK mode=M rounds=N refused=N rss_idle_kib=N rss_peak_kib=N ...
// (rss_* only with --pid: the server's VmRSS before the attack and its
// largest value during it, sampled every 50 ms).
//
// The attacker plays 127.0.1.1, an address bench/loadgen never uses (its
// subscribers bind 127.0.0.2-251, its publisher 127.0.0.1).
//
// Modes (server options are attack.sh's business):
//   none           nothing (the baseline)
//   freeze         10,000 events of history; two clients subscribing with 64
//                  templates and lastEventID=earliest, over and over
//                  (needs --max-templates-per-subscriber 64 etc.)
//   freeze-costly  default limits: 15 costly unprefixed templates + 1 that
//                  matches, lastEventID=earliest over 1,000 events, two clients
//   fanout         4 connections holding 64 templates each (raised limits)
//   fanout-costly  128 connections holding 16 costly unprefixed templates each
//                  (2,048 templates; one address may hold 1,024 x 16 by default)
//   starve         4 subscribers sending bytes as fast as they can, back when cut off
//   body           400 connections at once, each GET /healthz with a 1 MiB body; a
//                  round every 2 s at most
//   heads          20 connections trickling 256 KiB heads in 128-byte segments
//   hashflood      60,000 FNV-1a-colliding topics, 64 per subscribe, subscribed and
//                  dropped; again 1 s later
//   connflood      one address opening connections past --max-connections-per-ip and
//                  subscribing as fast as 429s come back

import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { BOOKS, bookTemplates, collidingTopics, costlyTemplates } from '../tests/e2e/attacks.mjs';

const HUB = '/.well-known/mercure';
const ME = '127.0.1.1';
const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const m = /^--([a-z-]+)$/.exec(process.argv[i]);
  if (!m) {
    console.error(`attack: unexpected argument ${process.argv[i]}`);
    process.exit(2);
  }
  args[m[1]] = process.argv[++i];
}
const port = Number(args.port);
const mode = args.mode || 'none';
const pid = args.pid ? Number(args.pid) : 0;
const seconds = Number(args.seconds || 300);
const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping = false;
const stats = { rounds: 0, refused: 0, cut: 0, bytes: 0 };
process.on('SIGTERM', () => (stopping = true));
process.on('SIGINT', () => (stopping = true));
setTimeout(() => (stopping = true), seconds * 1000).unref();
process.on('uncaughtException', (e) => {
  if (!stopping) console.error(`attack ${mode}: ${e.stack || e}`);
});

// ---- the server's memory ------------------------------------------------------------

const rssKb = () => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  } catch {
    return 0;
  }
};
const rss = { idle: pid ? rssKb() : 0, peak: 0 };
let sampler = null;
const startSampling = () => {
  if (!pid) return;
  rss.idle = rssKb();
  rss.peak = rss.idle;
  sampler = setInterval(() => (rss.peak = Math.max(rss.peak, rssKb())), 50);
};

// ---- clients ----------------------------------------------------------------------------

function post(body, agent) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: HUB, method: 'POST', agent, localAddress: ME,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function fillHistory(n, mk) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < n) await post(mk(next++), agent);
  }));
  agent.destroy();
}

/** Opens a stream; resolves {status, count, close(), closed} once its head is in (null on error). */
function stream(selectors, extra = '') {
  return new Promise((resolve) => {
    const q = `${HUB}?${selectors.map((t) => `topic=${enc(t)}`).join('&')}${extra}`;
    const req = http.get({ host: '127.0.0.1', port, path: q, agent: false, localAddress: ME }, (res) => {
      const s = { status: res.statusCode, count: 0, close: () => req.destroy() };
      s.closed = new Promise((r) => res.on('close', r));
      let last = 0; // the previous chunk's last byte: an event ends with a blank line
      res.on('data', (c) => {
        if (last === 10 && c[0] === 10) s.count++;
        for (let i = c.indexOf('\n\n'); i >= 0; i = c.indexOf('\n\n', i + 1)) s.count++;
        last = c[c.length - 1];
      });
      resolve(s);
    });
    req.on('error', () => resolve(null));
  });
}

function rawSocket() {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: ME });
    sock.setNoDelay(true);
    sock.on('error', () => {});
    sock.data = '';
    sock.on('data', (d) => (sock.data += d.toString('latin1')));
    sock.once('connect', () => resolve(sock));
    sock.once('close', () => resolve(sock));
  });
}

const until = async (fn, ms) => {
  const end = Date.now() + ms;
  while (!stopping && Date.now() < end && !fn()) await sleep(10);
};

// ---- the attacks --------------------------------------------------------------------------

async function replayLoop(selectors, want) {
  while (!stopping) {
    const s = await stream(selectors, '&lastEventID=earliest');
    if (!s) continue;
    if (s.status !== 200) stats.refused++;
    await until(() => s.count >= want, 30000);
    s.close();
    stats.rounds++;
  }
}

async function hold(conns, selectorsFor) {
  const held = [];
  for (let c = 0; c < conns; c++) {
    const s = await stream(selectorsFor(c));
    if (!s || s.status !== 200) stats.refused++;
    else held.push(s);
  }
  stats.rounds = held.length;
  return held;
}

async function starve(i) {
  const chunk = Buffer.alloc(8192, 'x');
  while (!stopping) {
    const sock = await rawSocket();
    sock.write(`GET ${HUB}?topic=urn:attacker:${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await until(() => sock.data.includes('\r\n\r\n') || sock.destroyed, 5000);
    while (!stopping && !sock.destroyed) {
      if (!sock.write(chunk)) {
        await new Promise((r) => {
          const done = () => (sock.off('drain', done), sock.off('close', done), r());
          sock.on('drain', done);
          sock.on('close', done);
        });
      }
      stats.bytes += chunk.length;
    }
    if (sock.destroyed) stats.cut++;
    sock.destroy();
    stats.rounds++;
  }
}

async function bodies() {
  const body = Buffer.alloc(1 << 20, 'b');
  const one = async () => {
    const sock = await rawSocket();
    sock.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
    await new Promise((r) => {
      sock.once('close', r);
      setTimeout(r, 2000);
    });
    if (/^HTTP\/1\.1 4/.test(sock.data)) stats.refused++;
    sock.destroy();
  };
  while (!stopping) {
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 400 }, one)); // all in flight at once, as the issue's
    stats.rounds++;
    await until(() => false, 2000 - (Date.now() - t0)); // a round (400 MiB) every 2 s at most
  }
}

async function trickle() {
  const start = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ';
  const head = Buffer.from(`${start}${'p'.repeat(256 * 1024 - start.length - 4)}\r\n\r\n`);
  const one = async () => {
    const sock = await rawSocket();
    for (let off = 0; off < head.length && !sock.destroyed && !stopping; off += 128) {
      sock.write(head.subarray(off, off + 128));
      await sleep(1);
    }
    sock.destroy();
  };
  while (!stopping) {
    await Promise.all(Array.from({ length: 20 }, one));
    stats.rounds++;
  }
}

async function hashflood() {
  const topics = collidingTopics('https://example.com/t/', 60000);
  const groups = [];
  for (let i = 0; i < topics.length; i += 64) groups.push(topics.slice(i, i + 64));
  while (!stopping) {
    const held = [];
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (!stopping && next < groups.length) {
        const s = await stream(groups[next++]);
        if (s && s.status === 200) held.push(s);
        else stats.refused++;
      }
    }));
    held.forEach((s) => s.close());
    await Promise.all(held.map((s) => s.closed));
    stats.rounds++;
    await until(() => false, 1000);
  }
}

async function connflood() {
  const socks = [];
  for (let i = 0; i < 1500 && !stopping; i++) socks.push(await rawSocket());
  await sleep(200);
  stats.refused += socks.filter((s) => s.data.startsWith('HTTP/1.1 429')).length;
  stats.rounds = socks.length;
  while (!stopping) {
    const s = await stream(['urn:flood']);
    if (s && s.status === 429) stats.refused++;
    if (s) s.close();
    await sleep(2);
  }
  socks.forEach((s) => s.destroy());
}

async function main() {
  switch (mode) {
  case 'none':
    startSampling();
    console.log('ready');
    await until(() => false, seconds * 1000);
    break;
  case 'freeze':
    await fillHistory(10000, (i) => `topic=${enc(`${BOOKS}${i}`)}&data=book+${i}`);
    startSampling();
    console.log('ready');
    await Promise.all([0, 1].map(() => replayLoop(bookTemplates(64), 9000)));
    break;
  case 'freeze-costly':
    await fillHistory(1000, (i) => `topic=${enc(`${BOOKS}${i}`)}&data=book+${i}`);
    startSampling();
    console.log('ready');
    await Promise.all([0, 1].map(() => replayLoop([...costlyTemplates(15), `${BOOKS}{id}`], 900)));
    break;
  case 'fanout': {
    startSampling();
    const held = await hold(4, (c) => Array.from({ length: 64 }, (_, k) => `https://example.com/chapters/{+a}{+b}{+c}{+d}{+e}{+f}{+g}{+h}/${c}/${k}`));
    console.log('ready');
    await until(() => false, seconds * 1000);
    held.forEach((s) => s.close());
    break;
  }
  case 'fanout-costly': {
    startSampling();
    const held = await hold(128, (c) => costlyTemplates(16).map((t) => `${t}/${c}`));
    console.log('ready');
    await until(() => false, seconds * 1000);
    held.forEach((s) => s.close());
    break;
  }
  case 'starve':
    startSampling();
    console.log('ready');
    await Promise.all([0, 1, 2, 3].map(starve));
    break;
  case 'body':
    startSampling();
    console.log('ready');
    await bodies();
    break;
  case 'heads':
    startSampling();
    console.log('ready');
    await trickle();
    break;
  case 'hashflood':
    startSampling();
    console.log('ready');
    await hashflood();
    break;
  case 'connflood':
    startSampling();
    console.log('ready');
    await connflood();
    break;
  default:
    console.error(`attack: unknown --mode ${mode}`);
    process.exit(2);
  }
  if (sampler) clearInterval(sampler);
  const mb = (stats.bytes / 1048576).toFixed(0);
  console.log(`ATTACK mode=${mode} rounds=${stats.rounds} refused=${stats.refused} cut=${stats.cut} sent_mib=${mb} ` +
    `rss_idle_kib=${rss.idle} rss_peak_kib=${rss.peak}`);
  process.exit(0);
}

main();
