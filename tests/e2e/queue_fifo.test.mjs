// The queue's order, limits and ends (issue 6; SPEC §6.9, §6.10, §10.1; §13 scenarios 32, 33
// and 43 with Part A2): newcomers join the FIFO instead of an instant 429; a full queue
// refuses plainly, or in-band once our heartbeat is on the wire; a held JSON request that
// outlives queue.nonStreamMaxWaitMs gets the honest 429; a shutdown never strands a held
// request.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { messageBody } from './lib/harness.mjs';
import { SKIP_PROXY, pool, sha256, waitFor } from './lib/pool.mjs';
import { startServer } from './lib/server.mjs';
import { FAST_QUEUE, assertHeldStream, namedStream, send, sessionLimit, startFakeUpstream, streamText, waitQueued } from './lib/hold.mjs';

const skip = SKIP_PROXY;
const TWO = ['max-a', 'pro-b'];
const TEXT = 'Your turn came.';
const QUEUE_FULL = 'Maxpool queue is full — too many requests are already waiting for capacity. Try again shortly.';
const nowSec = () => Date.now() / 1000;

function exitOf(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
}

describe('§13 scenario 32 with Part A2: newcomers join the FIFO', { skip }, () => {
  test('while one request is held, a new plain request and a new thinking request are held behind it, and all are sent in arrival order', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT, deltas: 3 }, faults: [sessionLimit('max-a', 3, { count: 1 }), sessionLimit('pro-b', 3, { count: 1 })] },
      config: { queue: FAST_QUEUE },
    });
    const bodies = [
      JSON.stringify(namedStream('first (stream)')),
      JSON.stringify(messageBody({ messages: [{ role: 'user', content: 'second (plain JSON)' }] })),
      JSON.stringify(messageBody({ stream: true, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'third (thinking)' }] })),
    ];
    const results = [];
    for (let i = 0; i < bodies.length; i++) {
      results.push(send(server, bodies[i], { timeoutMs: 20000 }));
      await waitQueued(server, i + 1);
    }
    // Part A2: nobody got the reference's instant "at their limit" 429.
    assert.equal((await sim.state()).requests, 2, 'only the first request went upstream (and met both limits)');
    const [r1, r2, r3] = await Promise.all(results);
    assertHeldStream(r1, TEXT);
    assert.equal(r2.status, 200, r2.body);
    assert.equal(JSON.parse(r2.body).content[0].text, TEXT);
    assert.equal(r3.status, 200, r3.body);
    assert.equal(streamText(r3), TEXT);
    const served = (await sim.requests(10)).filter((q) => q.status === 200).map((q) => q.bodySha256);
    assert.deepEqual(served, bodies.map(sha256), 'served once each, first come first served');
  });
});

describe('every held request keeps its own window (§6.9 wait loop)', { skip }, () => {
  test('a JSON request behind a long-held stream still gets its 429 when its own window ends', async (t) => {
    // An Opus-only limit (429 with retry-after 30 min and low windows: a model-scoped bench,
    // §6.3) holds an Opus stream at the head for long; a Sonnet JSON request behind it waits
    // its turn (FIFO), but no longer than its own queue.nonStreamMaxWaitMs (3 s).
    const { server } = await pool(t, {
      only: ['max-a'],
      over: { faults: [sessionLimit('max-a', 1800, { count: 1 })] },
      config: { queue: { ...FAST_QUEUE, nonStreamMaxWaitMs: 3000 } },
    });
    const head = send(server, namedStream('opus, held for long', { model: 'claude-opus-4-1' }), { timeoutMs: 20000, stopWhen: (r) => r.events.length >= 12 });
    await waitQueued(server, 1);
    const r = await send(server, messageBody({ model: 'claude-sonnet-4-5' }), { timeoutMs: 12000 });
    assert.notEqual(r.end, 'timeout', `the JSON request was stranded behind the head for ${Math.round(r.endMs)} ms`);
    assert.equal(r.status, 429, r.body);
    assert.ok(r.endMs >= 2500 && r.endMs < 6000, `answered when its 3 s window ended (${Math.round(r.endMs)} ms)`);
    assert.equal(JSON.parse(r.body).error.type, 'rate_limit_error');
    const h = await head;
    assert.equal(h.events[0].event, 'ping', 'the Opus stream is still held');
    assert.ok(!h.events.some((e) => e.event === 'error'), h.body);
  });
});

