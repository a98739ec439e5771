// Rate-aware routing on quota signals (SPEC §4, §5, §13 scenarios 20–27, Part A3 and A4):
// `maxpool server` in front of `maxpool sim`, whose scripted used levels produce the real
// unified rate-limit headers. What the proxy concluded is read from /maxpool/status, where
// each request went from the sim's /_sim/requests.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { postMessages } from './lib/harness.mjs';
import { SKIP_PROXY, waitFor } from './lib/pool.mjs';
import { acct, waitLog, mockMessage, msUntil, rpool, send, startMockUpstream } from './lib/routing.mjs';
import { startServer } from './lib/server.mjs';

const skip = SKIP_PROXY;
const OPUS = 'claude-opus-4-1';
const H5 = 5 * 3600 * 1000;
const D7 = 7 * 24 * 3600 * 1000;

function countBy(xs) {
  const n = {};
  for (const x of xs) n[x] = (n[x] || 0) + 1;
  return n;
}

/** Sends requests until /maxpool/status knows the weekly utilization of every named account (bounded). */
async function learnAll(server, names, max = 6) {
  for (let i = 0; i < max; i++) {
    const st = await server.status();
    if (names.every((n) => acct(st, n).quota.unified7d !== null)) return st;
    const r = await send(server);
    assert.equal(r.status, 200, r.text);
  }
  throw new Error(`the proxy never learned the quota of ${names}: ${JSON.stringify((await server.status()).accounts.map((a) => [a.name, a.quota]))}`);
}

