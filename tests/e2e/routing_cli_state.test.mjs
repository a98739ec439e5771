// Issue 5's two whole-system checks: the real Claude Code CLI does not notice two failing
// accounts (429 on one, 529 on another), and the quota the proxy learned survives a restart
// through the state file (§2.8, §13 scenario 44), after a clean SIGTERM and after kill -9.
// MAXPOOL_E2E_NO_CLI=1 skips the CLI run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLAUDE_BIN, messageBody, runClaude, startDaemon, stopChild } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, waitFor } from './lib/pool.mjs';
import { acct, rpool, send } from './lib/routing.mjs';
import { PROXY_KEY, startServer } from './lib/server.mjs';

const skip = SKIP_PROXY;
const skipCli =
  skip ||
  (process.env.MAXPOOL_E2E_NO_CLI === '1' ? 'MAXPOOL_E2E_NO_CLI=1' : false) ||
  (existsSync(CLAUDE_BIN) ? false : 'claude CLI not installed (npm ci in tests/e2e)');

const ALL3 = ['max-a', 'pro-b', 'key-1'];

describe('the Claude Code CLI through failing accounts', { skip: skipCli }, () => {
  test('claude -p succeeds in one run while one account answers 429 and another 529: served by the third', { timeout: 90000 }, async (t) => {
    const { server, cur } = await rpool(t, {
      only: ALL3,
      over: {
        response: { text: 'Survived two failing accounts.' },
        faults: [
          { kind: 'rate_limit', account: 'max-a', retryAfter: 30 },
          { kind: 'overloaded', account: 'pro-b' },
        ],
      },
    });
    const r = await runClaude({ baseURL: server.url, apiKey: 'sk-ant-api03-client-never-upstream', timeoutMs: 60000 });
    assert.equal(r.timedOut, false, r.stderr);
    assert.equal(r.code, 0, `claude -p failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Survived two failing accounts\./);
    const seen = await cur.since();
    const msgs = seen.filter((q) => q.target.startsWith('/v1/messages'));
    const pairs = msgs.map((q) => [q.account, q.status]);
    // One client request: every attempt carries the same body; the last is key-1's 200.
    assert.equal(new Set(msgs.map((q) => q.bodySha256)).size, 1, `one CLI request, retried by the proxy: ${JSON.stringify(pairs)}`);
    assert.deepEqual(pairs.at(-1), ['key-1', 200]);
    assert.equal(pairs.filter(([, s]) => s === 200).length, 1);
    assert.deepEqual(
      pairs.slice(0, -1).sort(),
      [['max-a', 429], ['pro-b', 529]],
      `both failing accounts were tried first in this run: ${JSON.stringify(pairs)}`,
    );
    const st = await server.status();
    assert.equal(acct(st, 'max-a').status, 'throttled');
    assert.equal(acct(st, 'key-1').completedRequests, 1);
  });
});

/** The state file of a config path (maxpool.json → maxpool.state.json, §2.8). */
const statePath = (cfg) => cfg.replace(/\.json$/, '.state.json');

/** Starts `maxpool server` again on the same config (same dir). */
let restarts = 0;
async function restart(server) {
  // A fresh port-file name per start: a stale one would point at the previous process.
  const d = await startDaemon({ args: ['server'], dir: server.dir, env: { MAXPOOL_CONFIG: server.configFile }, name: `server-again-${++restarts}` });
  return {
    ...d,
    status: async () => (await fetch(`${d.url}/maxpool/status`, { headers: { 'x-api-key': PROXY_KEY } })).json(),
    stop: () => stopChild(d.child),
  };
}

/** The quota fields a restart must bring back, per account. */
function quotaOf(st, names) {
  return Object.fromEntries(
    names.map((n) => {
      const q = acct(st, n).quota;
      return [n, { unified5h: q.unified5h, unified7d: q.unified7d, unified5hReset: q.unified5hReset, unified7dReset: q.unified7dReset }];
    }),
  );
}

function assertConfigIntact(server, before) {
  const text = readFileSync(server.configFile, 'utf8');
  const cfg = JSON.parse(text); // valid JSON
  assert.deepEqual(
    cfg.accounts.map((a) => [a.name, a.type, a.accessToken ?? a.apiKey]),
    before.accounts.map((a) => [a.name, a.type, a.accessToken ?? a.apiKey]),
  );
  const left = readdirSync(server.dir).filter((f) => f.endsWith('.tmp'));
  assert.deepEqual(left, [], 'no temp files left behind');
}

const SIM_QUOTA = { 'max-a': { used5h: 0.2, used7d: 0.3 }, 'pro-b': { used5h: 0.4, used7d: 0.6 } };

describe('state file (§2.8, §13 scenario 44)', { skip }, () => {
  test('SIGTERM writes <config>.state.json (0600) with per-account quota and resets; a restart restores it without traffic', async (t) => {
    const { sim, server } = await rpool(t, { sim: SIM_QUOTA });
    const before = JSON.parse(readFileSync(server.configFile, 'utf8'));
    for (let i = 0; i < 4; i++) assert.equal((await send(server)).status, 200);
    const st = await server.status();
    const want = quotaOf(st, ['max-a', 'pro-b']);
    for (const n of ['max-a', 'pro-b']) assert.ok(want[n].unified7d > 0 && want[n].unified7dReset, JSON.stringify(want));
    const r = await stopChild(server.child);
    assert.equal(r.code, 0, server.stderr());
    const sp = statePath(server.configFile);
    assert.equal(statSync(sp).mode & 0o777, 0o600, 'state file mode');
    const state = JSON.parse(readFileSync(sp, 'utf8'));
    assert.ok(Number.isInteger(state._generation), JSON.stringify(state));
    for (const n of ['max-a', 'pro-b']) {
      const e = state.quota.find((x) => x.name === n);
      assert.ok(e, `${n} in the state file: ${JSON.stringify(state.quota)}`);
      assert.equal(e.quota.unified7d, want[n].unified7d);
      assert.equal(e.quota.unified7dReset, want[n].unified7dReset);
    }
    assertConfigIntact(server, before);
    const simReqs = (await sim.state()).requests;
    const again = await restart(server);
    t.after(() => again.stop());
    assert.deepEqual(quotaOf(await again.status(), ['max-a', 'pro-b']), want, 'quota restored');
    assert.equal((await sim.state()).requests, simReqs, 'without any new traffic');
    assert.equal(acct(await again.status(), 'pro-b').weekly.rawState, 'normal');
  });

  test('kill -9 mid-traffic after the 60 s state write: a restart restores the quota, the config is intact', { timeout: 120000 }, async (t) => {
    const { sim, server } = await rpool(t, { sim: SIM_QUOTA, over: { response: { deltas: 40, deltaDelayMs: 100 } } });
    const before = JSON.parse(readFileSync(server.configFile, 'utf8'));
    const sp = statePath(server.configFile);
    // Traffic until the periodic write (every 60 s) has happened, then a little more.
    let n = 0;
    await waitFor(
      async () => {
        assert.equal((await send(server)).status, 200);
        n++;
        if (existsSync(sp)) return true;
        await sleep(900);
        return false;
      },
      { timeoutMs: 75000, stepMs: 0, what: 'the periodic state write' },
    );
    assert.ok(n >= 2);
    assert.equal(statSync(sp).mode & 0o777, 0o600);
    const want = quotaOf(await server.status(), ['max-a', 'pro-b']);
    const onDisk = JSON.parse(readFileSync(sp, 'utf8'));
    for (const name of ['max-a', 'pro-b']) assert.ok(onDisk.quota.find((x) => x.name === name)?.quota.unified7dReset, JSON.stringify(onDisk));
    // A stream in flight when the process dies.
    let started = false;
    const inflight = rawRequest({
      port: server.port,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(messageBody({ stream: true })),
      timeoutMs: 20000,
      stopWhen: (r) => {
        started = r.events.length > 0;
        return false;
      },
    });
    await waitFor(() => started, { timeoutMs: 5000, what: 'a stream in flight' });
    process.kill(server.pid, 'SIGKILL');
    const cut = await inflight;
    assert.notEqual(cut.end, 'complete', 'the stream was cut by the kill');
    await waitFor(() => server.child.exitCode !== null || server.child.signalCode !== null, { what: 'the exit' });
    assertConfigIntact(server, before);
    JSON.parse(readFileSync(sp, 'utf8')); // still valid
    const simReqs = (await sim.state()).requests;
    const again = await restart(server);
    t.after(() => again.stop());
    const got = quotaOf(await again.status(), ['max-a', 'pro-b']);
    for (const name of ['max-a', 'pro-b']) {
      // The last write may predate the last few requests: the reset stamps are the same,
      // the utilization at most a little lower.
      assert.equal(got[name].unified7dReset, want[name].unified7dReset, name);
      assert.equal(got[name].unified5hReset, want[name].unified5hReset, name);
      assert.ok(got[name].unified7d > 0 && got[name].unified7d <= want[name].unified7d, `${name}: ${JSON.stringify(got[name])} vs ${JSON.stringify(want[name])}`);
    }
    assert.equal((await sim.state()).requests, simReqs, 'restored without new traffic');
  });
});

describe('state file restore rules (§2.8, Part A7)', { skip }, () => {
  const OAUTH = (name) => ({ name, type: 'oauth', accessToken: `sk-ant-oat01-${name}`, refreshToken: 'r', expiresAt: 4102444800000 });

  test('restore by name; a utilization without its reset stamp is dropped; a corrupt file is ignored', async (t) => {
    const future = Date.now() + 3 * 24 * 3600 * 1000;
    const server = await startServer({ upstream: 'http://127.0.0.1:9', accounts: [OAUTH('a'), OAUTH('b')] });
    t.after(() => server.stop());
    await stopChild(server.child);
    const sp = statePath(server.configFile);
    writeFileSync(
      sp,
      JSON.stringify({
        quota: [
          { accountUuid: null, name: 'a', quota: { unified5h: 0.4, unified7d: 0.7, unified5hReset: future - 1000, unified7dReset: future, unifiedStatus: 'allowed' } },
          { accountUuid: null, name: 'b', quota: { unified5h: 0.5, unified7d: 0.8, unified5hReset: null, unified7dReset: null } },
          { accountUuid: null, name: 'gone', quota: { unified7d: 0.9, unified7dReset: future } },
        ],
        _generation: 3,
      }),
      { mode: 0o600 },
    );
    const again = await restart(server);
    const st = await again.status();
    await again.stop();
    assert.deepEqual(quotaOf(st, ['a']).a, { unified5h: 0.4, unified7d: 0.7, unified5hReset: future - 1000, unified7dReset: future });
    assert.equal(acct(st, 'a').weekly.rawState, 'soft');
    assert.deepEqual(quotaOf(st, ['b']).b, { unified5h: null, unified7d: null, unified5hReset: null, unified7dReset: null }, 'no reset stamp → dropped');
    writeFileSync(sp, '{"quota": [', { mode: 0o600 });
    const third = await restart(server);
    const st3 = await third.status();
    await third.stop();
    assert.equal(acct(st3, 'a').quota.unified7d, null, 'a corrupt state file is ignored');
  });

  test('a state file with a newer generation on disk is not overwritten (another writer owns it)', async (t) => {
    const { server } = await rpool(t, { sim: SIM_QUOTA });
    assert.equal((await send(server)).status, 200);
    const sp = statePath(server.configFile);
    const foreign = { quota: [], _generation: 1000, note: 'another process' };
    writeFileSync(sp, JSON.stringify(foreign), { mode: 0o600 });
    const r = await stopChild(server.child);
    assert.equal(r.code, 0, server.stderr());
    assert.deepEqual(JSON.parse(readFileSync(sp, 'utf8')), foreign);
    assert.deepEqual(readdirSync(server.dir).filter((f) => f.endsWith('.tmp')), []);
  });
});
