// mercure1.test.mjs - Mercure 1.0 (draft-dunglas-mercure-08) beside the
// classic protocol (draft-07) on one endpoint: subscribe parameters, publish
// rules, RFC 9068 access tokens and RFC 6750 errors, reconnection, the QUERY
// method, subscription events and the API in each dialect, discovery, and
// tokens of both dialects on the same running hub, live and replayed, with
// private updates never leaking across dialects.
//
//   node tests/e2e/mercure1.test.mjs
//
// Tokens are minted here with node's crypto, so the tests never depend on
// courant's own signing code.

import crypto from 'node:crypto';
import { assert, openEvents, run, sleep, startCourant, test, waitFor } from './lib.mjs';

const HUB = '/.well-known/mercure';
const PUB_KEY = 'publisher-secret-for-mercure1-tests-0123456789';
const SUB_KEY = 'subscriber-secret-for-mercure1-tests-9876543210';
const ISS = 'https://app.example';
const RES = 'https://hub.example/.well-known/mercure';
const META = 'https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure';
const DETAIL = 'https://mercure.rocks/authorization-detail';
const now = () => Math.floor(Date.now() / 1000);
const b64u = (b) => Buffer.from(b).toString('base64url');

// ---- tokens ------------------------------------------------------------------------

function sign(header, claims, key) {
  const data = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${data}.${crypto.createHmac('sha256', key).update(data).digest('base64url')}`;
}

/** A Mercure 1.0 access token; `over` replaces or (undefined) removes claims. */
function v1Token(details, opts = {}) {
  const { key = PUB_KEY, typ: _typ, ...over } = opts;
  const typ = 'typ' in opts ? opts.typ : 'at+jwt'; // { typ: undefined } leaves it out
  const claims = { iss: ISS, aud: RES, sub: 'u1', client_id: 'tests', iat: now(), exp: now() + 600, jti: 'j', authorization_details: details, ...over };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return sign({ alg: 'HS256', typ }, claims, key);
}
const detail = (actions, topics, payload) => ({ type: DETAIL, actions, topics, ...(payload ? { payload } : {}) });
const exact = (m) => ({ match: m });
const pattern = (m) => ({ match: m, match_type: 'urlpattern' });
const v1Pub = (topics = [exact('*')]) => v1Token([detail(['publish'], topics)]);
const v1Sub = (topics = [exact('*')], payload) => v1Token([detail(['subscribe'], topics, payload)], { key: SUB_KEY });
const classicPub = (publish = ['*']) => sign({ alg: 'HS256', typ: 'JWT' }, { exp: now() + 600, mercure: { publish } }, PUB_KEY);
const classicSub = (subscribe = ['*'], payload) =>
  sign({ alg: 'HS256', typ: 'JWT' }, { exp: now() + 600, mercure: { subscribe, ...(payload ? { payload } : {}) } }, SUB_KEY);
const bearer = (t) => ({ authorization: `Bearer ${t}` });

// ---- HTTP ---------------------------------------------------------------------------

async function publish(base, fields, headers = {}) {
  const res = await fetch(`${base}${HUB}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

async function get(base, path, headers = {}) {
  const res = await fetch(`${base}${path}`, { headers });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

/** Opens a stream (query string `qs`); resolves once the head is in. Events: {id, type, data}. */
function openStream(base, qs, headers = {}, { method = 'GET', body } = {}) {
  return openEvents(`${base}${HUB}?${qs}`, { method, headers, body, agent: false });
}

const qs = (pairs) => new URLSearchParams(pairs).toString();

async function status(base, q, headers = {}) {
  const s = await openStream(base, q, headers);
  s.close();
  return s;
}

const challenge = (h) => (typeof h.get === 'function' ? h.get('www-authenticate') : h['www-authenticate']) || '';

const ARGS = ['--publisher-jwt-key', PUB_KEY, '--subscriber-jwt-key', SUB_KEY, '--jwt-issuer', ISS, '--resource-identifier', RES];

// ---- discovery -------------------------------------------------------------------------

test('discovery: protected resource metadata, and every challenge points at it', async () => {
  const srv = await startCourant([...ARGS, '--subscriptions']);
  const m = await get(srv.base, '/.well-known/oauth-protected-resource/.well-known/mercure');
  assert(m.status === 200 && /application\/json/.test(m.headers.get('content-type')), `metadata: ${m.status}`);
  const doc = JSON.parse(m.body);
  assert(doc.resource === RES, `resource: ${doc.resource}`);
  assert(JSON.stringify(doc.authorization_details_types_supported) === JSON.stringify([DETAIL]), m.body);
  assert(JSON.stringify(doc.bearer_methods_supported) === '["header"]', m.body);
  assert(doc.mercure_cookie === '__Secure-mercure_access_token', m.body);
  assert(JSON.stringify(doc.mercure_matcher_types_supported) === '["exact","urlpattern"]', m.body);
  assert(doc.mercure_subscriptions === true, m.body);
  assert(!('authorization_servers' in doc), 'no authorization server without --jwks-url');
  assert(m.headers.get('access-control-allow-origin'), 'the metadata is readable cross-origin');
  // No token: a bare challenge (no error code) with resource_metadata.
  const s = await status(srv.base, qs({ match: 'urn:a' }));
  assert(s.status === 401, `no token: ${s.status}`);
  const c = challenge(s.headers);
  assert(/^Bearer /.test(c) && c.includes(`resource_metadata="${META}"`) && !/error=/.test(c), `challenge: ${c}`);
  // Without the subscriptions feature the member is absent.
  const plain = await startCourant(ARGS);
  const d2 = JSON.parse((await get(plain.base, '/.well-known/oauth-protected-resource/.well-known/mercure')).body);
  assert(!('mercure_subscriptions' in d2), 'mercure_subscriptions without --subscriptions');
});

test('the default resource identifier is the listen URL', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY, '--jwt-issuer', ISS]);
  const doc = JSON.parse((await get(srv.base, '/.well-known/oauth-protected-resource/.well-known/mercure')).body);
  assert(doc.resource === `${srv.base}${HUB}`, `resource: ${doc.resource}, base ${srv.base}`);
  const tok = v1Token([detail(['publish'], [exact('*')])], { aud: doc.resource });
  assert((await publish(srv.base, [['topic', 'urn:a']], bearer(tok))).status === 200, 'aud = the listen URL');
  assert((await publish(srv.base, [['topic', 'urn:a']], bearer(v1Pub()))).status === 401, 'another aud');
});

