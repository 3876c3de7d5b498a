// attacks.mjs - what the hostile clients of tests/e2e/hostile.test.mjs and
// bench/attack.mjs send: the selectors and topics that cost courant the
// most. Pure generators, no I/O.

/** A topic prefix the honest side's history uses. */
export const BOOKS = 'https://example.com/books/';

/** `n` templates that all have the books prefix (so a prefix index does not skip them), the last one matching every book. */
export function bookTemplates(n) {
  const t = [];
  for (let k = 0; k < n - 1; k++) t.push(`${BOOKS}{id}/chapter-${k}{/section}`);
  t.push(`${BOOKS}{id}`);
  return t;
}

/** `n` distinct templates with no literal prefix (candidates for every topic) whose NFA
 * keeps about 300 states active per byte: within the default --max-template-states (512). */
export function costlyTemplates(n) {
  const vars = 'abcdefghijklmnopqrstuvwxyzABCDE'.split('');
  return Array.from({ length: n }, (_, k) => `${vars.map((v) => `{+${v}}`).join('')}/never-${k}`);
}

// FNV-1a-32's state is its output, so two equally long blocks that take
// state h to the same h' can be swapped in any key without changing its
// hash. A birthday search over random 7-byte blocks finds such a pair from
// a given state in about 2^16 tries; chaining 16 pairs, each searched from
// the state the previous pair leads to, gives 2^16 distinct keys with one
// hash (tests/unit/strmap_test.c does the same in C).

export function fnv1a(h, bytes) {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619) >>> 0;
  return h;
}

/** `count` distinct topics starting with `prefix` that all have one FNV-1a-32 hash. */
export function collidingTopics(prefix, count) {
  const stages = Math.ceil(Math.log2(count));
  const alphabet = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
  let seed = 0x9e3779b9;
  const rand = () => {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>>= 0);
  };
  const block = () => {
    const b = Buffer.alloc(7);
    for (let i = 0; i < 7; i++) b[i] = alphabet[rand() % 36];
    return b;
  };
  const pairs = [];
  let h = fnv1a(2166136261, Buffer.from(prefix));
  for (let s = 0; s < stages; s++) {
    const seen = new Map();
    for (;;) {
      const b = block();
      const to = fnv1a(h, b);
      const other = seen.get(to);
      if (other && !other.equals(b)) {
        pairs.push([other.toString(), b.toString()]);
        h = to;
        break;
      }
      seen.set(to, b);
    }
  }
  const topics = [];
  for (let k = 0; k < count; k++) topics.push(prefix + pairs.map((p, s) => p[(k >> s) & 1]).join(''));
  return topics;
}

