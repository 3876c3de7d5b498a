// lib.mjs - helpers for courant's end-to-end tests (plain node, no test framework).
//
//   startCourant(args, {env})  spawn the server, resolve once it is listening
//   test(name, fn, {timeout})  register a test; run() runs them in order
//   launchChromium()           headless Debian Chromium through playwright-core
//   waitFor(fn, opts), sleep(ms)
//   sh(cmd, args, opts)        run a command to its end: {code, stdout, stderr}
//   freePort()                 a loopback port free right now
//
// Output, one line per test:  `ok - <file>: <name>` / `not ok - <file>: <name>`
// followed by the error (indented), then a closing `<file>: N passed, N failed`.
// A test also fails when a server it started exited non-zero (or by a signal)
// or printed a sanitizer report. run() exits 1 if any test failed.

import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const e2eDir = path.dirname(fileURLToPath(import.meta.url));

/**
 * A TCP port free on 127.0.0.1 now, for a child that must be told its port
 * before it binds (redis-server, pebble, --listen-http). Picked below the
 * kernel's ephemeral range (ip_local_port_range), so the outgoing
 * connections of this or any other process cannot take it meanwhile, as
 * they could a port the kernel handed out for listen(0).
 */
export async function freePort() {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {}
  const lo = 10000, hi = Math.max(lo + 1000, ephemeralLow);
  for (let tries = 0; tries < 100; tries++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below the ephemeral range');
}
export const repoRoot = path.resolve(e2eDir, '../..');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ERROR: ThreadSanitizer|WARNING: ThreadSanitizer/;
const LISTENING_RE = /listening on (https?):\/\/([^\s/]+)\//;

export function courantBin() {
  return path.resolve(repoRoot, process.env.COURANT_BIN || 'build/asan/courant');
}

/** Runs a command (openssl, curl, courant itself) to its end; resolves
 * {code, stdout, stderr}, never rejects: a spawn failure is code -1. `input`
 * is written to its stdin (else stdin is closed at once), `env` added to
 * ours. Killed after `timeout` ms. */
export function sh(cmd, args, { input = null, env = {}, timeout = 15000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr });
    });
    p.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: String(err) });
    });
    if (input !== null) p.stdin.end(input);
    else p.stdin.end();
  });
}

// Servers and browsers started by the running test, cleaned up after it.
let live = { servers: [], browsers: [] };
// Every server ever started, checked again at the end of its test.
let currentTest = null;

// ---- the server ----------------------------------------------------------------

/**
 * Start courant with `args` (plus `--listen 127.0.0.1:0` unless args has a
 * --listen) and wait for its "listening on http(s)://HOST:PORT/" line (base
 * is https://... with --tls-cert).
 * Resolves {proc, base, port, host, listening[], stderrLines[], stop(), exited}.
 */
export function startCourant(args = [], { env = {}, startTimeout = 10000 } = {}) {
  const bin = courantBin();
  if (!existsSync(bin)) {
    return Promise.reject(new Error(`server binary ${bin} does not exist (build it: make build/asan/courant, or set COURANT_BIN)`));
  }
  const argv = [...args];
  if (!argv.includes('--listen')) argv.push('--listen', '127.0.0.1:0');

  const proc = spawn(bin, argv, {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      // The server reads COURANT_<OPTION> variables: a test sets them in env, never by accident.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COURANT_'))),
      ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0:halt_on_error=1',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
      ...env,
    },
  });

  const server = {
    proc,
    argv,
    base: null,
    host: null,
    port: null,
    listening: [],
    stderrLines: [],
    stdoutLines: [],
    exitCode: undefined, // number, or null when killed by a signal
    exitSignal: null,
    exited: null, // promise of {code, signal}
    checked: false,
    stop: null,
    sanitizerReport() {
      const i = this.stderrLines.findIndex((l) => SANITIZER_RE.test(l));
      return i < 0 ? null : this.stderrLines.slice(Math.max(0, i - 2), i + 40).join('\n');
    },
    describe() {
      return `courant ${argv.join(' ')}`;
    },
    tail(n = 30) {
      return this.stderrLines.slice(-n).join('\n');
    },
  };

  server.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      server.exitCode = code;
      server.exitSignal = signal;
      resolve({ code, signal });
    });
  });
  // 'close' waits for stdio to drain: the whole stderr is read by then.
  const closed = new Promise((resolve) => proc.on('close', resolve));
  proc.on('error', () => {}); // spawn errors surface through 'exit'/'close'

  let onListening = null;
  const lineReader = (stream, sink, watch) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        sink.push(line);
        if (process.env.COURANT_E2E_VERBOSE) process.stderr.write(`  [courant ${proc.pid}] ${line}\n`);
        if (watch) {
          const m = LISTENING_RE.exec(line);
          if (m) {
            server.listening.push(m[2]);
            if (onListening) onListening(m[2], m[1]);
          }
        }
      }
    });
    stream.on('end', () => {
      if (buf) sink.push(buf);
      buf = '';
    });
  };
  lineReader(proc.stderr, server.stderrLines, true);
  lineReader(proc.stdout, server.stdoutLines, true);

  server.stop = async (killAfterMs = 5000) => {
    if (server.exitCode === undefined) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (server.exitCode === undefined) proc.kill('SIGKILL');
      }, killAfterMs);
      await server.exited;
      clearTimeout(timer);
    }
    await Promise.race([closed, sleep(1000)]);
    return server.exitCode;
  };

  live.servers.push(server);
  if (currentTest) currentTest.servers.push(server);

  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(server);
    };
    onListening = (hostport, scheme) => {
      if (server.base) return;
      server.base = `${scheme}://${hostport}`;
      const m = /^(.*):(\d+)$/.exec(hostport);
      server.host = m ? m[1] : hostport;
      server.port = m ? Number(m[2]) : NaN;
      finish();
    };
    const timer = setTimeout(() => {
      finish(new Error(`${server.describe()}: no "listening on http://..." line within ${startTimeout} ms; its stderr:\n${server.tail()}`));
    }, startTimeout);
    closed.then(() => {
      finish(new Error(`${server.describe()} exited (code ${server.exitCode}, signal ${server.exitSignal}) before listening; its stderr:\n${server.tail()}`));
    });
  });
}