describe('routing on quota (§13 scenarios 20–27)', { skip }, () => {
  test('20: two healthy accounts, sequential requests → both are used', async (t) => {
    const { server, cur } = await rpool(t);
    for (let i = 0; i < 6; i++) assert.equal((await send(server)).status, 200);
    const seen = await cur.seen();
    assert.equal(seen.length, 6, JSON.stringify(seen));
    const n = countBy(seen.map(([a]) => a));
    assert.ok(n['max-a'] >= 1 && n['pro-b'] >= 1, `both accounts used: ${JSON.stringify(n)}`);
  });

  test('small 5h budgets burned by real traffic: each account is benched at switchThreshold, before the upstream ever rejects', async (t) => {
    // ~83 tokens per request: a 500-token window takes 6 requests to pass 0.90 (and stays < 1.0).
    const { server, cur } = await rpool(t, { sim: { 'max-a': { budget5h: 500 }, 'pro-b': { budget5h: 500 } } });
    let served = 0;
    for (let i = 0; i < 16; i++) {
      const r = await send(server);
      if (r.status !== 200) {
        assert.equal(r.status, 429, r.text);
        assert.ok(Number(r.headers.get('retry-after')) > 3600, 'retry-after = the 5h reset');
        break;
      }
      served++;
    }
    const seen = await cur.seen();
    assert.ok(seen.every(([, st]) => st === 200), `the sim never had to reject: ${JSON.stringify(seen)}`);
    assert.equal(served, seen.length);
    const n = countBy(seen.map(([a]) => a));
    assert.ok(n['max-a'] >= 5 && n['pro-b'] >= 5 && served <= 14, `both windows used up to the bench: ${JSON.stringify(n)}`);
    const st = await server.status();
    for (const a of ['max-a', 'pro-b']) assert.ok(acct(st, a).quota.unified5h >= 0.9 && acct(st, a).quota.unified5h < 1, JSON.stringify(acct(st, a).quota));
  });

  test('21: 5h at 0.95 (future reset), B disabled → A benched at the default switchThreshold 0.90; 429 with the 5h reset as retry-after', async (t) => {
    const { server, cur } = await rpool(t, { sim: { 'max-a': { used5h: 0.95 } }, cfg: { 'pro-b': { enabled: false } } });
    // The first request teaches the proxy A's 5h level (it knows nothing before).
    assert.equal((await send(server)).status, 200);
    const st = await server.status();
    const a = acct(st, 'max-a');
    assert.ok(a.quota.unified5h >= 0.95, JSON.stringify(a.quota));
    assert.ok(msUntil(a.quota.unified5hReset) > H5 - 120000, `future 5h reset: ${a.quota.unified5hReset}`);
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    // The oracle's wait is the 5h reset; the queue's hold window is far shorter, so: fail fast.
    assert.ok(ra > H5 / 1000 - 120 && ra <= H5 / 1000 + 5, `retry-after ${ra} ≈ the 5h reset`);
    assert.deepEqual(await cur.seen(), [['max-a', 200]], 'the benched account got no second request');
    await waitLog(server, /Account "max-a" at 95% usage — limiting new placement \(session quota\)/);
  });

  test('21: same with switchThreshold 0.97 → A keeps serving', async (t) => {
    const { server, cur } = await rpool(t, { sim: { 'max-a': { used5h: 0.95 } }, cfg: { 'pro-b': { enabled: false } }, config: { switchThreshold: 0.97 } });
    for (let i = 0; i < 3; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['max-a', 200], ['max-a', 200], ['max-a', 200]]);
  });

  test('22: A weekly reserve (0.90), B 0.10 → new requests go to B; B unavailable → A serves', async (t) => {
    const { sim, server, cur } = await rpool(t, { sim: { 'max-a': { used7d: 0.9 }, 'pro-b': { used7d: 0.1 } } });
    const st = await learnAll(server, ['max-a', 'pro-b']);
    assert.equal(acct(st, 'max-a').weekly.rawState, 'reserve');
    assert.equal(acct(st, 'pro-b').weekly.rawState, 'normal');
    await cur.mark();
    for (let i = 0; i < 5; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), Array(5).fill('pro-b'), 'reserve is used after healthy accounts');
    // B out (an account 429 for 30 s): reserve is still eligible, so A serves, in the same request.
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: 'pro-b', retryAfter: 30, message: 'Session limit reached' }] });
    await cur.mark();
    for (let i = 0; i < 3; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['pro-b', 429], ['max-a', 200], ['max-a', 200], ['max-a', 200]]);
  });

  test('22: A at weekly 1.0 with unified-status rejected → A never chosen again', async (t) => {
    const { server, cur } = await rpool(t, { sim: { 'max-a': { used7d: 1.0 } } });
    for (let i = 0; i < 6; i++) assert.equal((await send(server)).status, 200);
    const seen = await cur.seen();
    const onA = seen.filter(([a]) => a === 'max-a');
    assert.ok(onA.length <= 1, `A tried at most once (before the proxy knew): ${JSON.stringify(seen)}`);
    for (const [, s] of onA) assert.equal(s, 429);
    const st = await server.status();
    if (onA.length) {
      assert.equal(acct(st, 'max-a').quota.unifiedStatus, 'rejected');
      assert.equal(acct(st, 'max-a').weekly.rawState, 'exhausted');
    }
  });

  test('23: weekly ≥ 0.999 but unified-status allowed_warning → critical, still eligible as the last resort', async (t) => {
    // The sim says `rejected` from 1.0 on, so 0.9995 is the "full but allowed" reading
    // (≥ weeklyExhaustedThreshold 0.999, status allowed_warning).
    const { sim, server, cur } = await rpool(t, { sim: { 'max-a': { used7d: 0.9995 } } });
    const st = await learnAll(server, ['max-a', 'pro-b']);
    const a = acct(st, 'max-a');
    assert.equal(a.quota.unifiedStatus, 'allowed_warning');
    assert.ok(a.quota.unified7d >= 0.999, JSON.stringify(a.quota));
    assert.equal(a.weekly.rawState, 'critical');
    await cur.mark();
    for (let i = 0; i < 4; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).map(([x]) => x), Array(4).fill('pro-b'), 'critical only as the last resort');
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: 'pro-b', retryAfter: 30, message: 'Session limit reached' }] });
    await cur.mark();
    for (let i = 0; i < 3; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['pro-b', 429], ['max-a', 200], ['max-a', 200], ['max-a', 200]]);
  });

  test('24: sticky session stays on its account, moves while it is throttled, returns when it recovers', async (t) => {
    const { sim, server, cur } = await rpool(t);
    const S = { 'x-maxpool-session': 'sess-24' };
    for (let i = 0; i < 4; i++) assert.equal((await send(server, {}, S)).status, 200);
    const seen = await cur.seen();
    const home = seen[0][0];
    const other = home === 'max-a' ? 'pro-b' : 'max-a';
    assert.deepEqual(seen.map(([a]) => a), Array(4).fill(home), 'the session stays on its first account');
    // Requests of another session do not move it.
    assert.equal((await send(server, {}, { 'x-maxpool-session': 'sess-other' })).status, 200);
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: home, retryAfter: 2, count: 1, message: 'Session limit reached' }] });
    await cur.mark();
    assert.equal((await send(server, {}, S)).status, 200);
    assert.equal((await send(server, {}, S)).status, 200);
    assert.deepEqual(await cur.seen(), [[home, 429], [other, 200], [other, 200]], 'throttled home → the other account');
    const until = acct(await server.status(), home).rateLimitedUntil;
    const wait = msUntil(until);
    assert.ok(wait > 0 && wait <= 2100, `home throttled ~2 s: ${until}`);
    await sleep(wait + 150);
    await cur.mark();
    assert.equal((await send(server, {}, S)).status, 200);
    assert.equal((await send(server, {}, S)).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), [home, home], 'back home after recovery');
    await waitLog(server, new RegExp(`Account "${home}" rate limit expired, marking active`));
    assert.equal(acct(await server.status(), home).status, 'active');
  });

  test('§5.6 rebalance: a session whose account runs hot (5h ≥ 0.85) moves to a healthier account; a cool one stays', async (t) => {
    const { sim, server, cur } = await rpool(t);
    const S = { 'x-maxpool-session': 'sess-hot' };
    assert.equal((await send(server, {}, S)).status, 200);
    const [[home]] = await cur.seen();
    const other = home === 'max-a' ? 'pro-b' : 'max-a';
    // The other account must be known and healthy to be a candidate.
    assert.equal((await send(server, {}, { 'x-maxpool-session': 'elsewhere' })).status, 200);
    await sim.setScript({ accounts: [{ name: home, used5h: 0.6 }] });
    await cur.mark();
    for (let i = 0; i < 3; i++) assert.equal((await send(server, {}, S)).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), [home, home, home], 'at 0.60 the session stays');
    await sim.setScript({ accounts: [{ name: home, used5h: 0.86 }] });
    await cur.mark();
    for (let i = 0; i < 3; i++) assert.equal((await send(server, {}, S)).status, 200);
    // The first request still goes home (that is when the proxy learns 0.86), then it moves.
    assert.deepEqual((await cur.seen()).map(([a]) => a), [home, other, other], 'hot home → moved');
  });

  test('25: preferred account B serves everything; B 429 → A in the same request; B recovers → B again', async (t) => {
    const { sim, server, cur } = await rpool(t, { config: { routing: { mode: 'preferred', preferredAccount: 'pro-b' } } });
    const st = await server.status();
    assert.deepEqual(st.routing, { ...st.routing, mode: 'preferred', preferredAccount: 'pro-b' });
    for (let i = 0; i < 4; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), Array(4).fill('pro-b'));
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: 'pro-b', retryAfter: 2, count: 1, message: 'Session limit reached' }] });
    await cur.mark();
    const r = await send(server);
    assert.equal(r.status, 200, r.text);
    assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['pro-b', 429], ['max-a', 200], ['max-a', 200]]);
    await sleep(Math.max(0, msUntil(acct(await server.status(), 'pro-b').rateLimitedUntil)) + 150);
    await cur.mark();
    for (let i = 0; i < 2; i++) assert.equal((await send(server)).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), ['pro-b', 'pro-b'], 'back to the preferred account');
  });

  test('§5.7: a lower priority number wins over score; a session on the lower-priority account moves up', async (t) => {
    const { sim, server, cur } = await rpool(t, { cfg: { 'max-a': { priority: 1 } } });
    const st = await server.status();
    assert.equal(acct(st, 'max-a').priority, 1);
    assert.equal(acct(st, 'pro-b').priority, 0);
    for (let i = 0; i < 4; i++) assert.equal((await send(server, {}, { 'x-maxpool-session': 's57' })).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), Array(4).fill('pro-b'));
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: 'pro-b', retryAfter: 1, count: 1, message: 'Session limit reached' }] });
    await cur.mark();
    assert.equal((await send(server, {}, { 'x-maxpool-session': 's57' })).status, 200);
    assert.deepEqual(await cur.seen(), [['pro-b', 429], ['max-a', 200]]);
    await sleep(Math.max(0, msUntil(acct(await server.status(), 'pro-b').rateLimitedUntil)) + 150);
    await cur.mark();
    assert.equal((await send(server, {}, { 'x-maxpool-session': 's57' })).status, 200);
    assert.deepEqual((await cur.seen()).map(([a]) => a), ['pro-b'], 'back on the priority-0 account');
  });

  test('25: preferring a disabled account stays automatic', async (t) => {
    const { server, cur } = await rpool(t, { cfg: { 'pro-b': { enabled: false } }, config: { routing: { mode: 'preferred', preferredAccount: 'pro-b' } } });
    const st = await server.status();
    assert.equal(st.routing.mode, 'automatic', JSON.stringify(st.routing));
    assert.equal((await send(server)).status, 200);
    assert.deepEqual(await cur.seen(), [['max-a', 200]]);
  });

  test('26: a 5h reset in the past clears the utilization ("session quota reset")', async (t) => {
    // Time scale 7200: the sim's 5-hour window lasts 2.5 real seconds.
    const { sim, server, cur } = await rpool(t, { only: ['max-a'], simArgs: ['--time-scale', '7200'] });
    await sim.setScript({ accounts: [{ name: 'max-a', used5h: 0.5 }] });
    assert.equal((await send(server)).status, 200);
    const q = acct(await server.status(), 'max-a').quota;
    assert.ok(q.unified5h >= 0.5, JSON.stringify(q));
    const left = msUntil(q.unified5hReset);
    assert.ok(left > 0 && left < 4000, `5h reset soon: ${q.unified5hReset}`);
    await sleep(left + 300);
    assert.equal((await send(server)).status, 200);
    await waitFor(() => server.stderr().includes('Account "max-a" session quota reset'), { what: 'the reset log line' });
    const q2 = acct(await server.status(), 'max-a').quota;
    assert.ok(q2.unified5h < 0.01, `utilization after the reset: ${JSON.stringify(q2)}`);
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [200, 200]);
  });

  test('weekly exhaustion (`rejected`, 7d full) lasts until the weekly reset, then the account serves again ("weekly quota reset")', async (t) => {
    // Time scale 100000: the sim's 7-day window lasts ~6 real seconds.
    const { sim, server, cur } = await rpool(t, { only: ['max-a'], simArgs: ['--time-scale', '100000'] });
    await sim.setScript({ accounts: [{ name: 'max-a', used7d: 1.0 }] });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    const a = acct(await server.status(), 'max-a');
    assert.equal(a.weekly.rawState, 'exhausted');
    const left = msUntil(a.quota.unified7dReset);
    assert.ok(left > 0 && left < 8000, `weekly reset soon: ${a.quota.unified7dReset}`);
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 8, `retry-after ${ra} = the weekly reset`);
    assert.equal((await send(server)).status, 429, 'still exhausted');
    assert.equal((await cur.seen()).length, 1, 'no upstream call while exhausted');
    // The 429 also throttles the account for its retry-after (whole seconds, so a bit later).
    await sleep(Math.max(left, msUntil(a.rateLimitedUntil) || 0) + 300);
    await waitLog(server, /Account "max-a" weekly quota reset/);
    const q = acct(await server.status(), 'max-a').quota;
    assert.equal(q.unified7d, null, JSON.stringify(q));
    assert.equal(q.unifiedStatus, null, 'the weekly clear also clears unifiedStatus');
    const after = await send(server);
    assert.equal(after.status, 200, after.text);
  });

  test('27: model-scoped 429 (retry-after 7200, windows 0.3/0.4, opus) benches A for opus only', async (t) => {
    const { sim, server, cur } = await rpool(t, { only: ['max-a'], sim: { 'max-a': { used5h: 0.3, used7d: 0.4 } } });
    await sim.setScript({ faults: [{ kind: 'rate_limit', account: 'max-a', retryAfter: 7200, count: 1, message: 'Opus weekly limit reached' }] });
    const r = await send(server, { model: OPUS });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra > 7000 && ra <= 7200, `retry-after ${ra} ≈ the scoped bench`);
    await waitLog(server, /Account "max-a" opus weekly limit hit — scoped bench 7200s \(account stays active for other models\)/);
    const a = acct(await server.status(), 'max-a');
    assert.equal(a.status, 'active', 'no account-wide throttle');
    assert.equal(a.rateLimitedUntil, null);
    const opus = a.quota.scopedWeekly?.opus;
    assert.ok(opus, `scopedWeekly.opus in status: ${JSON.stringify(a.quota)}`);
    assert.equal(opus.utilization, 1);
    assert.ok(Math.abs(msUntil(opus.resetAt) - 7200000) < 60000, `scoped reset ≈ now + 7200 s: ${opus.resetAt}`);
    assert.equal(a.quota.scopedWeekly.sonnet, undefined);
    // sonnet still goes to A; opus is refused without an upstream call.
    assert.equal((await send(server)).status, 200);
    const again = await send(server, { model: OPUS });
    assert.equal(again.status, 429, again.text);
    assert.deepEqual(await cur.seen(), [['max-a', 429], ['max-a', 200]]);
  });
});

