// Item 6 of issue 6, Part A1: how long does the real Claude Code CLI wait on a stream that
// carries nothing but `event: ping` heartbeats? Each test holds one `claude -p` turn for N
// minutes (the only account answers 429 with retry-after N min, so the proxy holds the
// stream with heartbeats every heartbeatMs = 10 s, the default), then the account recovers
// and the proxy forwards the request once. The CLI survives the hold if it prints the answer
// and exits 0, with exactly one successful upstream request; how often the CLI re-sent the
// turn while it waited (and after how long it stopped waiting) is part of the verdict.
//
// Long: runs only with MAXPOOL_E2E_LONG=1 (`make test-long`). MAXPOOL_E2E_LONG_MINUTES picks
// the holds (default "1,3,6,10"); MAXPOOL_E2E_LONG_PARALLEL=1 runs them side by side (each
// has its own sim, proxy and CLI; ~300 MB per CLI). The result of each hold is printed as a
// test diagnostic ("held N min: …") and recorded in docs/routing.md.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { CLAUDE_BIN, runClaude } from './lib/harness.mjs';
import { SKIP_PROXY, pool } from './lib/pool.mjs';

const TEXT = 'Still here after the hold.';
const LONG = process.env.MAXPOOL_E2E_LONG === '1';
const skip =
  (LONG ? false : 'long test: make test-long (MAXPOOL_E2E_LONG=1)') ||
  SKIP_PROXY ||
  (process.env.MAXPOOL_E2E_NO_CLI === '1' ? 'MAXPOOL_E2E_NO_CLI=1' : false) ||
  (existsSync(CLAUDE_BIN) ? false : 'claude CLI not installed (npm ci in tests/e2e)');
const MINUTES = (process.env.MAXPOOL_E2E_LONG_MINUTES || '1,3,6,10')
  .split(',')
  .map(Number)
  .filter((m) => m > 0);
const concurrency = process.env.MAXPOOL_E2E_LONG_PARALLEL === '1' ? MINUTES.length : 1;
// MAXPOOL_E2E_LONG_HEARTBEAT_MS widens the ping interval (e.g. 3600000: one ping, then
// silence) to see what the pings are worth.
const heartbeatMs = Number(process.env.MAXPOOL_E2E_LONG_HEARTBEAT_MS) || 0;

describe('claude -p held by heartbeats only (Part A1: the CLI patience)', { skip, concurrency }, () => {
  for (const min of MINUTES) {
    const holdS = min * 60;
    test(`held ${min} min: the CLI waits, then prints the answer`, { timeout: (holdS + 240) * 1000 }, async (t) => {
      const { sim, server } = await pool(t, {
        only: ['max-a'],
        over: {
          response: { text: TEXT, deltas: 5 },
          faults: [{ kind: 'rate_limit', account: 'max-a', retryAfter: holdS, count: 1, message: 'Session limit reached' }],
        },
        config: heartbeatMs ? { queue: { heartbeatMs } } : {},
      });
      const t0 = Date.now();
      const r = await runClaude({
        baseURL: server.url,
        oauthToken: 'sk-ant-oat01-client-never-upstream',
        prompt: 'say hi',
        timeoutMs: (holdS + 180) * 1000,
      });
      const tookS = Math.round((Date.now() - t0) / 1000);
      const holds = (server.stderr().match(/queueing request for up to/g) || []).length;
      // A client that gives up on a held stream shows as "Client left after N s" (§6.5).
      const left = (server.stderr().match(/Client left after [\d.]+s/g) || []).map((l) => l.replace('Client left after ', ''));
      const reqs = (await sim.requests(256)).filter((q) => q.method === 'POST' && q.target.startsWith('/v1/messages'));
      const statuses = reqs.map((q) => q.status);
      const verdict =
        `held ${min} min${heartbeatMs ? ` (heartbeatMs ${heartbeatMs})` : ''}: exit ${r.code}${r.signal ? `/${r.signal}` : ''}${r.timedOut ? ' (killed by the test)' : ''}, ` +
        `${tookS} s, ${holds} hold(s) at the proxy (the CLI sent the turn ${holds} time(s)${left.length ? `; it left after ${left.join(', ')}` : ''}), upstream statuses ${JSON.stringify(statuses)}, ` +
        `stdout ${JSON.stringify(r.stdout.trim().slice(0, 200))}, stderr ${JSON.stringify(r.stderr.trim().slice(-300))}`;
      t.diagnostic(verdict);
      process.stderr.write(`# PATIENCE ${verdict}\n`);
      assert.equal(r.timedOut, false, verdict);
      assert.equal(r.code, 0, verdict);
      assert.equal(r.stdout.trim(), TEXT, verdict);
      // Surviving means the turn completes; a CLI that re-sends a turn it stopped waiting
      // for (its request timeout) still survives, and the verdict records when it left.
      assert.ok(holds >= 1, verdict);
      assert.deepEqual(statuses, [429, 200], `one refusal, then exactly one successful request: ${verdict}`);
      assert.ok(tookS >= holdS - 5, `the answer came after the hold: ${verdict}`);
    });
  }
});
