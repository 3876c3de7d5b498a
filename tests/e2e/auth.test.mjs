// auth.test.mjs - JWT authorization end to end: every refusal, the token
// sources and their precedence, RS256/ES256 keys from files, publish rights,
// private updates (live and replayed) shared out by claims, token expiry
// ending a stream, URI-template selectors, CORS with credentials.
//
//   node tests/e2e/auth.test.mjs
//
// Tokens are minted here with node's crypto (HMAC, RSA, ECDSA P-256), so the
// tests never depend on courant's own signing code.

import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assert, courantBin, openEvents, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const FORM = 'application/x-www-form-urlencoded';
const PUB_KEY = 'publisher-secret-for-tests-0123456789';
const SUB_KEY = 'subscriber-secret-for-tests-9876543210';
const now = () => Math.floor(Date.now() / 1000);

// ---- tokens ------------------------------------------------------------------------

const b64u = (b) => Buffer.from(b).toString('base64url');

function mint(claims, { key = PUB_KEY, alg = 'HS256', header = {}, sigAlg = alg } = {}) {
  const data = `${b64u(JSON.stringify({ alg, typ: 'JWT', ...header }))}.${b64u(JSON.stringify(claims))}`;
  let sig;
  if (sigAlg.startsWith('HS')) sig = crypto.createHmac(`sha${sigAlg.slice(2)}`, key).update(data).digest();
  else if (sigAlg === 'RS256') sig = crypto.sign('sha256', Buffer.from(data), key);
  else if (sigAlg === 'ES256') sig = crypto.sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
  else sig = Buffer.alloc(0);
  return `${data}.${b64u(sig)}`;
}

const pubToken = (publish = ['*'], extra = {}) => mint({ exp: now() + 600, mercure: { publish }, ...extra });
const subToken = (subscribe = ['*'], extra = {}) =>
  mint({ exp: now() + 600, mercure: { subscribe }, ...extra }, { key: SUB_KEY });

// ---- HTTP helpers ------------------------------------------------------------------

