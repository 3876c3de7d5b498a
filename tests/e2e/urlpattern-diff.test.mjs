// urlpattern-diff.test.mjs - differential test of src/urlpattern.c against the
// reference implementation of the URL Pattern Standard, npm urlpattern-polyfill
// (MIT), through the test driver build/asan/urlpattern_cli.
//
// Seeded generation (URLPATTERN_DIFF_SEED, URLPATTERN_DIFF_PATTERNS): absolute
// and relative constructor strings built from pieces that exercise every part
// of the syntax (named and regexp groups, wildcards, modifiers, {} groups,
// escapes, non-ASCII and percent-encoded text, IPv6 and IDNA hosts), regexp
// groups drawn from a small JavaScript regexp grammar (valid and invalid), and
// random character soup. For each pattern, topics derived from it (instances
// likely to match, and mutations) plus fixed odd ones. Both sides resolve
// relative patterns and topics against the hub's URL, as Mercure does; an
// absolute pattern is compiled without it (draft-08; see src/urlpattern.h).
//
// Asserted, for every pattern:
//   - the C side accepts it  => the reference accepts it, the eight component
//     pattern strings are equal, and every topic gets the same yes/no;
//   - the C side refuses it  => its reason says "unsupported" (a documented
//     limitation: backreferences, lookaround, \p, ...), or the reference
//     refuses it too.
//
// The reference runs with the regexp flag the standard specifies, "v": the
// polyfill still passes "u" to RegExp, so RegExp is wrapped to turn "u" into
// "v" (without it, classes such as [[a-z]--[aeiou]] would mean something else).
// Its backtracking engine is why generated regexps never nest quantifiers:
// the reference, not the C side, would take exponential time.
//
// Topics are matched as the standard says: parsed with the WHATWG URL parser
// (Node's URL) relative to the hub's URL, then each component tested against
// the reference's compiled component regexp (captured as the polyfill builds
// them). The polyfill's own test(url, base) is not used: it re-canonicalizes
// the parsed components as if they were dictionary input, which misreads a
// path starting with "//" as an authority and strips a query's leading "?".
//
// Known deviations of the reference from the standard, counted apart (the
// first two) or kept out of the generated patterns, and covered by unit tests
// instead: the polyfill checks a protocol with /^[-+.A-Za-z0-9]*$/ where the
// standard parses "<protocol>://dummy.invalid/" (so ".f" or "1x" is no
// scheme: refused); it canonicalizes search and hash text through the URL
// setters, which drop a leading "?" or "#" that the standard's parser keeps
// ("#a" in a hash pattern stays "#a"); the polyfill refuses a "%" in a hostname
// pattern ("ex%41mple.com" is "example.com" for the URL parser and here); it
// drops a trailing "\\" (the standard's tokenizer makes it an invalid
// character that the component's strict parse then refuses); it trims
// trailing spaces of a non-special URL's path pattern (it parses "data:" +
// the text, and the URL parser trims). And one of Node 20's URL parser (ada
// 2.9): a non-special URL's path "/.." at the root becomes "" instead of the
// standard's "/" ("foo://h/.." is "foo://h/" for the standard), so no
// generated path climbs above its root.

import { test, run, skip } from './lib.mjs';
import { COMPONENTS, requireCli, runCli, isUnsupported } from './urlpattern-lib.mjs';

const HUB = 'https://example.com/.well-known/mercure';
const SEED = Number(process.env.URLPATTERN_DIFF_SEED || 20240601);
const NPATTERNS = Number(process.env.URLPATTERN_DIFF_PATTERNS || 3000);

// RegExp with "u" turned into "v". Also works around a V8 11 bug (Node.js
// 20): with "v", the empty negated class "[^]" under a quantifier fails to
// match (/^[^]+?$/v.test("ab") is false), so every unescaped "[^]" becomes the
// equivalent "[\s\S]".
let built = []; // every RegExp the reference constructed, in order

