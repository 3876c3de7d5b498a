// jwks.test.mjs - key discovery and rotation for Mercure 1.0 access tokens:
// --jwks-url fetched over HTTPS (a local server this test starts, with a
// certificate it makes), every algorithm, keys chosen by kid, keys bound to
// their issuer, a rotation picked up through an unknown kid (rate-limited
// refresh), draft-07 tokens never verified with JWKS keys, and TLS verified.
//
//   node tests/e2e/jwks.test.mjs
//
// Needs the openssl CLI (scripts/setup.sh installs it) for the server's
// certificate; without it every test is skipped.

import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, run, skip, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const RES = 'https://hub.example/.well-known/mercure';
const ISS_A = 'https://as-a.example';
const ISS_B = 'https://as-b.example';
const DETAIL = 'https://mercure.rocks/authorization-detail';
const now = () => Math.floor(Date.now() / 1000);
const b64u = (b) => Buffer.from(b).toString('base64url');

const dir = mkdtempSync(path.join(tmpdir(), 'courant-jwks-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate for 127.0.0.1, or null without the openssl CLI. */
function makeCert() {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8', timeout: 20000 });
  if (r.error || r.status !== 0) return null;
  return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')), caFile: path.join(dir, 'cert.pem') };
}
const tls = makeCert();

/** An HTTPS server answering /a.json and /b.json from `sets` (mutable), counting fetches. */
async function jwksServer(sets, cacheControl = 'max-age=3600') {
  const hits = { '/a.json': 0, '/b.json': 0 };
  const srv = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    hits[req.url] = (hits[req.url] || 0) + 1;
    const body = sets[req.url];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': cacheControl });
    res.end(JSON.stringify(body));
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const base = `https://127.0.0.1:${srv.address().port}`;
  return { base, hits, close: () => new Promise((r) => srv.close(r)) };
}

// ---- keys and tokens ------------------------------------------------------------------

const ALGS = {
  RS256: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS384: () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  EdDSA: () => crypto.generateKeyPairSync('ed25519'),
};

function makeKey(alg, kid) {
  const kp = ALGS[alg]();
  return { alg, kid, kp, jwk: { ...kp.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

function signWith(k, data) {
  const buf = Buffer.from(data);
  const hash = `sha${k.alg.slice(2) || '256'}`;
  if (k.alg.startsWith('RS')) return crypto.sign(hash, buf, k.kp.privateKey);
  if (k.alg.startsWith('PS')) return crypto.sign(hash, buf, { key: k.kp.privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(k.alg.slice(2)) / 8 });
  if (k.alg.startsWith('ES')) return crypto.sign(hash, buf, { key: k.kp.privateKey, dsaEncoding: 'ieee-p1363' });
  return crypto.sign(null, buf, k.kp.privateKey);
}

function token(k, { iss = ISS_A, kid = k.kid, typ = 'at+jwt', claims } = {}) {
  const header = { alg: k.alg, typ, ...(kid ? { kid } : {}) };
  const body = claims || {
    iss, aud: RES, sub: 's', exp: now() + 600,
    authorization_details: [{ type: DETAIL, actions: ['publish', 'subscribe'], topics: [{ match: '*' }] }],
  };
  const data = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(body))}`;
  return `${data}.${b64u(signWith(k, data))}`;
}

async function publish(base, tok, topic = 'urn:jwks') {
  const res = await fetch(`${base}${HUB}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${tok}` },
    body: new URLSearchParams([['topic', topic], ['data', 'x']]).toString(),
  });
  return { status: res.status, body: await res.text(), challenge: res.headers.get('www-authenticate') || '' };
}

const args = (jwks, extra = []) => ['--resource-identifier', RES, '--jwks-ca-file', tls.caFile, ...jwks.flatMap((u) => ['--jwks-url', u]), ...extra];

// ---- tests ----------------------------------------------------------------------------------

test('every algorithm, keys chosen by kid, from a JWK Set over HTTPS', async () => {
  if (!tls) skip('no openssl CLI to make the JWKS server\'s certificate');
  const keys = Object.keys(ALGS).map((alg, i) => makeKey(alg, `k${i}`));
  const js = await jwksServer({ '/a.json': { keys: keys.map((k) => k.jwk) } });
  try {
    const srv = await startCourant(args([`${ISS_A}=${js.base}/a.json`]));
    for (const k of keys) {
      const r = await publish(srv.base, token(k));
      assert(r.status === 200, `${k.alg}: ${r.status} ${r.body}`);
    }
    // A kid-less token still finds its key among the candidates of its alg.
    assert((await publish(srv.base, token(keys[0], { kid: null }))).status === 200, 'no kid');
    // A token claiming one key's kid but signed by another: refused.
    const forged = token({ ...keys[2], kid: keys[2].kid, kp: ALGS.ES256() });
    const f = await publish(srv.base, forged);
    assert(f.status === 401 && /invalid_token/.test(f.challenge), `forged: ${f.status}`);
    // A draft-07 token (no typ) is never verified with a JWKS key.
    const classic = token(keys[0], { typ: 'JWT', claims: { mercure: { publish: ['*'] } } });
    assert((await publish(srv.base, classic)).status === 401, 'a draft-07 token with a JWKS key');
    // The authorization server appears in the metadata.
    const meta = await (await fetch(`${srv.base}/.well-known/oauth-protected-resource/.well-known/mercure`)).json();
    assert(JSON.stringify(meta.authorization_servers) === JSON.stringify([ISS_A]), JSON.stringify(meta));
    assert(js.hits['/a.json'] === 1, `one fetch (max-age=3600): ${js.hits['/a.json']}`);
  } finally {
    await js.close();
  }
});

test('keys are bound to their issuer: a token of one issuer signed by another\'s key is refused', async () => {
  if (!tls) skip('no openssl CLI');
  const a = makeKey('ES256', 'a1'), b = makeKey('ES256', 'b1');
  const js = await jwksServer({ '/a.json': { keys: [a.jwk] }, '/b.json': { keys: [b.jwk] } });
  try {
    const srv = await startCourant(args([`${ISS_A}=${js.base}/a.json`, `${ISS_B}=${js.base}/b.json`]));
    assert((await publish(srv.base, token(a, { iss: ISS_A }))).status === 200, 'A signs for A');
    assert((await publish(srv.base, token(b, { iss: ISS_B }))).status === 200, 'B signs for B');
    const cross = await publish(srv.base, token(b, { iss: ISS_A, kid: 'b1' }));
    assert(cross.status === 401 && /invalid_token/.test(cross.challenge), `B signs for A: ${cross.status}`);
    const unknown = await publish(srv.base, token(a, { iss: 'https://nobody.example' }));
    assert(unknown.status === 401, `an untrusted issuer: ${unknown.status}`);
    // --jwt-issuer is the issuer of a bare --jwks-url.
    const bare = await startCourant(args([`${js.base}/b.json`], ['--jwt-issuer', ISS_B]));
    assert((await publish(bare.base, token(b, { iss: ISS_B }))).status === 200, 'bare URL, --jwt-issuer');
  } finally {
    await js.close();
  }
});

test('rotation: an unknown kid triggers a rate-limited refresh, off the request path', async () => {
  if (!tls) skip('no openssl CLI');
  const old = makeKey('RS256', 'old'), fresh = makeKey('EdDSA', 'new');
  const sets = { '/a.json': { keys: [old.jwk] } };
  const js = await jwksServer(sets);
  try {
    const srv = await startCourant(args([`${ISS_A}=${js.base}/a.json`]));
    assert((await publish(srv.base, token(old))).status === 200, 'the old key');
    sets['/a.json'] = { keys: [fresh.jwk] }; // the issuer rotates
    const t0 = Date.now();
    const first = await publish(srv.base, token(fresh));
    assert(first.status === 401, `the new kid before a refresh: ${first.status}`);
    assert(Date.now() - t0 < 2000, 'the request did not wait for the fetch');
    // A burst of unknown kids: one refresh, not one per request.
    for (let i = 0; i < 30; i++) await publish(srv.base, token(fresh));
    await waitFor(async () => (await publish(srv.base, token(fresh))).status === 200,
      { timeout: 15000, interval: 250, message: 'the new key to be fetched (poke interval 10 s)' });
    assert(js.hits['/a.json'] === 2, `fetches: ${js.hits['/a.json']} (one at start, one poked)`);
    assert((await publish(srv.base, token(old))).status === 401, 'the old key is gone');
  } finally {
    await js.close();
  }
}, { timeout: 40000 });

test('TLS is verified: an untrusted certificate keeps the keys out, courant still starts', async () => {
  if (!tls) skip('no openssl CLI');
  const k = makeKey('ES256', 'k');
  const js = await jwksServer({ '/a.json': { keys: [k.jwk] } });
  try {
    const srv = await startCourant(['--resource-identifier', RES, '--jwks-url', `${ISS_A}=${js.base}/a.json`]);
    await sleep(200);
    const r = await publish(srv.base, token(k));
    assert(r.status === 401, `a key from an unverified server: ${r.status}`);
    assert(srv.stderrLines.some((l) => /jwks|JWK/i.test(l) && /fail|not every|certificate|SSL|TLS/i.test(l)), 'the failure is logged');
    const plain = spawnSync(process.env.COURANT_BIN || 'build/asan/courant', ['--jwks-url', `${ISS_A}=http://127.0.0.1:1/a.json`, '--listen', '127.0.0.1:0'],
      { encoding: 'utf8', timeout: 10000 });
    assert(plain.status === 2 && /https/.test(plain.stderr), `http:// is refused at start: ${plain.status} ${plain.stderr}`);
    const noIss = spawnSync(process.env.COURANT_BIN || 'build/asan/courant', ['--jwks-url', `${js.base}/a.json`, '--listen', '127.0.0.1:0'],
      { encoding: 'utf8', timeout: 10000 });
    assert(noIss.status === 2 && /issuer/.test(noIss.stderr), `a URL without an issuer: ${noIss.status} ${noIss.stderr}`);
  } finally {
    await js.close();
  }
});

await run();
