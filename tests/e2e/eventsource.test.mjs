// eventsource.test.mjs - courant against a spec-compliant EventSource client
// (the npm `eventsource` package), watching every connection attempt.
//
//   node tests/e2e/eventsource.test.mjs
//
// Env: COURANT_BIN (default build/asan/courant), COURANT_E2E_VERBOSE=1.

import { EventSource } from 'eventsource';
import { assert, run, startCourant, test, waitFor } from './lib.mjs';

// Open an EventSource on url whose fetch is wrapped, so each connection
// attempt is recorded with the Last-Event-ID header it sent and the id of the
// last event received before it.
function recordingEventSource(url) {
  const rec = { attempts: [], events: [], errors: [], lastId: null };
  const es = new EventSource(url, {
    fetch: (input, init) => {
      const headers = new Headers(init?.headers ?? {});
      rec.attempts.push({
        at: Date.now(),
        lastEventIdHeader: headers.get('last-event-id'),
        lastIdBefore: rec.lastId,
        eventsBefore: rec.events.length,
      });
      return fetch(input, init);
    },
  });
  es.onmessage = (e) => {
    rec.events.push({ id: e.lastEventId, data: e.data, attempt: rec.attempts.length });
    if (e.lastEventId) rec.lastId = e.lastEventId;
  };
  es.onerror = (e) => rec.errors.push(e.message ?? String(e.code ?? 'error'));
  rec.es = es;
  return rec;
}

function summary(rec) {
  return JSON.stringify(
    {
      attempts: rec.attempts.map((a) => ({ lastEventId: a.lastEventIdHeader, lastIdBefore: a.lastIdBefore, eventsBefore: a.eventsBefore })),
      events: rec.events.map((e) => `${e.attempt}:${e.id}`),
      errors: rec.errors,
    },
    null,
    1,
  );
}

test('GET /events is an uncached text/event-stream open to any origin', async () => {
  const server = await startCourant(['--demo']);
  const ac = new AbortController();
  try {
    const res = await fetch(`${server.base}/events`, { headers: { Accept: 'text/event-stream' }, signal: ac.signal });
    assert(res.status === 200, `status ${res.status}`);
    const type = res.headers.get('content-type') || '';
    assert(type.startsWith('text/event-stream'), `Content-Type ${JSON.stringify(type)}`);
    assert(res.headers.get('access-control-allow-origin') === '*', `Access-Control-Allow-Origin ${JSON.stringify(res.headers.get('access-control-allow-origin'))}`);
    const cache = res.headers.get('cache-control') || '';
    assert(/no-cache|no-store/.test(cache), `Cache-Control ${JSON.stringify(cache)}`);
  } finally {
    ac.abort();
  }
}, { timeout: 15000 });

test('reconnects after --max-lifetime drops the stream, resuming with Last-Event-ID', async () => {
  const server = await startCourant(['--demo', '--max-lifetime', '2']);
  const rec = recordingEventSource(`${server.base}/events`);
  try {
    // Two connections, and a tick on the second one: the stream goes on.
    await waitFor(() => rec.attempts.length >= 2 && rec.events.some((e) => e.attempt >= 2), {
      timeout: 12000,
      message: () => `a reconnect that receives events; so far: ${summary(rec)}`,
    });
  } finally {
    rec.es.close();
  }

  const { attempts, events } = rec;
  assert(attempts[0].lastEventIdHeader === null, `the first connection sent Last-Event-ID ${attempts[0].lastEventIdHeader}`);
  assert(events.length > 0 && events.every((e) => e.id !== ''), `an event without an id: ${summary(rec)}`);

  let resumed = 0;
  for (let i = 1; i < attempts.length; i++) {
    const a = attempts[i];
    assert(
      a.lastEventIdHeader === a.lastIdBefore,
      `connection ${i + 1} sent Last-Event-ID ${JSON.stringify(a.lastEventIdHeader)}, but the last event before it had id ${JSON.stringify(a.lastIdBefore)}: ${summary(rec)}`,
    );
    if (a.lastIdBefore !== null) resumed++;
  }
  assert(resumed >= 1, `no reconnect followed a received event, nothing to resume from: ${summary(rec)}`);

  const seen = new Map();
  for (const e of events) {
    assert(!seen.has(e.id), `event id ${JSON.stringify(e.id)} received twice (connections ${seen.get(e.id)} and ${e.attempt}): ${summary(rec)}`);
    seen.set(e.id, e.attempt);
  }

  // "YYYY-MM-DD hh:mm:ss" sorts as text: across the reconnect the clock must
  // go on forward, never replay an older tick.
  const stamps = events.map((e) => e.data).filter((d) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(d));
  for (let i = 1; i < stamps.length; i++) {
    assert(stamps[i] > stamps[i - 1], `clock went from ${stamps[i - 1]} to ${stamps[i]}: ${summary(rec)}`);
  }
}, { timeout: 15000 });

await run();