function vFlagRegExp() {
  const Native = RegExp;
  const fix = (source, flags) => {
    if (typeof flags === 'string' && flags.includes('u')) {
      flags = flags.replace('u', 'v');
      source = String(source).replace(/(?<!\\)((?:\\\\)*)\[\^\]/g, '$1[\\s\\S]');
    }
    return [source, flags];
  };
  return new Proxy(Native, {
    construct(target, args) {
      const re = new target(...fix(...args));
      built.push(re);
      return re;
    },
    apply(target, self, args) {
      return target(...fix(...args));
    },
  });
}

// ---- seeded generation ------------------------------------------------------------

let state = SEED >>> 0;
function rnd() {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x100000000;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const chance = (p) => rnd() < p;
const word = () => pick(['a', 'b', 'x', 'foo', 'bar', 'books', 'Users', '42', 'item-1', 'a_b', 'é', 'caf%C3%A9', 'a%2Fb', 'x.y', '~u']);

// A regexp (and a sampler of strings it may match) from a small grammar.
function genRegexp(depth = 0) {
  const atoms = [
    ['a', () => 'a'], ['b', () => 'b'], ['\\d', () => pick(['0', '7', '42'])], ['\\w', () => pick(['a', 'Z', '_', '9'])],
    ['.', () => pick(['a', '-', '/', '.'])], ['[a-z]', () => pick(['a', 'q', 'z'])], ['[^/]', () => pick(['a', '.', '-'])],
    ['[\\d_\\-]', () => pick(['1', '_', '-'])], ['\\/', () => '/'], ['\\.', () => '.'], ['[[a-z]--[aeiou]]', () => pick(['b', 'z'])],
    ['[\\w&&[a-f]]', () => pick(['a', 'f'])], ['\\s', () => ' '], ['\\D', () => 'x'], ['\\x41', () => 'A'], ['\\u0062', () => 'b'],
    ['[^]', () => 'q'], ['[]', () => ''], ['\\-', () => '-'],
  ];
  const items = [];
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    let src;
    let sample;
    if (depth < 2 && chance(0.2)) {
      const alts = [genRegexp(depth + 1), genRegexp(depth + 1)];
      src = `(?:${alts[0].src}|${alts[1].src})`;
      sample = () => pick(alts).sample();
      if (chance(0.3)) src = `(?<g${depth}${i}${Math.floor(rnd() * 1000)}>${alts[0].src}|${alts[1].src})`;
    } else {
      [src, sample] = pick(atoms);
    }
    // Quantifiers only on atoms (a group may hold quantifiers): no nesting.
    if (!src.startsWith('(') && chance(0.4)) {
      const [q, lo, hi] = pick([['?', 0, 1], ['*', 0, 3], ['+', 1, 3], ['{2}', 2, 2], ['{1,3}', 1, 3], ['{2,}', 2, 4], ['??', 0, 1], ['*?', 0, 2]]);
      const s0 = sample;
      src += q;
      sample = () => {
        let k = lo + Math.floor(rnd() * (hi - lo + 1));
        let out = '';
        while (k--) out += s0();
        return out;
      };
    }
    items.push({ src, sample });
  }
  let src = items.map((x) => x.src).join('');
  if (depth === 0 && chance(0.08)) src = pick(['^', '\\b']) + src;
  if (depth === 0 && chance(0.08)) src += pick(['$', '\\b', '\\B']);
  return { src, sample: () => items.map((x) => x.sample()).join('') };
}

// Regexp sources that must be refused (invalid, or unsupported here).
const BAD_REGEXPS = ['a{3,1}', '[a-]', '[&&a]', 'a**', '{', 'a]', '(?=a)b', '(?<=a)b', '\\1', '\\k<x>', '\\p{L}', '[\\q{ab}]',
  '(?i:a)', '\\c', '\\u{110000}', '[z-a]', 'a{', '(?<1a>x)', '[a&&&b]', '\\e', 'x(?!y)', 'a{200}', '[(]', '\\0\\1'];

