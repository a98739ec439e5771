// Failure handling before and after the first byte (SPEC §6.1–§6.4, §5.11, §13 scenarios
// 28–30 and 34–38): `maxpool server` in front of `maxpool sim` with scripted faults. The
// queue (§6.9) is being built separately: where a scenario holds the request, the test
// checks what is observable without it (the client's error, retry-after, account states)
// and the hold itself is a `todo` test.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageBody, postMessages } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, bodyOfSize, waitFor } from './lib/pool.mjs';
import { acct, waitLog, msUntil, rpool, send } from './lib/routing.mjs';
import { startServer } from './lib/server.mjs';

const skip = SKIP_PROXY;
const SESSION_LIMIT = 'Session limit reached';

function near(ms, want, slack, what) {
  assert.ok(ms > want - slack && ms <= want + 200, `${what}: ${ms} ms, want ≈ ${want} ms`);
}

/** A loopback port with nothing listening (bound, then closed). */
function deadPort() {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

describe('failover and account states (§13 scenarios 28–30, 34–38)', { skip }, () => {
  test('28: A 429 (retry-after 7, "Session limit reached"), B 200 → the client gets B\'s 200 in the same request; A throttled 7 s', async (t) => {
    const { server, cur } = await rpool(t, {
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } },
      over: { faults: [{ kind: 'rate_limit', account: 'max-a', retryAfter: 7, count: 1, message: SESSION_LIMIT }] },
    });
    const r = await send(server);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('retry-after'), null);
    const seen = await cur.since();
    assert.deepEqual(seen.map((q) => [q.account, q.status]), [['max-a', 429], ['pro-b', 200]]);
    assert.equal(seen[0].bodySha256, seen[1].bodySha256);
    const a = acct(await server.status(), 'max-a');
    assert.equal(a.status, 'throttled');
    near(msUntil(a.rateLimitedUntil), 7000, 1500, 'rateLimitedUntil');
    await waitLog(server, /Account "max-a" rate limited for 7s/);
    assert.equal(a.usage.totalRequests, 1, '§4.1: every response counts, errors included');
    assert.equal(acct(await server.status(), 'pro-b').status, 'active');
  });

  test('29: both accounts 429 "Session limit reached", retry-after 3 and 5 → 429 with retry-after 3; each throttled for its own retry-after; A serves after 3 s', async (t) => {
    const { server, cur } = await rpool(t, {
      over: {
        faults: [
          { kind: 'rate_limit', account: 'max-a', retryAfter: 3, count: 1, message: SESSION_LIMIT },
          { kind: 'rate_limit', account: 'pro-b', retryAfter: 5, count: 1, message: SESSION_LIMIT },
        ],
      },
    });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.equal(Number(r.headers.get('retry-after')), 3, 'the soonest recovery');
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 429]);
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, false, 'account-scoped 429s do not open the shared throttle');
    near(msUntil(acct(st, 'max-a').rateLimitedUntil), 3000, 1000, 'A throttled');
    near(msUntil(acct(st, 'pro-b').rateLimitedUntil), 5000, 1000, 'B throttled');
    await sleep(msUntil(acct(st, 'max-a').rateLimitedUntil) + 150);
    await cur.mark();
    const later = await send(server);
    assert.equal(later.status, 200, later.text);
    assert.deepEqual(await cur.seen(), [['max-a', 200]], 'A is back first, B still throttled');
  });

  test('29: the request is held ~3 s and then succeeds', async (t) => {
    const { server } = await rpool(t, {
      config: { queue: { enabled: true, pollMs: 200 } },
      over: {
        faults: [
          { kind: 'rate_limit', account: 'max-a', retryAfter: 3, count: 1, message: SESSION_LIMIT },
          { kind: 'rate_limit', account: 'pro-b', retryAfter: 5, count: 1, message: SESSION_LIMIT },
        ],
      },
    });
    const t0 = Date.now();
    const r = await send(server, {}, {}, 20000);
    assert.equal(r.status, 200, r.text);
    assert.ok(Date.now() - t0 >= 2500);
  });

  test('30: the same "exceeded your rate limit" 429 on both accounts → shared throttle; after retry-after one probe goes first; its success clears it', async (t) => {
    const { server, cur } = await rpool(t, {
      over: {
        faults: [
          { kind: 'rate_limit', retryAfter: 2, count: 2, message: 'You have exceeded your rate limit. Please slow down.' },
          { kind: 'slow_first_byte', delayMs: 1500, count: 1 },
        ],
      },
    });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 429]);
    let st = await server.status();
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    near(msUntil(st.upstreamThrottle.until), 2000, 1000, 'throttle until');
    await waitLog(server, /Anthropic upstream temporarily limiting requests for 2s; pausing Claude routes/);
    for (const n of ['max-a', 'pro-b']) assert.equal(acct(st, n).rateLimitedUntil, null, `${n}: no account blame for a shared limit`);
    // §6.3 step 4: promotion lifts the accounts' provisional limits (the throttle holds them instead).
    for (const n of ['max-a', 'pro-b']) assert.equal(acct(st, n).cooldownUntil, null, `${n}: provisional lifted on promotion`);
    // While the throttle blocks, no request reaches the upstream.
    const blocked = await send(server);
    assert.equal(blocked.status, 429);
    assert.equal((await cur.seen()).length, 2);
    await sleep(msUntil(st.upstreamThrottle.until) + 100);
    // Half-open: the first request is the only probe (slow: 1.5 s); a second one waits.
    await cur.mark();
    const probe = send(server);
    await waitFor(async () => (await server.status()).upstreamThrottle.probeInFlight, { what: 'probeInFlight' });
    const second = await send(server);
    assert.equal(second.status, 429, second.text);
    assert.equal(Number(second.headers.get('retry-after')), 1, 'retry hint 1 s while the probe is in flight');
    assert.equal((await probe).status, 200);
    assert.equal((await cur.seen()).length, 1, 'only the probe went upstream');
    st = await server.status();
    assert.equal(st.upstreamThrottle.active, false, JSON.stringify(st.upstreamThrottle));
    await waitLog(server, /throttle cleared \(Anthropic accepted recovery probe\)/);
    for (let i = 0; i < 3; i++) assert.equal((await send(server)).status, 200);
  });

  test('34: A 500, B 200 → B serves; A cools down 30 s', async (t) => {
    const { server, cur } = await rpool(t, {
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } },
      over: { faults: [{ kind: 'status', status: 500, account: 'max-a' }] },
    });
    assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['max-a', 500], ['pro-b', 200]]);
    const a = acct(await server.status(), 'max-a');
    near(msUntil(a.cooldownUntil), 30000, 2000, 'A cooldown');
    assert.equal(a.consecutiveFailures, 1);
    await waitLog(server, /Account "max-a" cooling down for 30s after/);
  });

  test('34: a second consecutive 500 doubles the cooldown (scheduler.cooldownMs 1000 → 1 s, 2 s)', async (t) => {
    const { server, cur } = await rpool(t, {
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' }, scheduler: { cooldownMs: 1000 } },
      over: { faults: [{ kind: 'status', status: 500, account: 'max-a' }] },
    });
    assert.equal((await send(server)).status, 200);
    let a = acct(await server.status(), 'max-a');
    near(msUntil(a.cooldownUntil), 1000, 600, 'first cooldown');
    await sleep(msUntil(a.cooldownUntil) + 150);
    assert.equal((await send(server)).status, 200);
    a = acct(await server.status(), 'max-a');
    near(msUntil(a.cooldownUntil), 2000, 600, 'second cooldown');
    assert.equal(a.consecutiveFailures, 2);
    assert.deepEqual(await cur.seen(), [['max-a', 500], ['pro-b', 200], ['max-a', 500], ['pro-b', 200]]);
    await waitLog(server, /Account "max-a" cooling down for 1s after[^\n]*\n(.*\n)*.*Account "max-a" cooling down for 2s after/);
  });

  test('35: upstream unreachable → 503 connection_unavailable naming ECONNREFUSED; each account cooled 5 s', async (t) => {
    const port = await deadPort();
    const server = await startServer({
      upstream: `http://127.0.0.1:${port}`,
      accounts: [
        { name: 'max-a', type: 'oauth', accessToken: 'sk-ant-oat01-a', refreshToken: 'r', expiresAt: 4102444800000 },
        { name: 'pro-b', type: 'oauth', accessToken: 'sk-ant-oat01-b', refreshToken: 'r', expiresAt: 4102444800000 },
      ],
      // The failover's own answer, without the network soak (tested below).
      config: { queue: { enabled: false } },
    });
    t.after(() => server.stop());
    const r = await send(server);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.type, 'connection_unavailable');
    assert.match(r.json.error.message, /ECONNREFUSED/);
    assert.match(r.json.error.message, /This is not a quota problem/);
    const st = await server.status();
    for (const n of ['max-a', 'pro-b']) near(msUntil(acct(st, n).cooldownUntil), 5000, 1500, `${n} network cooldown`);
    for (const n of ['max-a', 'pro-b']) assert.equal(acct(st, n).consecutiveFailures, 0, 'network failures do not bump consecutiveFailures');
  });

  test('35: the request soaks for connectivity (45 s by default; 5 s here) before the 503', async (t) => {
    const port = await deadPort();
    const server = await startServer({
      upstream: `http://127.0.0.1:${port}`,
      accounts: [{ name: 'a', type: 'apikey', apiKey: 'k' }],
      env: { MAXPOOL_NETWORK_SOAK_NONSTREAM_MS: '5000' },
    });
    t.after(() => server.stop());
    const t0 = Date.now();
    const r = await send(server, {}, {}, 60000);
    assert.ok(Date.now() - t0 >= 4500, 'held while the network is down');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.type, 'connection_unavailable');
  });

  test('36: upstream 400 → status, headers and body passed through; no failover', async (t) => {
    const { server, cur } = await rpool(t);
    // The sim answers 400 invalid_request_error to a body without a model.
    const r = await send(server, { model: undefined });
    assert.equal(r.status, 400, r.text);
    const seen = await cur.since();
    assert.equal(seen.length, 1, 'no failover on a client error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.equal(r.headers.get('request-id'), seen[0].id, 'upstream headers passed through');
    const a = acct(await server.status(), seen[0].account);
    assert.equal(a.lastStatus, 400);
    assert.equal(a.failedRequests, 1, '§6.2: other 4xx count as a failure');
    assert.equal(a.completedRequests, 0);
    assert.equal(a.cooldownUntil, null);
    assert.equal(a.rateLimitedUntil, null);
  });

  test('37: a stall after the first events → SSE error frame, account cooled 5 s; a stall before the first event → failover', { timeout: 60000 }, async (t) => {
    const env = { MAXPOOL_STREAM_IDLE_MS: '30000' }; // the floor
    const mid = await rpool(t, { serverEnv: env, config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } }, over: { faults: [{ kind: 'stall', account: 'max-a', afterEvents: 3, count: 1 }] } });
    const pre = await rpool(t, { serverEnv: env, config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } }, over: { faults: [{ kind: 'stall', account: 'max-a', afterEvents: 0, count: 1 }] } });
    const body = JSON.stringify(messageBody({ stream: true }));
    const headers = { 'content-type': 'application/json' };
    const [m, p] = await Promise.all([
      rawRequest({ port: mid.server.port, headers, body, timeoutMs: 50000 }),
      rawRequest({ port: pre.server.port, headers, body, timeoutMs: 50000 }),
    ]);
    // Mid-stream: the client already has events, so the stream ends with an error frame.
    assert.equal(m.status, 200);
    assert.ok(m.events.some((e) => e.event === 'message_start'), JSON.stringify(m.events.map((e) => e.event)));
    const err = m.events.at(-1);
    assert.equal(err.event, 'error', JSON.stringify(m.events.map((e) => e.event)));
    assert.equal(err.data.error.type, 'connection_unavailable');
    assert.deepEqual(await mid.cur.seen(), [['max-a', 200]], 'no failover once bytes were relayed');
    near(msUntil(acct(await mid.server.status(), 'max-a').cooldownUntil), 5000, 2000, 'mid-stream network cooldown');
    // Before the first event: nothing was relayed, so another account serves the stream.
    assert.equal(p.status, 200, p.body);
    assert.equal(p.events.at(-1).event, 'message_stop', JSON.stringify(p.events.map((e) => e.event)));
    assert.ok(!p.events.some((e) => e.event === 'error'));
    assert.deepEqual(await pre.cur.seen(), [['max-a', 200], ['pro-b', 200]]);
  });

  test('38: body over retry.maxRetryBufferBytes and the first account 429 → no failover; the error is returned', async (t) => {
    const { sim, server, cur } = await rpool(t, {
      config: { retry: { maxRetryBufferBytes: 4096 } },
      over: { faults: [{ kind: 'rate_limit', retryAfter: 1, count: 1, message: SESSION_LIMIT }] },
    });
    const big = bodyOfSize(8192);
    const r = await postMessages(server.url, {}, big.toString());
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const seen = await cur.since();
    assert.equal(seen.length, 1, `one attempt only: ${JSON.stringify(seen.map((q) => [q.account, q.status]))}`);
    assert.equal(seen[0].bodyBytes, 8192);
    // The same 429 on a small body fails over (the limit is what made the difference).
    await sleep(1200); // the first 429's throttle is over
    await sim.setScript({ faults: [{ kind: 'rate_limit', retryAfter: 1, count: 1, message: SESSION_LIMIT }] });
    await cur.mark();
    assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 200]);
  });
  test('§4.1: retry-after is clamped to 24 h', async (t) => {
    const { server } = await rpool(t, { only: ['max-a'], over: { faults: [{ kind: 'rate_limit', retryAfter: 200000, count: 1, message: SESSION_LIMIT }] } });
    // A model without a family: with a known family a retry-after ≥ 1800 s and windows below
    // 0.999 would make it a model-scoped bench (§6.3 step 1) instead.
    const r = await send(server, { model: 'claude-x' });
    assert.equal(r.status, 429, r.text);
    const a = acct(await server.status(), 'max-a');
    near(msUntil(a.rateLimitedUntil), 86400000, 5000, 'rateLimitedUntil clamped');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra > 86000 && ra <= 86400, `retry-after ${ra}`);
  });

  test('§6.1: retry.maxAttemptsPerRequest 1 → no failover, the 429 goes to the client', async (t) => {
    const { server, cur } = await rpool(t, {
      config: { retry: { maxAttemptsPerRequest: 1 } },
      over: { faults: [{ kind: 'rate_limit', retryAfter: 5, count: 1, message: SESSION_LIMIT }] },
    });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal((await cur.seen()).length, 1, 'one attempt');
  });

  test('A5: an OAuth 401 is retried once on the same account before any failover; a second 401 fails over', async (t) => {
    const { sim, server, cur } = await rpool(t, {
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } },
      over: { faults: [{ kind: 'unauthorized', account: 'max-a', count: 1 }] },
    });
    assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).filter(([a]) => a), [['max-a', 401], ['max-a', 200]]);
    await sim.setScript({ faults: [{ kind: 'unauthorized', account: 'max-a' }] });
    await cur.mark();
    assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).filter(([a]) => a), [['max-a', 401], ['max-a', 401], ['pro-b', 200]]);
  });

  test('A5: the retry after a 401 carries a freshly refreshed token', { todo: 'the forced refresh comes with the OAuth work (src/proxy/request.c: SCHED_REFRESH only re-pins the account today)' }, async (t) => {
    const { server, cur } = await rpool(t, {
      config: { routing: { mode: 'preferred', preferredAccount: 'max-a' } },
      over: { faults: [{ kind: 'unauthorized', account: 'max-a', count: 1 }] },
    });
    assert.equal((await send(server)).status, 200);
    const seen = await cur.since();
    assert.ok(seen.some((q) => q.target.startsWith('/v1/oauth/token')), 'a refresh between the 401 and the retry');
    const msgs = seen.filter((q) => q.target.startsWith('/v1/messages'));
    assert.notEqual(msgs[1].headers.authorization, msgs[0].headers.authorization);
  });
});