describe('a client that leaves while held (§6.9)', { skip }, () => {
  test('frees its place at once and its request is never sent', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT }, faults: [sessionLimit('max-a', 3, { count: 1 }), sessionLimit('pro-b', 3, { count: 1 })] },
      config: { queue: FAST_QUEUE },
    });
    const gone = await send(server, namedStream('leaves after the first ping'), { stopWhen: (r) => r.events.length >= 1 });
    assert.equal(gone.end, 'stopped');
    assert.equal(gone.events[0].event, 'ping');
    await waitQueued(server, 0, 2000);
    const body = JSON.stringify(messageBody({ messages: [{ role: 'user', content: 'stays' }] }));
    const r = await send(server, body, { timeoutMs: 20000 });
    assert.equal(r.status, 200, r.body);
    const seen = await sim.requests(10);
    assert.deepEqual(
      seen.map((q) => q.status),
      [429, 429, 200],
    );
    assert.equal(seen[2].bodySha256, sha256(body), 'only the request that stayed went up after the recovery');
    assert.match(server.stderr(), /Client left after [\d.]+s on "-" \(/);
  });
});

describe('§13 scenario 33: a full queue', { skip }, () => {
  test('maxConcurrentQueued 1: a further request that would wait gets the plain 429 at once (nothing was sent yet)', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT }, faults: [sessionLimit('max-a', 4, { count: 1 }), sessionLimit('pro-b', 4, { count: 1 })] },
      config: { queue: { ...FAST_QUEUE, maxConcurrentQueued: 1 } },
    });
    const held = send(server, messageBody(), { timeoutMs: 20000 });
    await waitQueued(server, 1);
    for (const stream of [false, true]) {
      const r = await send(server, messageBody({ stream }), { timeoutMs: 5000 });
      assert.ok(r.endMs < 1500, `refused at once (${Math.round(r.endMs)} ms)`);
      assert.equal(r.status, 429, r.body);
      assert.match(r.headers['content-type'], /application\/json/, 'no stream was started for it');
      const j = JSON.parse(r.body);
      assert.equal(j.error.type, 'rate_limit_error');
      assert.ok(Number(r.headers['retry-after']) >= 1, 'retry-after');
    }
    const r = await held;
    assert.equal(r.status, 200, 'the held one still completes');
    assert.equal((await sim.state()).requests, 3);
  });

  test('maxConcurrentQueued 1: a stream whose grace heartbeat is already on the wire ends with the SSE error "Maxpool queue is full …"', async (t) => {
    // The sim cannot answer an error late, so a scripted upstream does: the stream's attempt
    // gets its 429 after 2.5 s (its grace heartbeat started at 1 s); meanwhile a JSON request
    // met an immediate 429 and took the only queue place.
    const LIMIT = { type: 'error', error: { type: 'rate_limit_error', message: 'Session limit reached' } };
    const up = await startFakeUpstream((n, req, body) => {
      const stream = JSON.parse(body).stream === true;
      if (n === 1) {
        assert.equal(stream, true, 'the stream goes up first');
        return { status: 429, headers: { 'retry-after': '3' }, body: LIMIT, delayMs: 2500 };
      }
      if (n === 2) return { status: 429, headers: { 'retry-after': '3' }, body: LIMIT };
      return {
        status: 200,
        body: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [{ type: 'text', text: TEXT }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } },
      };
    });
    t.after(() => up.close());
    const server = await startServer({
      upstream: up.url,
      accounts: [{ name: 'key-1', type: 'apikey', apiKey: 'sk-ant-api03-k1' }],
      config: { queue: { ...FAST_QUEUE, maxConcurrentQueued: 1, streamForwardGraceMs: 1000 } },
    });
    t.after(() => server.stop());
    const s = send(server, namedStream('late 429'), { timeoutMs: 20000 });
    await waitFor(() => up.count() === 1, { what: 'the stream upstream' });
    const j = send(server, messageBody(), { timeoutMs: 20000 });
    await waitQueued(server, 1);
    const rs = await s;
    assert.equal(rs.status, 200, 'our grace heartbeat committed the stream');
    assert.match(rs.headers['content-type'], /^text\/event-stream/);
    assert.ok(rs.events.length >= 2, rs.body);
    assert.equal(rs.events[0].event, 'ping');
    const last = rs.events.at(-1);
    assert.equal(last.event, 'error', rs.body);
    assert.deepEqual(last.data, { type: 'error', error: { type: 'rate_limit_error', message: QUEUE_FULL } });
    assert.equal(rs.end, 'complete');
    const rj = await j;
    assert.equal(rj.status, 200, rj.body);
    assert.equal(JSON.parse(rj.body).content[0].text, TEXT);
  });
});

