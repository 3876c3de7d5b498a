// urlpattern-lib.mjs - talks to build/asan/urlpattern_cli (tests/unit/urlpattern_cli.c),
// the JSON-lines driver of src/urlpattern.c, for the URL pattern tests.
//
//   cliPath()            the driver's path (URLPATTERN_CLI overrides)
//   runCli(requests)     sends every request (objects), returns the answers in order
//   COMPONENTS           the eight component names, in the standard's order

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, skip } from './lib.mjs';

export const COMPONENTS = ['protocol', 'username', 'password', 'hostname', 'port', 'pathname', 'search', 'hash'];

export function cliPath() {
  return path.resolve(repoRoot, process.env.URLPATTERN_CLI || 'build/asan/urlpattern_cli');
}

// Skips the running test when the driver is not built.
export function requireCli() {
  if (!existsSync(cliPath())) skip(`${cliPath()} is not built (make build/asan/urlpattern_cli)`);
}

export function runCli(requests) {
  const input = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const res = spawnSync(cliPath(), {
    input,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 240000,
    env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:halt_on_error=1' },
  });
  if (res.error) throw res.error;
  if (res.status !== 0 || /Sanitizer|runtime error/.test(res.stderr)) {
    throw new Error(`urlpattern_cli exited ${res.status}:\n${res.stderr.slice(0, 4000)}`);
  }
  const lines = res.stdout.split('\n').filter((l) => l.length);
  if (lines.length !== requests.length) {
    throw new Error(`urlpattern_cli answered ${lines.length} of ${requests.length} requests`);
  }
  return lines.map((l) => JSON.parse(l));
}

// Is `why` (the C side's reason for refusing a pattern) a documented
// "unsupported" refusal (valid syntax the module does not offer), rather
// than an invalid pattern?
export function isUnsupported(why) {
  return typeof why === 'string' && why.startsWith('unsupported');
}
