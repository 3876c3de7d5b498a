// accesslog.test.mjs - --access-log: off by default; one line per request and
// per stream end, with the client, method, target, status, bytes, duration
// and topic count, in text and in JSON (--log-format json); never a token,
// whether it came in the Authorization header, the authorization query
// parameter (also percent-encoded) or the cookie; a file target re-opened
// by SIGHUP (log rotation).
//
//   node tests/e2e/accesslog.test.mjs

import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, courantBin, postForm, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const SUB_KEY = 'subscriber-secret-for-access-log-tests-0123';
const now = () => Math.floor(Date.now() / 1000);
const b64u = (b) => Buffer.from(b).toString('base64url');

function mint(claims, key) {
  const data = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${b64u(crypto.createHmac('sha256', key).update(data).digest())}`;
}

const TEXT_RE = /^\S+Z access \[(w\d+)\] (\S+) "(\S+) (\S+)" (\d{3}) bytes=(\d+) ms=(\d+\.\d{3}) topics=(\d+)$/;

/** The access lines a server printed so far, parsed from text or JSON. */
function accessLines(server) {
  const out = [];
  for (const line of server.stderrLines) {
    if (line.startsWith('{')) {
      const j = JSON.parse(line);
      if (j.msg === 'access') out.push({ raw: line, ...j });
      continue;
    }
    const m = TEXT_RE.exec(line);
    if (m) {
      out.push({ raw: line, thread: m[1], client: m[2], method: m[3], target: m[4], status: Number(m[5]),
        bytes: Number(m[6]), ms: Number(m[7]), topics: Number(m[8]) });
    } else if (/ access \[/.test(line)) {
      throw new Error(`an access line in an unexpected shape: ${line}`);
    }
  }
  return out;
}

/** GET a stream, hold it `ms`, then close it. Resolves the status. */
function holdStream(base, p, { headers = {}, ms = 300 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(base + p, { headers, agent: false }, (res) => {
      res.resume();
      setTimeout(() => {
        req.destroy();
        resolve(res.statusCode);
      }, res.statusCode === 200 ? ms : 0);
    });
    req.on('error', reject);
  });
}

async function exercise(base, token) {
  const agent = new http.Agent({ keepAlive: true });
  const pub = await postForm(base, 'https://example.com/a', 'hello', agent, '&topic=https%3A%2F%2Fexample.com%2Fb');
  assert(pub.status === 200, `publish: ${pub.status}`);
  agent.destroy();
  // A subscriber with its token in the header, one in the query (plain and
  // percent-encoded name), one in the cookie; another with a bad token.
  assert((await holdStream(base, `${HUB}?topic=a&topic=b&lastEventID=x`, { headers: { authorization: `Bearer ${token}` }, ms: 400 })) === 200, 'header token');
  assert((await holdStream(base, `${HUB}?topic=a&authorization=${token}&x=1`)) === 200, 'query token');
  assert((await holdStream(base, `${HUB}?%61uthorization=${token}&topic=c`)) === 200, 'encoded query token');
  assert((await holdStream(base, `${HUB}?topic=d`, { headers: { cookie: `mercureAuthorization=${token}` } })) === 200, 'cookie token');
  assert((await holdStream(base, `${HUB}?topic=e&authorization=not.a.token`)) === 401, 'bad token');
  assert((await fetch(`${base}/no/such/path?authorization=${token}`)).status === 404, '404');
  assert((await fetch(`${base}/healthz`, { method: 'HEAD' })).status === 200, 'HEAD');
}

function checkLines(server, token) {
  const lines = accessLines(server);
  const raw = server.stderrLines.join('\n');
  assert(!raw.includes(token), 'the token appears nowhere in the log');
  assert(!raw.includes(token.split('.')[2]), 'not even its signature');
  assert(!/authorization=/i.test(lines.map((l) => l.raw).join('\n')), 'no authorization parameter in any access line');
  assert(!raw.includes('not.a.token'), 'a refused token is not logged either');

  const find = (pred, what) => {
    const l = lines.find(pred);
    assert(l, `an access line for ${what}; have:\n${lines.map((x) => x.raw).join('\n')}`);
    return l;
  };
  const pub = find((l) => l.method === 'POST', 'the publish');
  assert(pub.target === HUB && pub.status === 200 && pub.topics === 2, `publish line: ${pub.raw}`);
  assert(pub.bytes > 20 && pub.client === '127.0.0.1' && /^w\d+$/.test(pub.thread), `publish line fields: ${pub.raw}`);

  const hdr = find((l) => l.target === `${HUB}?topic=a&topic=b&lastEventID=x`, 'the header-token stream');
  assert(hdr.status === 200 && hdr.topics === 2 && hdr.bytes >= 2, `stream line: ${hdr.raw}`);
  assert(hdr.ms >= 300, `a stream's duration is its life (${hdr.ms} ms)`);
  const q = find((l) => l.target === `${HUB}?topic=a&x=1`, 'the query-token stream (its parameter removed)');
  assert(q.status === 200 && q.topics === 1, `query stream: ${q.raw}`);
  find((l) => l.target === `${HUB}?topic=c`, 'the percent-encoded parameter removed too');
  find((l) => l.target === `${HUB}?topic=d` && l.status === 200, 'the cookie stream');
  const bad = find((l) => l.target === `${HUB}?topic=e`, 'the refused subscribe');
  assert(bad.status === 401 && bad.topics === 1, `refusal line: ${bad.raw}`);
  find((l) => l.target === '/no/such/path' && l.status === 404, 'the 404');
  const head = find((l) => l.method === 'HEAD', 'the HEAD');
  assert(head.target === '/healthz' && head.status === 200 && head.bytes === 0, `HEAD line: ${head.raw}`);
}