// ---- subscribe parameters --------------------------------------------------------------

test('subscribe parameters: match, match_exact, match_urlpattern, the reserved match namespace', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY, '--jwt-issuer', ISS, '--resource-identifier', RES,
    '--max-urlpatterns-per-subscriber', '2', '--max-topics-per-subscribe', '8']);
  const bad = [
    ['unknown matcher type', qs({ match_regex: 'x' })],
    ['reserved namespace, other case', qs({ Match: 'x' })],
    ['a name starting with match', qs({ matches: 'x' })],
    ['non-canonical suffix', qs({ match_URLPattern: 'x' })],
    ['topic and match together', qs({ match: 'a', topic: 'b' })],
    ['empty matcher', 'match='],
    ['a control character', qs({ match: 'a\u0001b' })],
    ['a C1 control', qs({ match: 'a\u0085b' })],
    ['a format character (bidi)', qs({ match: 'a\u202eb' })],
    ['invalid UTF-8', 'match=%FF'],
    ['too long', qs({ match: 'x'.repeat(2049) })],
    ['invalid URL pattern', qs({ match_urlpattern: 'https://ex.com/(' })],
    ['too many URL patterns', qs([['match_urlpattern', '/a/:x'], ['match_urlpattern', '/b/:x'], ['match_urlpattern', '/c/:x']])],
    ['too many selectors', Array.from({ length: 9 }, (_, i) => `match=m${i}`).join('&')],
    ['no selector at all', ''],
  ];
  for (const [name, q] of bad) {
    const s = await status(srv.base, q);
    assert(s.status === 400, `${name}: got ${s.status}`);
  }
  const ok = await status(srv.base, qs([['match', 'a'], ['match_exact', 'b'], ['match_urlpattern', '/c/:x'], ['foo', 'ignored'], ['last_event_id', '']]));
  assert(ok.status === 200, `valid: ${ok.status}`);
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    const r = await fetch(`${srv.base}${HUB}?match=a`, { method });
    assert(r.status === 405 && /QUERY/.test(r.headers.get('allow')), `${method}: ${r.status} ${r.headers.get('allow')}`);
  }
});

test('matching: exact is byte for byte and never resolved; URL patterns resolve against the hub URL; * matches all', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY, '--jwt-issuer', ISS, '--resource-identifier', RES]);
  const subs = {
    exact: await openStream(srv.base, qs({ match: 'https://ex.com/books/{id}' })),
    relExact: await openStream(srv.base, qs({ match: '/books/1' })),
    absPattern: await openStream(srv.base, qs({ match_urlpattern: 'https://ex.com/books/:id' })),
    relPattern: await openStream(srv.base, qs({ match_urlpattern: '/books/:id' })),
    optional: await openStream(srv.base, qs({ match_urlpattern: 'https://ex.com/shelf/:id?' })),
    caseHost: await openStream(srv.base, qs({ match_urlpattern: 'https://EX.com/books/:id' })),
    wildcard: await openStream(srv.base, qs({ match_urlpattern: '*' })),
  };
  const topics = ['https://ex.com/books/{id}', 'https://ex.com/books/1', '/books/1', 'https://hub.example/books/2',
    'https://ex.com/Books/3', 'https://ex.com/shelf', 'https://ex.com/shelf/4', 'urn:not-a-book'];
  for (const t of topics) assert((await publish(srv.base, [['topic', t], ['data', t]], bearer(v1Pub()))).status === 200, `publish ${t}`);
  await waitFor(() => subs.wildcard.events.length === topics.length, { message: () => `wildcard got ${subs.wildcard.events.length}` });
  await sleep(200);
  const got = Object.fromEntries(Object.entries(subs).map(([k, s]) => [k, s.events.map((e) => e.data)]));
  const want = {
    exact: ['https://ex.com/books/{id}'],
    relExact: ['/books/1'],
    absPattern: ['https://ex.com/books/{id}', 'https://ex.com/books/1'], /* "{id}" is one path segment */
    relPattern: ['/books/1', 'https://hub.example/books/2'],
    optional: ['https://ex.com/shelf', 'https://ex.com/shelf/4'],
    caseHost: ['https://ex.com/books/{id}', 'https://ex.com/books/1'],
    wildcard: topics,
  };
  for (const k of Object.keys(want)) assert(JSON.stringify(got[k]) === JSON.stringify(want[k]), `${k}: ${JSON.stringify(got[k])}`);
  for (const s of Object.values(subs)) s.close();
});

