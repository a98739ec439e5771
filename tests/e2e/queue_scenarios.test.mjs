// The queue against the real binaries (issue 6; SPEC §6.2–§6.10 and §13 scenarios 28–31,
// 34, 35 with Part A1): a request that no account can take right now is held, kept alive with
// `event: ping` while it streams, and sent once an account frees up; a request that cannot
// be helped within its hold window gets the honest 429 at once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { messageBody } from './lib/harness.mjs';
import { SKIP_PROXY, pool } from './lib/pool.mjs';
import { startServer, accountsFor } from './lib/server.mjs';
import { baseScript } from './lib/harness.mjs';
import { FAST_QUEUE, assertHeldStream, send, sessionLimit, waitQueued } from './lib/hold.mjs';

const skip = SKIP_PROXY;
const TWO = ['max-a', 'pro-b'];
const TEXT = 'Held, then served.';
const nowSec = () => Date.now() / 1000;

describe('§13 scenarios 28–31, 34, 35: hold instead of fail', { skip }, () => {
  test('28: A answers 429 "Session limit reached" (retry-after 7), B serves the same request; A is throttled ~7 s', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT }, faults: [sessionLimit('max-a', 7, { count: 1 })] },
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' }, queue: FAST_QUEUE },
    });
    const t0 = Date.now();
    const r = await send(server, messageBody());
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).content[0].text, TEXT);
    const seen = await sim.requests(10);
    assert.deepEqual(
      seen.map((q) => [q.account, q.status]),
      [
        ['max-a', 429],
        ['pro-b', 200],
      ],
    );
    const a = (await server.status()).accounts.find((x) => x.name === 'max-a');
    assert.ok(a.rateLimitedUntil, JSON.stringify(a));
    const left = (Date.parse(a.rateLimitedUntil) - t0) / 1000;
    assert.ok(left > 5 && left <= 8.5, `max-a throttled for ~7 s, got ${left}`);
    assert.equal((await server.status()).scheduler.queued, 0, 'nothing was held');
  });

  test('29: both accounts at a session limit (retry-after 3 and 5), JSON → held ~3 s, then served by the first to recover', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT }, faults: [sessionLimit('max-a', 3, { count: 1 }), sessionLimit('pro-b', 5, { count: 1 })] },
      config: { queue: FAST_QUEUE },
    });
    const r = await send(server, messageBody(), { timeoutMs: 20000 });
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).content[0].text, TEXT);
    assert.ok(r.endMs >= 2500 && r.endMs < 5000, `held until max-a recovered (~3 s), took ${Math.round(r.endMs)} ms`);
    const seen = await sim.requests(10);
    assert.deepEqual(
      seen.map((q) => q.status).sort(),
      [200, 429, 429],
    );
    assert.equal(seen.at(-1).account, 'max-a');
    assert.match(server.stderr(), /queueing request for up to \d+s \(cause: quota, retry: rate_limited\)/);
    assert.equal(seen.at(-1).bodySha256, seen[0].bodySha256, 'the same body went up again');
  });

  test('30: the same ambiguous 429 on both accounts opens the shared throttle; after it one probe goes first, its success clears the throttle', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      // The default rate_limit message names no account: the same on both → server-side.
      over: { response: { text: TEXT, firstByteDelayMs: 500 }, faults: [{ kind: 'rate_limit', retryAfter: 3, count: 2 }] },
      config: { queue: FAST_QUEUE },
    });
    const first = send(server, messageBody({ messages: [{ role: 'user', content: 'first' }] }), { timeoutMs: 20000 });
    await waitQueued(server, 1);
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    const second = send(server, messageBody({ messages: [{ role: 'user', content: 'second' }] }), { timeoutMs: 20000 });
    await waitQueued(server, 2);
    assert.equal((await sim.state()).requests, 2, 'the second request did not go upstream while the throttle was open');
    const [r1, r2] = await Promise.all([first, second]);
    assert.equal(r1.status, 200, r1.body);
    assert.equal(r2.status, 200, r2.body);
    // The probe (500 ms upstream) went alone: the second left only after it succeeded.
    assert.ok(r2.endMs - r1.endMs >= 400, `the probe went first, alone: ${Math.round(r1.endMs)} / ${Math.round(r2.endMs)} ms`);
    assert.deepEqual(
      (await sim.requests(10)).map((q) => q.status),
      [429, 429, 200, 200],
    );
    const after = await server.status();
    assert.equal(after.upstreamThrottle.active, false, JSON.stringify(after.upstreamThrottle));
    assert.match(server.stderr(), /opening shared Anthropic throttle/);
    assert.match(server.stderr(), /throttle cleared/);
  });

  test('31: a held stream gets 200 text/event-stream and a ping every heartbeatMs, then the real events', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT, deltas: 4 }, faults: [sessionLimit('max-a', 3, { count: 1 }), sessionLimit('pro-b', 3, { count: 1 })] },
      config: { queue: FAST_QUEUE },
    });
    const r = await send(server, messageBody({ stream: true }), { timeoutMs: 20000 });
    const pings = assertHeldStream(r, TEXT);
    assert.ok(pings.length >= 3, `${pings.length} pings over ~3 s at 1 s`);
    assert.ok(pings[0].atMs < 1000, `the first ping comes at once (${Math.round(pings[0].atMs)} ms)`);
    for (let i = 1; i < pings.length; i++) {
      const gap = pings[i].atMs - pings[i - 1].atMs;
      assert.ok(gap > 700 && gap < 1500, `ping gap ${Math.round(gap)} ms (heartbeatMs 1000)`);
    }
    assert.deepEqual(
      (await sim.requests(10)).map((q) => q.status).sort(),
      [200, 429, 429],
    );
  });

  test('31 (Part A1): a recovery beyond the configured stream hold → an immediate honest 429, not a stream', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { faults: [sessionLimit('max-a', 30), sessionLimit('pro-b', 40)] },
      config: { queue: { ...FAST_QUEUE, streamHoldMaxMs: 5000 } },
    });
    const r = await send(server, messageBody({ stream: true }), { timeoutMs: 10000 });
    assert.ok(r.endMs < 2000, `answered at once (${Math.round(r.endMs)} ms)`);
    assert.equal(r.status, 429, r.body);
    assert.match(r.headers['content-type'], /application\/json/);
    const j = JSON.parse(r.body);
    assert.equal(j.type, 'error');
    assert.equal(j.error.type, 'rate_limit_error');
    t.diagnostic(`message: ${j.error.message}`);
    const ra = Number(r.headers['retry-after']);
    assert.ok(ra >= 25 && ra <= 31, `retry-after from the soonest recovery (~30 s), got ${r.headers['retry-after']}`);
    // Every account is spent: Claude Code must stop at once and tell the user when.
    assert.equal(r.headers['anthropic-ratelimit-unified-status'], 'rejected', JSON.stringify(r.headers));
    const reset = Number(r.headers['anthropic-ratelimit-unified-reset']);
    assert.ok(reset >= nowSec() + 20 && reset <= nowSec() + 35, `reset ${reset} is the soonest recovery`);
    assert.equal(r.headers['anthropic-ratelimit-unified-representative-claim'], 'five_hour', 'Claude Code needs the claim to say "You\'ve hit your limit"');
    assert.equal((await sim.state()).requests, 2);
    assert.doesNotMatch(server.stderr(), /queueing request/);
  });

  test('34: A 500, B serves; A cools 30 s; consecutive 500s double the cooldown (held meanwhile)', async (t) => {
    const { sim, server } = await pool(t, {
      only: TWO,
      over: { response: { text: TEXT }, faults: [{ kind: 'status', status: 500, account: 'max-a', count: 1 }] },
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' }, queue: FAST_QUEUE },
    });
    const t0 = Date.now();
    const r = await send(server, messageBody());
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(
      (await sim.requests(10)).map((q) => [q.account, q.status]),
      [
        ['max-a', 500],
        ['pro-b', 200],
      ],
    );
    const a = (await server.status()).accounts.find((x) => x.name === 'max-a');
    const cool = (Date.parse(a.cooldownUntil) - t0) / 1000;
    assert.ok(cool > 28 && cool <= 31, `cooldown ~30 s, got ${cool} (${JSON.stringify(a)})`);
    assert.match(server.stderr(), /Account "max-a" cooling down for 30s/);
  });

  test('34: one account answering 500 twice: cooldown 1 s then 2 s (scheduler.cooldownMs 1000), the request is held through both', async (t) => {
    const { sim, server } = await pool(t, {
      only: ['max-a'],
      over: { response: { text: TEXT }, faults: [{ kind: 'status', status: 500, count: 2 }] },
      config: { scheduler: { cooldownMs: 1000 }, queue: FAST_QUEUE },
    });
    const r = await send(server, messageBody(), { timeoutMs: 20000 });
    assert.equal(r.status, 200, r.body);
    assert.ok(r.endMs >= 2500, `held through 1 s + 2 s of cooldown (${Math.round(r.endMs)} ms)`);
    assert.deepEqual(
      (await sim.requests(10)).map((q) => q.status),
      [500, 500, 200],
    );
    const log = server.stderr();
    assert.match(log, /Account "max-a" cooling down for 1s[^\n]*\n[\s\S]*Account "max-a" cooling down for 2s/);
    assert.match(log, /cause: capacity/);
  });

  test('35: upstream refusing connections, JSON → 503 connection_unavailable naming ECONNREFUSED after the network soak', async (t) => {
    // A port nobody listens on: bind one, note it, close it.
    const port = await new Promise((res) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => res(p));
      });
    });
    const script = baseScript();
    const server = await startServer({
      upstream: `http://127.0.0.1:${port}`,
      accounts: accountsFor(script).filter((a) => TWO.includes(a.name)),
      config: { queue: FAST_QUEUE },
      env: { MAXPOOL_NETWORK_SOAK_NONSTREAM_MS: '5000' },
    });
    t.after(() => server.stop());
    const r = await send(server, messageBody(), { timeoutMs: 30000 });
    assert.equal(r.status, 503, r.body);
    const j = JSON.parse(r.body);
    assert.equal(j.error.type, 'connection_unavailable');
    assert.match(j.error.message, /ECONNREFUSED/);
    assert.match(j.error.message, /not a quota problem/);
    assert.ok(r.endMs >= 4500 && r.endMs < 12000, `failed after the 5 s soak, took ${Math.round(r.endMs)} ms`);
    const log = server.stderr();
    assert.match(log, /cause: network/);
    for (const name of TWO) assert.match(log, new RegExp(`Account "${name}": `), `${name} was tried`);
  });
});