// Throws if the server exited badly or reported a sanitizer error. Call after stop().
export function checkServer(server) {
  const problems = [];
  if (server.exitCode !== undefined && server.exitCode !== 0) {
    problems.push(server.exitCode === null ? `was killed by ${server.exitSignal}` : `exited with code ${server.exitCode}`);
  }
  const report = server.sanitizerReport();
  if (report) problems.push(`printed a sanitizer report:\n${report}`);
  else if (problems.length) problems.push(`its last stderr lines:\n${server.tail()}`);
  if (problems.length) throw new Error(`${server.describe()} ${problems.join('; ')}`);
}

// ---- the browser ---------------------------------------------------------------

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export async function launchChromium() {
  const executablePath = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(`${executablePath} not found: install Debian's chromium (scripts/setup.sh does)`);
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  live.browsers.push(browser);
  return browser;
}

// ---- waiting -------------------------------------------------------------------

/**
 * Poll fn() until it returns a truthy value (which is returned), or throw
 * after `timeout` ms with `message` (a string or a function giving one).
 */
export async function waitFor(fn, { timeout = 5000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastErr = null;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const msg = typeof message === 'function' ? await message() : message;
      throw new Error(`timed out after ${timeout} ms waiting for ${msg}${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await sleep(interval);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(typeof message === 'function' ? message() : message || 'assertion failed');
}

// ---- the harness ---------------------------------------------------------------

const tests = [];
const fileName = path.basename(process.argv[1] || 'test');

export function test(name, fn, { timeout = 30000 } = {}) {
  tests.push({ name, fn, timeout });
}

/** Thrown by skip(): the test could not run here. Reported as skipped, never as passed. */
class Skip extends Error {}

/** Ends the current test as skipped, with the reason (e.g. a missing privilege). */
export function skip(reason) {
  throw new Skip(reason);
}

function indent(text) {
  return String(text)
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

async function cleanup() {
  const { servers, browsers } = live;
  live = { servers: [], browsers: [] };
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
  await Promise.all(servers.map((s) => s.stop().catch(() => {})));
}

export async function run() {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const only = process.env.COURANT_E2E_ONLY;
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const errors = [];
    let skipReason = null;
    currentTest = { servers: [] };
    const ctx = { name: t.name, servers: currentTest.servers };
    let timer = null;
    try {
      await Promise.race([
        Promise.resolve().then(() => t.fn(ctx)),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`test timed out after ${t.timeout} ms`)), t.timeout);
        }),
      ]);
    } catch (err) {
      if (err instanceof Skip) skipReason = err.message;
      else errors.push(err);
    } finally {
      clearTimeout(timer);
    }
    const mine = currentTest.servers;
    currentTest = null;
    await cleanup();
    for (const s of mine) {
      try {
        checkServer(s);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 0 && skipReason !== null) {
      skipped++;
      console.log(`ok - ${fileName}: ${t.name} # SKIP ${skipReason}`);
    } else if (errors.length === 0) {
      passed++;
      console.log(`ok - ${fileName}: ${t.name}`);
    } else {
      failed++;
      console.log(`not ok - ${fileName}: ${t.name}`);
      for (const err of errors) console.log(indent(err && err.stack ? err.stack : err));
      for (const s of mine) console.log(indent(`stderr of ${s.describe()} (pid ${s.proc.pid}, last 15 lines):\n${s.tail(15)}`));
    }
  }
  console.log(`${fileName}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}

// A stray rejection from a timed-out test must not kill the run.
process.on('unhandledRejection', (err) => {
  if (process.env.COURANT_E2E_VERBOSE) console.error('unhandled rejection:', err);
});

// ---- Mercure clients shared by the store and Redis tests ------------------------

const HUB = '/.well-known/mercure';

/** POSTs one event (form: topic, data, then `extra`, already encoded) on `agent`
 * (keep-alive). Resolves {status, body}; rejects on a network error. */
export function postForm(base, topic, data, agent, extra = '') {
  const body = `topic=${encodeURIComponent(topic)}&data=${encodeURIComponent(data)}${extra}`;
  const u = new URL(base + HUB);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: HUB, method: 'POST', agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error('publish timed out')));
    req.end(body);
  });
}

/**
 * Reads an event stream from `source` (anything with setEncoding() and 'data'
 * events: an http(s) response, an HTTP/2 stream) and pushes each event that
 * has data onto `sub.events` as {id, data}, its data lines joined by '\n'.
 * Deliberately small and literal ("id: ", "data: ", a blank line ends an
 * event; other lines are ignored), so a test sees exactly the lines courant
 * wrote: a WHATWG parser would forgive what these tests should catch.
 */
export function collectEvents(source, sub) {
  let buf = '';
  let cur = { id: null, data: [] };
  source.setEncoding('utf8');
  source.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (cur.data.length) sub.events.push({ id: cur.id, data: cur.data.join('\n') });
        cur = { id: null, data: [] };
      } else if (line.startsWith('id: ')) cur.id = line.slice(4);
      else if (line.startsWith('data: ')) cur.data.push(line.slice(6));
    }
  });
}

/**
 * collectEvents for the protocol tests, which look at more of the wire: the
 * raw text goes to `s.body` as well; each event records its `type` (event:,
 * else 'message'); an event is kept when it has an id (with an empty data
 * field too) and left out without one (the retry: preamble).
 */
function collectIdEvents(source, s) {
  onEventBlocks(source, (block) => {
    const ev = { id: null, type: 'message', data: [] };
    for (const line of block.split('\n')) {
      if (line.startsWith('data: ')) ev.data.push(line.slice(6));
      else if (line.startsWith('id: ')) ev.id = line.slice(4);
      else if (line.startsWith('event: ')) ev.type = line.slice(7);
    }
    if (ev.id !== null) s.events.push({ id: ev.id, type: ev.type, data: ev.data.join('\n') });
  }, (chunk) => { s.body += chunk; });
}

/**
 * Calls onBlock(text) for each event block of `source` (the text before a
 * blank line, without it) as the blocks arrive, and onText(chunk) with every
 * chunk of raw text first, when given. For tests that read one field of
 * their own (a stats event, the data lines) rather than collectEvents' view.
 */
export function onEventBlocks(source, onBlock, onText = null) {
  let buf = '';
  source.setEncoding('utf8');
  source.on('data', (chunk) => {
    if (onText) onText(chunk);
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      onBlock(block);
    }
  });
}

/**
 * A request whose answer may be an event stream, for the protocol tests (any
 * status, method, headers and body). Resolves once the response head is in:
 * {status, headers, events, body, ended, closed (a promise), close()}, the
 * events and raw text filled as they arrive (collectIdEvents). `agent` as
 * http.request takes it; without one, node's global agent.
 */
export function openEvents(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers };
    if (agent !== undefined) opts.agent = agent;
    const req = http.request(opts, (res) => {
      const s = { status: res.statusCode, headers: res.headers, events: [], body: '', ended: false };
      s.closed = new Promise((r) => res.on('close', () => { s.ended = true; r(); }));
      collectIdEvents(res, s);
      res.on('error', () => {});
      s.close = () => req.destroy();
      resolve(s);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/**
 * Subscribes to `topic` with an optional Last-Event-ID and collects {id, data}
 * events (parsed here, so the test sees the exact wire lines). `done` resolves when the stream ends (server gone or closed).
 */
export function openStream(base, topic, lastEventId) {
  const u = new URL(`${base}${HUB}?topic=${encodeURIComponent(topic)}`);
  const sub = { events: [], ended: false, headers: null, req: null };
  sub.done = new Promise((resolve) => {
    const headers = lastEventId ? { 'last-event-id': lastEventId } : {};
    sub.req = http.get({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: false }, (res) => {
      sub.headers = res.headers;
      collectEvents(res, sub);
      const end = () => { sub.ended = true; resolve(); };
      res.on('end', end);
      res.on('error', end);
      res.on('close', end);
    });
    sub.req.on('error', () => { sub.ended = true; resolve(); });
  });
  sub.close = () => sub.req.destroy();
  sub.opened = waitFor(() => sub.headers, { timeout: 5000, message: 'the stream to open' });
  return sub;
}