// A pathname pattern piece and a sampler of path text it may match.
function genPathPiece() {
  const r = rnd();
  if (r < 0.25) {
    const w = word();
    return { src: `/${w}`, sample: () => `/${w}` };
  }
  if (r < 0.45) {
    const name = pick(['id', 'slug', 'x', 'ünï', '_a$']);
    const mod = pick(['', '', '?', '+', '*']);
    return {
      src: `/:${name}${mod}`,
      sample: () => {
        const k = mod === '' ? 1 : mod === '?' ? (chance(0.5) ? 1 : 0) : mod === '+' ? 1 + Math.floor(rnd() * 2) : Math.floor(rnd() * 3);
        let s = '';
        for (let i = 0; i < k; i++) s += '/' + word();
        return s;
      },
    };
  }
  if (r < 0.55) return { src: pick(['/*', '*', '/*?', '/**']), sample: () => pick(['', '/', '/a/b', '/x']) };
  if (r < 0.75) {
    const re = chance(0.1) ? { src: pick(BAD_REGEXPS), sample: () => 'a' } : genRegexp();
    const named = chance(0.5) ? `:${pick(['n', 'num', 'v'])}` : '';
    const mod = pick(['', '', '?', '+', '*']);
    return { src: `/${named}(${re.src})${mod}`, sample: () => (mod === '?' && chance(0.3) ? '' : '/' + re.sample()) };
  }
  if (r < 0.85) {
    const w = word();
    const mod = pick(['?', '*', '+', '']);
    return { src: `{/${w}}${mod}`, sample: () => (mod === '?' || mod === '*' ? (chance(0.5) ? `/${w}` : '') : `/${w}`) };
  }
  if (r < 0.92) {
    const [src, s] = pick([['/\\:x', '/:x'], ['/a\\*b', '/a*b'], ['/\\(p\\)', '/(p)'], ['/{a}b', '/ab'], ['/x.y', '/x.y'], ['/a/..', '/a/..'], ['/./a', '/./a']]);
    return { src, sample: () => s };
  }
  const name = pick(['p', 'q']);
  return { src: `/:${name}.html`, sample: () => `/${word()}.html` };
}

function genHostname() {
  return pick([
    ['example.com', () => 'example.com'], ['EXAMPLE.com', () => 'example.com'], ['*.example.com', () => pick(['a.example.com', 'x.y.example.com'])],
    ['{:sub.}?example.com', () => pick(['example.com', 'api.example.com'])], [':host.example.com', () => 'www.example.com'],
    ['[::1]', () => '[::1]'], ['[\\:\\:1]', () => '[::1]'], ['café.com', () => pick(['café.com', 'xn--caf-dma.com'])], ['xn--caf-dma.com', () => 'café.com'],
    ['127.0.0.1', () => pick(['127.0.0.1', '0x7f.0.0.1'])], ['*', () => pick(['example.com', 'other.org'])], ['(a|b).com', () => pick(['a.com', 'b.com'])],
    ['localhost', () => 'localhost'], ['EX\\.ample.com', () => 'ex.ample.com'],
  ]);
}

