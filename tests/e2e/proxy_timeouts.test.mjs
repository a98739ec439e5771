// The upstream stream idle timeout (§6.5, §6.7, §13 scenario 37) with
// MAXPOOL_STREAM_IDLE_MS at its 30 s floor: a stream that stalls after relaying events ends
// with an SSE connection_unavailable error frame and the account cools down; one that stalls
// before its first event should fail over to another account instead. Both stalls run at
// the same time so the file costs one idle period (~31 s).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { messageBody } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, pool } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const IDLE_MS = 30000;
const TEXT = 'Served after the stall.';

function stream(port) {
  return rawRequest({ port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })), timeoutMs: IDLE_MS + 20000 });
}

describe('upstream stream idle timeout (30 s)', { skip }, () => {
  let beforeFirstEvent = null; // started by the first test, judged by the second

  test('a stall after events were relayed ends with an SSE connection_unavailable frame', async (t) => {
    const env = { MAXPOOL_STREAM_IDLE_MS: String(IDLE_MS) };
    const mid = await pool(t, {
      only: ['max-a', 'pro-b'],
      serverEnv: env,
      over: { response: { text: TEXT }, faults: [{ kind: 'stall', afterEvents: 3, count: 1 }] },
    });
    const early = await pool(t, {
      only: ['max-a', 'pro-b'],
      serverEnv: env,
      over: { response: { text: TEXT }, faults: [{ kind: 'stall', afterEvents: 0, count: 1 }] },
    });
    beforeFirstEvent = stream(early.server.port).then(async (r) => ({ r, seen: await early.sim.requests(5) }));
    const r = await stream(mid.server.port);
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete', `ended ${r.end}`);
    assert.ok(r.endMs >= IDLE_MS - 1000, `ended after ${r.endMs} ms, before the idle timeout`);
    assert.deepEqual(r.events.slice(0, 3).map((e) => e.event), ['message_start', 'content_block_start', 'ping']);
    const last = r.events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(last.data.error.type, 'connection_unavailable');
    assert.equal(r.partialEvent, '');
    const [seen] = await mid.sim.requests(1);
    const st = await mid.server.status();
    const acct = st.accounts.find((a) => a.name === seen.account);
    assert.equal(acct.inFlight, 0);
    assert.ok(acct.cooldownUntil, 'the stalled account cools down');
    await beforeFirstEvent; // keep the second pool alive until its request ended
  });

  test('a stall before the first event fails over to the other account', async () => {
    const { r, seen } = await beforeFirstEvent;
    assert.equal(r.status, 200);
    assert.equal(r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), TEXT);
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0].account, seen[1].account);
  });
});