// ---- publish rules ----------------------------------------------------------------------

test('publish with a 1.0 token: the draft-08 form rules, 200 text/plain with the id', async () => {
  const srv = await startCourant(ARGS);
  const h = bearer(v1Pub());
  const ok = await publish(srv.base, [['topic', 'https://ex.com/1'], ['id', 'my-id'], ['type', 'x'], ['retry', '100'], ['unknown', 'ignored']], h);
  assert(ok.status === 200 && ok.body === 'my-id', `ok: ${ok.status} ${ok.body}`);
  assert(ok.headers.get('content-type') === 'text/plain; charset=utf-8', ok.headers.get('content-type'));
  const gen = await publish(srv.base, [['topic', 'https://ex.com/1']], h);
  assert(gen.status === 200 && /^urn:uuid:[0-9a-f-]{36}$/.test(gen.body), `generated id: ${gen.body}`);
  const cases = [
    ['no topic', [['data', 'x']], 400],
    ['topic *', [['topic', '*']], 400],
    ['reserved: relative', [['topic', '/.well-known/mercure/subscriptions/exact/a/b']], 400],
    ['reserved: the hub path itself', [['topic', '/.well-known/mercure']], 400],
    ['reserved: absolute, the hub host', [['topic', 'https://hub.example/.well-known/mercure/x']], 400],
    ['reserved: any scheme or authority', [['topic', 'https://other.example/.well-known/mercure/x']], 400],
    ['reserved: percent-encoded', [['topic', '/.well-known/%6Dercure/subscriptions']], 400],
    ['reserved: dot segments', [['topic', '/.well-known/x/../mercure/subscriptions']], 400],
    ['reserved: %2e%2e segments', [['topic', '/.well-known/x/%2e%2e/mercure']], 400],
    ['type mercure', [['topic', 'a'], ['type', 'mercure']], 400],
    ['id #', [['topic', 'a'], ['id', '#1']], 400],
    ['id earliest', [['topic', 'a'], ['id', 'earliest']], 400],
    ['control in topic', [['topic', 'a\nb']], 400],
    ['C1 in id', [['topic', 'a'], ['id', 'a\u0085']], 400],
    ['format character in type', [['topic', 'a'], ['type', 'a\u200bb']], 400],
    ['retry not digits', [['topic', 'a'], ['retry', '1s']], 400],
    ['too many topics', Array.from({ length: 65 }, (_, i) => ['topic', `t${i}`]), 413],
    ['id too long', [['topic', 'a'], ['id', 'x'.repeat(1025)]], 413],
  ];
  for (const [name, fields, want] of cases) {
    const r = await publish(srv.base, fields, h);
    assert(r.status === want, `${name}: got ${r.status} (${r.body.trim()}), want ${want}`);
  }
  // Not reserved: a look-alike path, a non-URL topic.
  for (const t of ['/.well-known/mercurex', '/x/.well-known/mercure', 'urn:.well-known:mercure'])
    assert((await publish(srv.base, [['topic', t]], h)).status === 200, `${t} is not reserved`);
});

test('publish with a draft-07 token keeps its rules; type=mercure is refused in both dialects', async () => {
  const srv = await startCourant(ARGS);
  const h = bearer(classicPub());
  assert((await publish(srv.base, [['topic', '*']], h)).status === 200, 'draft-07 allows the topic *');
  assert((await publish(srv.base, [['topic', 'https://x/y/.well-known/mercure/z']], h)).status === 403, 'draft-07: 403 for the namespace');
  assert((await publish(srv.base, [['topic', '/.well-known/x/../mercure/s']], h)).status === 403, 'resolved namespace, draft-07');
  assert((await publish(srv.base, [['topic', 'a'], ['type', 'mercure']], h)).status === 400, 'type mercure, draft-07');
  const many = await publish(srv.base, Array.from({ length: 65 }, (_, i) => ['topic', `t${i}`]), h);
  assert(many.status === 400, `too many topics, draft-07: ${many.status}`);
});

// ---- tokens and RFC 6750 -----------------------------------------------------------------