describe('usage cap (§5.10)', { skip }, () => {
  test('capUtilization 0.5: 5h at 0.6 benches the account; weekly at 0.6 is `capped`', async (t) => {
    const { server, cur } = await rpool(t, {
      sim: { 'max-a': { used5h: 0.6 }, 'pro-b': { used7d: 0.6 } },
      cfg: { 'max-a': { capUtilization: 0.5 }, 'pro-b': { capUtilization: 0.5 } },
    });
    const st = await learnAll(server, ['max-a', 'pro-b']).catch(async () => server.status());
    for (const n of ['max-a', 'pro-b']) assert.equal(acct(st, n).capUtilization, 0.5);
    assert.equal(acct(st, 'pro-b').weekly.rawState, 'capped', JSON.stringify(acct(st, 'pro-b').weekly));
    await cur.mark();
    const r = await send(server);
    assert.equal(r.status, 429, `both capped accounts are out: ${r.text}`);
    assert.deepEqual(await cur.seen(), []);
  });
});

describe('Part A3 and A4', { skip }, () => {
  test('A3: `rejected` with only the 5h window full benches until the 5h reset, not the weekly', async (t) => {
    // Time scale 3600: 5 h = 5 real seconds, 7 d = 168 real seconds.
    const { server, cur } = await rpool(t, { sim: { 'max-a': { used5h: 1.0, used7d: 0.2 }, 'pro-b': { used5h: 1.0, used7d: 0.2 } }, simArgs: ['--time-scale', '3600'] });
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 6, `retry-after ${ra}: the 5h reset (~5 s), not the 7d one (~168 s)`);
    assert.deepEqual((await cur.seen()).map(([, s]) => s), [429, 429]);
    const st = await server.status();
    for (const n of ['max-a', 'pro-b']) {
      const a = acct(st, n);
      assert.equal(a.quota.unifiedStatus, 'rejected');
      assert.notEqual(a.weekly.rawState, 'exhausted', `${n}: a full 5h window is a session bench, not weekly exhaustion`);
      assert.ok(msUntil(a.quota.unified5hReset) < 7000, JSON.stringify(a.quota));
    }
    // After the 5h reset the same accounts serve again (a request that would be held).
    await sleep(ra * 1000 + 300);
    const later = await send(server);
    assert.equal(later.status, 200, later.text);
  });

  test('A3: the request is held until the 5h reset and then served', async (t) => {
    const { server } = await rpool(t, {
      sim: { 'max-a': { used5h: 1.0 }, 'pro-b': { used5h: 1.0 } },
      simArgs: ['--time-scale', '3600'],
      config: { queue: { enabled: true, pollMs: 200 } },
    });
    const r = await send(server, {}, {}, 20000);
    assert.equal(r.status, 200, r.text);
  });

  test('A4: utilization headers without reset stamps get the default expiry (5h: now + 5 h; 7d: now + 7 d)', async (t) => {
    // count_tokens is not charged, so with both windows closed the sim sends the
    // utilizations ("0") without any reset stamp.
    const { server, cur } = await rpool(t, { only: ['max-a'] });
    const ct = await postMessages(server.url, {}, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'x' }] }, { path: '/v1/messages/count_tokens' });
    assert.equal(ct.status, 200, ct.text);
    const [seen] = await cur.since();
    assert.equal(seen.target, '/v1/messages/count_tokens');
    const q = acct(await server.status(), 'max-a').quota;
    assert.equal(q.unified5h, 0, JSON.stringify(q));
    assert.equal(q.unified7d, 0, JSON.stringify(q));
    assert.ok(Math.abs(msUntil(q.unified5hReset) - H5) < 120000, `5h default expiry ≈ now + 5 h: ${q.unified5hReset}`);
    assert.ok(Math.abs(msUntil(q.unified7dReset) - D7) < 120000, `7d default expiry ≈ now + 7 d: ${q.unified7dReset}`);
  });

  test('A4: a 429 carrying only `5h-utilization: 1.0` does not bench the account forever', async (t) => {
    const mock = await startMockUpstream((req, n) =>
      n === 1
        ? {
            status: 429,
            headers: { 'anthropic-ratelimit-unified-5h-utilization': '1.0', 'anthropic-ratelimit-unified-status': 'rejected', 'retry-after': '30' },
            body: { type: 'error', error: { type: 'rate_limit_error', message: 'This request would exceed your account\'s rate limit. Please try again later.' } },
          }
        : { status: 200, body: mockMessage() },
    );
    t.after(() => mock.close());
    const server = await startServer({ upstream: mock.url, accounts: [{ name: 'max-a', type: 'oauth', accessToken: 'sk-ant-oat01-a', refreshToken: 'sk-ant-ort01-a', expiresAt: 4102444800000 }] });
    t.after(() => server.stop());
    const r = await send(server);
    assert.equal(r.status, 429, r.text);
    const q = acct(await server.status(), 'max-a').quota;
    assert.equal(q.unified5h, 1);
    const left = msUntil(q.unified5hReset);
    assert.ok(Math.abs(left - H5) < 120000, `default 5h expiry ≈ now + 5 h, got ${q.unified5hReset} (${left} ms)`);
    assert.equal(q.unified7d, null);
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(Number.isFinite(ra) && ra >= 1 && ra <= H5 / 1000, `a finite retry-after: ${r.headers.get('retry-after')}`);
  });
});