async function publish(base, fields, { headers = {}, query = '' } = {}) {
  const body = new URLSearchParams(fields).toString();
  const res = await fetch(`${base}${HUB}${query}`, {
    method: 'POST',
    headers: { 'content-type': FORM, ...headers },
    body,
  });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const bearer = (t) => ({ authorization: `Bearer ${t}` });

/** Opens a stream; resolves once the response head is in. Parses events as they come. */
function openStream(base, params, headers = {}) {
  const qs = params instanceof URLSearchParams ? params : new URLSearchParams(params);
  return openEvents(`${base}${HUB}?${qs}`, { headers });
}

async function subscribeStatus(base, params, headers = {}) {
  const s = await openStream(base, params, headers);
  s.close();
  return s;
}

function logHas(server, re) {
  return server.stderrLines.some((l) => re.test(l));
}

// ---- refusals ------------------------------------------------------------------------

const KEYS = ['--publisher-jwt-key', PUB_KEY, '--subscriber-jwt-key', SUB_KEY];

test('publisher refusals: none, wrong alg, bad signature, expired, nbf, malformed, missing claim, topic outside claim', async () => {
  const srv = await startCourant(KEYS);
  const topic = 'https://example.com/books/1';
  const cases = [
    ['no token', null, 401],
    ['alg none', mint({ mercure: { publish: ['*'] } }, { alg: 'none' }), 401],
    ['wrong alg (HS512 token, HS256 server)', mint({ mercure: { publish: ['*'] } }, { alg: 'HS512' }), 401],
    ['RS256 header over an HMAC', mint({ mercure: { publish: ['*'] } }, { alg: 'RS256', sigAlg: 'HS256' }), 401],
    ['bad signature', mint({ mercure: { publish: ['*'] } }, { key: 'another-key' }), 401],
    ['subscriber key is not a publisher key', mint({ mercure: { publish: ['*'] } }, { key: SUB_KEY }), 401],
    ['expired', mint({ exp: now() - 10, mercure: { publish: ['*'] } }), 401],
    ['nbf in the future', mint({ nbf: now() + 600, mercure: { publish: ['*'] } }), 401],
    ['malformed: garbage', 'not-a-token', 401],
    ['malformed: two parts', 'eyJhbGciOiJIUzI1NiJ9.e30', 401],
    ['malformed: bad base64', 'eyJhbGciOiJIUzI1NiJ9.e30!.abc', 401],
    ['malformed: payload not JSON', (() => {
      const d = `${b64u('{"alg":"HS256"}')}.${b64u('nope')}`;
      return `${d}.${b64u(crypto.createHmac('sha256', PUB_KEY).update(d).digest())}`;
    })(), 401],
    ['exp not a number', mint({ exp: 'tomorrow', mercure: { publish: ['*'] } }), 401],
    ['publish not an array', mint({ mercure: { publish: '*' } }), 401],
    ['missing mercure.publish claim', mint({ exp: now() + 60, mercure: { subscribe: ['*'] } }), 403],
    ['no mercure claim at all', mint({ exp: now() + 60 }), 403],
    ['topic outside the claim', pubToken(['https://example.com/books/2']), 403],
    ['empty publish claim', pubToken([]), 403],
  ];
  for (const [name, tok, want] of cases) {
    const r = await publish(srv.base, [['topic', topic], ['data', 'x']], { headers: tok ? bearer(tok) : {} });
    assert(r.status === want, `${name}: got ${r.status} (${r.body.trim()}), want ${want}`);
    if (want === 401) assert(/Bearer/.test(r.headers.get('www-authenticate') || ''), `${name}: no WWW-Authenticate`);
  }
  // Reasons are logged, tokens never.
  for (const re of [/alg none/, /alg differs/, /bad signature/, /expired/, /nbf/, /malformed/, /mercure.publish/]) {
    assert(logHas(srv, re), `no log line matching ${re}`);
  }
  const secretPart = pubToken(['https://example.com/books/2']).split('.')[2];
  assert(!srv.stderrLines.some((l) => l.includes(secretPart) || l.includes('eyJ')), 'a token reached the log');
  // Every topic must be covered: one allowed and one not is refused.
  const r = await publish(srv.base, [['topic', topic], ['topic', 'https://example.com/other'], ['data', 'x']],
    { headers: bearer(pubToken([topic])) });
  assert(r.status === 403, `alternate topic outside the claim: got ${r.status}`);
  // And the good token publishes.
  const ok = await publish(srv.base, [['topic', topic], ['data', 'x']], { headers: bearer(pubToken([topic])) });
  assert(ok.status === 200 && ok.body.startsWith('urn:uuid:'), `valid token: got ${ok.status} ${ok.body}`);
});

test('subscriber refusals, and --anonymous', async () => {
  const srv = await startCourant(KEYS);
  const topic = { topic: 'https://example.com/books/1' };
  const bad = [
    ['no token without --anonymous', {}],
    ['alg none', bearer(mint({ mercure: { subscribe: ['*'] } }, { alg: 'none', key: SUB_KEY }))],
    ['wrong alg', bearer(mint({ mercure: { subscribe: ['*'] } }, { alg: 'HS384', key: SUB_KEY }))],
    ['bad signature', bearer(mint({ mercure: { subscribe: ['*'] } }, { key: 'nope' }))],
    ['publisher key is not a subscriber key', bearer(mint({ mercure: { subscribe: ['*'] } }, { key: PUB_KEY }))],
    ['expired', bearer(subToken(['*'], { exp: now() - 1 }))],
    ['nbf', bearer(subToken(['*'], { nbf: now() + 100 }))],
    ['malformed', bearer('a.b')],
    ['not Bearer', { authorization: `Basic ${b64u('a:b')}` }],
    ['subscribe not an array', bearer(mint({ mercure: { subscribe: 5 } }, { key: SUB_KEY }))],
  ];
  for (const [name, headers] of bad) {
    const s = await subscribeStatus(srv.base, topic, headers);
    assert(s.status === 401, `${name}: got ${s.status}, want 401`);
  }
  const good = await subscribeStatus(srv.base, topic, bearer(subToken()));
  assert(good.status === 200, `valid token: got ${good.status}`);
  // A valid token without a subscribe claim is a public-only subscriber.
  const noClaim = await subscribeStatus(srv.base, topic, bearer(mint({ exp: now() + 60 }, { key: SUB_KEY })));
  assert(noClaim.status === 200, `token without claim: got ${noClaim.status}`);
  await srv.stop();

  const anon = await startCourant([...KEYS, '--anonymous']);
  const a = await subscribeStatus(anon.base, topic);
  assert(a.status === 200, `--anonymous: got ${a.status}`);
  const b = await subscribeStatus(anon.base, topic, bearer('x.y.z'));
  assert(b.status === 401, `--anonymous still refuses a bad token: got ${b.status}`);

  const nokey = await startCourant([]);
  const c = await subscribeStatus(nokey.base, topic);
  assert(c.status === 200, `no subscriber key: anonymous allowed, got ${c.status}`);

  // The same options from the environment (the config table drives both).
  const env = await startCourant([], { env: { COURANT_SUBSCRIBER_JWT_KEY: SUB_KEY, COURANT_PUBLISHER_JWT_KEY: PUB_KEY } });
  assert((await subscribeStatus(env.base, topic)).status === 401, 'COURANT_SUBSCRIBER_JWT_KEY: anonymous not refused');
  assert((await subscribeStatus(env.base, topic, bearer(subToken()))).status === 200, 'COURANT_SUBSCRIBER_JWT_KEY: token refused');
  const p = await publish(env.base, [['topic', 'urn:e']], { headers: bearer(pubToken()) });
  assert(p.status === 200, `COURANT_PUBLISHER_JWT_KEY: ${p.status}`);
  const env2 = await startCourant([], { env: { COURANT_SUBSCRIBER_JWT_KEY: SUB_KEY, COURANT_ANONYMOUS: '1' } });
  assert((await subscribeStatus(env2.base, topic)).status === 200, 'COURANT_ANONYMOUS=1 ignored');
});

test('token sources: header beats query beats cookie', async () => {
  const srv = await startCourant(KEYS);
  const good = subToken(), badTok = subToken(['*'], { exp: now() - 5 });
  const cookie = (t) => ({ cookie: `other=1; mercureAuthorization=${t}; x=y` });
  const q = (t) => ({ topic: 'urn:a', authorization: t });
  const cases = [
    ['cookie alone', { topic: 'urn:a' }, cookie(good), 200],
    ['query alone', q(good), {}, 200],
    ['header alone', { topic: 'urn:a' }, bearer(good), 200],
    ['bad header beats good query and cookie', q(good), { ...bearer(badTok), ...cookie(good) }, 401],
    ['good header beats bad query', q(badTok), bearer(good), 200],
    ['bad query beats good cookie', q(badTok), cookie(good), 401],
    ['good query beats bad cookie', q(good), cookie(badTok), 200],
  ];
  for (const [name, params, headers, want] of cases) {
    const s = await subscribeStatus(srv.base, params, headers);
    assert(s.status === want, `${name}: got ${s.status}, want ${want}`);
  }
  // Publishing with the query parameter works too.
  const r = await publish(srv.base, [['topic', 'urn:a']], { query: `?authorization=${pubToken()}` });
  assert(r.status === 200, `publish with ?authorization=: ${r.status} ${r.body}`);
});

test('HS384, HS512, RS256 and ES256 keys (PEM files)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'courant-auth-'));
  try {
    const LONG_KEY = `${PUB_KEY}-${PUB_KEY}`; // 75 bytes: RFC 7518 wants >= 48 for HS384, >= 64 for HS512
    for (const alg of ['HS384', 'HS512']) {
      const short = spawnSync(courantBin(), ['--jwt-alg', alg, '--publisher-jwt-key', PUB_KEY], { encoding: 'utf8', timeout: 5000 });
      assert(short.status !== 0 && /at least \d+ bytes/.test(short.stderr), `${alg}: a 37-byte secret was not refused: ${short.stderr}`);
      const srv = await startCourant(['--jwt-alg', alg, '--publisher-jwt-key', LONG_KEY]);
      const ok = await publish(srv.base, [['topic', 'urn:t']], { headers: bearer(mint({ mercure: { publish: ['*'] } }, { alg, key: LONG_KEY })) });
      assert(ok.status === 200, `${alg}: got ${ok.status} ${ok.body}`);
      const no = await publish(srv.base, [['topic', 'urn:t']], { headers: bearer(pubToken()) });
      assert(no.status === 401, `${alg} server, HS256 token: got ${no.status}`);
      await srv.stop();
    }
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ec384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const files = {};
    for (const [n, kp] of Object.entries({ rsa, ec, ec384 })) {
      files[n] = path.join(dir, `${n}.pem`);
      writeFileSync(files[n], kp.publicKey.export({ type: 'spki', format: 'pem' }));
    }
    const secretFile = path.join(dir, 'secret');
    writeFileSync(secretFile, `${SUB_KEY}\n`);
    for (const [alg, kp, file] of [['RS256', rsa, files.rsa], ['ES256', ec, files.ec]]) {
      const srv = await startCourant(['--jwt-alg', alg, '--publisher-jwt-key-file', file]);
      const claims = { exp: now() + 60, mercure: { publish: ['urn:t'] } };
      const ok = await publish(srv.base, [['topic', 'urn:t']], { headers: bearer(mint(claims, { alg, key: kp.privateKey })) });
      assert(ok.status === 200, `${alg}: got ${ok.status} ${ok.body}`);
      const other = alg === 'RS256' ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }) : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = await publish(srv.base, [['topic', 'urn:t']], { headers: bearer(mint(claims, { alg, key: other.privateKey })) });
      assert(forged.status === 401, `${alg} signed by another key: got ${forged.status}`);
      // Algorithm confusion: the public key's PEM used as an HMAC secret.
      const pem = kp.publicKey.export({ type: 'spki', format: 'pem' });
      const confused = await publish(srv.base, [['topic', 'urn:t']], { headers: bearer(mint(claims, { alg: 'HS256', key: pem })) });
      assert(confused.status === 401, `${alg}: HS256 token keyed with the public PEM: got ${confused.status}`);
      await srv.stop();
    }
    // A P-384 key is refused at start for ES256; the subscriber secret file works.
    const bad = spawnSync(courantBin(), ['--jwt-alg', 'ES256', '--publisher-jwt-key-file', files.ec384, '--listen', '127.0.0.1:0'],
      { encoding: 'utf8', timeout: 10000 });
    assert(bad.status === 2 && /P-256/.test(bad.stderr), `P-384 key for ES256 was not refused at start: ${bad.status} ${bad.stderr}`);
    for (const args of [['--jwt-alg', 'HS999'], ['--jwt-alg', 'RS256', '--publisher-jwt-key', 'not a pem'],
      ['--publisher-jwt-key', 'a', '--publisher-jwt-key-file', secretFile], ['--subscriber-jwt-key-file', '/nonexistent']]) {
      const r = spawnSync(courantBin(), [...args, '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10000 });
      assert(r.status === 2 && /courant: /.test(r.stderr), `${args.join(' ')}: exit ${r.status}, ${r.stderr}`);
    }
    const sf = await startCourant(['--subscriber-jwt-key-file', secretFile]);
    const s = await subscribeStatus(sf.base, { topic: 'urn:t' }, bearer(subToken()));
    assert(s.status === 200, `subscriber key from a file (trailing newline): ${s.status}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with a publisher key the loopback exception ends; without one it stays', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY]);
  const r = await publish(srv.base, [['topic', 'urn:t']]);
  assert(r.status === 401, `loopback without a token, key configured: got ${r.status}`);
  const nokey = await startCourant([]);
  const r2 = await publish(nokey.base, [['topic', 'urn:t']]);
  assert(r2.status === 200, `loopback without a key: got ${r2.status}`);
});

// ---- private updates: each subscriber gets exactly its share --------------------

// The topics updates go to, and a JS model of the selectors used below.
const TOPICS = [
  'https://ex.com/b/1', 'https://ex.com/b/2', 'https://ex.com/b/3', 'https://ex.com/b/x/y',
  'https://ex.com/c/1', 'urn:t:a', 'urn:t:b',
];
const SELECTORS = {
  'https://ex.com/b/1': (t) => t === 'https://ex.com/b/1',
  'urn:t:a': (t) => t === 'urn:t:a',
  '*': () => true,
  'https://ex.com/b/{id}': (t) => /^https:\/\/ex\.com\/b\/[A-Za-z0-9\-._~%,]*$/.test(t),
  'https://ex.com/{+path}': (t) => t.startsWith('https://ex.com/'),
  'urn:t:{x}': (t) => /^urn:t:[A-Za-z0-9\-._~%,]*$/.test(t),
};
const SEL_NAMES = Object.keys(SELECTORS);

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}
const pick = (r, arr, max) => {
  const n = 1 + Math.floor(r() * max);
  const out = new Set();
  while (out.size < n) out.add(arr[Math.floor(r() * arr.length)]);
  return [...out];
};
const matchesAny = (sels, topics) => sels.some((s) => topics.some((t) => SELECTORS[s](t)));

test('private updates reach exactly the subscribers whose claims match, live and replayed', async () => {
  const seed = Number(process.env.COURANT_E2E_SEED || Date.now() % 100000);
  const r = rng(seed);
  const srv = await startCourant([...KEYS, '--anonymous', '--workers', '2']);
  // 24 subscribers with different selectors and claims (some anonymous).
  const subs = [];
  for (let i = 0; i < 24; i++) {
    const selectors = pick(r, SEL_NAMES, 3);
    const claims = i % 6 === 0 ? null : pick(r, SEL_NAMES.filter((s) => s !== '*' || i % 5 === 0), 2);
    subs.push({ selectors, claims });
  }
  const paramsOf = (s, extra = []) => new URLSearchParams([...s.selectors.map((t) => ['topic', t]), ...extra]);
  const headersOf = (s) => (s.claims ? bearer(subToken(s.claims)) : {});
  for (const s of subs) {
    s.live = await openStream(srv.base, paramsOf(s), headersOf(s));
    assert(s.live.status === 200, `subscriber ${JSON.stringify(s)}: ${s.live.status}`);
  }
  // 120 updates, a random mix of private and public, one to three topics.
  const updates = [];
  for (let k = 0; k < 120; k++) {
    const topics = pick(r, TOPICS, 3);
    const priv = r() < 0.5;
    const fields = topics.map((t) => ['topic', t]);
    fields.push(['data', `u${k}`], ['id', `u${k}`]);
    if (priv) fields.push(['private', 'on']);
    const res = await publish(srv.base, fields, { headers: bearer(pubToken()) });
    assert(res.status === 200, `publish ${k}: ${res.status} ${res.body}`);
    updates.push({ id: `u${k}`, topics, priv });
  }
  const expected = (s) =>
    updates.filter((u) => matchesAny(s.selectors, u.topics) && (!u.priv || (s.claims && matchesAny(s.claims, u.topics)))).map((u) => u.id);
  const describe = (s) => `selectors ${JSON.stringify(s.selectors)} claims ${JSON.stringify(s.claims)} (seed ${seed})`;
  for (const s of subs) {
    const want = expected(s);
    await waitFor(() => s.live.events.length >= want.length, { timeout: 10000, message: () => `live ${describe(s)}: ${s.live.events.length}/${want.length}` });
    await sleep(50);
    const got = s.live.events.map((e) => e.id);
    assert(JSON.stringify(got) === JSON.stringify(want), () => `live ${describe(s)}:\n got  ${got}\n want ${want}`);
    s.live.close();
  }
  // The same subscribers replaying all history.
  for (const s of subs) {
    const st = await openStream(srv.base, paramsOf(s, [['lastEventID', 'earliest']]), headersOf(s));
    const want = expected(s);
    await waitFor(() => st.events.length >= want.length, { timeout: 10000, message: () => `replay ${describe(s)}` });
    await sleep(50);
    const got = st.events.map((e) => e.id);
    st.close();
    assert(JSON.stringify(got) === JSON.stringify(want), () => `replay ${describe(s)}:\n got  ${got}\n want ${want}`);
  }
}, { timeout: 60000 });

test('without a subscriber key private updates reach nobody', async () => {
  const srv = await startCourant([]);
  const s = await openStream(srv.base, { topic: '*' });
  await publish(srv.base, [['topic', 'urn:p'], ['data', 'secret'], ['private', ''], ['id', 'p1']]);
  await publish(srv.base, [['topic', 'urn:p'], ['data', 'public'], ['id', 'p2']]);
  await waitFor(() => s.events.length >= 1);
  await sleep(200);
  assert(s.events.map((e) => e.id).join() === 'p2', `got ${s.events.map((e) => e.id)}`);
  s.close();
});

test('a stream ends when its token expires', async () => {
  const srv = await startCourant(KEYS);
  const t0 = Date.now();
  const s = await openStream(srv.base, { topic: 'urn:t' }, bearer(subToken(['*'], { exp: now() + 2 })));
  assert(s.status === 200, `status ${s.status}`);
  const long = await openStream(srv.base, { topic: 'urn:t' }, bearer(subToken(['*'])));
  await Promise.race([s.closed, sleep(6000)]);
  const dt = Date.now() - t0;
  assert(s.ended, 'the stream did not end within 6 s of a token expiring in 2 s');
  assert(dt >= 900, `ended too early: ${dt} ms`);
  assert(!long.ended, 'a stream with a long-lived token ended too');
  long.close();
});

// ---- URI templates -------------------------------------------------------------------

test('URI-template selectors (RFC 6570 levels 1-4), exact and *', async () => {
  const srv = await startCourant([]);
  const cases = [
    // [selector, topic, matches]
    ['https://ex.com/books/{id}', 'https://ex.com/books/1', true],
    ['https://ex.com/books/{id}', 'https://ex.com/books/', true],
    ['https://ex.com/books/{id}', 'https://ex.com/books/1/reviews', false],
    ['https://ex.com/books/{id}', 'https://ex.com/authors/1', false],
    ['https://ex.com/{+path}', 'https://ex.com/a/b/c?d=e', true],
    ['https://ex.com/{path}', 'https://ex.com/a/b', false],
    ['https://ex.com{/seg*}', 'https://ex.com/a/b/c', true],
    ['https://ex.com{/a,b}', 'https://ex.com/x/y', true],
    ['https://ex.com{/a,b}', 'https://ex.com/x/y/z', false],
    ['https://ex.com/s{?q,lang}', 'https://ex.com/s?q=cat&lang=fr', true],
    ['https://ex.com/s{?q,lang}', 'https://ex.com/s?lang=fr', true],
    ['https://ex.com/s{?q,lang}', 'https://ex.com/s?x=1', false],
    ['https://ex.com/s{?q}{&page}', 'https://ex.com/s?q=a&page=2', true],
    ['https://ex.com/m{;x,y}', 'https://ex.com/m;x=1;y', true],
    ['https://ex.com/f{#frag}', 'https://ex.com/f#a/b', true],
    ['https://ex.com/d{.fmt}', 'https://ex.com/d.json', true],
    ['https://ex.com/p/{id:3}', 'https://ex.com/p/abc', true],
    ['https://ex.com/p/{id:3}', 'https://ex.com/p/abcd', false],
    ['urn:list:{ids}', 'urn:list:1,2,3', true],
    ['https://ex.com/{bad', 'https://ex.com/{bad', true],
    ['https://ex.com/{bad', 'https://ex.com/x', false],
    ['*', 'anything:at-all', true],
    ['urn:exact', 'urn:exact', true],
    ['urn:exact', 'urn:exactly', false],
  ];
  const streams = [];
  for (const [sel] of cases) streams.push(await openStream(srv.base, { topic: sel }));
  const topics = [...new Set(cases.map((c) => c[1]))];
  for (const [k, t] of topics.entries()) {
    const r = await publish(srv.base, [['topic', t], ['id', `t${k}`], ['data', t]]);
    assert(r.status === 200, `publish ${t}: ${r.status} ${r.body}`);
  }
  await sleep(500);
  const failures = [];
  cases.forEach(([sel, topic, want], i) => {
    const got = streams[i].events.some((e) => e.data === topic);
    if (got !== want) failures.push(`${sel} vs ${topic}: got ${got}, want ${want}`);
  });
  streams.forEach((s) => s.close());
  assert(failures.length === 0, failures.join('\n'));
  // Templates in publish claims too.
  const pk = await startCourant(['--publisher-jwt-key', PUB_KEY]);
  const tok = pubToken(['https://ex.com/books/{id}']);
  const a = await publish(pk.base, [['topic', 'https://ex.com/books/7']], { headers: bearer(tok) });
  const b = await publish(pk.base, [['topic', 'https://ex.com/books/7/x']], { headers: bearer(tok) });
  assert(a.status === 200 && b.status === 403, `publish claim template: ${a.status}, ${b.status}`);
});

// ---- subscriptions ---------------------------------------------------------------------

test('--subscriptions: private subscription events on connect/disconnect, and the JSON-LD API', async () => {
  const srv = await startCourant([...KEYS, '--subscriptions']);
  const SUBS = '/.well-known/mercure/subscriptions';
  const watcherTok = subToken([`${SUBS}{/topic}{/subscriber}`]);
  const watcher = await openStream(srv.base, { topic: `${SUBS}{/topic}{/subscriber}` }, bearer(watcherTok));
  assert(watcher.status === 200, `watcher ${watcher.status}`);
  // A subscriber that may not see subscription events, on the same topic.
  const outsider = await openStream(srv.base, { topic: `${SUBS}{/topic}{/subscriber}` }, bearer(subToken(['https://ex.com/{x}'])));
  const T = 'https://ex.com/b/1';
  const bob = await openStream(srv.base, { topic: T }, bearer(subToken(['*'], { mercure: { subscribe: ['*'], payload: { user: 'bob' } } })));
  assert(bob.status === 200, `bob ${bob.status}`);
  const bobEvent = await waitFor(() => watcher.events.map((e) => JSON.parse(e.data)).find((d) => d.topic === T && d.active));
  assert(bobEvent.type === 'Subscription' && bobEvent['@context'] && bobEvent.payload?.user === 'bob' &&
    bobEvent.subscriber.startsWith('urn:uuid:') &&
    bobEvent.id === `${SUBS}/${encodeURIComponent(T)}/${encodeURIComponent(bobEvent.subscriber)}`,
    `subscription event ${JSON.stringify(bobEvent)}`);

  const get = async (p, tok = watcherTok) => {
    const r = await fetch(`${srv.base}${p}`, { headers: tok ? bearer(tok) : {} });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  };
  const all = await get(SUBS);
  assert(all.status === 200 && all.type === 'application/ld+json', `GET ${SUBS}: ${all.status} ${all.type}`);
  const doc = JSON.parse(all.body);
  assert(doc.type === 'Subscriptions' && doc.id === SUBS && doc.lastEventID && doc['@context'], `collection ${all.body}`);
  assert(doc.subscriptions.some((x) => x.subscriber === bobEvent.subscriber && x.topic === T), `bob not listed: ${all.body}`);
  const byTopic = JSON.parse((await get(`${SUBS}/${encodeURIComponent(T)}`)).body);
  assert(byTopic.subscriptions.length === 1 && byTopic.subscriptions[0].topic === T, `by topic: ${JSON.stringify(byTopic)}`);
  const one = await get(bobEvent.id);
  assert(one.status === 200 && JSON.parse(one.body).subscriber === bobEvent.subscriber && JSON.parse(one.body).lastEventID,
    `single: ${one.status} ${one.body}`);
  assert((await get(`${SUBS}/${encodeURIComponent(T)}/urn%3Auuid%3Anope`)).status === 404, 'unknown subscription not 404');
  assert((await get(SUBS, null)).status === 401, 'no token not 401');
  assert((await get(SUBS, subToken(['https://ex.com/{x}']))).status === 403, 'token without a matching claim not 403');

  bob.close();
  await waitFor(() => watcher.events.map((e) => JSON.parse(e.data)).find((d) => d.topic === T && d.active === false),
    { message: 'the inactive event' });
  assert(outsider.events.length === 0, `subscription events leaked: ${JSON.stringify(outsider.events)}`);
  const after = JSON.parse((await get(SUBS)).body);
  assert(!after.subscriptions.some((x) => x.subscriber === bobEvent.subscriber), 'bob still listed after closing');
  watcher.close();
  outsider.close();
});

// ---- CORS ----------------------------------------------------------------------------

test('CORS with credentials for listed origins; cookie publishing needs a --publish-origin', async () => {
  const APP = 'https://app.example';
  const srv = await startCourant([...KEYS, '--cors-origin', APP, '--publish-origin', APP]);
  const pre = await fetch(`${srv.base}${HUB}`, {
    method: 'OPTIONS',
    headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert(pre.status === 204, `preflight ${pre.status}`);
  assert(pre.headers.get('access-control-allow-origin') === APP, `allow-origin ${pre.headers.get('access-control-allow-origin')}`);
  assert(pre.headers.get('access-control-allow-credentials') === 'true', 'no allow-credentials on preflight');
  assert(/POST/.test(pre.headers.get('access-control-allow-methods') || ''), 'POST not allowed by preflight');
  assert(/authorization/i.test(pre.headers.get('access-control-allow-headers') || ''), 'Authorization not allowed');
  const evil = await fetch(`${srv.base}${HUB}`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
  assert(!evil.headers.get('access-control-allow-origin'), 'an unlisted origin got CORS headers');

  const cookie = { cookie: `mercureAuthorization=${pubToken()}` };
  const ok = await publish(srv.base, [['topic', 'urn:c']], { headers: { ...cookie, origin: APP } });
  assert(ok.status === 200, `cookie publish from ${APP}: ${ok.status} ${ok.body}`);
  assert(ok.headers.get('access-control-allow-origin') === APP && ok.headers.get('access-control-allow-credentials') === 'true',
    'publish answer lacks CORS credentials headers');
  const csrf = await publish(srv.base, [['topic', 'urn:c']], { headers: { ...cookie, origin: 'https://evil.example' } });
  assert(csrf.status === 403, `cookie publish from an unlisted origin: ${csrf.status}`);
  const noOrigin = await publish(srv.base, [['topic', 'urn:c']], { headers: cookie });
  assert(noOrigin.status === 403, `cookie publish with neither Origin nor Referer: ${noOrigin.status}`);
  const referer = await publish(srv.base, [['topic', 'urn:c']], { headers: { ...cookie, referer: `${APP}/page` } });
  assert(referer.status === 200, `cookie publish with a listed Referer: ${referer.status}`);

  const s = await openStream(srv.base, { topic: 'urn:c' }, { origin: APP, cookie: `mercureAuthorization=${subToken()}` });
  assert(s.status === 200, `cookie subscribe: ${s.status}`);
  assert(s.headers['access-control-allow-origin'] === APP && s.headers['access-control-allow-credentials'] === 'true',
    `stream lacks CORS credentials headers: ${JSON.stringify(s.headers)}`);
  s.close();
  const refused = await openStream(srv.base, { topic: 'urn:c' }, { origin: APP });
  assert(refused.status === 401 && refused.headers['access-control-allow-origin'] === APP,
    `a refusal carries CORS headers so the page can read it: ${refused.status} ${JSON.stringify(refused.headers)}`);
  refused.close();
});

await run();