test('access tokens: typ, iss, aud, exp required; one bad detail invalidates; RFC 6750 answers', async () => {
  const srv = await startCourant(ARGS);
  const topic = 'https://ex.com/books/1';
  const pubDetails = [detail(['publish'], [exact('*')])];
  const subDetails = [detail(['subscribe'], [exact('*')])];
  // Each case as a function of the key and the details, to try it on both roles.
  const invalid = [
    ['typ JWT', (key, d) => v1Token(d, { key, typ: 'JWT' }), 'subscribe'],
    ['no typ', (key, d) => v1Token(d, { key, typ: undefined }), 'subscribe'],
    ['no iss', (key, d) => v1Token(d, { key, iss: undefined })],
    ['another iss', (key, d) => v1Token(d, { key, iss: 'https://evil.example' })],
    ['no aud', (key, d) => v1Token(d, { key, aud: undefined })],
    ['another aud', (key, d) => v1Token(d, { key, aud: 'https://other-hub.example/.well-known/mercure' })],
    ['no exp', (key, d) => v1Token(d, { key, exp: undefined })],
    ['expired', (key, d) => v1Token(d, { key, exp: now() - 5 })],
    ['nbf in the future', (key, d) => v1Token(d, { key, nbf: now() + 600 })],
    ['signed with another key', (key, d) => v1Token(d, { key: 'another-secret-another-secret-another-secret' })],
    ['unknown match_type', (key) => v1Token([detail(['publish', 'subscribe'], [{ match: '*', match_type: 'regex' }])], { key })],
    ['one bad detail among good ones', (key, d) => v1Token([...d, detail(['publish'], [])], { key })],
    ['a non-string action', (key) => v1Token([detail(['publish', 'subscribe', 3], [exact('*')])], { key })],
    ['an invalid URL pattern', (key) => v1Token([detail(['publish', 'subscribe'], [pattern('https://ex.com/(')])], { key })],
    ['authorization_details not an array', (key) => v1Token({}, { key })],
    ['a draft-07 token', (key) => sign({ alg: 'HS256' }, { mercure: { publish: ['*'], subscribe: ['*'] } }, key), 'subscribe'],
    ['garbage', () => 'not-a-token', 'subscribe'], // on a publish: a draft-07 token (401, no error code)
  ];
  for (const [name, mk, only] of invalid) {
    if (only !== 'subscribe') {
      const r = await publish(srv.base, [['topic', topic]], bearer(mk(PUB_KEY, pubDetails)));
      assert(r.status === 401 && /error="invalid_token"/.test(challenge(r.headers)), `publish, ${name}: ${r.status} ${challenge(r.headers)}`);
    }
    const s = await status(srv.base, qs({ match: topic }), bearer(mk(SUB_KEY, subDetails)));
    assert(s.status === 401 && /error="invalid_token"/.test(challenge(s.headers)), `subscribe, ${name}: ${s.status} ${challenge(s.headers)}`);
  }
  // On a publish, the token's typ picks the dialect: a typ JWT token is a
  // draft-07 one (no mercure claim: 403).
  assert((await publish(srv.base, [['topic', topic]], bearer(v1Token(pubDetails, { typ: 'JWT' })))).status === 403, 'typ JWT publish');
  // aud as an array, sub/iat/jti/client_id optional, unknown actions and other APIs' details ignored.
  const fine = [
    ['aud array', v1Token(pubDetails, { aud: ['https://x.example', RES] })],
    ['minimal claims', v1Token(pubDetails, { sub: undefined, iat: undefined, jti: undefined, client_id: undefined })],
    ['unknown action', v1Token([detail(['publish', 'future-action'], [exact('*')])])],
    ['another API detail', v1Token([...pubDetails, { type: 'https://other.example/detail', anything: 1 }])],
    ['application/at+jwt', v1Token(pubDetails, { typ: 'application/AT+JWT' })],
  ];
  for (const [name, tok] of fine) {
    const r = await publish(srv.base, [['topic', topic]], bearer(tok));
    assert(r.status === 200, `${name}: ${r.status} ${r.body}`);
  }
  const scope = [
    ['a subscribe-only token', v1Token([detail(['subscribe'], [exact('*')])])],
    ['no Mercure detail', v1Token([])],
    ['a topic outside the grant', v1Pub([exact('https://ex.com/books/2')])],
    ['only an unknown action', v1Token([detail(['future-action'], [exact('*')])])],
  ];
  for (const [name, tok] of scope) {
    const r = await publish(srv.base, [['topic', topic]], bearer(tok));
    assert(r.status === 403 && /error="insufficient_scope"/.test(challenge(r.headers)), `${name}: ${r.status} ${challenge(r.headers)}`);
  }
  // Every topic, alternates included, must be granted.
  const alt = await publish(srv.base, [['topic', topic], ['topic', 'https://ex.com/other']], bearer(v1Pub([pattern('https://ex.com/books/:id')])));
  assert(alt.status === 403, `an alternate topic outside the grant: ${alt.status}`);
  // Presentation errors: 400 invalid_request.
  const basic = await publish(srv.base, [['topic', topic]], { authorization: 'Basic dXNlcjpwYXNz', cookie: '' });
  assert(basic.status === 401, `not Bearer (publish, dialect unknown): ${basic.status}`);
  const sBasic = await status(srv.base, qs({ match: topic }), { authorization: 'Basic dXNlcjpwYXNz' });
  assert(sBasic.status === 400 && /error="invalid_request"/.test(challenge(sBasic.headers)), `subscribe, Basic: ${sBasic.status}`);
  for (const p of ['authorization', 'access_token']) {
    const q = await status(srv.base, qs([['match', topic], [p, v1Sub()]]));
    assert(q.status === 400 && /error="invalid_request"/.test(challenge(q.headers)), `token in the query (${p}): ${q.status}`);
  }
  // The subscriber side: a bad token is invalid_token, no token without --anonymous is a bare challenge.
  const bad = await status(srv.base, qs({ match: topic }), bearer(v1Sub([]).slice(0, -3) + 'abc'));
  assert(bad.status === 401 && /error="invalid_token"/.test(challenge(bad.headers)), `subscriber: bad signature: ${bad.status}`);
  const none = await status(srv.base, qs({ match: topic }));
  assert(none.status === 401 && !/error=/.test(challenge(none.headers)), `subscriber: no token: ${none.status} ${challenge(none.headers)}`);
  // A 1.0 token on a draft-07 request is refused, the draft-07 way (no error code).
  const mixed = await status(srv.base, qs({ topic }), bearer(v1Sub()));
  assert(mixed.status === 401 && !/error=/.test(challenge(mixed.headers)), `1.0 token, topic=: ${mixed.status}`);
  // Reasons are logged, tokens never.
  assert(!srv.stderrLines.some((l) => l.includes('eyJ')), 'a token reached the log');
});

