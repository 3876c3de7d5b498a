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

startClock();
startTopicPanel();
