// The real Claude Code CLI through a fleet-wide 429 storm (issue 6 "done means"): when every
// account recovers inside the hold window the storm is invisible — `claude -p` prints the
// answer and the upstream saw exactly one successful request for it; when the recovery is
// beyond the window the CLI is told at once, with the reset time, instead of backing off.
// MAXPOOL_E2E_NO_CLI=1 skips it (~300 MB per CLI run).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLAUDE_BIN, runClaude } from './lib/harness.mjs';
import { SKIP_PROXY, pool, waitFor } from './lib/pool.mjs';
import { FAST_QUEUE, sessionLimit } from './lib/hold.mjs';

const TEXT = 'The storm passed unnoticed.';
const OAUTH = 'sk-ant-oat01-client-never-upstream';
const skip =
  SKIP_PROXY ||
  (process.env.MAXPOOL_E2E_NO_CLI === '1' ? 'MAXPOOL_E2E_NO_CLI=1' : false) ||
  (existsSync(CLAUDE_BIN) ? false : 'claude CLI not installed (npm ci in tests/e2e)');

const turns = (reqs) => reqs.filter((q) => q.method === 'POST' && q.target.startsWith('/v1/messages'));

describe('claude -p through a fleet-wide 429 storm', { skip }, () => {
  test('every account answers 429 for ~20 s, then recovers: the CLI prints the answer; one successful upstream request', { timeout: 120000 }, async (t) => {
    const { sim, server } = await pool(t, {
      only: ['max-a', 'pro-b'],
      // No count: while the storm lasts every attempt on every account is refused.
      over: { response: { text: TEXT, deltas: 6 }, faults: [sessionLimit('max-a', 20), sessionLimit('pro-b', 20)] },
      config: { queue: FAST_QUEUE },
    });
    const run = runClaude({ baseURL: server.url, oauthToken: OAUTH, prompt: 'say hi', timeoutMs: 90000 });
    await waitFor(async () => turns(await sim.requests(16)).filter((q) => q.status === 429).length >= 2, {
      timeoutMs: 30000,
      what: 'both accounts refusing the turn',
    });
    const stormAt = Date.now();
    await sleep(18000);
    await sim.setScript({ faults: [] }); // the storm ends (the accounts' retry-after is 20 s)
    const r = await run;
    const heldS = (Date.now() - stormAt) / 1000;
    assert.equal(r.timedOut, false, `timed out; stderr: ${r.stderr}`);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
    assert.equal(r.stdout.trim(), TEXT);
    assert.ok(heldS >= 19, `the answer came after the storm (${heldS} s)`);
    const posts = turns(await sim.requests(64));
    assert.deepEqual(
      posts.map((q) => q.status),
      [429, 429, 200],
      'one refusal per account, then exactly one successful request',
    );
    assert.equal(posts[2].bodySha256, posts[0].bodySha256, 'the same turn, sent again by the proxy');
    assert.equal((server.stderr().match(/queueing request for up to/g) || []).length, 1, 'the CLI sent the turn once');
  });

  test('recovery beyond the hold window: the CLI is told at once that the limit is hit and when it resets', { timeout: 60000 }, async (t) => {
    const { sim, server } = await pool(t, {
      only: ['max-a', 'pro-b'],
      over: { response: { text: TEXT }, faults: [sessionLimit('max-a', 1800), sessionLimit('pro-b', 2400)] },
      config: { queue: { ...FAST_QUEUE, streamHoldMaxMs: 60000 } },
    });
    const t0 = Date.now();
    const r = await runClaude({ baseURL: server.url, oauthToken: OAUTH, prompt: 'say hi', timeoutMs: 45000 });
    const tookS = (Date.now() - t0) / 1000;
    assert.equal(r.timedOut, false, `the CLI kept waiting; stderr: ${r.stderr}`);
    assert.ok(tookS < 20, `it stopped at once, not after minutes of back-off (${tookS} s)`);
    assert.notEqual(r.code, 0);
    const out = `${r.stdout}\n${r.stderr}`;
    t.diagnostic(`claude said: ${out.trim()}`);
    // The rejected 429 reads as the user's own limit, with its reset time (not "Server is
    // temporarily limiting requests (not your usage limit)").
    assert.match(out, /You've hit your 5-hour limit · resets \d/, out);
    assert.deepEqual(
      turns(await sim.requests(64)).map((q) => q.status),
      [429, 429],
      'the CLI did not retry',
    );
  });
});