test('keys are bound to their issuer: no --jwt-issuer, no 1.0 token; draft-07 tokens keep working', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY, '--resource-identifier', RES]);
  const r = await publish(srv.base, [['topic', 'a']], bearer(v1Pub()));
  assert(r.status === 401 && /invalid_token/.test(challenge(r.headers)), `unbound key: ${r.status}`);
  assert((await publish(srv.base, [['topic', 'a']], bearer(classicPub()))).status === 200, 'draft-07 token');
});

test('token sources: header beats the cookie; each dialect reads its own cookie; no token in the URL for 1.0', async () => {
  const srv = await startCourant([...ARGS, '--anonymous']);
  const t = 'https://ex.com/private/1';
  const good = v1Sub([exact(t)]);
  const cookieV1 = `__Secure-mercure_access_token=${good}`;
  const streams = {
    cookie: await openStream(srv.base, qs({ match: t }), { cookie: cookieV1 }),
    headerWins: await openStream(srv.base, qs({ match: t }), { ...bearer(v1Sub([exact('urn:other')])), cookie: cookieV1 }),
    classicCookie: await openStream(srv.base, qs({ match: t }), { cookie: `mercureAuthorization=${classicSub([t])}` }),
    classicReadsOwn: await openStream(srv.base, qs({ topic: t }), { cookie: `${cookieV1}; mercureAuthorization=${classicSub([t])}` }),
  };
  for (const [k, s] of Object.entries(streams)) assert(s.status === 200, `${k}: ${s.status}`);
  assert((await publish(srv.base, [['topic', t], ['private', 'on'], ['data', 'p']], bearer(v1Pub()))).status === 200, 'publish');
  await waitFor(() => streams.cookie.events.length === 1 && streams.classicReadsOwn.events.length === 1,
    { message: () => `cookie ${streams.cookie.events.length}, classic ${streams.classicReadsOwn.events.length}` });
  await sleep(200);
  assert(streams.headerWins.events.length === 0, 'the header token (other topic) won over the cookie');
  assert(streams.classicCookie.events.length === 0, 'a 1.0 request does not read the draft-07 cookie');
  for (const s of Object.values(streams)) s.close();
  // A cookie-authorized 1.0 publish needs an Origin in --publish-origin (CSRF).
  const c = await publish(srv.base, [['topic', 'a']], { cookie: `__Secure-mercure_access_token=${v1Pub()}` });
  assert(c.status === 403, `cookie publish without --publish-origin: ${c.status}`);
});

// ---- reconnection -------------------------------------------------------------------------

test('reconnection: last_event_id, Last-Event-ID wins, Mercure-Last-Event-ID, earliest', async () => {
  const srv = await startCourant([...ARGS, '--anonymous', '--cors-origin', 'https://app.example']);
  const h = bearer(v1Pub());
  const ids = [];
  for (let i = 0; i < 4; i++) ids.push((await publish(srv.base, [['topic', 'urn:r'], ['data', `d${i}`]], h)).body);
  const none = await status(srv.base, qs({ match: 'urn:r' }));
  assert(!('mercure-last-event-id' in none.headers) && !('last-event-id' in none.headers), 'no cursor without a last event id');
  const q = await openStream(srv.base, qs({ match: 'urn:r', last_event_id: ids[1] }));
  await waitFor(() => q.events.length === 2, { message: () => `replayed ${q.events.length}` });
  assert(q.headers['mercure-last-event-id'] === ids[1], `Mercure-Last-Event-ID: ${q.headers['mercure-last-event-id']}`);
  assert(!('last-event-id' in q.headers), 'a 1.0 answer has no Last-Event-ID field');
  assert(q.events.map((e) => e.data).join() === 'd2,d3', q.events.map((e) => e.data).join());
  q.close();
  const hdr = await openStream(srv.base, qs({ match: 'urn:r', last_event_id: ids[0] }), { 'last-event-id': ids[2] });
  await waitFor(() => hdr.events.length === 1, { message: () => `header wins: ${hdr.events.length}` });
  assert(hdr.headers['mercure-last-event-id'] === ids[2] && hdr.events[0].data === 'd3', 'the header wins');
  hdr.close();
  const unknown = await status(srv.base, qs({ match: 'urn:r', last_event_id: 'no-such-id' }));
  assert(unknown.headers['mercure-last-event-id'] === 'earliest', `unknown id: ${unknown.headers['mercure-last-event-id']}`);
  const all = await openStream(srv.base, qs({ match: 'urn:r', last_event_id: 'earliest' }));
  await waitFor(() => all.events.length === 4, { message: () => `earliest: ${all.events.length}` });
  assert(all.headers['mercure-last-event-id'] === 'earliest', 'earliest');
  all.close();
  // draft-07 keeps its names.
  const c = await status(srv.base, qs({ topic: 'urn:r', lastEventID: ids[1] }));
  assert(c.headers['last-event-id'] === ids[1] && !('mercure-last-event-id' in c.headers), 'draft-07: Last-Event-ID');
  const ignored = await status(srv.base, qs({ topic: 'urn:r', last_event_id: ids[1] }));
  assert(!('last-event-id' in ignored.headers), 'draft-07 ignores last_event_id');
  // CORS exposes the field to cross-origin readers.
  const cors = await status(srv.base, qs({ match: 'urn:r', last_event_id: ids[0] }), { origin: 'https://app.example' });
  assert(/Mercure-Last-Event-ID/.test(cors.headers['access-control-expose-headers']), cors.headers['access-control-expose-headers']);
});

