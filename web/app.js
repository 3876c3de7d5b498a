// courant demo page: two EventSource subscriptions, no framework.
//
// Event data comes from the network and is untrusted: it is only ever put on
// the page with textContent, never innerHTML.
'use strict';

const CLOCK_MAX_LINES = 50;
const TOPIC_MAX_LINES = 100;
const RETRY_MS = 3000; // used only when the browser gives up (readyState CLOSED)

const $ = (id) => document.getElementById(id);

// The badge text is one of: idle, connecting, open, reconnecting.
function setState(badge, state) {
  badge.textContent = state;
  badge.dataset.state = state;
}

// Put one event on top of a list, dropping the oldest past `max`.
function prepend(list, data, id, max) {
  const item = document.createElement('li');
  item.textContent = data;
  if (id) {
    item.dataset.id = id;
    item.title = 'id: ' + id;
  }
  list.prepend(item);
  while (list.childElementCount > max) list.lastElementChild.remove();
}

// Subscribe to the stream at makeUrl(lastEventId) and keep the badge in step.
// The browser reconnects by itself after a dropped connection (readyState
// CONNECTING, sending Last-Event-ID); when it gives up for good (readyState
// CLOSED, e.g. an error status) we open a new EventSource after RETRY_MS.
function subscribe(makeUrl, badge, onMessage) {
  let source = null;
  let timer = 0;
  let lastId = '';
  let stopped = false;

  function connect(again) {
    setState(badge, again ? 'reconnecting' : 'connecting');
    const es = new EventSource(makeUrl(lastId));
    source = es;
    es.onopen = () => {
      if (source === es) setState(badge, 'open');
    };
    es.onmessage = (event) => {
      if (source !== es) return;
      if (event.lastEventId) lastId = event.lastEventId;
      onMessage(event);
    };
    es.onerror = () => {
      if (source !== es || stopped) return;
      setState(badge, 'reconnecting');
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        timer = setTimeout(() => connect(true), RETRY_MS);
      }
    };
  }

  connect(false);
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      if (source) source.close();
      source = null;
    },
  };
}

// The same over fetch(), for a stream whose token goes in an Authorization
// header (Mercure 1.0 never accepts a token in the URL, and EventSource
// cannot send headers). A minimal SSE reader: fields data, id and event,
// comments skipped, reconnection with Last-Event-ID after RETRY_MS.
function subscribeWithToken(makeUrl, token, badge, onMessage) {
  let lastId = '';
  let stopped = false;
  let ctrl = null;

  function dispatch(ev) {
    if (ev.id !== null) lastId = ev.id;
    if (ev.data.length) onMessage({ type: ev.type, data: ev.data.join('\n'), lastEventId: lastId });
  }

  async function read(res) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ev = { id: null, type: 'message', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          dispatch(ev);
          ev = { id: null, type: 'message', data: [] };
          continue;
        }
        if (line[0] === ':') continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? '' : line.slice(i + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'data') ev.data.push(v);
        else if (field === 'id') ev.id = v;
        else if (field === 'event') ev.type = v;
      }
    }
  }

  async function loop() {
    let again = false;
    while (!stopped) {
      setState(badge, again ? 'reconnecting' : 'connecting');
      ctrl = new AbortController();
      try {
        const headers = { Authorization: 'Bearer ' + token };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch(makeUrl(), { headers, signal: ctrl.signal, cache: 'no-store' });
        if (res.ok) {
          setState(badge, 'open');
          await read(res);
        }
      } catch (err) {
        // a network error or our own abort: retried below unless stopped
      }
      if (stopped) return;
      again = true;
      setState(badge, 'reconnecting');
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  loop();
  return {
    close() {
      stopped = true;
      if (ctrl) ctrl.abort();
    },
  };
}

// ---- live clock: /events ----------------------------------------------------
function startClock() {
  const badge = $('state');
  const list = $('events');
  const countEl = $('count');
  const lastIdEl = $('last-id');
  let count = 0;

  subscribe(() => '/events', badge, (event) => {
    count += 1;
    countEl.textContent = String(count);
    lastIdEl.textContent = event.lastEventId;
    prepend(list, event.data, event.lastEventId, CLOCK_MAX_LINES);
  });
}

// ---- one Mercure topic: /.well-known/mercure?topic=... -----------------------
function startTopicPanel() {
  const form = $('topic-form');
  const input = $('topic');
  const badge = $('topic-state');
  const list = $('topic-events');
  let current = null;

  function hubUrl(topic, lastId) {
    let url = '/.well-known/mercure?topic=' + encodeURIComponent(topic);
    // Mercure lets a fresh connection resume with the lastEventID parameter.
    if (lastId) url += '&lastEventID=' + encodeURIComponent(lastId);
    return url;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (current) current.close();
    current = null;
    list.replaceChildren();
    const topic = input.value.trim();
    if (!topic) {
      setState(badge, 'idle');
      input.focus();
      return;
    }
    current = subscribe((lastId) => hubUrl(topic, lastId), badge, (event) => {
      prepend(list, event.data, event.lastEventId, TOPIC_MAX_LINES);
    });
  });
}

