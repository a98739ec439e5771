// Small helpers for bench/run, in Node (already needed by the e2e tests) so the bench needs
// no curl. Loopback only; every wait is bounded.
//   node bench/probe.mjs free-port           → prints a port nobody listens on now
//   node bench/probe.mjs wait URL [ms]       → exits 0 once URL answers any HTTP status
//   node bench/probe.mjs sse URL KEY [n]     → exits 0 if one streamed answer has n (20)
//                                               text deltas and ends with message_stop
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

if (cmd === 'free-port') await freePort();
else if (cmd === 'wait') await wait(Number(arg3 || 5000));
else if (cmd === 'sse') await sse(arg3, Number(arg4 || 20));
else {
  console.error('usage: probe.mjs free-port | wait URL [ms] | sse URL KEY [n]');
  process.exit(2);
}