test('off by default: no access line', async () => {
  const server = await startCourant([]);
  assert((await fetch(`${server.base}/healthz`)).status === 200, 'healthz');
  await sleep(200);
  await server.stop();
  assert(!server.stderrLines.some((l) => / access \[/.test(l)), 'no access line without --access-log');
});

test('text lines on stderr: the fields, and never a token', async () => {
  const server = await startCourant(['--access-log', 'stderr', '--subscriber-jwt-key', SUB_KEY, '--anonymous']);
  const token = mint({ exp: now() + 600, mercure: { subscribe: ['*'] } }, SUB_KEY);
  await exercise(server.base, token);
  await waitFor(() => accessLines(server).length >= 8, { message: () => `8 access lines (have ${accessLines(server).length})` });
  checkLines(server, token);
});

test('JSON lines with --log-format json: the same fields, each line one object', async () => {
  const server = await startCourant(['--access-log', 'stderr', '--log-format', 'json', '--subscriber-jwt-key', SUB_KEY, '--anonymous']);
  const token = mint({ exp: now() + 600, mercure: { subscribe: ['*'] } }, SUB_KEY);
  await exercise(server.base, token);
  await waitFor(() => accessLines(server).length >= 8, { message: () => `8 access lines (have ${accessLines(server).length})` });
  for (const l of accessLines(server)) {
    for (const k of ['ts', 'level', 'thread', 'client', 'method', 'target', 'status', 'bytes', 'ms', 'topics']) {
      assert(k in l, `JSON access line has ${k}: ${l.raw}`);
    }
    assert(typeof l.status === 'number' && typeof l.ms === 'number' && typeof l.bytes === 'number', `numbers: ${l.raw}`);
  }
  checkLines(server, token);
});

test('a file target, re-opened by SIGHUP (log rotation); a reload can turn it off', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'courant-access-'));
  const file = path.join(dir, 'access.log');
  const conf = path.join(dir, 'courant.conf');
  try {
    writeFileSync(conf, `access-log = ${file}\n`);
    const server = await startCourant(['--config', conf]);
    await fetch(`${server.base}/healthz?first=1`);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('/healthz?first=1'), { message: 'the first line in the file' });
    renameSync(file, `${file}.1`);
    server.proc.kill('SIGHUP');
    await waitFor(() => server.stderrLines.some((l) => /SIGHUP: configuration re-read/.test(l)), { message: 'the reload' });
    await fetch(`${server.base}/healthz?second=1`);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('/healthz?second=1'), { message: 'the next line in a new file' });
    assert(!readFileSync(`${file}.1`, 'utf8').includes('second=1'), 'the rotated file got no new line');
    assert(!server.stderrLines.some((l) => / access \[/.test(l)), 'nothing on stderr');
    // The option gone from the file: a reload turns the log off.
    writeFileSync(conf, '# no access log\n');
    const reloads = () => server.stderrLines.filter((l) => /SIGHUP: configuration re-read/.test(l)).length;
    server.proc.kill('SIGHUP');
    await waitFor(() => reloads() === 2, { message: 'the second reload' });
    await fetch(`${server.base}/healthz?third=1`);
    await sleep(300);
    assert(!readFileSync(file, 'utf8').includes('third=1'), 'off after the reload');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an access log that cannot be opened stops the start with a reason', async () => {
  const r = spawnSync(courantBin(), ['--access-log', '/nonexistent-dir/x/access.log', '--listen', '127.0.0.1:0'], {
    encoding: 'utf8',
    timeout: 10000,
  });
  assert(r.status === 2, `exit status 2, got ${r.status}`);
  assert(/--access-log: cannot open \/nonexistent-dir/.test(r.stderr), `a clear reason: ${r.stderr}`);
});

run();
