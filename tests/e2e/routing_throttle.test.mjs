// The shared upstream throttle (SPEC §6.3, §6.4) and the error bodies of §6.2/§6.10 when no
// failover is left, driven by the sim's server_throttle, overloaded and reset_before_headers
// faults; plus the API-key token bucket as a session bench (§4.1, §5.3).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SKIP_PROXY } from './lib/pool.mjs';
import { acct, msUntil, rpool, send, waitLog } from './lib/routing.mjs';

const skip = SKIP_PROXY;

function near(ms, want, slack, what) {
  assert.ok(ms > want - slack && ms <= want + 200, `${what}: ${ms} ms, want ≈ ${want} ms`);
}

describe('shared throttle and error bodies (§6.2–§6.4, §6.10)', { skip }, () => {
  test('server-side 429 on every account → shared throttle; the client gets the maxpool 429 text; no account blamed', async (t) => {
    const { server, cur } = await rpool(t, { over: { faults: [{ kind: 'server_throttle', retryAfter: 3 }] } });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.deepEqual(r.json, {
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Anthropic is temporarily limiting requests. Maxpool will retry automatically when capacity returns.' },
    });
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 3, `retry-after ${ra}`);
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 429]);
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    near(msUntil(st.upstreamThrottle.until), 3000, 1000, 'throttle until');
    for (const n of ['max-a', 'pro-b']) {
      assert.equal(acct(st, n).status, 'active');
      assert.equal(acct(st, n).rateLimitedUntil, null);
      assert.equal(acct(st, n).consecutiveFailures, 0, 'neutral for the account');
    }
    await waitLog(server, /Every eligible Claude account returned the same server-side 429; opening shared Anthropic throttle/);
  });

  test('529 on every account → shared throttle; 529 overloaded_error with the maxpool text', async (t) => {
    const { server, cur } = await rpool(t, { over: { faults: [{ kind: 'overloaded', retryAfter: 2 }] } });
    const r = await send(server);
    assert.equal(r.status, 529, r.text);
    assert.deepEqual(r.json, {
      type: 'error',
      error: { type: 'overloaded_error', message: 'Anthropic is temporarily overloaded. Maxpool will retry automatically when capacity returns.' },
    });
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [529, 529]);
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    await waitLog(server, /Every eligible Claude account returned the same server-side 529; opening shared Anthropic throttle/);
  });

  test('529 on the only account → not promoted: the upstream 529 body verbatim; the account provisional ≤ 30 s', async (t) => {
    const { server, cur } = await rpool(t, { only: ['max-a'], over: { faults: [{ kind: 'overloaded' }] } });
    const r = await send(server);
    assert.equal(r.status, 529, r.text);
    assert.deepEqual(r.json, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    assert.deepEqual(await cur.seen(), [['max-a', 529]]);
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, false);
    const a = acct(st, 'max-a');
    near(msUntil(a.cooldownUntil), 30000, 2000, 'provisional (529 default retry-after 30)');
    assert.equal(a.consecutiveFailures, 0, 'neutral release');
  });

  test('server-side 429 on the only account → not promoted: the upstream 429 body verbatim', async (t) => {
    const { server } = await rpool(t, { only: ['max-a'], over: { faults: [{ kind: 'server_throttle', retryAfter: 4 }] } });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.deepEqual(r.json, { type: 'error', error: { type: 'rate_limit_error', message: 'Anthropic is temporarily limiting requests. Please try again later.' } });
    const st = await server.status();
    assert.equal(st.upstreamThrottle.active, false);
    near(msUntil(acct(st, 'max-a').cooldownUntil), 4000, 1500, 'provisional = min(retry-after, 30 s)');
    assert.equal(acct(st, 'max-a').rateLimitedUntil, null);
  });

  test('a failed recovery probe reopens the throttle for 5 s', async (t) => {
    const { server, cur } = await rpool(t, { over: { faults: [{ kind: 'server_throttle', retryAfter: 1, count: 3 }] } });
    assert.equal((await send(server)).status, 429);
    let st = await server.status();
    assert.equal(st.upstreamThrottle.active, true);
    await sleep(msUntil(st.upstreamThrottle.until) + 100);
    await cur.mark();
    const probe = await send(server);
    assert.equal(probe.status, 429, probe.text);
    assert.equal((await cur.seen()).length, 1, 'one probe, no failover of the probe');
    st = await server.status();
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    near(msUntil(st.upstreamThrottle.until), 5000, 1000, 'reopened for min(60, 5 × 2^0) s');
    await waitLog(server, /recovery probe failed; pausing Claude routes for 5s/);
  });

  test('reset before headers on every account → 503 connection_unavailable naming the code; each account cooled 5 s', async (t) => {
    const { server, cur } = await rpool(t, { over: { faults: [{ kind: 'reset_before_headers' }] } });
    const r = await send(server);
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.type, 'connection_unavailable');
    assert.match(r.json.error.message, /^The connection to Claude dropped on every account maxpool tried \([A-Z_]+\)\. This is not a quota problem/);
    assert.equal((await cur.seen()).length, 2);
    const st = await server.status();
    for (const n of ['max-a', 'pro-b']) near(msUntil(acct(st, n).cooldownUntil), 5000, 1500, `${n} network cooldown`);
  });
});

describe('API-key buckets (§4.1, §5.3)', { skip }, () => {
  test('a token bucket used past switchThreshold benches the key until the bucket resets', async (t) => {
    // ~83 tokens per request (body + 60 output): one request uses > 90 % of a 90-token bucket.
    const { server, cur } = await rpool(t, { only: ['key-1'], sim: { 'key-1': { tokensPerMinute: 90 } } });
    assert.equal((await send(server)).status, 200);
    const q = acct(await server.status(), 'key-1').quota;
    assert.equal(q.tokensLimit, 90, JSON.stringify(q));
    assert.ok(q.tokensRemaining <= 9, JSON.stringify(q));
    assert.ok(q.resetsAt, JSON.stringify(q));
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 61, `retry-after ${ra} = the bucket reset`);
    assert.deepEqual(await cur.seen(), [['key-1', 200]], 'the benched key got no request');
  });
});
