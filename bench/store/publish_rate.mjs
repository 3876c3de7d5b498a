// publish_rate.mjs - publish throughput of a running courant: C concurrent
// publishers, each on its own keep-alive connection, for S seconds.
//
//   node bench/store/publish_rate.mjs http://127.0.0.1:8000 [C=32] [S=5]
//
// Prints "N publishes in S s = R/s (non-200: X)". The client is node, so for
// the memory-only hub it may be the bottleneck: compare runs made together.
import http from 'node:http';

const base = new URL(process.argv[2] || 'http://127.0.0.1:8000');
const conc = Number(process.argv[3] || 32);
const secs = Number(process.argv[4] || 5);
const body = 'topic=' + encodeURIComponent('https://example.com/bench') + '&data=' + 'x'.repeat(100);

function post(agent) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, path: '/.well-known/mercure', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let ok = 0, bad = 0;
const end = Date.now() + secs * 1000;
const t0 = Date.now();
await Promise.all(Array.from({ length: conc }, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (Date.now() < end) {
    if ((await post(agent)) === 200) ok++;
    else bad++;
  }
  agent.destroy();
}));
const dt = (Date.now() - t0) / 1000;
console.log(`${ok} publishes in ${dt.toFixed(1)} s = ${Math.round(ok / dt)}/s (non-200: ${bad}, ${conc} publishers)`);
