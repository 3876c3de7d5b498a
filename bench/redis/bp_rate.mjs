// bp_rate.mjs - events/s through one Redis stream with several courant nodes
// (docs/SCALING.md). Starts its own redis-server on a free loopback port and
// NODES courant nodes (--redis, --workers 1 each), one counting subscriber
// per node, then C publishers spread round-robin over the nodes, each posting
// 100-byte events back to back on its own keep-alive connection for S s.
//
//   node bench/redis/bp_rate.mjs [C=32] [S=5] [NODES=3] [BIN=build/courant] [AOF=no|everysec|always]
//
// Prints, per run: publishes acknowledged per second (sum over nodes), and
// per subscriber the events received, with the time it took to receive all
// acknowledged ones (delivered/s). Everything runs on this machine: redis,
// the nodes and this (single-threaded node) client share its cores.
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const conc = Number(process.argv[2] || 32);
const secs = Number(process.argv[3] || 5);
const numNodes = Number(process.argv[4] || 3);
const bin = path.resolve(process.argv[5] || 'build/courant');
const aof = process.argv[6] || 'no';
const TOPIC = 'https://example.com/bench';
const body = 'topic=' + encodeURIComponent(TOPIC) + '&data=' + 'x'.repeat(100);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const procs = [];
const dir = mkdtempSync(path.join(tmpdir(), 'courant-bp-bench-'));
process.on('exit', () => { for (const p of procs) try { p.kill('SIGKILL'); } catch {} rmSync(dir, { recursive: true, force: true }); });

const rport = await freePort();
const redisArgs = ['--port', String(rport), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
  '--appendonly', aof === 'no' ? 'no' : 'yes', ...(aof === 'no' ? [] : ['--appendfsync', aof])];
procs.push(spawn('redis-server', redisArgs, { stdio: 'ignore' }));
await sleep(300);

const nodes = [];
for (let i = 0; i < numNodes; i++) {
  const port = await freePort();
  const p = spawn(bin, ['--redis', `redis://127.0.0.1:${rport}`, '--workers', '1', '--listen', `127.0.0.1:${port}`,
    '--log-level', 'warn', '--max-pending-bytes', String(1 << 30)], { stdio: 'ignore' });
  procs.push(p);
  nodes.push({ port });
}
await sleep(500);

// One subscriber per node: counts "id: " lines (one per event).
const subs = nodes.map((n) => {
  const s = { count: 0, tail: '', lastAt: 0 };
  http.get({ host: '127.0.0.1', port: n.port, path: `/.well-known/mercure?topic=${encodeURIComponent(TOPIC)}`, agent: false }, (res) => {
    res.setEncoding('latin1');
    res.on('data', (chunk) => {
      const t = s.tail + chunk;
      let k = -1;
      while ((k = t.indexOf('\nid: ', k + 1)) >= 0) s.count++;
      if (t.startsWith('id: ')) s.count++;
      s.tail = t.slice(-4);
      s.lastAt = Date.now();
    });
  });
  return s;
});
await sleep(300);

function post(agent, port) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/.well-known/mercure', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let ok = 0, bad = 0;
const t0 = Date.now();
const end = t0 + secs * 1000;
await Promise.all(Array.from({ length: conc }, async (_, k) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const port = nodes[k % nodes.length].port;
  while (Date.now() < end) {
    if ((await post(agent, port)) === 200) ok++;
    else bad++;
  }
  agent.destroy();
}));
const tPub = (Date.now() - t0) / 1000;
const deadline = Date.now() + 30000;
while (subs.some((s) => s.count < ok) && Date.now() < deadline) await sleep(50);
const rates = subs.map((s) => `${s.count} (${Math.round(s.count / ((s.lastAt - t0) / 1000))}/s)`);
console.log(`${numNodes} nodes, ${conc} publishers, ${secs} s, AOF ${aof}: ${ok} acknowledged = ${Math.round(ok / tPub)}/s` +
  ` (non-200: ${bad}); received per node subscriber: ${rates.join(', ')}; all complete: ${subs.every((s) => s.count === ok)}`);
process.exit(0);
