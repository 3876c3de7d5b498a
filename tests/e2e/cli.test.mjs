// cli.test.mjs - the command-line client built into the courant binary
// (courant token, courant pub, courant sub), against a real courant.
//
//   node tests/e2e/cli.test.mjs
//
// token: a token made with the hub's key is accepted, one made with another
// key refused (HS256, and RS256/ES256 with keys generated here); pub/sub: a
// round trip with every field, private updates, clear errors; sub: resumes
// across a server restart (--store) with no gap and no duplicate, honours
// retry:, exits on SIGINT and gives up on 401. The CLI runs from
// $COURANT_BIN (the ASan build under tests/run.sh), so leaks fail the test.

import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, courantBin, freePort, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const scratch = mkdtempSync(path.join(tmpdir(), 'courant-cli-e2e-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
const file = (name, content) => {
  const p = path.join(scratch, name);
  writeFileSync(p, content);
  return p;
};

const SAN_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** Starts `courant <args>` as a client; .done resolves {code, signal, stdout, stderr}. */
function cli(args, { timeout = 15000 } = {}) {
  const proc = spawn(courantBin(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COURANT_'))),
  });
  const r = { proc, stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8').on('data', (d) => (r.stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (r.stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
  r.done = new Promise((resolve) =>
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      if (SAN_RE.test(r.stderr)) throw new Error(`courant ${args[0]} printed a sanitizer report:\n${r.stderr}`);
      resolve({ code, signal, stdout: r.stdout, stderr: r.stderr });
    }),
  );
  return r;
}
const runCli = (args, opts) => cli(args, opts).done;

const hubUrl = (s) => s.base;
const lines = (s) => s.split('\n').filter((l) => l !== '');

const decodeClaims = (tok) => JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());

// ---- token ------------------------------------------------------------------------

test('token (HS256): signed with the hub key is accepted, another key is refused', async () => {
  const s = await startCourant(['--workers', '1', '--publisher-jwt-key', 'hub-secret-for-the-cli-tests-0123456789']);
  const good = await runCli(['token', '--key', 'hub-secret-for-the-cli-tests-0123456789', '--publish', 'https://ex.com/{id}', '--exp', '10m']);
  assert(good.code === 0, `token exit ${good.code}: ${good.stderr}`);
  const tok = good.stdout.trim();
  assert(/^[\w-]+\.[\w-]+\.[\w-]+$/.test(tok), `not a JWT: ${tok}`);
  const claims = decodeClaims(tok);
  assert(JSON.stringify(claims.mercure) === '{"publish":["https://ex.com/{id}"]}', JSON.stringify(claims));
  const now = Date.now() / 1000;
  assert(claims.exp > now + 590 && claims.exp < now + 610, `exp ${claims.exp}`);

  const ok = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://ex.com/1', '--data', 'x', '--token', tok]);
  assert(ok.code === 0 && /^urn:uuid:/.test(ok.stdout), `pub with the right key: ${ok.code} ${ok.stdout} ${ok.stderr}`);

  const keyFile = file('hs.key', 'other-secret-for-the-cli-tests-0123456789\n');
  const bad = (await runCli(['token', '--key-file', keyFile, '--publish', '*'])).stdout.trim();
  const refused = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://ex.com/1', '--data', 'x', '--token', bad]);
  assert(refused.code === 1, `pub with a wrong key exited ${refused.code}`);
  assert(/^courant pub: 401 Unauthorized: bad signature/.test(refused.stderr), refused.stderr);
  assert(refused.stdout === '', 'nothing on stdout when refused');

  const outside = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://other.com/1', '--data', 'x', '--token', tok]);
  assert(outside.code === 1 && /403/.test(outside.stderr), `a topic outside mercure.publish: ${outside.stderr}`);
});

test('token (HS256 key file): the trailing newline is not part of the secret, as for the hub', async () => {
  const keyFile = file('shared.key', 'file-secret-for-the-cli-tests-0123456789\n');
  const s = await startCourant(['--workers', '1', '--publisher-jwt-key-file', keyFile]);
  const tok = (await runCli(['token', '--key-file', keyFile, '--publish', '*'])).stdout.trim();
  const r = await runCli(['pub', '--url', hubUrl(s), '--topic', 'a', '--data', 'b', '--token', tok]);
  assert(r.code === 0, r.stderr);
});