test('QUERY subscribe: matchers in a form body, unioned with the query', async () => {
  const srv = await startCourant([...ARGS, '--anonymous']);
  const h = bearer(v1Pub());
  const first = (await publish(srv.base, [['topic', 'urn:q1'], ['data', 'old']], h)).body;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const s = await openStream(srv.base, qs({ match: 'urn:q1', last_event_id: 'earliest' }), form,
    { method: 'QUERY', body: qs([['match', 'urn:q2'], ['last_event_id', first]]) });
  assert(s.status === 200, `QUERY: ${s.status}`);
  assert(s.headers['mercure-last-event-id'] === 'earliest', 'the query\'s last_event_id wins over the body\'s');
  await publish(srv.base, [['topic', 'urn:q1'], ['data', 'a']], h);
  await publish(srv.base, [['topic', 'urn:q2'], ['data', 'b']], h);
  await waitFor(() => s.events.length === 3, { message: () => `QUERY events: ${s.events.length}` });
  assert(s.events.map((e) => e.data).join() === 'old,a,b', s.events.map((e) => e.data).join());
  s.close();
  const bad = await openStream(srv.base, '', { 'content-type': 'application/json' }, { method: 'QUERY', body: '{}' });
  assert(bad.status === 415, `QUERY with JSON: ${bad.status}`);
  const topic = await openStream(srv.base, '', form, { method: 'QUERY', body: 'topic=a' });
  assert(topic.status === 400, `QUERY with a draft-07 topic: ${topic.status}`);
});

// ---- both dialects on one hub ------------------------------------------------------------

test('both dialects on one hub: live and replayed, private updates never cross dialects', async () => {
  const srv = await startCourant([...ARGS, '--anonymous', '--workers', '2']);
  const A = 'https://ex.com/a/1', B = 'https://ex.com/b/1', P = 'https://ex.com/public/1';
  const mk = async (lei) => ({
    classicA: await openStream(srv.base, qs([['topic', 'https://ex.com/{x}/1'], ...(lei ? [['lastEventID', lei]] : [])]), bearer(classicSub(['https://ex.com/a/{id}']))),
    v1B: await openStream(srv.base, qs([['match_urlpattern', 'https://ex.com/:x/1'], ...(lei ? [['last_event_id', lei]] : [])]), bearer(v1Sub([pattern('https://ex.com/b/:id')]))),
    classicAnon: await openStream(srv.base, qs([['topic', '*'], ...(lei ? [['lastEventID', lei]] : [])])),
    v1Anon: await openStream(srv.base, qs([['match', '*'], ...(lei ? [['last_event_id', lei]] : [])])),
    v1Other: await openStream(srv.base, qs([['match', '*'], ...(lei ? [['last_event_id', lei]] : [])]), bearer(v1Sub([exact('urn:nothing')]))),
  });
  const live = await mk(null);
  const start = (await publish(srv.base, [['topic', 'urn:start']], bearer(v1Pub()))).body;
  const sent = [
    ['v1 pub, private A', [['topic', A], ['private', 'on'], ['data', 'v1-A']], bearer(v1Pub())],
    ['classic pub, private B', [['topic', B], ['private', 'on'], ['data', 'c-B']], bearer(classicPub())],
    ['classic pub, private A', [['topic', A], ['private', 'on'], ['data', 'c-A']], bearer(classicPub())],
    ['v1 pub, private B', [['topic', B], ['private', 'on'], ['data', 'v1-B']], bearer(v1Pub())],
    ['v1 pub, public', [['topic', P], ['data', 'v1-P']], bearer(v1Pub())],
    ['classic pub, public', [['topic', P], ['data', 'c-P']], bearer(classicPub())],
    // Alternate topics: private A with an alternate in B reaches both audiences.
    ['v1 pub, private A+B', [['topic', A], ['topic', B], ['private', 'on'], ['data', 'v1-AB']], bearer(v1Pub())],
  ];
  for (const [name, fields, h] of sent) assert((await publish(srv.base, fields, h)).status === 200, name);
  const want = {
    classicA: ['v1-A', 'c-A', 'v1-P', 'c-P', 'v1-AB'],
    v1B: ['c-B', 'v1-B', 'v1-P', 'c-P', 'v1-AB'],
    classicAnon: ['v1-P', 'c-P'],
    v1Anon: ['v1-P', 'c-P'],
    v1Other: ['v1-P', 'c-P'],
  };
  const data = (s) => s.events.filter((e) => e.data !== '').map((e) => e.data);
  await waitFor(() => data(live.classicA).length === 5 && data(live.v1B).length === 5, { message: () => `live: ${data(live.classicA)} / ${data(live.v1B)}` });
  await sleep(300);
  for (const k of Object.keys(want)) assert(JSON.stringify(data(live[k])) === JSON.stringify(want[k]), `live ${k}: ${JSON.stringify(data(live[k]))}`);
  for (const s of Object.values(live)) s.close();
  // Replayed from history: the same filter, evaluated against each subscriber's own token.
  const replay = await mk(start);
  await waitFor(() => data(replay.classicA).length === 5 && data(replay.v1B).length === 5, { message: () => `replay: ${data(replay.classicA)} / ${data(replay.v1B)}` });
  await sleep(300);
  for (const k of Object.keys(want)) assert(JSON.stringify(data(replay[k])) === JSON.stringify(want[k]), `replayed ${k}: ${JSON.stringify(data(replay[k]))}`);
  for (const s of Object.values(replay)) s.close();
});

