// The official TypeScript SDK (@anthropic-ai/sdk, pinned) against `maxpool sim` directly:
// streaming, non-streaming, count_tokens, response headers, typed errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { baseScript, hasCommand, startSim, MODEL } from './lib/harness.mjs';
import { REQUEST_ID, assertNoUnified, unified } from './lib/expect.mjs';

const skip = hasCommand('sim') ? false : 'maxpool sim is not in this build';
const TEXT = 'The SDK sees this text, in twenty pieces.';

async function freshSim(t, over = {}) {
  const sim = await startSim({ script: baseScript({ response: { text: TEXT, deltas: 20 }, ...over }) });
  t.after(() => sim.stop());
  return sim;
}

// A credential passed in code keeps the SDK from reading ANTHROPIC_* from the environment.
const sdk = (sim, cred) => new Anthropic({ baseURL: sim.url, maxRetries: 0, timeout: 15000, ...cred });
const KEY = { apiKey: 'sk-ant-api03-k1' };
const OAUTH = { authToken: 'sk-ant-oat01-a' };
const params = (over = {}) => ({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }], ...over });

describe('official SDK → maxpool sim', { skip }, () => {
  test('messages.stream: text events add up to the scripted text; final message and usage', async (t) => {
    const sim = await freshSim(t);
    const stream = sdk(sim, KEY).messages.stream(params());
    const pieces = [];
    stream.on('text', (d) => pieces.push(d));
    const msg = await stream.finalMessage();
    assert.equal(pieces.join(''), TEXT);
    assert.equal(pieces.length, 20);
    assert.equal(msg.content[0].text, TEXT);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.output_tokens, 60);
    assert.ok(msg.usage.input_tokens >= 1);
    assert.match(stream.request_id ?? '', REQUEST_ID);
    const [seen] = await sim.requests(1);
    assert.equal(seen.id, stream.request_id);
    assert.equal(seen.account, 'key-1');
    assert.equal(seen.headers.authorization, 'Bearer sk-ant-api03-k1', 'SDK 1.x sends the key as a Bearer token');
    // SDK 1.14 sends anthropic-version 2026-10-21 (the CLI sends 2023-06-01): never pin it.
    assert.match(seen.headers['anthropic-version'], /^\d{4}-\d\d-\d\d$/);
  });

  test('messages.stream().withResponse(): request-id and unified headers for a subscription account', async (t) => {
    const sim = await freshSim(t);
    const { data: stream, response, request_id } = await sdk(sim, OAUTH).messages.stream(params()).withResponse();
    assert.match(request_id, REQUEST_ID);
    assert.equal(response.headers.get('request-id'), request_id);
    unified(response.headers);
    assert.equal(await stream.finalText(), TEXT);
  });

  test('messages.create (non-streaming).withResponse(): content, request-id, unified headers', async (t) => {
    const sim = await freshSim(t);
    const { data, response, request_id } = await sdk(sim, OAUTH).messages.create(params()).withResponse();
    assert.equal(data.type, 'message');
    assert.deepEqual(data.content, [{ type: 'text', text: TEXT }]);
    assert.equal(data.model, MODEL);
    assert.match(request_id, REQUEST_ID);
    const u = unified(response.headers);
    assert.ok(['allowed', 'allowed_warning'].includes(u.status));
    assert.ok(u.reset5h > Date.now() / 1000);
    // An API-key account gets the per-minute headers instead.
    const k = await sdk(sim, KEY).messages.create(params()).withResponse();
    assertNoUnified(k.response.headers);
    assert.ok(k.response.headers.get('anthropic-ratelimit-requests-limit'));
  });

  test('thinking: the SDK assembles a thinking block with a signature, then the text', async (t) => {
    const sim = await freshSim(t);
    const msg = await sdk(sim, OAUTH)
      .messages.stream(params({ max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } }))
      .finalMessage();
    assert.equal(msg.content.length, 2);
    assert.equal(msg.content[0].type, 'thinking');
    assert.ok(msg.content[0].thinking.length > 0);
    assert.ok(msg.content[0].signature.length > 0);
    assert.equal(msg.content[1].type, 'text');
    assert.equal(msg.content[1].text, TEXT);
  });

  test('messages.countTokens', async (t) => {
    const sim = await freshSim(t);
    const r = await sdk(sim, KEY).messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(Number.isInteger(r.input_tokens) && r.input_tokens >= 1);
    const [seen] = await sim.requests(1);
    assert.equal(seen.target.split('?')[0], '/v1/messages/count_tokens');
  });

  test('an unknown key is an AuthenticationError (401)', async (t) => {
    const sim = await freshSim(t);
    await assert.rejects(sdk(sim, { apiKey: 'sk-ant-api03-unknown' }).messages.create(params()), (e) => {
      assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
      assert.equal(e.status, 401);
      assert.equal(e.error?.error?.type, 'authentication_error');
      assert.match(e.requestID ?? '', REQUEST_ID);
      return true;
    });
  });

  test('scripted faults surface as typed errors: RateLimitError with retry-after, 529, a reset stream', async (t) => {
    const sim = await freshSim(t, {
      faults: [
        { kind: 'rate_limit', account: 'key-1', count: 1, retryAfter: 9 },
        { kind: 'overloaded', account: 'max-a', count: 1 },
        { kind: 'reset', account: 'pro-b', afterEvents: 4, count: 1 },
      ],
    });
    await assert.rejects(sdk(sim, KEY).messages.create(params()), (e) => {
      assert.ok(e instanceof Anthropic.RateLimitError, e.constructor.name);
      assert.equal(e.headers.get('retry-after'), '9');
      return true;
    });
    await assert.rejects(sdk(sim, OAUTH).messages.create(params()), (e) => {
      assert.equal(e.status, 529);
      assert.equal(e.error?.error?.type, 'overloaded_error');
      return true;
    });
    await assert.rejects(sdk(sim, { authToken: 'sk-ant-oat01-b' }).messages.stream(params()).finalText());
    // Each fault had count 1: everything passes now.
    for (const cred of [KEY, OAUTH, { authToken: 'sk-ant-oat01-b' }]) {
      assert.equal(await sdk(sim, cred).messages.stream(params()).finalText(), TEXT);
    }
  });
});