function genPattern() {
  const r = rnd();
  if (r < 0.05) {
    // character soup from pattern syntax
    const alphabet = ['a', '/', ':', '*', '?', '+', '(', ')', '{', '}', '\\', '.', '#', '@', '[', ']', 'h', 't', 'p', 's', 'é', '%', '2', 'F', ' ', '|', '^', '$'];
    let s = '';
    const n = 1 + Math.floor(rnd() * 16);
    for (let i = 0; i < n; i++) s += pick(alphabet);
    if (chance(0.5)) s = pick(['https://', '/', 'http://a/']) + s;
    s = s.replace(/[\\ ]+$/, ''); // the reference's known deviations (above)
    return { src: s, samples: [() => s.replace(/[\\*?+(){}:]/g, '')] };
  }
  const pieces = [];
  const n = Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) pieces.push(genPathPiece());
  const path = { src: pieces.map((p) => p.src).join(''), sample: () => pieces.map((p) => p.sample()).join('') };
  const [search, searchSample] = pick([['', () => ''], ['', () => ''], ['?q=:v', () => `?q=${word()}`], ['?*', () => `?${word()}`], ['?a=1&b=2', () => '?a=1&b=2'], ['?x=(\\d+)', () => '?x=12']]);
  const [hash, hashSample] = pick([['', () => ''], ['', () => ''], ['#top', () => '#top'], ['#*', () => `#${word()}`], ['#:h', () => `#${word()}`]]);
  if (r < 0.35) {
    // relative: resolved against the hub's URL
    const lead = pick(['', '', '', '../', 'sub/', './']);
    const p = lead + (path.src || pick(['/', '/books/:id', 'x']));
    return { src: p + search + hash, samples: [() => lead + path.sample() + searchSample() + hashSample()] };
  }
  const [proto, protoSample] = pick([['https', () => 'https'], ['http', () => 'http'], ['http{s}?', () => pick(['http', 'https'])], ['*', () => pick(['https', 'ftp'])],
    [':proto', () => 'wss'], ['(https?)', () => 'https'], ['foo', () => 'foo'], ['urn', () => 'urn'], ['file', () => 'file'], ['(ht|f)tp', () => 'ftp']]);
  if (proto === 'urn' || (proto === 'foo' && chance(0.5))) {
    const op = pick(['isbn\\:123', ':nid\\::nss', '*', 'example\\:a/b']);
    return { src: `${proto}:${op}${search}${hash}`, samples: [() => `${protoSample()}:${pick(['isbn:123', 'x:y', 'example:a/b'])}${searchSample()}${hashSample()}`] };
  }
  const [user, userSample] = pick([['', () => ''], ['', () => ''], ['', () => ''], [':u@', () => 'me@'], ['*:*@', () => 'a:b@'], ['user@', () => 'user@']]);
  const [host, hostSample] = genHostname();
  const [port, portSample] = pick([['', () => ''], ['', () => ''], [':8080', () => ':8080'], [':*', () => pick(['', ':81'])], [':(80|443)', () => ':80'], [':443', () => ':443']]);
  const src = `${proto}://${user}${host}${port}${path.src}${search}${hash}`;
  return { src, samples: [() => `${protoSample()}://${userSample()}${hostSample()}${portSample()}${path.sample()}${searchSample()}${hashSample()}`] };
}

// Topics for one pattern: instances, mutations of them, and fixed odd ones.
function genTopics(g) {
  const topics = [];
  for (let i = 0; i < 8; i++) topics.push(pick(g.samples)());
  const base = topics.slice();
  for (const t of base) {
    if (!t.length) continue;
    const k = Math.floor(rnd() * t.length);
    const m = pick([
      () => t.slice(0, k) + t.slice(k + 1),
      () => t.slice(0, k) + pick(['/', 'X', '%20', 'é', '.', '?']) + t.slice(k),
      () => t.toUpperCase(),
      () => t + pick(['/', '/extra', '?q=1', '#f', ':8080']),
    ]);
    topics.push(m());
  }
  topics.push(pick(['', '/', '*', 'urn:uuid:1', 'https://example.com/books/1', '/.well-known/mercure/subscriptions/a', 'http://[::1]:8080/x', 'https://user@example.com:443/x?y#z', 'mailto:a@b', '\u0000', 'https://exa mple.com/', 'https://é.com/é']));
  return topics;
}

// The standard's match of a URL string: parse, then every component. null
// when Node's URL parser (ada 2.9) left a dot segment in a hierarchical
// path, which the URL Standard never does ("https://x/b/.y/a/.." keeps its
// "/.." there): that topic is not compared.
function refMatch(regexps, topic) {
  let u;
  try {
    u = new URL(topic, HUB);
  } catch {
    return false;
  }
  if (u.pathname.startsWith('/') && /\/\.\.?(\/|$)/.test(u.pathname)) return null;
  const values = [u.protocol.slice(0, -1), u.username, u.password, u.hostname, u.port, u.pathname, u.search.slice(1), u.hash.slice(1)];
  return values.every((v, c) => regexps[c].test(v));
}

// ---- the test -----------------------------------------------------------------------

