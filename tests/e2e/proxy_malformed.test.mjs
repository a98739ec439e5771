// Hostile and broken clients over raw sockets (issue 4, Part A12): a bad request line, bad
// chunk sizes, conflicting framing, a header flood over 64 KiB and a 1 byte/s slowloris each
// get their error status and a closed connection, and never disturb a healthy stream that
// runs at the same time. Nothing malformed reaches the upstream.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageBody } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, parseHttpResponse, pool, rawConnect } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const HEALTHY_TEXT = 'A healthy stream, undisturbed by its neighbours.';

const POST = 'POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n';
const flood = Array.from({ length: 1200 }, (_, i) => `x-flood-${i}: ${'a'.repeat(60)}\r\n`).join(''); // ~80 KiB
const CASES = [
  { name: 'bad request line', data: 'THIS IS NOT HTTP\r\n\r\n', status: 400 },
  { name: 'binary garbage', data: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]), status: 400 },
  { name: 'bad chunk size', data: `${POST}transfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'negative chunk size', data: `${POST}transfer-encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'overflowing chunk size', data: `${POST}transfer-encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n0\r\n\r\n`, status: 400 },
  { name: 'content-length with chunked', data: `${POST}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'two content-lengths', data: `${POST}content-length: 5\r\ncontent-length: 6\r\n\r\nhello!`, status: 400 },
  { name: 'non-numeric content-length', data: `${POST}content-length: abc\r\n\r\n`, status: 400 },
  { name: 'header without a colon', data: 'GET /v1/models HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n', status: 400 },
  { name: 'header flood > 64 KiB', data: `GET /v1/models HTTP/1.1\r\nhost: x\r\n${flood}\r\n`, status: 431 },
];

/** Sends one malformed request; resolves {status, body, how} once the proxy closed it. */
async function misbehave(port, data) {
  const c = await rawConnect({ port, data, timeoutMs: 15000 });
  const how = await c.closed;
  const r = parseHttpResponse(c.bytes());
  return { how, status: r?.status ?? 0, body: r?.body.toString() ?? '', raw: c.text() };
}

function healthyStream(port, timeoutMs = 20000) {
  return rawRequest({ port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })), timeoutMs });
}

function assertHealthy(r, what) {
  assert.equal(r.status, 200, `${what}: status`);
  assert.equal(r.end, 'complete', `${what}: ended ${r.end} ${r.errorCode ?? ''}`);
  assert.equal(r.events.at(-1)?.event, 'message_stop', what);
  const text = r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
  assert.equal(text, HEALTHY_TEXT, what);
}

describe('malformed requests over raw sockets', { skip }, () => {
  test('each gets its error status and a closed connection while a healthy stream runs', async (t) => {
    const { sim, server } = await pool(t, { over: { response: { text: HEALTHY_TEXT, deltas: 30, deltaDelayMs: 50 } } });
    const stream = healthyStream(server.port);
    // Three rounds of every case at once, in the middle of the stream.
    await sleep(200);
    const rounds = [];
    for (let round = 0; round < 3; round++) rounds.push(...CASES.map((c) => misbehave(server.port, c.data).then((r) => ({ c, r }))));
    for (const { c, r } of await Promise.all(rounds)) {
      assert.equal(r.status, c.status, `${c.name}: ${r.raw.slice(0, 200)}`);
      assert.notEqual(r.how, 'timeout', `${c.name}: the connection was closed`);
      const err = JSON.parse(r.body);
      assert.equal(err.type, 'error', c.name);
      assert.equal(typeof err.error.message, 'string', c.name);
      assert.match(r.raw, /\r\nconnection: close\r\n/i, c.name);
    }
    assertHealthy(await stream, 'the concurrent stream');
    assert.equal((await sim.state()).requests, 1, 'only the healthy request reached the upstream');
    // Still serving, and nothing is left in flight.
    assertHealthy(await healthyStream(server.port), 'a stream afterwards');
    const st = await server.status();
    assert.equal(st.scheduler.globalInFlight, 0);
  });

  test('a 1 byte/s slowloris head gets 408 and is closed; healthy streams keep flowing meanwhile', async (t) => {
    const { server } = await pool(t, { over: { response: { text: HEALTHY_TEXT, deltas: 10, deltaDelayMs: 20 } } });
    const head = `${POST}content-length: 20\r\nx-slow: ${'s'.repeat(200)}\r\n\r\n`;
    const N = 16;
    const slow = await Promise.all(Array.from({ length: N }, () => rawConnect({ port: server.port, timeoutMs: 60000 })));
    t.after(() => slow.forEach((c) => c.sock.destroy()));
    let pos = 0;
    const drip = setInterval(() => {
      for (const c of slow) if (!c.isClosed()) c.write(head[pos % head.length]);
      pos++;
    }, 1000);
    t.after(() => clearInterval(drip));
    for (let i = 0; ; i++) {
      assertHealthy(await healthyStream(server.port), `healthy stream #${i} during the slowloris`);
      if (slow.every((c) => c.isClosed())) break;
      assert.ok(i < 200, 'the slowloris connections were never closed');
      await sleep(400);
    }
    clearInterval(drip);
    assert.ok(pos < 45, `closed after ${pos} bytes (s); the head timeout is 30 s`);
    for (const c of slow) {
      const r = parseHttpResponse(c.bytes());
      assert.equal(r?.status, 408, c.text().slice(0, 200));
      assert.equal(JSON.parse(r.body).type, 'error');
    }
    assertHealthy(await healthyStream(server.port), 'a stream afterwards');
  });
});