// ---- demo authorization (courant --demo --demo-auth) -------------------------
// /demo/tokens.json exists only with --demo-auth, which makes a random key at
// start: DEMO ONLY. Real deployments mint tokens in their own backend.
async function loadDemoTokens() {
  try {
    const res = await fetch('/demo/tokens.json', { cache: 'no-store' });
    if (!res.ok) return null;
    return await res.json();
  } catch (err) {
    return null;
  }
}

const PRIVATE_TOPIC = 'https://example.com/demo/private';

function startPublishPanel(tokens) {
  const form = $('publish-form');
  const badge = $('publish-state');
  const result = $('publish-result');
  $('demo-auth-note').textContent = tokens
    ? 'DEMO ONLY: publishing with the demo publisher token (mercure.publish: ["*"]) from /demo/tokens.json.'
    : 'No demo tokens (courant runs without --demo-auth): publishing works from this machine only.';
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = new URLSearchParams();
    body.set('topic', $('publish-topic').value.trim());
    body.set('data', $('publish-data').value);
    if ($('publish-private').checked) body.set('private', 'on');
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const v1 = $('publish-dialect').value === 'v1';
    if (tokens) headers.Authorization = 'Bearer ' + (v1 ? tokens.publisherV1 : tokens.publisher);
    setState(badge, 'connecting');
    try {
      const res = await fetch('/.well-known/mercure', { method: 'POST', headers, body });
      const text = (await res.text()).trim();
      result.textContent = res.ok ? 'published ' + text : res.status + ': ' + text;
      result.dataset.ok = res.ok ? 'yes' : 'no';
      setState(badge, res.ok ? 'open' : 'idle');
    } catch (err) {
      result.textContent = 'network error';
      result.dataset.ok = 'no';
      setState(badge, 'idle');
    }
  });
}

function startPrivatePanel(tokens) {
  const url = (token) => (lastId) => {
    let u = '/.well-known/mercure?topic=' + encodeURIComponent(PRIVATE_TOPIC);
    // EventSource cannot send headers: the token goes in the query
    // parameter (a cookie would be sent by the anonymous stream too).
    if (token) u += '&authorization=' + encodeURIComponent(token);
    if (lastId) u += '&lastEventID=' + encodeURIComponent(lastId);
    return u;
  };
  const show = (list) => (event) => prepend(list, event.data, event.lastEventId, TOPIC_MAX_LINES);
  if (tokens) subscribe(url(tokens.subscriber), $('private-state'), show($('private-events')));
  subscribe(url(null), $('anon-state'), show($('anon-events')));
}

// ---- Mercure 1.0: match_urlpattern, and a token in a header --------------------
function startV1Panel(tokens) {
  const form = $('v1-form');
  const input = $('v1-pattern');
  let anon = null;
  let withToken = null;
  const show = (list) => (event) => {
    const label = event.type === 'message' ? event.data : event.type + ': ' + event.data;
    prepend(list, label, event.lastEventId, TOPIC_MAX_LINES);
  };

  function url(pattern, extra) {
    return (lastId) => {
      const q = new URLSearchParams();
      q.append('match_urlpattern', pattern);
      for (const [k, v] of extra) q.append(k, v);
      if (lastId) q.append('last_event_id', lastId);
      return '/.well-known/mercure?' + q.toString();
    };
  }

  function start() {
    if (anon) anon.close();
    if (withToken) withToken.close();
    $('v1-events').replaceChildren();
    $('v1-token-events').replaceChildren();
    const pattern = input.value.trim() || '*';
    anon = subscribe(url(pattern, []), $('v1-state'), show($('v1-events')));
    if (tokens && tokens.subscriberV1)
      withToken = subscribeWithToken(url(pattern, [['match', PRIVATE_TOPIC]]), tokens.subscriberV1,
        $('v1-token-state'), show($('v1-token-events')));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    start();
  });
  start();
}

startClock();
startTopicPanel();
loadDemoTokens().then((tokens) => {
  startPublishPanel(tokens);
  startPrivatePanel(tokens);
  startV1Panel(tokens);
});
