// courant admin dashboard: reads /admin/stream (one `stats` event a second,
// cumulative counters as /metrics has them) and draws its charts as SVG.
// No library: a chart is a few polylines in an <svg>.
//
// The admin token is typed in (or, with --demo-auth, taken from
// /demo/tokens.json: DEMO ONLY), kept in sessionStorage (this tab only, gone
// when it closes), checked once with an Authorization header against
// /admin/stats.json (so a refusal shows its reason), then sent as the
// `authorization` query parameter of the EventSource URL, since EventSource
// cannot send headers. courant's access log never writes that parameter.
'use strict';

const TOKEN_KEY = 'courant.adminToken';
const POINTS = 120; // two minutes of one-second samples
const WINDOW_MS = 10000; // percentiles and "last 10 s" columns

const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

let source = null; // the EventSource
let samples = []; // snapshots, oldest first, at most POINTS + 1
let retryTimer = null;

// ---- formatting ----------------------------------------------------------------

function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

function fmtRate(n) {
  if (!Number.isFinite(n)) return '–';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

function fmtBytes(n) {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

function fmtMs(us) {
  if (!Number.isFinite(us)) return '–';
  const ms = us / 1000;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

// ---- charts ----------------------------------------------------------------------

// The smallest of 1, 2, 5 x 10^k at or above v.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

// series: [{key, name, values: [number|null], fmt}], values aligned to the right edge.
function drawChart(svg, series, fmt) {
  const W = Math.max(240, Math.round(svg.clientWidth || 400));
  const H = 150;
  const L = 52;
  const R = 8;
  const T = 18;
  const B = 16;
  let max = 0;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v) && v > max) max = v;
  const top = 4 * niceCeil(max / 4); // four round steps
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  for (let k = 0; k <= 4; k++) {
    const y = T + ((H - T - B) * k) / 4;
    el('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }, svg);
    const label = el('text', { class: 'axis', x: L - 6, y: y + 3, 'text-anchor': 'end' }, svg);
    label.textContent = fmt((top * (4 - k)) / 4);
  }
  for (const [x, anchor, text] of [[L, 'start', '−2 min'], [W - R, 'end', 'now']]) {
    el('text', { class: 'axis', x, y: H - 3, 'text-anchor': anchor }, svg).textContent = text;
  }
  let legendX = L;
  series.forEach((s, i) => {
    const pts = [];
    const n = s.values.length;
    s.values.forEach((v, j) => {
      if (!Number.isFinite(v)) return;
      const x = L + ((W - L - R) * (POINTS - n + j)) / (POINTS - 1);
      const y = T + (H - T - B) * (1 - Math.min(v, top) / top);
      pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    el('polyline', { class: `s${i}`, 'data-series': s.key, points: pts.join(' ') }, svg);
    const last = s.values.length ? s.values[s.values.length - 1] : NaN;
    const t = el('text', { class: `legend s${i}`, x: legendX, y: 11 }, svg);
    t.textContent = `${s.name} ${Number.isFinite(last) ? fmt(last) : '–'}`;
    legendX += 14 + t.textContent.length * 6.2;
  });
}

// ---- from cumulative counters to rates and percentiles -------------------------------

function rate(a, b, pick) {
  const dt = (b.t - a.t) / 1000;
  return dt > 0 ? Math.max(0, pick(b) - pick(a)) / dt : NaN;
}

// Rates between consecutive samples, one per sample after the first.
function rates(pick) {
  const out = [];
  for (let i = 1; i < samples.length; i++) out.push(rate(samples[i - 1], samples[i], pick));
  return out;
}

// The sample at least WINDOW_MS older than samples[i] (or the oldest one).
function windowStart(i) {
  let j = i;
  while (j > 0 && samples[i].t - samples[j].t < WINDOW_MS) j--;
  return samples[j];
}

// The q-quantile (us) of a histogram's samples between two snapshots, as
// Prometheus' histogram_quantile estimates it; NaN when there were none.
function quantile(bounds, c0, c1, q) {
  const d = c1.map((v, k) => Math.max(0, v - (c0 ? c0[k] : 0)));
  const total = d.reduce((a, b) => a + b, 0);
  if (!total) return NaN;
  const rank = q * total;
  let seen = 0;
  for (let k = 0; k < d.length; k++) {
    if (!d[k] || seen + d[k] < rank) {
      seen += d[k];
      continue;
    }
    if (k >= bounds.length) return bounds[bounds.length - 1];
    const lo = k ? bounds[k - 1] : 0;
    return lo + ((bounds[k] - lo) * (rank - seen)) / d[k];
  }
  return bounds[bounds.length - 1];
}

function latencySeries(name) {
  const qs = [
    ['p50', 0.5],
    ['p90', 0.9],
    ['p99', 0.99],
  ];
  return qs.map(([key, q]) => ({
    key,
    name: key,
    values: samples.slice(1).map((s, i) => {
      const from = windowStart(i + 1);
      return quantile(s.latency.le_us, from === s ? null : from.latency[name].counts, s.latency[name].counts, q);
    }),
  }));
}

// ---- rendering ------------------------------------------------------------------------

function setText(id, text) {
  const e = $(id);
  if (e.textContent !== text) e.textContent = text;
}

function renderTiles(s) {
  const prev = samples.length > 1 ? samples[samples.length - 2] : null;
  setText('v-connections', fmtInt(s.connections));
  setText('v-subscribers', fmtInt(s.subscribers));
  setText('v-published', fmtInt(s.published));
  setText('v-deliveries', fmtInt(s.deliveries));
  setText('v-slow', fmtInt(s.slow_disconnects));
  setText('v-publish-rate', prev ? fmtRate(rate(prev, s, (x) => x.published)) : '–');
  setText('v-delivery-rate', prev ? fmtRate(rate(prev, s, (x) => x.deliveries)) : '–');
  setText('v-byte-rate', prev ? fmtBytes(rate(prev, s, (x) => x.bytes)) : '–');
  setText(
    'meta',
    `${s.version} · ${s.workers} worker${s.workers === 1 ? '' : 's'} · up ${Math.floor(s.uptime_s / 60)} min ${s.uptime_s % 60} s`,
  );
}

function refusedTotal(x) {
  return Object.values(x.refused).reduce((a, b) => a + b, 0);
}

function renderRefusals(s) {
  const from = windowStart(samples.length - 1);
  const body = $('refusals').tBodies[0];
  body.replaceChildren();
  for (const [reason, total] of Object.entries(s.refused)) {
    const recent = total - (from.refused[reason] || 0);
    if (!total) continue;
    const tr = body.insertRow();
    tr.insertCell().textContent = reason.replaceAll('_', ' ');
    tr.insertCell().textContent = fmtInt(total);
    tr.insertCell().textContent = fmtInt(recent);
  }
  if (!body.rows.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = 3;
    td.textContent = 'none yet';
  }
}

function renderJournal(s) {
  const j = s.journal;
  const badge = $('journal-badge');
  badge.dataset.state = j.up ? 'up' : 'down';
  badge.textContent = `${j.name} · ${j.up ? 'up' : 'DOWN'}`;
  const prev = samples.length > 1 ? samples[samples.length - 2] : null;
  const facts = [
    ['queued (lag)', fmtInt(j.queued)],
    ['durable/s', prev ? fmtRate(rate(prev, s, (x) => x.journal.events)) : '–'],
    ['failed', fmtInt(j.failed)],
    ['refused', fmtInt(j.refused)],
    [j.name === 'redis' ? 'read back' : 'rows', fmtInt(j.name === 'redis' ? j.read_back : j.rows)],
    ['bad records', fmtInt(j.bad_records)],
  ];
  const dl = $('journal');
  dl.replaceChildren();
  for (const [k, v] of facts) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v;
    div.append(dt, dd);
    dl.append(div);
  }
}

function renderTop(s) {
  const list = $('top');
  list.replaceChildren();
  const max = s.top.length ? s.top[0].subscribers : 1;
  for (const t of s.top) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = t.topic + (t.cut ? '…' : '');
    name.title = name.textContent;
    const n = document.createElement('span');
    n.className = 'n';
    n.textContent = fmtInt(t.subscribers);
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.style.width = `${(100 * t.subscribers) / max}%`;
    track.append(fill);
    li.append(name, n, track);
    list.append(li);
  }
  $('top-note').textContent = s.top_age_ms < 0
    ? 'counting…'
    : s.top.length
      ? `exact topics; counted ${(s.top_age_ms / 1000).toFixed(0)} s ago or less`
      : 'no subscriber holds an exact topic';
}

function renderWorkers(s) {
  const prev = samples.length > 1 ? samples[samples.length - 2] : null;
  const body = $('workers').tBodies[0];
  body.replaceChildren();
  s.per_worker.forEach((w, i) => {
    const p = prev && prev.per_worker[i];
    const dt = prev ? (s.t - prev.t) / 1000 : 0;
    const busy = p && dt > 0 ? Math.min(100, (100 * (w.busy_us - p.busy_us)) / (dt * 1e6)) : NaN;
    const tr = body.insertRow();
    tr.insertCell().textContent = `w${i}`;
    const c = tr.insertCell();
    const meter = document.createElement('span');
    meter.className = 'meter';
    const fill = document.createElement('span');
    fill.style.width = `${Number.isFinite(busy) ? busy : 0}%`;
    meter.append(fill);
    c.append(meter, document.createTextNode(Number.isFinite(busy) ? `${busy.toFixed(1)} %` : '–'));
    tr.insertCell().textContent = p && dt > 0 ? fmtRate((w.turns - p.turns) / dt) : '–';
    tr.insertCell().textContent = fmtInt(w.conns);
    tr.insertCell().textContent = fmtInt(w.subscribers);
    tr.insertCell().textContent = p && dt > 0 ? fmtRate((w.deliveries - p.deliveries) / dt) : '–';
  });
}

function renderCharts() {
  const tail = (f) => samples.slice(1).map(f);
  drawChart(
    $('chart-conns'),
    [
      { key: 'connections', name: 'connections', values: tail((s) => s.connections) },
      { key: 'subscribers', name: 'subscribers', values: tail((s) => s.subscribers) },
    ],
    fmtInt,
  );
  drawChart(
    $('chart-rates'),
    [
      { key: 'publishes', name: 'publishes/s', values: rates((s) => s.published) },
      { key: 'deliveries', name: 'deliveries/s', values: rates((s) => s.deliveries) },
    ],
    fmtRate,
  );
  drawChart($('chart-bytes'), [{ key: 'bytes', name: 'bytes/s', values: rates((s) => s.bytes) }], fmtBytes);
  drawChart($('chart-lat-pe'), latencySeries('publish_enqueue'), fmtMs);
  drawChart($('chart-lat-ew'), latencySeries('enqueue_written'), fmtMs);
  drawChart(
    $('chart-refusals'),
    [
      { key: 'slow', name: 'slow disconnects/s', values: rates((s) => s.slow_disconnects) },
      { key: 'refusals', name: 'refusals/s', values: rates(refusedTotal) },
    ],
    fmtRate,
  );
  drawChart(
    $('chart-journal'),
    [
      { key: 'queued', name: 'queued', values: tail((s) => s.journal.queued) },
      { key: 'durable', name: 'durable/s', values: rates((s) => s.journal.events) },
    ],
    fmtRate,
  );
}

function onSnapshot(s) {
  const last = samples[samples.length - 1];
  if (last && s.t <= last.t) return; // older than what we have
  // Two snapshots moments apart (the check, then the stream's first) would
  // make wild rates: the newer replaces the older.
  if (last && s.t - last.t < 500) samples[samples.length - 1] = s;
  else samples.push(s);
  if (samples.length > POINTS + 1) samples.shift();
  $('board').hidden = false;
  renderTiles(s);
  renderRefusals(s);
  renderJournal(s);
  renderTop(s);
  renderWorkers(s);
  renderCharts();
  document.body.dataset.samples = String(samples.length);
}

// ---- the connection ---------------------------------------------------------------

function setState(state, text) {
  const b = $('state');
  b.dataset.state = state;
  b.textContent = text || state;
}

function showReason(text) {
  const p = $('reason');
  p.hidden = !text;
  p.textContent = text || '';
}

function disconnect() {
  if (source) source.close();
  source = null;
  clearTimeout(retryTimer);
}

// Asks /admin/stats.json (with the token in a header, or none): a refusal
// shows the hub's reason. Resolves the first snapshot, or null.
async function check(token) {
  let res;
  try {
    res = await fetch('/admin/stats.json', {
      cache: 'no-store',
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
  } catch (err) {
    setState('refused', 'unreachable');
    showReason(`The hub did not answer: ${err.message}`);
    return null;
  }
  if (!res.ok) {
    const why = (await res.text()).trim();
    setState('refused', `refused ${res.status}`);
    showReason(`${res.status}: ${why}${token ? '' : ' (enter an admin token above)'}`);
    $('board').hidden = true;
    return null;
  }
  return res.json();
}

async function connect(token) {
  disconnect();
  setState('connecting', 'connecting');
  const first = await check(token);
  if (!first) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  showReason('');
  onSnapshot(first);
  source = new EventSource(`/admin/stream?authorization=${encodeURIComponent(token)}`);
  source.addEventListener('open', () => setState('live', 'live'));
  source.addEventListener('stats', (e) => onSnapshot(JSON.parse(e.data)));
  source.addEventListener('error', () => {
    if (source && source.readyState === EventSource.CLOSED) {
      // Refused on a reconnect (an expired token?): ask again, with the reason.
      setState('connecting', 'reconnecting');
      retryTimer = setTimeout(() => connect(token), 2000);
    } else {
      setState('connecting', 'reconnecting');
    }
  });
}

async function offerDemoToken() {
  try {
    const res = await fetch('/demo/tokens.json', { cache: 'no-store' });
    if (!res.ok) return;
    const t = await res.json();
    if (!t.admin) return;
    const b = $('demo-token');
    b.hidden = false;
    b.addEventListener('click', () => {
      $('token').value = '';
      connect(t.admin);
    });
  } catch {
    // no demo tokens: nothing to offer
  }
}

function start() {
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    if (token) connect(token);
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    disconnect();
    samples = [];
    $('board').hidden = true;
    setState('idle', 'no token');
    check(null);
  });
  offerDemoToken();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) connect(saved);
  else check(null); // shows the hub's refusal: the data needs a token
}

start();