test(`differential: src/urlpattern.c vs urlpattern-polyfill (seed ${SEED}, ${NPATTERNS} patterns)`, async () => {
  requireCli();
  let URLPattern;
  try {
    new RegExp('[a--b]', 'v');
  } catch {
    skip(`this Node.js (${process.version}) has no RegExp "v" flag, which the standard's patterns use`);
  }
  try {
    ({ URLPattern } = await import('urlpattern-polyfill/urlpattern'));
  } catch {
    skip('urlpattern-polyfill is not installed (npm ci in tests/e2e)');
  }
  globalThis.RegExp = vFlagRegExp();
  const gens = [];
  const seen = new Set();
  while (gens.length < NPATTERNS) {
    const g = genPattern();
    if (seen.has(g.src)) continue;
    seen.add(g.src);
    gens.push(g);
  }
  const topicsOf = gens.map(genTopics);
  const answers = runCli(gens.map((g, i) => ({ pattern: g.src, base: HUB, topics: topicsOf[i] })));

  let accepted = 0, unsupported = 0, bothRefused = 0, comparisons = 0, matched = 0, adaDots = 0, refDeviations = 0;
  const problems = [];
  gens.forEach((g, i) => {
    const ans = answers[i];
    let ref = null;
    let refError = null;
    built = [];
    try {
      ref = new URLPattern(g.src); // absolute: no base (draft-08: only relative patterns use it)
    } catch {
      try {
        ref = new URLPattern(g.src, HUB); // relative, or invalid
      } catch (err) {
        refError = err;
      }
    }
    const regexps = built.slice(-COMPONENTS.length); // compiled last, in component order
    if (!ans.ok) {
      if (isUnsupported(ans.error)) unsupported++;
      else if (refError) bothRefused++;
      else if (/^[-+.0-9]/.test(ref.protocol)) refDeviations++; // not a scheme
      else problems.push(`${JSON.stringify(g.src)}: C refused (${ans.error}), the reference accepts`);
      return;
    }
    if (refError) {
      problems.push(`${JSON.stringify(g.src)}: C accepts, the reference refuses (${refError.message})`);
      return;
    }
    const setterStrip = (c, ch) => ans.components[c] !== ref[c] && ans.components[c].split(ch).join('') === ref[c].split(ch).join('');
    if (setterStrip('search', '?') || setterStrip('hash', '#')) {
      refDeviations++;
      return;
    }
    accepted++;
    for (const c of COMPONENTS) {
      if (ans.components[c] !== ref[c]) problems.push(`${JSON.stringify(g.src)}: ${c} ${JSON.stringify(ans.components[c])} != reference ${JSON.stringify(ref[c])}`);
    }
    topicsOf[i].forEach((t, k) => {
      const want = refMatch(regexps, t);
      if (want === null) {
        adaDots++;
        return;
      }
      comparisons++;
      if (want) matched++;
      if (ans.topics[k] !== want) problems.push(`${JSON.stringify(g.src)} vs topic ${JSON.stringify(t)}: C ${ans.topics[k]}, reference ${want}`);
    });
  });
  globalThis.RegExp = RegExp;
  console.log(`# ${gens.length} patterns: ${accepted} accepted by both, ${bothRefused} refused by both, ${unsupported} refused as unsupported, ` +
    `${refDeviations} set apart (known deviations of the reference); ` +
    `${comparisons} pattern x topic comparisons (${matched} matches), ${problems.length} mismatches; ` +
    `${adaDots} topics set apart (ada left a dot segment)`);
  if (problems.length) throw new Error(`${problems.length} mismatches:\n  ${problems.slice(0, 60).join('\n  ')}`);
}, { timeout: 280000 });