describe('a held JSON request past queue.nonStreamMaxWaitMs (§6.9, §6.10)', { skip }, () => {
  test('gets the honest 429: rate_limit_error, retry-after, unified-status rejected and the soonest reset', async (t) => {
    // Both accounts keep answering "Session limit reached" with retry-after 1: the request is
    // held, tried again each second, and held again until its 3 s window is spent.
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { faults: [sessionLimit('max-a', 1), sessionLimit('pro-b', 1)] },
      config: { queue: { ...FAST_QUEUE, nonStreamMaxWaitMs: 3000 } },
    });
    const r = await send(server, messageBody(), { timeoutMs: 15000 });
    assert.equal(r.status, 429, r.body);
    assert.ok(r.endMs >= 2000 && r.endMs < 6000, `held for its 3 s window, answered after ${Math.round(r.endMs)} ms`);
    assert.match(r.headers['content-type'], /application\/json/);
    const j = JSON.parse(r.body);
    assert.equal(j.type, 'error');
    assert.equal(j.error.type, 'rate_limit_error');
    assert.ok(j.error.message.length > 20, j.error.message);
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra >= 1 && ra <= 2, `retry-after ${r.headers['retry-after']}`);
    assert.equal(r.headers['anthropic-ratelimit-unified-status'], 'rejected', JSON.stringify(r.headers));
    const reset = Number(r.headers['anthropic-ratelimit-unified-reset']);
    assert.ok(reset >= nowSec() - 1 && reset <= nowSec() + 3, `reset ${reset}`);
    assert.ok((await sim.state()).requests >= 4, 'it was tried again while held');
    assert.match(server.stderr(), /queueing request for up to 3s \(cause: quota/);
  });

  test('a held stream whose window (streamHoldMaxMs 3 s) runs out ends with an SSE rate_limit_error frame', async (t) => {
    const { server } = await pool(t, {
      only: TWO,
      over: { faults: [sessionLimit('max-a', 1), sessionLimit('pro-b', 1)] },
      config: { queue: { ...FAST_QUEUE, streamHoldMaxMs: 3000 } },
    });
    const r = await send(server, namedStream('never served'), { timeoutMs: 15000 });
    assert.equal(r.status, 200);
    assert.ok(r.endMs >= 2000 && r.endMs < 6000, `held for its window, ended after ${Math.round(r.endMs)} ms`);
    assert.ok(r.events.filter((e) => e.event === 'ping').length >= 2, r.body);
    const last = r.events.at(-1);
    assert.equal(last.event, 'error', r.body);
    assert.equal(last.data.error.type, 'rate_limit_error');
    assert.match(last.data.error.message, /Claude account/, last.data.error.message);
    assert.ok(!r.events.some((e) => e.event === 'message_start'), 'no upstream event leaked');
    assert.equal(r.end, 'complete');
  });
});

describe('§13 scenario 43 / §10.1: shutdown with held requests', { skip }, () => {
  test('SIGTERM: a held stream gets an SSE error frame, a held JSON request a 503, and the server exits 0 at once', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { faults: [sessionLimit('max-a', 60), sessionLimit('pro-b', 60)] },
      config: { queue: FAST_QUEUE, shutdown: { drainTimeoutMs: 10000 } },
    });
    const exited = exitOf(server.child);
    const s = send(server, namedStream('held at shutdown'), { timeoutMs: 15000 });
    await waitQueued(server, 1);
    const j = send(server, messageBody(), { timeoutMs: 15000 });
    await waitQueued(server, 2);
    await new Promise((res) => setTimeout(res, 1200)); // at least one heartbeat after the first
    const t0 = Date.now();
    process.kill(server.pid, 'SIGTERM');
    const [rs, rj] = await Promise.all([s, j]);
    assert.equal(rs.status, 200);
    assert.ok(rs.events.filter((e) => e.event === 'ping').length >= 2, rs.body);
    const last = rs.events.at(-1);
    assert.equal(last.event, 'error', rs.body);
    assert.equal(last.data.type, 'error');
    assert.match(last.data.error.message, /shutting down/);
    assert.equal(rs.end, 'complete', 'the stream ended cleanly after the error frame');
    assert.equal(rj.status, 503, rj.body);
    assert.match(JSON.parse(rj.body).error.message, /shutting down/);
    const x = await exited;
    assert.equal(x.code, 0, server.stderr());
    assert.ok(Date.now() - t0 < 5000, 'no wait for the drain timeout');
    const log = server.stderr();
    assert.match(log, /Draining shutdown \(SIGTERM\)\./);
    assert.match(log, /Shutdown complete\./);
    assert.equal((await sim.state()).requests, 2, 'nothing more went upstream');
  });
});
