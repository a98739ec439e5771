// The real clients through `maxpool server` into `maxpool sim` (issue 4, CLIENTS.md): the
// official SDK (streaming, non-streaming, count_tokens) and the Claude Code CLI in API-key
// and subscription mode. Text arrives intact; the upstream sees an account's credential and
// nothing of the client's, no internal and no hop-by-hop headers.
// MAXPOOL_E2E_NO_CLI=1 skips the two CLI runs (~300 MB each; the sanitizer run sets it).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { CLAUDE_BIN, MODEL, runClaude } from './lib/harness.mjs';
import { SKIP_PROXY, assertCleanUpstream, pool } from './lib/pool.mjs';

const TEXT = 'Through the pool — ünïcødé ✓, 🙂 and "quotes"\nintact.';
const CLIENT_KEY = 'sk-ant-api03-client-never-upstream';
const CLIENT_OAUTH = 'sk-ant-oat01-client-never-upstream';

const skip = SKIP_PROXY;
const skipCli =
  skip ||
  (process.env.MAXPOOL_E2E_NO_CLI === '1' ? 'MAXPOOL_E2E_NO_CLI=1' : false) ||
  (existsSync(CLAUDE_BIN) ? false : 'claude CLI not installed (npm ci in tests/e2e)');

const idNum = (r) => Number(r.id.replace(/^req_sim_/, ''));

async function requestsSince(sim, since) {
  return (await sim.requests(256)).filter((r) => idNum(r) > since);
}
async function lastId(sim) {
  const [r] = await sim.requests(1);
  return r ? idNum(r) : 0;
}

describe('official SDK → maxpool server → maxpool sim', { skip }, () => {
  test('streaming, non-streaming and count_tokens: text intact, account credentials only', async (t) => {
    const { sim, server } = await pool(t, { over: { response: { text: TEXT, deltas: 17 } } });
    const client = new Anthropic({
      baseURL: server.url,
      apiKey: CLIENT_KEY,
      maxRetries: 0,
      timeout: 15000,
      defaultHeaders: { 'x-maxpool-session': 'sdk-session', 'x-teamclaude-session': 'legacy' },
    });
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };

    const stream = client.messages.stream(params);
    const deltas = [];
    stream.on('text', (d) => deltas.push(d));
    const final = await stream.finalMessage();
    assert.equal(deltas.join(''), TEXT);
    assert.equal(deltas.length, 17);
    assert.equal(final.content[0].text, TEXT);
    assert.equal(final.model, MODEL);
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);

    const { data: msg, response } = await client.messages.create(params).withResponse();
    assert.equal(msg.content[0].text, TEXT);
    assert.equal(msg.model, MODEL);
    assert.equal(response.headers.get('x-maxpool-worker'), String(server.pid));
    assert.equal(response.headers.get('content-encoding'), null);
    assert.match(response.headers.get('request-id') ?? '', /^req_sim_\d+$/);

    const ct = await client.messages.countTokens(params);
    assert.ok(ct.input_tokens >= 1);

    const seen = await sim.requests(3);
    assert.deepEqual(
      seen.map((r) => r.target),
      ['/v1/messages', '/v1/messages', '/v1/messages/count_tokens'],
    );
    for (const r of seen) {
      assert.equal(r.status, 200);
      assertCleanUpstream(r, [CLIENT_KEY]);
      assert.match(r.headers['user-agent'] ?? '', /Anthropic\/JS/, 'the client user-agent is kept');
      assert.ok(r.headers['anthropic-version'], 'anthropic-version kept');
      assert.ok(Object.keys(r.headers).some((h) => h.startsWith('x-stainless-')), 'X-Stainless-* kept');
    }
    // One x-maxpool-session: the session stays on its account (§5.6, §13 scenario 24).
    assert.equal(new Set(seen.map((r) => r.account)).size, 1, 'a session keeps its account');
  });

  test('an SDK error answer comes back as the SDK error class (401 from the upstream)', async (t) => {
    const { server } = await pool(t, { only: ['key-1'], over: { faults: [{ kind: 'unauthorized' }] } });
    const client = new Anthropic({ baseURL: server.url, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 15000 });
    await assert.rejects(
      client.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401,
    );
  });
});

describe('claude -p → maxpool server → maxpool sim', { skip: skipCli }, () => {
  for (const mode of ['api-key', 'subscription']) {
    test(`${mode} mode: exit 0, prints the text; upstream saw account credentials only`, async (t) => {
      const { sim, server } = await pool(t, { over: { response: { text: TEXT, deltas: 20 } } });
      const since = await lastId(sim);
      const secret = mode === 'api-key' ? CLIENT_KEY : CLIENT_OAUTH;
      const r = await runClaude({
        baseURL: server.url,
        ...(mode === 'api-key' ? { apiKey: secret } : { oauthToken: secret }),
        prompt: 'say hi',
        timeoutMs: 90000,
      });
      assert.equal(r.timedOut, false, `timed out; stderr: ${r.stderr}`);
      assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}; stdout: ${r.stdout}`);
      assert.equal(r.stdout.trim(), TEXT.trim());
      const reqs = await requestsSince(sim, since);
      const posts = reqs.filter((q) => q.method === 'POST' && q.target.startsWith('/v1/messages'));
      const main = posts.find((p) => p.target === '/v1/messages?beta=true' && p.bodyBytes > 20000);
      assert.ok(main, `the turn's streaming request: ${JSON.stringify(reqs.map((q) => `${q.method} ${q.target} ${q.bodyBytes}`))}`);
      for (const q of reqs) {
        assert.ok(q.status < 400, `${q.method} ${q.target} → ${q.status}`);
        assertCleanUpstream(q, [secret]);
      }
      for (const p of posts) {
        assert.equal(p.headers['x-app'], 'cli');
        assert.match(p.headers['user-agent'], /^claude-cli\//);
        assert.match(p.headers['x-claude-code-session-id'] ?? '', /^[0-9a-f-]{36}$/);
        assert.notEqual(p.headers['accept-encoding'], 'gzip, deflate, br, zstd');
      }
      const beta = main.headers['anthropic-beta'] ?? '';
      if (mode === 'subscription') assert.match(beta, /oauth-2025-04-20/, 'the client beta list is kept');
      else assert.ok(beta.split(',').length >= 2, `anthropic-beta kept: ${beta}`);
      const st = await server.status();
      assert.ok(st.accounts.every((a) => a.inFlight === 0));
      assert.ok(st.accounts.reduce((n, a) => n + a.completedRequests, 0) >= posts.length);
    });
  }
});
