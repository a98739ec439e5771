// 64 held streams plus one (issue 6, SPEC §6.9): with the default queue.maxConcurrentQueued
// (64), the 65th request that would wait is refused at once (a plain 429: no heartbeat of its
// own was on the wire yet, §13 scenario 33); the 64 complete after the recovery, each sent
// upstream once and in arrival order; the proxy's memory stays flat over two such rounds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SANITIZED, SKIP_PROXY, pool, rssBytes, sha256 } from './lib/pool.mjs';
import { FAST_QUEUE, namedStream, send, sessionLimit, streamText, waitQueued } from './lib/hold.mjs';

const skip = SKIP_PROXY;
const TEXT = 'One of sixty-four.';
const N = 64;
const HOLD_S = 8; // both accounts are limited this long; sending the 64 takes ~2 s

/** Sends the N streams one after the other, each once the previous one is held (its first ping). */
async function holdMany(server, round) {
  const bodies = [];
  const results = [];
  for (let i = 0; i < N; i++) {
    const body = JSON.stringify(namedStream(`round ${round} stream ${i}`));
    bodies.push(body);
    let held;
    const pinged = new Promise((res) => (held = res));
    results.push(
      send(server, body, {
        timeoutMs: 60000,
        stopWhen: (r) => {
          if (r.events.length === 1) held();
          return false;
        },
      }).then((r) => {
        held();
        return r;
      }),
    );
    await pinged;
  }
  return { bodies, results };
}

describe('64 held streams plus one', { skip }, () => {
  test('the 65th is refused at once; the 64 complete after the recovery, in arrival order; memory flat', { timeout: 120000 }, async (t) => {
    const faults = [sessionLimit('max-a', HOLD_S, { count: 1 }), sessionLimit('pro-b', HOLD_S, { count: 1 })];
    const { sim, server } = await pool(t, {
      only: ['max-a', 'pro-b'],
      over: { response: { text: TEXT, deltas: 4 }, faults },
      config: { queue: FAST_QUEUE },
    });
    const rss = [];
    for (let round = 1; round <= 2; round++) {
      if (round > 1) await sim.setScript({ faults });
      const before = (await sim.requests(1))[0];
      const t0 = Date.now();
      const { bodies, results } = await holdMany(server, round);
      await waitQueued(server, N);
      assert.ok(Date.now() - t0 < (HOLD_S - 2) * 1000, `the ${N} were held before the recovery (${Date.now() - t0} ms)`);

      const extra = await send(server, JSON.stringify(namedStream('the 65th')), { timeoutMs: 5000 });
      assert.equal(extra.status, 429, extra.body);
      assert.ok(extra.endMs < 1500, `refused at once (${Math.round(extra.endMs)} ms)`);
      assert.match(extra.headers['content-type'], /application\/json/);
      assert.equal(JSON.parse(extra.body).error.type, 'rate_limit_error');
      assert.equal((await server.status()).scheduler.queued, N, 'the 65th took no place');

      await sleep(1500); // a heartbeat or two on all 64
      const heldRss = rssBytes(server.pid);

      const done = await Promise.all(results);
      done.forEach((r, i) => {
        assert.equal(r.status, 200, `stream ${i}: ${r.body.slice(0, 300)}`);
        assert.equal(r.end, 'complete', `stream ${i} ended ${r.end}`);
        assert.equal(r.events[0].event, 'ping', `stream ${i} was held`);
        assert.equal(r.events.at(-1).event, 'message_stop', `stream ${i}`);
        assert.equal(streamText(r), TEXT, `stream ${i}`);
      });
      const seen = (await sim.requests(256)).filter((q) => before === undefined || Number(q.id.slice(8)) > Number(before.id.slice(8)));
      const ok = seen.filter((q) => q.status === 200).map((q) => q.bodySha256);
      assert.equal(ok.length, N, 'each held stream went upstream once, after the recovery');
      assert.deepEqual(ok, bodies.map(sha256), 'in arrival order');
      assert.equal(seen.length, N + 2, 'plus the two 429s that started the hold; the 65th never went up');
      const st = await server.status();
      assert.equal(st.scheduler.queued, 0);
      assert.ok(st.accounts.every((a) => a.inFlight === 0));
      rss.push({ held: heldRss, after: rssBytes(server.pid) });
    }
    t.diagnostic(`VmRSS (KiB): ${rss.map((r) => `held ${r.held >> 10}, after ${r.after >> 10}`).join('; ')}`);
    if (!SANITIZED) {
      // Flat: the second round costs nothing the first did not.
      const growth = rss[1].after - rss[0].after;
      assert.ok(growth < 2 * 1024 * 1024, `VmRSS grew ${growth >> 10} KiB between two identical rounds`);
      assert.ok(rss[1].held - rss[0].held < 2 * 1024 * 1024, `held VmRSS ${rss[0].held >> 10} → ${rss[1].held >> 10} KiB`);
      assert.ok(rss[0].held < 64 * 1024 * 1024, `64 held streams in ${rss[0].held >> 10} KiB`);
    }
  });
});
