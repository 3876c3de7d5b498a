// urlpattern-wpt.test.mjs - the web-platform-tests cases of the URL Pattern
// Standard (urlpattern/resources/urlpatterntestdata.json) against src/urlpattern.c,
// through the test driver build/asan/urlpattern_cli.
//
// Where the data comes from: never from this repository (it is not ours to
// commit). The one npm package that ships the file is the 2021 development
// build urlpattern-polyfill@0.1.2-dev.1af5421, installed under the alias
// "urlpattern-wpt-2021" (tests/e2e/package.json): 120 cases in the early
// format ({pattern, input, expected}), normalized below. The current file
// (336 cases) is in no npm package; point URLPATTERN_WPT_DATA at a copy of it
// (from a web-platform-tests checkout) to run it instead.
//
// Every case is run except those using forms this module does not offer:
// URLPatternOptions (ignoreCase, which Mercure forbids) and JavaScript API
// argument errors (a dictionary together with a base URL string), which are
// checked by the JavaScript bindings, not by a pattern implementation. They
// are counted and reported as skipped, never as passed. Match results are
// compared as yes/no (the C side computes no capture groups), and for each
// match the canonicalized input components are compared too.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { test, run, skip, e2eDir } from './lib.mjs';
import { COMPONENTS, requireCli, runCli, isUnsupported } from './urlpattern-lib.mjs';

function loadData() {
  if (process.env.URLPATTERN_WPT_DATA) {
    return { source: process.env.URLPATTERN_WPT_DATA, cases: JSON.parse(readFileSync(process.env.URLPATTERN_WPT_DATA, 'utf8')) };
  }
  const require = createRequire(path.join(e2eDir, 'package.json'));
  let file;
  try {
    file = require.resolve('urlpattern-wpt-2021/urlpatterntestdata.json');
  } catch {
    return null;
  }
  if (!existsSync(file)) return null;
  return { source: 'npm urlpattern-wpt-2021 (urlpattern-polyfill@0.1.2-dev.1af5421)', cases: JSON.parse(readFileSync(file, 'utf8')) };
}

// The 2021 format ({pattern: init, input, expected, error}) in today's shape.
function normalize(e) {
  if (Array.isArray(e.pattern)) return e;
  // legacy: the 2021 data predates normalized pattern strings, so it has no
  // expectations for them (the getters returned the input then).
  const n = { pattern: [e.pattern], legacy: true };
  if (e.error) {
    n.expected_obj = 'error';
    return n;
  }
  n.inputs = e.input === undefined ? [] : [e.input];
  n.expected_match = e.expected ? {} : null;
  if (e.expected) {
    for (const c of COMPONENTS) if (e.expected[c]) n.expected_match[c] = { input: e.expected[c].input };
  }
  n.expected_obj = e.expected_obj;
  return n;
}

// Why this case cannot be run here, or null.
function unsupportedForm(e) {
  const p = e.pattern;
  if (p.some((a) => a && typeof a === 'object' && 'ignoreCase' in a)) return 'URLPatternOptions (ignoreCase)';
  if (p.length > 1 && typeof p[0] === 'object') return 'dictionary with a base URL argument (a JavaScript API error)';
  if ((e.inputs || []).length > 1 && typeof e.inputs[0] === 'object') return 'dictionary input with a base URL argument';
  return null;
}

// The request for the driver.
function request(e) {
  const p = e.pattern;
  const req = { tests: [], js_api: true };
  if (p.length === 0 || typeof p[0] === 'object') req.pattern = p[0] || {};
  else {
    req.pattern = p[0];
    if (typeof p[1] === 'string') req.base = p[1];
  }
  if (e.expected_obj !== 'error') req.tests.push(e.inputs && e.inputs.length ? e.inputs : [{}]);
  return req;
}

