// `maxpool server` in front of `maxpool sim`: the official SDK through the proxy, the
// credentials the upstream sees, and the status route.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { baseScript, hasCommand, http, startSim, MODEL } from './lib/harness.mjs';
import { PROXY_KEY, accountsFor, startServer } from './lib/server.mjs';

const skip = hasCommand('server') && hasCommand('sim') ? false : 'maxpool server is not in this build';
const TEXT = 'Through the pool, intact.';

async function pool(t, over = {}) {
  const script = baseScript({ response: { text: TEXT, deltas: 20 }, ...over });
  const sim = await startSim({ script });
  t.after(() => sim.stop());
  const server = await startServer({ upstream: sim.url, accounts: accountsFor(script) });
  t.after(() => server.stop());
  return { sim, server };
}

describe('SDK → maxpool server → maxpool sim', { skip }, () => {
  test('streaming, non-streaming and count_tokens arrive intact; the sim sees account credentials only', async (t) => {
    const { sim, server } = await pool(t);
    const client = new Anthropic({ baseURL: server.url, apiKey: 'sk-ant-client-key', maxRetries: 0, timeout: 15000 });
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] };
    assert.equal(await client.messages.stream(params).finalText(), TEXT);
    const msg = await client.messages.create(params);
    assert.equal(msg.content[0].text, TEXT);
    assert.equal(msg.model, MODEL);
    const ct = await client.messages.countTokens(params);
    assert.ok(ct.input_tokens >= 1);
    const seen = await sim.requests(3);
    assert.equal(seen.length, 3);
    const creds = new Set(['Bearer sk-ant-oat01-a', 'Bearer sk-ant-oat01-b', 'sk-ant-api03-k1']);
    for (const r of seen) {
      const cred = r.headers['x-api-key'] ?? r.headers.authorization;
      assert.ok(creds.has(cred), `upstream saw an account credential, got ${cred}`);
      assert.ok(!(r.headers['x-api-key'] && r.headers.authorization), 'never both credentials');
      assert.ok(!JSON.stringify(r.headers).includes('sk-ant-client-key'), 'client key never forwarded');
      for (const h of Object.keys(r.headers)) {
        assert.ok(!h.startsWith('x-maxpool-') && !h.startsWith('x-teamclaude-'), h);
        assert.ok(!['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization'].includes(h), h);
      }
    }
    // Sequential requests spread over the accounts (§13 scenario 20).
    assert.equal(new Set(seen.map((r) => r.account)).size, 3);
  });

  test('status: 401 without the key, JSON without secrets with it (§13 scenario 11)', async (t) => {
    const { server } = await pool(t);
    const bad = await http(`${server.url}/maxpool/status`);
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error.type, 'authentication_error');
    assert.equal(bad.json.error.message, 'Invalid proxy API key');
    const ok = await http(`${server.url}/maxpool/status`, { headers: { 'x-api-key': PROXY_KEY } });
    assert.equal(ok.status, 200);
    for (const k of ['accounts', 'scheduler', 'upstreamThrottle']) assert.ok(k in ok.json, k);
    assert.equal(ok.json.accounts.length, 3);
    assert.doesNotMatch(ok.text, /sk-ant-/);
    assert.match(ok.headers.get('x-maxpool-worker') ?? '', /^\d+$/);
  });
});
