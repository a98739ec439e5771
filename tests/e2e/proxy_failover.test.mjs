// Failover before the first byte (issue 4 item 5, §6.2 basics; the full scheduler comes
// later): when the first account answers 429, 529, 5xx or drops the connection before any
// header, the same request goes to another account and the client sees only the 200.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { MODEL, messageBody, postMessages } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, assertCleanUpstream, pool } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const TEXT = 'Served by the second account.';
const TWO = ['max-a', 'pro-b'];

const FAULTS = [
  { label: '429 rate_limit', fault: { kind: 'rate_limit', retryAfter: 7 }, status: 429 },
  { label: '529 overloaded', fault: { kind: 'overloaded' }, status: 529 },
  { label: '500', fault: { kind: 'status', status: 500 }, status: 500 },
  { label: '503', fault: { kind: 'status', status: 503 }, status: 503 },
  { label: 'reset before headers', fault: { kind: 'reset_before_headers' }, status: null },
];

describe('failover before the first byte', { skip }, () => {
  for (const { label, fault, status } of FAULTS) {
    for (const stream of [false, true]) {
      test(`${label} on the first account → the other serves (${stream ? 'stream' : 'JSON'})`, async (t) => {
        // count 1 and no account: the fault hits whichever account is tried first.
        const { sim, server } = await pool(t, { only: TWO, over: { response: { text: TEXT, deltas: 5 }, faults: [{ ...fault, count: 1 }] } });
        const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream })), timeoutMs: 15000 });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.end, 'complete');
        if (stream) {
          assert.equal(r.events.at(-1).event, 'message_stop');
          assert.equal(r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), TEXT);
          assert.ok(!r.events.some((e) => e.event === 'error'));
        } else {
          assert.equal(JSON.parse(r.body).content[0].text, TEXT);
        }
        assert.equal(r.headers['retry-after'], undefined, 'nothing of the failed attempt leaks to the client');
        const seen = await sim.requests(10);
        assert.equal(seen.length, 2, JSON.stringify(seen.map((q) => [q.account, q.status])));
        assert.equal(seen[0].status, status);
        assert.equal(seen[1].status, 200);
        assert.notEqual(seen[0].account, seen[1].account, 'the retry went to the other account');
        assert.equal(seen[1].bodySha256, seen[0].bodySha256, 'the same body was sent again');
        for (const q of seen) assertCleanUpstream(q);
        const st = await server.status();
        const failed = st.accounts.find((a) => a.name === seen[0].account);
        assert.ok(failed.cooldownUntil || failed.rateLimitedUntil, `the failed account is cooling down: ${JSON.stringify(failed)}`);
        assert.ok(st.accounts.every((a) => a.inFlight === 0));
      });
    }
  }

  test('after a 429 the throttled account is skipped by the next request', async (t) => {
    const { sim, server } = await pool(t, { only: TWO, over: { faults: [{ kind: 'rate_limit', retryAfter: 30, count: 1 }] } });
    assert.equal((await postMessages(server.url, {})).status, 200);
    const [first] = await sim.requests(2);
    for (let i = 0; i < 3; i++) assert.equal((await postMessages(server.url, {})).status, 200);
    const later = (await sim.requests(3)).map((q) => q.account);
    assert.ok(later.every((a) => a !== first.account), `${first.account} (429, retry-after 30) was used again: ${later}`);
  });

  test('every account failing: the client gets an error, after one attempt per account', async (t) => {
    // Without the queue: the failover alone decides (the queue has its own suite).
    const { sim, server } = await pool(t, { only: TWO, over: { faults: [{ kind: 'overloaded' }] }, config: { queue: { enabled: false } } });
    const r = await postMessages(server.url, {});
    assert.ok(r.status >= 429, `status ${r.status}`);
    assert.equal(r.json?.type, 'error', r.text);
    assert.equal((await sim.state()).requests, 2, 'one attempt per account, no loop');
  });

  test('every account answered the same 429: the shared throttle opens (§6.3, §6.4), the next request gets a 429 without an upstream call', async (t) => {
    const { sim, server } = await pool(t, { only: TWO, over: { faults: [{ kind: 'rate_limit', retryAfter: 30, count: 2 }] }, config: { queue: { enabled: false } } });
    const first = await postMessages(server.url, {});
    assert.equal(first.status, 429);
    assert.equal(first.json.error.type, 'rate_limit_error');
    assert.equal((await sim.state()).requests, 2);
    const st = await server.status();
    // The same ambiguous message on both accounts within 30 s is a server-side limit: the
    // shared throttle opens instead of benching each account.
    assert.equal(st.upstreamThrottle.active, true, JSON.stringify(st.upstreamThrottle));
    const second = await postMessages(server.url, {});
    assert.equal(second.status, 429, second.text);
    assert.equal(second.json.error.type, 'rate_limit_error');
    const ra = Number(second.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 30, `retry-after ${ra}`);
    assert.equal((await sim.state()).requests, 2, 'no upstream call for a request no account can take');
  });

  test('every account answering 500: the client gets 500 overloaded_error "Upstream returned 500" (§6.2)', async (t) => {
    const { server } = await pool(t, { only: TWO, over: { faults: [{ kind: 'status', status: 500 }] }, config: { queue: { enabled: false } } });
    const r = await postMessages(server.url, {});
    assert.equal(r.status, 500);
    assert.deepEqual(r.json, { type: 'error', error: { type: 'overloaded_error', message: 'Upstream returned 500' } });
  });

  test('the SDK sees only the 200 when the first account answers 529 (stream)', async (t) => {
    const { server } = await pool(t, { only: TWO, over: { response: { text: TEXT }, faults: [{ kind: 'overloaded', count: 1 }] } });
    const client = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-client', maxRetries: 0, timeout: 15000 });
    const text = await client.messages.stream({ model: MODEL, max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] }).finalText();
    assert.equal(text, TEXT);
  });
});