// The component pattern strings WPT expects (the logic of urlpatterntests.js).
function expectedComponents(e) {
  const EARLIER = {
    protocol: [], hostname: ['protocol'], port: ['protocol', 'hostname'], username: [], password: [],
    pathname: ['protocol', 'hostname', 'port'], search: ['protocol', 'hostname', 'port', 'pathname'],
    hash: ['protocol', 'hostname', 'port', 'pathname', 'search'],
  };
  const obj = e.expected_obj || {};
  const p0 = e.pattern[0];
  let baseURL = null;
  if (p0 && typeof p0 === 'object' && p0.baseURL) baseURL = new URL(p0.baseURL);
  else if (e.pattern.length > 1 && typeof e.pattern[1] === 'string') baseURL = new URL(e.pattern[1]);
  const out = {};
  for (const c of COMPONENTS) {
    let exp = obj[c];
    if (exp === undefined) {
      if (e.exactly_empty_components && e.exactly_empty_components.includes(c)) exp = '';
      else if (p0 && typeof p0 === 'object' && p0[c]) exp = p0[c];
      else if (p0 && typeof p0 === 'object' && EARLIER[c].some((x) => x in p0)) exp = '*';
      else if (baseURL && c !== 'username' && c !== 'password') {
        let v = baseURL[c];
        if (c === 'protocol') v = v.slice(0, -1);
        else if (c === 'search' || c === 'hash') v = v.slice(1);
        exp = v;
      } else exp = '*';
    }
    out[c] = exp;
  }
  return out;
}

function check(e, ans) {
  const errs = [];
  if (e.expected_obj === 'error') {
    if (ans.ok) errs.push('compiled, expected an error');
    return errs;
  }
  if (!ans.ok) {
    errs.push(`refused: ${ans.error}`);
    return errs;
  }
  const exp = expectedComponents(e);
  for (const c of e.legacy ? [] : COMPONENTS) {
    if (ans.components[c] !== exp[c]) errs.push(`${c}: ${JSON.stringify(ans.components[c])} != ${JSON.stringify(exp[c])}`);
  }
  if (e.expected_match === 'error') return errs;
  const t = ans.tests[0];
  const want = !!e.expected_match;
  if (!t || t.match !== want) errs.push(`match: ${t && t.match} != ${want}`);
  if (want && t && t.inputs) {
    for (const c of COMPONENTS) {
      const ex = e.expected_match[c];
      if (ex && ex.input !== undefined && ex.input !== t.inputs[c]) {
        errs.push(`input ${c}: ${JSON.stringify(t.inputs[c])} != ${JSON.stringify(ex.input)}`);
      }
    }
  }
  return errs;
}

test('web-platform-tests urlpatterntestdata.json', () => {
  requireCli();
  const data = loadData();
  if (!data) skip('no urlpatterntestdata.json: run `npm ci` in tests/e2e (package urlpattern-wpt-2021) or set URLPATTERN_WPT_DATA');
  const cases = data.cases.map(normalize);
  const runnable = [];
  const skipped = {};
  for (const e of cases) {
    const why = unsupportedForm(e);
    if (why) skipped[why] = (skipped[why] || 0) + 1;
    else runnable.push(e);
  }
  const answers = runCli(runnable.map(request));
  let passed = 0;
  let unsupported = 0;
  const failures = [];
  runnable.forEach((e, i) => {
    if (!answers[i].ok && isUnsupported(answers[i].error) && e.expected_obj !== 'error') {
      unsupported++;
      return;
    }
    const errs = check(e, answers[i]);
    if (errs.length) failures.push(`${JSON.stringify(e.pattern)} ${JSON.stringify(e.inputs)}:\n      ${errs.join('\n      ')}`);
    else passed++;
  });
  const nskipped = Object.values(skipped).reduce((a, b) => a + b, 0);
  console.log(`# ${data.source}: ${cases.length} cases, ${passed} passed, ${failures.length} failed, ` +
    `${unsupported} refused as unsupported, ${nskipped} skipped (${JSON.stringify(skipped)})`);
  if (failures.length) throw new Error(`${failures.length} cases failed:\n  ${failures.join('\n  ')}`);
}, { timeout: 240000 });

run();