test('a 1.0 stream ends when its token expires', async () => {
  const srv = await startCourant(ARGS);
  const s = await openStream(srv.base, qs({ match: 'urn:t' }), bearer(v1Token([detail(['subscribe'], [exact('*')])], { key: SUB_KEY, exp: now() + 2 })));
  assert(s.status === 200, `open: ${s.status}`);
  await waitFor(() => s.ended, { timeout: 5000, message: 'the stream to end at exp' });
});

// ---- subscription events and the API -------------------------------------------------------

test('subscription events and the API, in each subscriber\'s dialect', async () => {
  const srv = await startCourant([...ARGS, '--subscriptions']);
  const watcherTok = v1Sub([pattern('/.well-known/mercure/subscriptions{/*}?')]);
  const watcher = await openStream(srv.base, qs({ match_urlpattern: '/.well-known/mercure/subscriptions/:type/:match/:sub' }), bearer(watcherTok));
  const classicWatcher = await openStream(srv.base, qs({ topic: '/.well-known/mercure/subscriptions/{topic}/{subscriber}' }),
    bearer(classicSub(['/.well-known/mercure/subscriptions/{topic}/{subscriber}'])));
  // Payloads: the first subscribe detail matching the subscription's own matcher.
  const subTok = v1Token([
    detail(['subscribe'], [exact('https://ex.com/foo')], { custom1: 'foo' }),
    detail(['subscribe'], [pattern('https://ex.com/bar/:id')], { custom2: 'bar' }),
    detail(['subscribe'], [exact('*')], { custom3: 'default' }),
  ], { key: SUB_KEY });
  const s = await openStream(srv.base, qs([['match', 'https://ex.com/foo'], ['match_urlpattern', 'https://ex.com/bar/:id'], ['match', 'urn:x']]), bearer(subTok));
  const c = await openStream(srv.base, qs({ topic: 'https://ex.com/c/{id}' }), bearer(classicSub(['*'], { user: 'c' })));
  await waitFor(() => watcher.events.length >= 4, { message: () => `v1 watcher: ${watcher.events.length}` });
  const evs = watcher.events.map((e) => ({ type: e.type, doc: JSON.parse(e.data) }));
  const mine = evs.filter((e) => e.doc.match !== '/.well-known/mercure/subscriptions/:type/:match/:sub');
  assert(mine.length === 3, `v1 events for the 3 matchers: ${JSON.stringify(evs)}`);
  for (const e of mine) {
    assert(e.type === 'mercure', `event type: ${e.type}`);
    const d = e.doc;
    assert(d.type === 'subscription' && d.active === true && /^urn:uuid:/.test(d.subscriber), JSON.stringify(d));
    const enc = (x) => encodeURIComponent(x).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
    assert(d.id === `/.well-known/mercure/subscriptions/${d.match_type}/${enc(d.match)}/${enc(d.subscriber)}`, `id: ${d.id}`);
  }
  const by = Object.fromEntries(mine.map((e) => [e.doc.match, e.doc]));
  assert(by['https://ex.com/foo'].match_type === 'exact' && by['https://ex.com/foo'].payload.custom1 === 'foo', JSON.stringify(by['https://ex.com/foo']));
  assert(by['https://ex.com/bar/:id'].match_type === 'urlpattern' && by['https://ex.com/bar/:id'].payload.custom2 === 'bar', 'urlpattern payload');
  assert(by['urn:x'].payload.custom3 === 'default', 'the * detail is the default');
  // The draft-07 subscriber's events are draft-07 documents, seen by the draft-07 watcher only.
  await waitFor(() => classicWatcher.events.some((e) => JSON.parse(e.data).topic === 'https://ex.com/c/{id}'), { message: 'draft-07 event' });
  const ce = classicWatcher.events.map((e) => JSON.parse(e.data)).find((d) => d.topic === 'https://ex.com/c/{id}');
  assert(ce.type === 'Subscription' && ce['@context'] && ce.payload.user === 'c', JSON.stringify(ce));
  assert(classicWatcher.events.every((e) => e.type === 'message'), 'draft-07 events have no type');
  assert(!watcher.events.some((e) => JSON.parse(e.data).topic), 'the 1.0 watcher got no draft-07 document');
  // The API, 1.0: collection, per matcher, single, 404; Link with last-event-id; JSON.
  const api = async (path, tok = watcherTok) => get(srv.base, `/.well-known/mercure/subscriptions${path}`, bearer(tok));
  const col = await api('');
  assert(col.status === 200 && col.headers.get('content-type') === 'application/json', `collection: ${col.status} ${col.headers.get('content-type')}`);
  const link = col.headers.get('link') || '';
  const lastId = (watcher.events.at(-1) || {}).id;
  assert(link.includes(`<${RES}>`) && /rel="mercure"/.test(link) && /type="mercure"/.test(link) && /content-type="application\/json"/.test(link), link);
  assert(/last-event-id="[^"]+"/.test(link), `last-event-id: ${link}`);
  const cdoc = JSON.parse(col.body);
  assert(cdoc.type === 'subscriptions' && cdoc.id === '/.well-known/mercure/subscriptions' && cdoc.subscriptions.length === 4,
    `v1 collection (the watcher and s's three): ${col.body}`);
  assert(cdoc.subscriptions.every((d) => d.match_type && !d.topic), 'only 1.0 subscriptions, in the 1.0 shape');
  const one = by['https://ex.com/bar/:id'];
  const per = await api(`/urlpattern/${encodeURIComponent('https://ex.com/bar/:id')}`);
  const pdoc = JSON.parse(per.body);
  assert(per.status === 200 && pdoc.subscriptions.length === 1 && pdoc.id === `/.well-known/mercure/subscriptions/urlpattern/${encodeURIComponent('https://ex.com/bar/:id')}`, per.body);
  const single = await api(one.id.slice('/.well-known/mercure/subscriptions'.length));
  assert(single.status === 200 && JSON.stringify(JSON.parse(single.body)) === JSON.stringify(one), `single: ${single.body}`);
  assert((await api(`/exact/nothing/urn%3Auuid%3Ax`)).status === 404, 'a missing subscription');
  assert((await api('', v1Sub([exact('urn:x')]))).status === 403, 'a token without the namespace');
  // The draft-07 API lists the draft-07 subscriptions.
  const capi = await get(srv.base, '/.well-known/mercure/subscriptions', bearer(classicSub(['/.well-known/mercure/subscriptions{/topic}{/subscriber}'])));
  const ccol = JSON.parse(capi.body);
  assert(capi.status === 200 && ccol.type === 'Subscriptions' && ccol.lastEventID && ccol.subscriptions.every((d) => d.topic), capi.body);
  // Terminated: active false, in the same dialect.
  s.close();
  await waitFor(() => watcher.events.some((e) => JSON.parse(e.data).active === false), { message: 'active: false' });
  const gone = watcher.events.map((e) => JSON.parse(e.data)).filter((d) => d.active === false);
  assert(gone.length === 3 && gone.every((d) => d.subscriber === one.subscriber), JSON.stringify(gone));
  c.close();
  watcher.close();
  classicWatcher.close();
  // Cross-origin readers may see the Link field.
  const cors = await startCourant([...ARGS, '--subscriptions', '--cors-origin', 'https://app.example']);
  const x = await get(cors.base, '/.well-known/mercure/subscriptions', { ...bearer(watcherTok), origin: 'https://app.example' });
  assert(/Link/.test(x.headers.get('access-control-expose-headers') || ''), `expose: ${x.headers.get('access-control-expose-headers')}`);
});