// The URL parser under it (src/url.c, the CLI's "url" requests) against
// Node's URL on URL strings built from pieces: schemes special or not,
// authorities, IDNA/IPv4/IPv6/invalid hosts, ports, paths with dot segments
// and characters to percent-encode, queries, fragments, some relative to a
// base. Node 20's parser (ada 2.9) differs from the URL Standard in two
// places this generator reaches, counted apart rather than compared: a
// non-special URL's path "/.." at the root ("foo://h/.." is "foo://h/" for
// the standard, "foo://h" for ada), and a file URL whose first segment only
// starts like a drive letter ("file:///a:b/c/../.." is "/" for the standard,
// whose drive letters are exactly two characters; ada keeps "/a:b/"). (Bases
// with an opaque path, where ada diverges too, are not generated: Mercure's
// base is the hub's https URL.)
test('differential: src/url.c vs Node.js URL', () => {
  requireCli();
  const schemes = ['https:', 'http:', 'file:', 'foo:', 'ws:', 'data:', 'HTTPS:', 'urn:', 'a+b.c-d:', 'ftp:', '', '1x:', 'mailto:'];
  const auth = ['//', '/', '', '///', '\\\\', '/\\', '//u:p@', '//u@', '//:p@', '//a@b@', '//@', '//u:p:q@'];
  const hosts = ['example.com', 'EXAMPLE.COM', 'café.com', 'xn--caf-dma.com', '1.2.3.4', '0x7f.1', '[::1]', '[1:2::3:4]',
    '[::ffff:1.2.3.4]', 'a..b', 'localhost', '', 'a b', 'a%20b', 'caf%C3%A9.com', '999999999999', '1.2.3.4.5', 'ß.de', '[::1',
    'a:b', 'x.0x', 'A\u00ADb', 'ex%41mple', '%zz', 'a|b', 'bücher.de', '0', '09', '0x', '[0:0:0:0:0:0:0:0]', '[1:0:0:2:0:0:0:3]'];
  const ports = ['', ':', ':80', ':443', ':8080', ':65536', ':0008080', ':x', ':21'];
  const paths = ['', '/', '/a/b', '/a/./b/../c', '/%2e/%2E%2e/x', '/a b/\u00e9/`{}', '/C:/x', '/c|/../..', '\\x\\y', 'rel/path',
    '../..', '/a?', '/.//x', 'a:b', '/%41', '/a\tb\nc'];
  const queries = ['', '?', '?a=b', "?'\"<> #", '?é&x', '?%zz'];
  const frags = ['', '#', '#f', '#a b`"<>', '#é', '##'];
  const bases = ['https://base.example/dir/file?q#f', 'file:///C:/x/y', 'foo://h/p/q', HUB];
  const cases = [];
  for (let i = 0; i < 4000; i++) {
    let s;
    if (chance(0.15)) s = pick([' ', '\t', '']) + pick(paths) + pick(queries) + pick(frags);
    else s = pick(schemes) + pick(auth) + pick(hosts) + pick(ports) + pick(paths) + pick(queries) + pick(frags);
    cases.push(chance(0.4) ? { url: s, base: pick(bases) } : { url: s });
  }
  const answers = runCli(cases);
  const fields = ['protocol', 'username', 'password', 'hostname', 'port', 'pathname', 'search', 'hash'];
  let compared = 0, failed = 0, adaRoot = 0, adaDrive = 0;
  const problems = [];
  cases.forEach((c, i) => {
    let want = null;
    try {
      const u = c.base ? new URL(c.url, c.base) : new URL(c.url);
      want = { protocol: u.protocol.slice(0, -1), username: u.username, password: u.password, hostname: u.hostname,
        port: u.port, pathname: u.pathname, search: u.search.slice(1), hash: u.hash.slice(1) };
    } catch {}
    const got = answers[i].ok ? answers[i].url : null;
    if (want && got && want.pathname === '' && got.pathname === '/' && /\.\.|%2e/i.test(c.url)) {
      adaRoot++;
      return;
    }
    if (want && got && want.protocol === 'file' && /^\/[A-Za-z][:|][^/]/.test(want.pathname) && /\.\.|%2e/i.test(c.url)) {
      adaDrive++;
      return;
    }
    compared++;
    if (!want) failed++;
    const same = !want ? !got : got && fields.every((f) => got[f] === want[f]);
    if (!same) problems.push(`${JSON.stringify(c)}: C ${JSON.stringify(got)}, Node ${JSON.stringify(want)}`);
  });
  console.log(`# ${cases.length} URL strings: ${compared} compared (${failed} failures to parse), ${adaRoot + adaDrive} set apart (ada: ${adaRoot} "/.." at the root, ${adaDrive} drive letter prefixes), ${problems.length} mismatches`);
  if (problems.length) throw new Error(`${problems.length} mismatches:\n  ${problems.slice(0, 40).join('\n  ')}`);
}, { timeout: 120000 });

run();
