// The queue scenarios (§6.9, §13 scenarios 31–33, Part A1/A2): holds with heartbeats, FIFO
// for newcomers (A2), the queue-full limit, and a recovery beyond the window failing fast.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { messageBody } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY } from './lib/pool.mjs';
import { rpool, send } from './lib/routing.mjs';

const skip = SKIP_PROXY;
const SESSION_LIMIT = 'Session limit reached';
const bothLimited = (retryAfter) => ({
  faults: [
    { kind: 'rate_limit', account: 'max-a', retryAfter, count: 1, message: SESSION_LIMIT },
    { kind: 'rate_limit', account: 'pro-b', retryAfter, count: 1, message: SESSION_LIMIT },
  ],
});
const streamReq = (port, timeoutMs = 15000) =>
  rawRequest({ port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })), timeoutMs });

describe('queue scenarios (§13 31–33)', { skip }, () => {
  test('31: a streaming request whose recovery is beyond its hold window (a configured 240 s tolerance) → immediate 429 JSON (not SSE)', async (t) => {
    // Part A1: no hidden 240 s clamp — the window here is the one the config sets.
    const { server, cur } = await rpool(t, { over: bothLimited(600), config: { queue: { enabled: true, streamClientToleranceMs: 240000 } } });
    const r = await streamReq(server.port);
    assert.equal(r.status, 429, r.body);
    assert.match(r.headers['content-type'], /^application\/json/);
    const body = JSON.parse(r.body);
    assert.equal(body.error.type, 'rate_limit_error');
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra > 590 && ra <= 600, `retry-after ${ra}`);
    assert.ok(r.firstByteMs < 3000, `answered at once (${r.firstByteMs} ms)`);
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 429]);
  });

  test('31: a held stream gets 200 text/event-stream, `event: ping` heartbeats, then the real events', async (t) => {
    const { server } = await rpool(t, { over: bothLimited(2), config: { queue: { enabled: true, heartbeatMs: 1000, pollMs: 200 } } });
    const r = await streamReq(server.port, 20000);
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.equal(r.events[0].raw, 'event: ping\ndata: {}');
    assert.equal(r.events.at(-1).event, 'message_stop');
  });

  test('32 (Part A2): while one request is held, a new request joins the queue FIFO instead of an immediate 429', async (t) => {
    const { server } = await rpool(t, { over: bothLimited(2), config: { queue: { enabled: true, pollMs: 200 } } });
    const first = send(server, {}, {}, 20000);
    await new Promise((res) => setTimeout(res, 300));
    const second = await send(server, {}, {}, 20000);
    assert.equal(second.status, 200, second.text);
    assert.equal((await first).status, 200);
  });

  test('33: queue.maxConcurrentQueued 1 with one request held → a further one gets a plain 429', async (t) => {
    const { server } = await rpool(t, { over: bothLimited(3), config: { queue: { enabled: true, maxConcurrentQueued: 1, pollMs: 200 } } });
    const first = send(server, {}, {}, 20000);
    await new Promise((res) => setTimeout(res, 300));
    const second = await send(server);
    assert.equal(second.status, 429, second.text);
    assert.equal((await first).status, 200);
  });
});