// ---- URL-pattern limits and budget ------------------------------------------------------------

test('URL patterns: per-worker cap (503), state cap (400), and a spent turn budget defers without losing order', async () => {
  const srv = await startCourant(['--publisher-jwt-key', PUB_KEY, '--jwt-issuer', ISS, '--resource-identifier', RES,
    '--workers', '1', '--max-urlpatterns-per-worker', '3', '--max-urlpattern-states', '16', '--match-turn-budget', '1']);
  const complex = await status(srv.base, qs({ match_urlpattern: 'https://ex.com/(a|b|c|d|e|f|g|h)+/(x|y|z)+/:id' }));
  assert(complex.status === 400, `too many states: ${complex.status}`);
  const held = [];
  for (const p of ['https://ex.com/a/:id', 'https://ex.com/:x/1', '/rel/:id'])
    held.push(await openStream(srv.base, qs({ match_urlpattern: p })));
  assert(held.every((s) => s.status === 200), 'three patterns');
  const full = await status(srv.base, qs({ match_urlpattern: 'https://ex.com/four/:id' }));
  assert(full.status === 503, `a fourth distinct pattern on the worker: ${full.status}`);
  const shared = await openStream(srv.base, qs({ match_urlpattern: 'https://ex.com/a/:id' }));
  assert(shared.status === 200, 'an interned pattern costs nothing more');
  // Budget of 1 step a turn: nearly every match is deferred to history, in order, nothing lost.
  const N = 30;
  for (let i = 0; i < N; i++) {
    const r = await publish(srv.base, [['topic', `https://ex.com/a/${i}`], ['topic', `https://ex.com/x/1`], ['data', `${i}`]], bearer(v1Pub()));
    assert(r.status === 200, `publish ${i}`);
  }
  const want = Array.from({ length: N }, (_, i) => `${i}`).join();
  for (const s of [held[0], held[1], shared]) {
    await waitFor(() => s.events.length === N, { message: () => `got ${s.events.length} of ${N}` });
    assert(s.events.map((e) => e.data).join() === want, `order: ${s.events.map((e) => e.data).join()}`);
  }
  assert(held[2].events.length === 0, 'the relative pattern (hub host) matched nothing');
  assert(srv.stderrLines.some((l) => /matching budget of a turn spent/.test(l)), 'the budget was spent (logged)');
  for (const s of [...held, shared]) s.close();
});

await run();
