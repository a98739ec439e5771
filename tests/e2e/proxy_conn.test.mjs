// Connections and request lifecycles through the proxy (§3.4, §3.7, §6.5, Part A12):
// keep-alive reuse (HEAD included), client disconnects that free the account, a mid-stream
// upstream reset, an unreachable upstream, the global buffered-bytes cap, and many
// concurrent streams arriving intact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageBody, postMessages } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, bodyOfSize, parseHttpResponse, pool, rawConnect, waitFor } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const TEXT = 'Connections come and go; the pool stays.';

const req = (method, path, body = '', extra = '') =>
  `${method} ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${extra}` +
  (method === 'GET' || method === 'HEAD' ? '' : `content-length: ${Buffer.byteLength(body)}\r\n`) +
  `\r\n${body}`;

/** Splits several responses read from one keep-alive connection; HEAD answers have no body. */
function splitResponses(buf, methods) {
  const out = [];
  let rest = buf;
  for (const m of methods) {
    const i = rest.indexOf('\r\n\r\n');
    if (i < 0) break;
    const head = rest.subarray(0, i + 4).toString('latin1');
    const headers = Object.fromEntries(
      head
        .split('\r\n')
        .slice(1)
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    const status = Number(head.split(' ')[1]);
    rest = rest.subarray(i + 4);
    if (m === 'HEAD') {
      out.push({ status, headers, body: '' });
      continue;
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts = [];
      for (;;) {
        const j = rest.indexOf('\r\n');
        const size = parseInt(rest.subarray(0, j).toString('latin1'), 16);
        if (size === 0) {
          rest = rest.subarray(j + 4);
          break;
        }
        parts.push(rest.subarray(j + 2, j + 2 + size));
        rest = rest.subarray(j + 2 + size + 2);
      }
      out.push({ status, headers, body: Buffer.concat(parts).toString() });
    } else {
      const len = Number(headers['content-length'] ?? 0);
      out.push({ status, headers, body: rest.subarray(0, len).toString() });
      rest = rest.subarray(len);
    }
  }
  return { responses: out, rest };
}

describe('connections and lifecycles', { skip }, () => {
  test('keep-alive: HEAD, a stream, an upstream 404 and JSON answers in turn on one connection', async (t) => {
    const { sim, server } = await pool(t, { only: ['key-1'], over: { response: { text: TEXT, deltas: 4 } } });
    const c = await rawConnect({ port: server.port });
    t.after(() => c.sock.destroy());
    const steps = [
      ['HEAD', '/', ''],
      ['POST', '/v1/messages?beta=true', JSON.stringify(messageBody({ stream: true }))],
      ['GET', '/v1/nope', ''],
      ['POST', '/v1/messages', JSON.stringify(messageBody())],
      ['POST', '/v1/messages/count_tokens', JSON.stringify(messageBody())],
    ];
    // One after the other on the same socket, waiting for each answer.
    let got = 0;
    for (const [m, p, b] of steps) {
      c.write(req(m, p, b));
      got++;
      await waitFor(() => splitResponses(c.bytes(), steps.slice(0, got).map((s) => s[0])).responses.length === got && !c.isClosed(), {
        what: `answer ${got} (${m} ${p})`,
      });
    }
    await sleep(50);
    const { responses, rest } = splitResponses(c.bytes(), steps.map((s) => s[0]));
    assert.equal(rest.length, 0, 'no stray bytes (a HEAD answer has no body)');
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 404, 200, 200]);
    assert.match(responses[1].body, /event: message_stop/);
    assert.equal(JSON.parse(responses[2].body).error.type, 'not_found_error');
    assert.equal(JSON.parse(responses[3].body).content[0].text, TEXT);
    assert.ok(JSON.parse(responses[4].body).input_tokens >= 1);
    for (const r of responses) assert.equal(r.headers['x-maxpool-worker'], String(server.pid));
    assert.equal(c.isClosed(), false, 'the connection stays open');
    const seen = await sim.requests(5);
    assert.deepEqual(seen.map((q) => `${q.method} ${q.target}`), steps.map(([m, p]) => `${m} ${p}`));
  });

  test('pipelining: two requests in one write get two answers, in order', async (t) => {
    const { sim, server } = await pool(t, { only: ['max-a'], over: { response: { text: TEXT, deltas: 3 } } });
    const b1 = JSON.stringify(messageBody({ stream: true }));
    const b2 = JSON.stringify(messageBody({ max_tokens: 7 }));
    const c = await rawConnect({ port: server.port, data: req('POST', '/v1/messages', b1) + req('POST', '/v1/messages?second=1', b2, 'connection: close\r\n'), timeoutMs: 10000 });
    await c.closed;
    const { responses } = splitResponses(c.bytes(), ['POST', 'POST']);
    assert.deepEqual(responses.map((r) => r.status), [200, 200]);
    assert.match(responses[0].body, /event: message_stop/);
    assert.equal(JSON.parse(responses[1].body).content[0].text, TEXT);
    assert.deepEqual((await sim.requests(2)).map((q) => q.target), ['/v1/messages', '/v1/messages?second=1']);
  });

  test('a client that leaves mid-stream frees its account and the upstream transfer', async (t) => {
    const { server } = await pool(t, { only: ['max-a'], over: { faults: [{ kind: 'stall', afterEvents: 3, count: 1 }] } });
    const r = await rawRequest({
      port: server.port,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(messageBody({ stream: true })),
      stopWhen: (x) => x.events.length >= 3,
    });
    assert.equal(r.end, 'stopped');
    await waitFor(async () => (await server.status()).accounts[0].inFlight === 0, { what: 'inFlight back to 0' });
    await waitFor(() => /Client left/.test(server.stderr()), { what: 'the "Client left" log line' });
    // The account serves the next request at once.
    const next = await postMessages(server.url, {});
    assert.equal(next.status, 200);
    const st = await server.status();
    assert.equal(st.accounts[0].inFlight, 0);
    assert.equal(st.scheduler.globalInFlight, 0);
  });

  test('a client that leaves before the upstream answered frees the account', async (t) => {
    const { server } = await pool(t, { only: ['key-1'], over: { faults: [{ kind: 'slow_first_byte', delayMs: 3000, count: 1 }] } });
    const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody()), timeoutMs: 300 });
    assert.equal(r.end, 'timeout');
    await waitFor(async () => (await server.status()).accounts[0].inFlight === 0, { timeoutMs: 2000, what: 'inFlight back to 0 before the upstream answered' });
    assert.equal((await postMessages(server.url, {})).status, 200);
  });

  test('an upstream reset mid-stream ends the stream with an SSE connection_unavailable error', async (t) => {
    const { server } = await pool(t, { only: ['max-a'], over: { response: { text: TEXT, deltas: 10 }, faults: [{ kind: 'reset', afterEvents: 5, count: 1 }] } });
    const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })) });
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete', 'the client stream is ended cleanly');
    const last = r.events.at(-1);
    assert.equal(last.event, 'error', r.body.slice(-300));
    assert.equal(last.data.error.type, 'connection_unavailable');
    assert.equal(r.partialEvent, '');
    assert.ok(r.events.length >= 6);
    const st = await server.status();
    assert.equal(st.accounts[0].inFlight, 0);
  });

  test('upstream unreachable: 503 connection_unavailable naming ECONNREFUSED after the network soak (§13 scenario 35)', async (t) => {
    // The soak's floor (5 s) instead of its 45 s default keeps the test short.
    const { sim, server } = await pool(t, { only: ['max-a', 'key-1'], serverEnv: { MAXPOOL_NETWORK_SOAK_NONSTREAM_MS: '5000' } });
    await sim.stop();
    const r = await postMessages(server.url, {}, messageBody(), { timeoutMs: 60000 });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.type, 'connection_unavailable');
    assert.match(r.json.error.message, /ECONNREFUSED/);
    const st = await server.status();
    assert.ok(st.accounts.every((a) => a.inFlight === 0));
  });

  test('limits.maxBufferedBytes: a body that would exceed the global cap gets 503 while another is held', async (t) => {
    const { server } = await pool(t, {
      only: ['key-1'],
      over: { faults: [{ kind: 'slow_first_byte', delayMs: 1500, count: 1 }] },
      config: { limits: { maxBufferedBytes: 1048576 } },
    });
    const big = bodyOfSize(700 * 1024);
    const held = postMessages(server.url, {}, big.toString(), { timeoutMs: 10000 });
    await waitFor(async () => (await server.status()).scheduler.globalInFlight === 1, { what: 'the first body in flight' });
    const second = await postMessages(server.url, {}, big.toString());
    assert.equal(second.status, 503, second.text);
    assert.equal(second.json.type, 'error');
    assert.equal((await held).status, 200);
    assert.equal((await postMessages(server.url, {}, big.toString())).status, 200, 'room again once the first finished');
  });

  test('40 concurrent streams all arrive complete and intact', async (t) => {
    const { sim, server } = await pool(t, { over: { response: { text: TEXT, deltas: 25, deltaDelayMs: 5 } } });
    const all = await Promise.all(
      Array.from({ length: 40 }, () =>
        rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })), timeoutMs: 20000 }),
      ),
    );
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.equal(r.end, 'complete');
      assert.equal(r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), TEXT);
    }
    assert.equal((await sim.state()).requests, 40);
    const st = await server.status();
    assert.equal(st.scheduler.globalInFlight, 0);
  });

  test('SSE events are relayed as they arrive, never batched', async (t) => {
    const { server } = await pool(t, { only: ['key-1'], over: { response: { text: TEXT, deltas: 6, deltaDelayMs: 150 } } });
    const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })) });
    assert.equal(r.end, 'complete');
    const deltas = r.events.filter((e) => e.event === 'content_block_delta');
    assert.equal(deltas.length, 6);
    // The upstream spaces the deltas 150 ms apart; a batching relay would deliver them together.
    const spread = deltas.at(-1).atMs - deltas[0].atMs;
    assert.ok(spread >= 500, `deltas arrived within ${spread.toFixed(0)} ms of each other`);
    assert.ok(r.events[0].atMs < deltas.at(-1).atMs - 500, 'message_start came out before the stream ended');
  });

  test('usage: per-account token totals in /maxpool/status match what the upstream charged', async (t) => {
    const { sim, server } = await pool(t);
    for (let i = 0; i < 6; i++) {
      const body = messageBody({ stream: i % 2 === 0, messages: [{ role: 'user', content: 'x'.repeat(100 * i) }] });
      assert.equal((await postMessages(server.url, {}, body)).status, 200);
    }
    assert.equal((await postMessages(server.url, {}, messageBody(), { path: '/v1/messages/count_tokens' })).status, 200);
    const st = await server.status();
    const charged = Object.fromEntries((await sim.state()).accounts.map((a) => [a.name, [a.inputTokens, a.outputTokens]]));
    for (const a of st.accounts) {
      assert.deepEqual([a.usage.totalInputTokens, a.usage.totalOutputTokens], charged[a.name], a.name);
      assert.equal(a.inFlight, 0);
      assert.equal(a.failedRequests, 0);
    }
    assert.equal(st.accounts.reduce((n, a) => n + a.completedRequests, 0), 7);
  });

  test('Expect: 100-continue from the client is answered and the body still arrives', async (t) => {
    const { sim, server } = await pool(t, { only: ['key-1'] });
    const body = JSON.stringify(messageBody());
    const c = await rawConnect({ port: server.port, data: `POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n` });
    await waitFor(() => c.text().startsWith('HTTP/1.1 100'), { what: '100 Continue' });
    c.write(body);
    await c.closed;
    const after100 = c.bytes().subarray(c.bytes().indexOf('\r\n\r\n') + 4);
    const r = parseHttpResponse(after100);
    assert.equal(r.status, 200);
    const [seen] = await sim.requests(1);
    assert.equal(seen.bodyBytes, body.length);
    assert.equal(seen.headers.expect, undefined, 'the proxy answered the expectation itself');
  });
});
