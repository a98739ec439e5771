// The real Claude Code CLI (`claude -p`, pinned) against `maxpool sim` directly, once in
// API-key mode and once in subscription mode (CLIENTS.md). Each run costs ~300 MB and ~1 s:
// keep these few.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseScript, hasCommand, reqNum, runClaude, startSim } from './lib/harness.mjs';

// MAXPOOL_E2E_NO_CLI=1 skips these runs (the sanitizer run sets it: ~300 MB each).
const skip =
  (hasCommand('sim') ? false : 'maxpool sim is not in this build') ||
  (process.env.MAXPOOL_E2E_NO_CLI === '1' ? 'MAXPOOL_E2E_NO_CLI=1' : false);
const TEXT = 'Hi! This answer came from maxpool sim.';

describe('claude -p → maxpool sim', { skip }, () => {
  let sim;
  before(async () => {
    const script = baseScript({ response: { text: TEXT, deltas: 20 } });
    // A subscription account whose 5h window is already full.
    script.accounts.push({
      name: 'spent',
      type: 'oauth',
      accessToken: 'sk-ant-oat01-spent',
      refreshToken: 'sk-ant-ort01-spent',
      tier: 'max',
      budget5h: 1000,
      budget7d: 1000000,
      used5h: 1,
    });
    sim = await startSim({ script });
  });
  after(() => sim?.stop());

  async function messagesSince(id) {
    return (await sim.requests(256)).filter((r) => reqNum(r.id) > id);
  }
  async function lastId() {
    const r = await sim.requests(1);
    return r.length ? reqNum(r[0].id) : -1;
  }

  test('API-key mode: exit 0, prints the scripted text; the sim saw x-api-key', async () => {
    const since = await lastId();
    const r = await runClaude({ baseURL: sim.url, apiKey: 'sk-ant-api03-k1', prompt: 'say hi', timeoutMs: 90000 });
    assert.equal(r.timedOut, false, `timed out; stderr: ${r.stderr}`);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
    assert.equal(r.stdout.trim(), TEXT);
    const reqs = await messagesSince(since);
    const posts = reqs.filter((q) => q.method === 'POST' && q.target.startsWith('/v1/messages'));
    assert.ok(posts.length >= 1, JSON.stringify(reqs.map((q) => `${q.method} ${q.target} ${q.status}`)));
    for (const p of posts) {
      assert.equal(p.account, 'key-1');
      assert.equal(p.status, 200);
      assert.equal(p.headers['x-api-key'], 'sk-ant-api03-k1');
      assert.equal(p.headers.authorization, undefined);
      assert.equal(p.headers['x-app'], 'cli');
      assert.match(p.headers['user-agent'], /^claude-cli\//);
    }
    const main = posts.find((p) => p.target === '/v1/messages?beta=true' && p.bodyBytes > 20000);
    assert.ok(main, 'the big streaming request of a turn went to /v1/messages?beta=true');
    assert.ok(reqs.every((q) => q.status < 500));
  });

  test('subscription mode (CLAUDE_CODE_OAUTH_TOKEN): exit 0, prints the text; Bearer + oauth beta', async () => {
    const since = await lastId();
    const r = await runClaude({ baseURL: sim.url, oauthToken: 'sk-ant-oat01-a', prompt: 'say hi', timeoutMs: 90000 });
    assert.equal(r.timedOut, false, `timed out; stderr: ${r.stderr}`);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
    assert.equal(r.stdout.trim(), TEXT);
    const reqs = await messagesSince(since);
    const posts = reqs.filter((q) => q.method === 'POST' && q.target.startsWith('/v1/messages'));
    assert.ok(posts.length >= 1, JSON.stringify(reqs.map((q) => `${q.method} ${q.target} ${q.status}`)));
    for (const p of posts) {
      assert.equal(p.account, 'max-a');
      assert.equal(p.status, 200);
      assert.equal(p.headers.authorization, 'Bearer sk-ant-oat01-a');
      assert.equal(p.headers['x-api-key'], undefined);
      assert.match(p.headers['anthropic-beta'] ?? '', /(^|,)\s*oauth-2025-04-20\s*(,|$)/);
    }
    const st = (await sim.state()).accounts.find((a) => a.name === 'max-a');
    assert.ok(st.windows['5h'].used > 0, 'the run was charged to the subscription window');
  });

  test('subscription mode, 5h window full: the CLI reads the unified headers and stops at once', async () => {
    const since = await lastId();
    const r = await runClaude({ baseURL: sim.url, oauthToken: 'sk-ant-oat01-spent', prompt: 'say hi', timeoutMs: 60000 });
    assert.equal(r.timedOut, false, `timed out (it should not retry a rejected subscription); stderr: ${r.stderr}`);
    assert.notEqual(r.code, 0);
    // 2.1.332 prints "You've hit your 5-hour limit · resets 3:34pm (UTC)".
    assert.match(`${r.stdout}${r.stderr}`, /hit your .*limit.*resets \d{1,2}(:\d\d)?\s?(am|pm)/i);
    const reqs = await messagesSince(since);
    assert.deepEqual(
      reqs.map((q) => `${q.method} ${q.target} ${q.account} ${q.status}`),
      ['POST /v1/messages?beta=true spent 429'],
      'one request, no retry',
    );
  });
});
