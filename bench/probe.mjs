// Small helpers for bench/run, in Node (already needed by the e2e tests) so the bench needs
// no curl. Loopback only; every wait is bounded.
//   node bench/probe.mjs free-port           → prints a port nobody listens on now
//   node bench/probe.mjs wait URL [ms]       → exits 0 once URL answers any HTTP status
//   node bench/probe.mjs sse URL KEY [n]     → exits 0 if one streamed answer has n (20)
//                                               text deltas and ends with message_stop
//   node bench/probe.mjs ttfb URL KEY [n] [ms] → n (500) streamed requests one after another
//                                               on one keep-alive connection, stopping at ms
//                                               (10000); prints "requests=N p50_us=… p99_us=…"
//                                               of the time from sending the request to the
//                                               first body byte
import http from 'node:http';
import net from 'node:net';

const [cmd, url, arg3, arg4] = process.argv.slice(2);

async function freePort() {
  const s = net.createServer();
  await new Promise((res) => s.listen(0, '127.0.0.1', res));
  const { port } = s.address();
  await new Promise((res) => s.close(res));
  console.log(port);
}

async function wait(ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  console.error(`probe: ${url} not answering after ${ms} ms`);
  process.exit(1);
}

async function sse(key, n) {
  const r = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  const deltas = (text.match(/^event: content_block_delta$/gm) || []).length;
  if (r.status !== 200 || deltas !== n || !/^event: message_stop$/m.test(text)) {
    console.error(`probe: ${url} answered ${r.status} with ${deltas} deltas (want ${n} and message_stop)`);
    process.exit(1);
  }
}

// Time to first byte of a streamed answer: the request is written, the clock runs until the
// first chunk of the body arrives (the response head alone does not count).
async function ttfb(key, n, ms) {
  const u = new URL('/v1/messages', url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hi' }] });
  const one = () => new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = 0n;
    const req = http.request(u, {
      method: 'POST', agent, timeout: 10000,
      headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.on('data', () => { if (!first) first = process.hrtime.bigint(); });
      res.on('end', () => (res.statusCode === 200 && first ? resolve(Number(first - t0) / 1000) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
  const deadline = Date.now() + ms;
  const us = [];
  for (let i = 0; i < 20 && Date.now() < deadline; i++) await one(); // warm-up
  while (us.length < n && Date.now() < deadline) us.push(await one());
  agent.destroy();
  us.sort((a, b) => a - b);
  const pct = (p) => Math.round(us[Math.min(us.length - 1, Math.floor((us.length * p) / 100))] || 0);
  console.log(`requests=${us.length} p50_us=${pct(50)} p99_us=${pct(99)}`);
}

if (cmd === 'free-port') await freePort();
else if (cmd === 'ttfb') await ttfb(arg3, Number(arg4 || 500), Number(process.argv[6] || 10000));
else if (cmd === 'wait') await wait(Number(arg3 || 5000));
else if (cmd === 'sse') await sse(arg3, Number(arg4 || 20));
else {
  console.error('usage: probe.mjs free-port | wait URL [ms] | sse URL KEY [n] | ttfb URL KEY [n] [ms]');
  process.exit(2);
}