for (const [alg, kind, opts] of [
  ['RS256', 'rsa', { modulusLength: 2048 }],
  ['ES256', 'ec', { namedCurve: 'P-256' }],
]) {
  test(`token (${alg}): signed with a PEM private key, verified with its public key`, async () => {
    const pair = generateKeyPairSync(kind, { ...opts, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
    const other = generateKeyPairSync(kind, { ...opts, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const pub = file(`${alg}.pub`, pair.publicKey);
    const priv = file(`${alg}.pem`, pair.privateKey);
    const otherPriv = file(`${alg}-other.pem`, other.privateKey);
    const s = await startCourant(['--workers', '1', '--jwt-alg', alg, '--publisher-jwt-key-file', pub]);
    const t = await runCli(['token', '--alg', alg, '--key-file', priv, '--publish', '*']);
    assert(t.code === 0, t.stderr);
    const ok = await runCli(['pub', '--url', hubUrl(s), '--topic', 'a', '--data', 'b', '--token', t.stdout.trim()]);
    assert(ok.code === 0, `${alg} token refused: ${ok.stderr}`);
    const t2 = await runCli(['token', '--alg', alg, '--key-file', otherPriv, '--publish', '*']);
    const bad = await runCli(['pub', '--url', hubUrl(s), '--topic', 'a', '--data', 'b', '--token', t2.stdout.trim()]);
    assert(bad.code === 1 && /401/.test(bad.stderr), `another ${alg} key: ${bad.code} ${bad.stderr}`);
    const mismatch = await runCli(['token', '--alg', alg === 'RS256' ? 'ES256' : 'RS256', '--key-file', priv, '--publish', '*']);
    assert(mismatch.code === 1 && /wants an? (RSA|EC) private key/.test(mismatch.stderr), mismatch.stderr);
  });
}

test('token --v1: a Mercure 1.0 access token the hub accepts (EdDSA key, URL-pattern grant)', async () => {
  const pair = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const pub = file('ed.pub', pair.publicKey);
  const priv = file('ed.pem', pair.privateKey);
  const ISS = 'https://cli.example', AUD = 'https://hub.example/.well-known/mercure';
  const s = await startCourant(['--workers', '1', '--publisher-jwt-key-file', pub, '--jwt-issuer', ISS, '--resource-identifier', AUD]);
  const t = await runCli(['token', '--v1', '--issuer', ISS, '--audience', AUD, '--alg', 'EdDSA', '--key-file', priv,
    '--publish', 'https://ex.com/books/:id', '--match-type', 'urlpattern']);
  assert(t.code === 0, t.stderr);
  const [h, c] = t.stdout.trim().split('.').slice(0, 2).map((x) => JSON.parse(Buffer.from(x, 'base64url').toString()));
  assert(h.typ === 'at+jwt' && h.alg === 'EdDSA', JSON.stringify(h));
  for (const k of ['iss', 'aud', 'sub', 'client_id', 'iat', 'exp', 'jti']) assert(k in c, `claim ${k}: ${JSON.stringify(c)}`);
  assert(c.authorization_details[0].topics[0].match_type === 'urlpattern', JSON.stringify(c));
  const ok = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://ex.com/books/1', '--data', 'b', '--token', t.stdout.trim()]);
  assert(ok.code === 0, `1.0 token refused: ${ok.stderr}`);
  const no = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://ex.com/other', '--data', 'b', '--token', t.stdout.trim()]);
  assert(no.code === 1 && /403/.test(no.stderr), `outside the grant: ${no.code} ${no.stderr}`);
  const bad = await runCli(['token', '--v1', '--key', 'k'.repeat(40), '--publish', '*']);
  assert(bad.code === 2 && /--issuer/.test(bad.stderr), `--v1 without --issuer: ${bad.stderr}`);
});

test('token: usage errors are exit 2 with one line', async () => {
  for (const [args, re] of [
    [['token', '--publish', '*'], /give --key SECRET or --key-file PATH/],
    [['token', '--key', 'k', '--exp', 'soon'], /--exp wants a duration/],
    [['token', '--key', 'k', '--payload', '{nope'], /--payload is not JSON/],
    [['token', '--key', 'k', '--alg', 'none'], /--alg wants HS256/],
    [['token', '--key', 'k', '--bogus'], /unknown option "--bogus"/],
    [['token', '--alg', 'RS256', '--key', 'k'], /RS256 signs with a private key/],
  ]) {
    const r = await runCli(args);
    assert(r.code === 2, `${args.join(' ')}: exit ${r.code}`);
    assert(lines(r.stderr).length === 1 && re.test(r.stderr), `${args.join(' ')}: ${r.stderr}`);
  }
  const p = await runCli(['token', '--key', 'k', '--subscribe', 'a', '--subscribe', 'b', '--payload', '{"u":1}', '--exp', '0']);
  const c = decodeClaims(p.stdout.trim());
  assert(JSON.stringify(c) === '{"mercure":{"subscribe":["a","b"],"payload":{"u":1}}}', JSON.stringify(c));
});

// ---- pub and sub ------------------------------------------------------------------

test('pub/sub round trip: every field arrives as published, in order, then sub exits after --count', async () => {
  const s = await startCourant(['--workers', '2']);
  const sub = cli(['sub', '--url', hubUrl(s), '--topic', 'https://ex.com/books/{id}', '--json', '--count', '3']);
  await sleep(500); // the stream opens
  const published = [
    ['--topic', 'https://ex.com/books/1', '--data', 'line one\nline two', '--type', 'book', '--id', 'b-1'],
    ['--topic', 'https://ex.com/other', '--topic', 'https://ex.com/books/2', '--data', '{"quote":"\\"x\\""} é'],
    ['--topic', 'https://ex.com/books/3', '--data', '', '--retry', '2500'],
    ['--topic', 'https://ex.com/books/4', '--data', 'past --count'],
  ];
  const ids = [];
  for (const p of published) {
    const r = await runCli(['pub', '--url', hubUrl(s), ...p]);
    assert(r.code === 0, `pub ${p.join(' ')}: ${r.stderr}`);
    ids.push(r.stdout.trim());
  }
  assert(ids[0] === 'b-1' && /^urn:uuid:/.test(ids[1]), ids.join(' '));
  const r = await sub.done;
  assert(r.code === 0, `sub exit ${r.code}: ${r.stderr}`);
  const got = lines(r.stdout).map((l) => JSON.parse(l));
  const want = [
    { id: 'b-1', type: 'book', data: 'line one\nline two' },
    { id: ids[1], type: 'message', data: '{"quote":"\\"x\\""} é' },
    { id: ids[2], type: 'message', data: '' },
  ];
  assert(JSON.stringify(got) === JSON.stringify(want), `got ${JSON.stringify(got)}`);
});

test('sub prints one readable block per event', async () => {
  const s = await startCourant(['--workers', '1']);
  await runCli(['pub', '--url', hubUrl(s), '--topic', 't', '--data', 'a\nb', '--id', 'e1', '--type', 'greet']);
  const r = await runCli(['sub', '--url', hubUrl(s), '--topic', 't', '--last-event-id', 'earliest', '--count', '1']);
  assert(r.code === 0, r.stderr);
  assert(r.stdout === 'id:   e1\ntype: greet\ndata: a\n      b\n\n', JSON.stringify(r.stdout));
});

test('private updates: sub needs a token whose mercure.subscribe matches', async () => {
  const s = await startCourant(['--workers', '1', '--subscriber-jwt-key', 'subscriber-key-for-the-cli-tests-0123456789', '--anonymous']);
  const tok = (await runCli(['token', '--key', 'subscriber-key-for-the-cli-tests-0123456789', '--subscribe', 'https://ex.com/secret/{id}'])).stdout.trim();
  const withTok = cli(['sub', '--url', hubUrl(s), '--topic', 'https://ex.com/secret/1', '--token', tok, '--json', '--count', '1']);
  const anon = cli(['sub', '--url', hubUrl(s), '--topic', 'https://ex.com/secret/1', '--json', '--count', '1'], { timeout: 20000 });
  await sleep(500);
  const p = await runCli(['pub', '--url', hubUrl(s), '--topic', 'https://ex.com/secret/1', '--data', 'psst', '--private']);
  assert(p.code === 0, p.stderr);
  const r = await withTok.done;
  assert(r.code === 0 && JSON.parse(r.stdout).data === 'psst', `${r.code} ${r.stdout} ${r.stderr}`);
  await sleep(300);
  anon.proc.kill('SIGINT');
  const a = await anon.done;
  assert(a.code === 0 && a.stdout === '', `an anonymous subscriber received a private update: ${a.stdout}`);
});

test('sub gives up on 401 with the reason; pub reports unreachable hubs and bad requests', async () => {
  const s = await startCourant(['--workers', '1', '--subscriber-jwt-key', 'subscriber-key-for-the-cli-tests-0123456789']);
  const r = await runCli(['sub', '--url', hubUrl(s), '--topic', 't']);
  assert(r.code === 1 && /^courant sub: 401 Unauthorized/.test(r.stderr), `${r.code} ${r.stderr}`);
  const bad = await runCli(['pub', '--url', hubUrl(s), '--topic', 't', '--data', 'x', '--retry', 'abc']);
  assert(bad.code === 1 && /^courant pub: 400 Bad Request: .*retry/.test(bad.stderr), bad.stderr);
  const port = await freePort();
  const down = await runCli(['pub', '--url', `http://127.0.0.1:${port}`, '--topic', 't', '--data', 'x']);
  assert(down.code === 1 && /cannot connect to 127\.0\.0\.1:\d+: Connection refused/.test(down.stderr), down.stderr);
  const https = await runCli(['pub', '--url', 'https://127.0.0.1/', '--topic', 't', '--data', 'x']);
  assert(https.code === 2 && /https:\/\/ is not supported yet/.test(https.stderr), https.stderr);
});

test('sub exits 0 on SIGINT within a second', async () => {
  const s = await startCourant(['--workers', '1']);
  const sub = cli(['sub', '--url', hubUrl(s), '--topic', 't']);
  await sleep(500);
  const t0 = Date.now();
  sub.proc.kill('SIGINT');
  const r = await sub.done;
  assert(r.code === 0 && Date.now() - t0 < 1000, `exit ${r.code} after ${Date.now() - t0} ms: ${r.stderr}`);
});

test('sub resumes across a server restart with no gap and no duplicate (--store, Last-Event-ID)', async () => {
  const port = await freePort();
  const db = path.join(scratch, 'resume.db');
  // retry: 1500 ms gives the test time to publish while sub waits to reconnect.
  const args = ['--workers', '1', '--listen', `127.0.0.1:${port}`, '--store', db, '--retry', '1500'];
  let s = await startCourant(args);
  const url = s.base;
  const sub = cli(['sub', '--url', url, '--topic', 'https://ex.com/r/{n}', '--json', '--count', '10'], { timeout: 30000 });
  await sleep(500);
  const ids = [];
  const pub = async (i) => {
    const r = await runCli(['pub', '--url', url, '--topic', `https://ex.com/r/${i}`, '--data', `event ${i}`]);
    assert(r.code === 0, `pub ${i}: ${r.stderr}`);
    ids.push(r.stdout.trim());
  };
  for (let i = 1; i <= 4; i++) await pub(i);
  await waitFor(() => lines(sub.stdout).length === 4, { message: 'sub to print the first 4 events' });
  await s.stop();
  s = await startCourant(args); // same port, same store
  const t0 = Date.now();
  for (let i = 5; i <= 7; i++) await pub(i); // before sub reconnects: replayed from history
  assert(Date.now() - t0 < 1500, 'published 5-7 before the retry delay ended');
  await waitFor(() => /reconnecting in 1\.5 s after urn:uuid:/.test(sub.stderr), { message: 'the reconnect line' });
  await waitFor(() => lines(sub.stdout).length === 7, { timeout: 8000, message: () => `replay of 5-7 (got ${lines(sub.stdout).length})` });
  for (let i = 8; i <= 10; i++) await pub(i); // live
  const r = await sub.done;
  assert(r.code === 0, `sub exit ${r.code}: ${r.stderr}`);
  const got = lines(r.stdout).map((l) => JSON.parse(l));
  assert(got.map((e) => e.id).join() === ids.join(), `ids ${got.map((e) => e.id).join()} != ${ids.join()}`);
  assert(got.map((e) => e.data).join() === Array.from({ length: 10 }, (_, i) => `event ${i + 1}`).join(), 'data in order');
  assert(!/no longer has the events/.test(r.stderr), r.stderr);
});

test('sub warns when the hub lost the resume point (restart without --store)', async () => {
  const port = await freePort();
  const args = ['--workers', '1', '--listen', `127.0.0.1:${port}`, '--retry', '200'];
  let s = await startCourant(args);
  const sub = cli(['sub', '--url', s.base, '--topic', 't', '--count', '2', '--json'], { timeout: 20000 });
  await sleep(400);
  await runCli(['pub', '--url', s.base, '--topic', 't', '--data', 'before']);
  await waitFor(() => lines(sub.stdout).length === 1, { message: 'the first event' });
  await s.stop();
  s = await startCourant(args);
  await waitFor(() => /no longer has the events after/.test(sub.stderr), { timeout: 8000, message: 'the warning' });
  await runCli(['pub', '--url', s.base, '--topic', 't', '--data', 'after']);
  const r = await sub.done;
  assert(r.code === 0 && lines(r.stdout).map((l) => JSON.parse(l).data).join() === 'before,after', r.stdout);
});

test('sub backs off while the hub is down, then connects', async () => {
  const port = await freePort();
  const sub = cli(['sub', '--url', `http://127.0.0.1:${port}`, '--topic', 't', '--count', '1'], { timeout: 20000 });
  await waitFor(() => (sub.stderr.match(/reconnecting in/g) || []).length >= 2, { timeout: 6000, message: 'two failed attempts' });
  const delays = [...sub.stderr.matchAll(/reconnecting in ([\d.]+) s/g)].map((m) => Number(m[1]));
  assert(delays[0] === 1 && delays[1] === 2, `doubling delays from 1 s: ${delays}`);
  const s = await startCourant(['--workers', '1', '--listen', `127.0.0.1:${port}`]);
  await sleep(4500);
  await runCli(['pub', '--url', s.base, '--topic', 't', '--data', 'finally']);
  const r = await sub.done;
  assert(r.code === 0 && /data: finally/.test(r.stdout), `${r.code} ${r.stdout} ${r.stderr}`);
}, { timeout: 40000 });

await run();
