// Every scripted fault of `maxpool sim` (sim-interface.md "FAULT"), checked with plain fetch
// and, where the fault lives below HTTP (stall, reset, truncation), on the raw socket.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseScript, hasCommand, messageBody, postMessages, startSim, http, CRED } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { assertApiError, assertRequestId, plainStreamEvents, unified } from './lib/expect.mjs';

const skip = hasCommand('sim') ? false : 'maxpool sim is not in this build';

async function freshSim(t, over = {}, args = []) {
  const sim = await startSim({ script: baseScript(over), args });
  t.after(() => sim.stop());
  return sim;
}

const streamBody = JSON.stringify(messageBody({ stream: true }));

function rawStream(sim, account = 'max-a', opts = {}) {
  return rawRequest({
    port: sim.port,
    path: '/v1/messages?beta=true',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...CRED[account] },
    body: streamBody,
    ...opts,
  });
}

describe('sim faults: error answers', { skip }, () => {
  test('rate_limit: 429 on the named account only, default message, retry-after 7', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'rate_limit', account: 'max-a' }] });
    const r = await postMessages(sim.url, 'max-a');
    assertApiError(r, 429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit');
    assert.equal(r.headers.get('retry-after'), '7');
    // An account-scoped limit is not the subscription quota: the unified status stays as the quota says.
    assert.equal(unified(r.headers).status, 'allowed');
    assert.equal((await postMessages(sim.url, 'pro-b')).status, 200);
    assert.equal((await postMessages(sim.url, 'key-1')).status, 200);
  });

  test('rate_limit: custom message and retryAfter, on an API-key account, streaming request', async (t) => {
    const sim = await freshSim(t, {
      faults: [{ kind: 'rate_limit', account: 'key-1', message: 'custom limit text', retryAfter: 31 }],
    });
    const r = await postMessages(sim.url, 'key-1', messageBody({ stream: true }));
    assertApiError(r, 429, 'rate_limit_error', 'custom limit text');
    assert.equal(r.headers.get('retry-after'), '31');
    assert.equal((await postMessages(sim.url, 'max-a')).status, 200);
  });

  test('server_throttle: the same 429 on every account', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'server_throttle', retryAfter: 3 }] });
    for (const acct of ['max-a', 'pro-b', 'key-1']) {
      const r = await postMessages(sim.url, acct);
      assertApiError(r, 429, 'rate_limit_error', 'Anthropic is temporarily limiting requests. Please try again later.');
      assert.equal(r.headers.get('retry-after'), '3', acct);
    }
  });

  test('server_throttle: the message is overridable', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'server_throttle', message: 'busy', retryAfter: 1 }] });
    assertApiError(await postMessages(sim.url, 'key-1'), 429, 'rate_limit_error', 'busy');
  });

  test('overloaded: 529 overloaded_error, also for a streaming request (JSON, before any event)', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'overloaded' }] });
    assertApiError(await postMessages(sim.url, 'max-a'), 529, 'overloaded_error', 'Overloaded');
    assertApiError(
      await postMessages(sim.url, 'key-1', messageBody({ stream: true })),
      529,
      'overloaded_error',
      'Overloaded',
    );
  });

  for (const status of [undefined, 500, 502, 503]) {
    test(`status ${status ?? '(default 500)'}: api_error "Internal server error"`, async (t) => {
      const fault = { kind: 'status' };
      if (status) fault.status = status;
      const sim = await freshSim(t, { faults: [fault] });
      assertApiError(await postMessages(sim.url, 'max-a'), status ?? 500, 'api_error', 'Internal server error');
    });
  }

  test('unauthorized: 401, "OAuth token has expired" for oauth, "invalid x-api-key" for keys', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'unauthorized' }] });
    assertApiError(await postMessages(sim.url, 'max-a'), 401, 'authentication_error', 'OAuth token has expired');
    assertApiError(await postMessages(sim.url, 'key-1'), 401, 'authentication_error', 'invalid x-api-key');
  });

  test('forbidden: 403 permission_error', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'forbidden', account: 'pro-b' }] });
    assertApiError(
      await postMessages(sim.url, 'pro-b'),
      403,
      'permission_error',
      'Your credentials do not have permission for this request',
    );
    assert.equal((await postMessages(sim.url, 'max-a')).status, 200);
  });

  test('unknown or missing credential: 401 "invalid x-api-key"', async (t) => {
    const sim = await freshSim(t);
    assertApiError(
      await postMessages(sim.url, { 'x-api-key': 'sk-ant-api03-nope' }),
      401,
      'authentication_error',
      'invalid x-api-key',
    );
    assertApiError(
      await postMessages(sim.url, { authorization: 'Bearer sk-ant-oat01-nope' }),
      401,
      'authentication_error',
      'invalid x-api-key',
    );
    assertApiError(await postMessages(sim.url, {}), 401, 'authentication_error', 'invalid x-api-key');
  });

  test('a body without model, or not JSON: 400 invalid_request_error', async (t) => {
    const sim = await freshSim(t);
    for (const body of [JSON.stringify({ max_tokens: 5, messages: [] }), '{"model":', 'not json']) {
      const r = await postMessages(sim.url, 'key-1', body);
      assert.equal(r.status, 400, body);
      assertRequestId(r.headers);
      assert.equal(r.json?.type, 'error', body);
      assert.equal(r.json?.error?.type, 'invalid_request_error', body);
      assert.equal(typeof r.json?.error?.message, 'string');
    }
  });

  test('roles are never validated (a system-role message is fine)', async (t) => {
    const sim = await freshSim(t);
    const body = messageBody({
      messages: [
        { role: 'system', content: 'x' },
        { role: 'user', content: 'hi' },
      ],
    });
    assert.equal((await postMessages(sim.url, 'max-a', body)).status, 200);
  });
});

describe('sim faults: socket-level', { skip }, () => {
  test('slow_first_byte: no byte before delayMs, then a normal stream', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'slow_first_byte', delayMs: 400 }] });
    const r = await rawStream(sim);
    assert.equal(r.status, 200);
    assert.ok(r.firstByteMs >= 395, `first byte after ${r.firstByteMs} ms`);
    assert.equal(r.end, 'complete');
    assert.deepEqual(
      r.events.map((e) => e.event),
      plainStreamEvents(20),
    );
  });

  test('stall with stallMs: afterEvents events, a silence, then the rest', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'stall', afterEvents: 3, stallMs: 500 }] });
    const r = await rawStream(sim);
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.deepEqual(
      r.events.map((e) => e.event),
      plainStreamEvents(20),
    );
    const gap = r.events[3].atMs - r.events[2].atMs;
    assert.ok(gap >= 480, `gap after event 3: ${gap} ms`);
  });

  test('stall without stallMs: silent until the client leaves; the sim keeps serving', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'stall', afterEvents: 4, count: 1 }] });
    const r = await rawStream(sim, 'max-a', { timeoutMs: 800 });
    assert.equal(r.status, 200);
    assert.equal(r.end, 'timeout', `ended by ${r.end}`);
    assert.equal(r.events.length, 4);
    assert.deepEqual(
      r.events.map((e) => e.event),
      ['message_start', 'content_block_start', 'ping', 'content_block_delta'],
    );
    const again = await rawStream(sim);
    assert.equal(again.end, 'complete');
    assert.equal(again.events.length, plainStreamEvents(20).length);
  });

  test('reset: afterEvents events, then RST (no chunked terminator)', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'reset', afterEvents: 5 }] });
    const r = await rawStream(sim);
    assert.equal(r.status, 200);
    assert.equal(r.end, 'reset', `ended by ${r.end} ${r.errorCode}`);
    assert.equal(r.chunkedDone, false);
    assert.equal(r.events.length, 5);
    assert.equal(r.events.at(-1).event, 'content_block_delta');
    assert.ok(sim.alive());
  });

  test('reset after the last event: every event arrives, then RST instead of the terminating chunk', async (t) => {
    const all = plainStreamEvents(20).length;
    const sim = await freshSim(t, { faults: [{ kind: 'reset', afterEvents: all }] });
    const r = await rawStream(sim);
    assert.equal(r.end, 'reset', `ended by ${r.end} ${r.errorCode}`);
    assert.equal(r.chunkedDone, false);
    assert.equal(r.events.length, all);
    assert.equal(r.events.at(-1).event, 'message_stop');
  });

  test('truncate: the final event is cut, the chunked body ends cleanly', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'truncate' }] });
    const r = await rawStream(sim);
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.equal(r.chunkedDone, true);
    assert.deepEqual(
      r.events.map((e) => e.event),
      plainStreamEvents(20).slice(0, -1),
    );
    assert.ok(r.partialEvent.length > 0, 'a partial final event');
    assert.ok(!r.body.endsWith('\n\n'));
    assert.ok(!r.body.includes('"message_stop"}'), 'message_stop is cut before its data closes');
  });

  test('reset_before_headers: RST before any byte; fetch fails; after count 2 requests pass', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'reset_before_headers', count: 2 }] });
    const r = await rawStream(sim);
    assert.equal(r.end, 'reset', `ended by ${r.end} ${r.errorCode}`);
    assert.equal(r.bytes, 0);
    await assert.rejects(postMessages(sim.url, 'max-a'));
    const ok = await postMessages(sim.url, 'max-a');
    assert.equal(ok.status, 200);
  });
});

describe('sim faults: selection (count, skip, account, path, probability, live script)', { skip }, () => {
  test('count and skip: the first `skip` pass, the next `count` fail, then all pass', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'overloaded', count: 2, skip: 1 }] });
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await postMessages(sim.url, 'key-1')).status);
    assert.deepEqual(got, [200, 529, 529, 200, 200]);
  });

  test('count is per matching request: other accounts do not use it up', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'overloaded', account: 'max-a', count: 1, skip: 1 }] });
    const got = [];
    for (const a of ['key-1', 'max-a', 'pro-b', 'key-1', 'max-a', 'max-a']) got.push((await postMessages(sim.url, a)).status);
    assert.deepEqual(got, [200, 200, 200, 200, 529, 200]);
  });

  test('path: default covers /v1/messages?beta=true and count_tokens; a prefix narrows it', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'overloaded' }] });
    assert.equal((await postMessages(sim.url, 'max-a', messageBody(), { path: '/v1/messages?beta=true' })).status, 529);
    assert.equal((await postMessages(sim.url, 'max-a', messageBody(), { path: '/v1/messages/count_tokens' })).status, 529);
    await sim.setScript({ faults: [{ kind: 'overloaded', path: '/v1/messages/count_tokens' }] });
    assert.equal((await postMessages(sim.url, 'max-a')).status, 200);
    assert.equal((await postMessages(sim.url, 'max-a', messageBody(), { path: '/v1/messages/count_tokens' })).status, 529);
    // Faults apply to the API only, never to the control or OAuth routes.
    assert.equal((await http(`${sim.url}/_sim/state`)).status, 200);
  });

  test('POST /_sim/script replaces the fault list, [] clears it, accounts merge by name', async (t) => {
    const sim = await freshSim(t);
    assert.equal((await postMessages(sim.url, 'key-1')).status, 200);
    await sim.setScript({ faults: [{ kind: 'status', status: 503 }] });
    assert.equal((await postMessages(sim.url, 'key-1')).status, 503);
    await sim.setScript({ faults: [{ kind: 'forbidden' }] });
    assert.equal((await postMessages(sim.url, 'key-1')).status, 403);
    await sim.setScript({ accounts: [{ name: 'key-2', type: 'apikey', apiKey: 'sk-ant-api03-k2' }] });
    // No `faults` key: the list stays.
    assert.equal((await postMessages(sim.url, { 'x-api-key': 'sk-ant-api03-k2' })).status, 403);
    await sim.setScript({ faults: [] });
    assert.equal((await postMessages(sim.url, { 'x-api-key': 'sk-ant-api03-k2' })).status, 200);
    assert.equal((await postMessages(sim.url, 'key-1')).status, 200);
    const names = (await sim.state()).accounts.map((a) => a.name);
    assert.deepEqual(names.sort(), ['key-1', 'key-2', 'max-a', 'pro-b']);
  });

  async function sequence(t, seed, { flag } = {}) {
    const over = { seed, faults: [{ kind: 'overloaded', probability: 0.5 }] };
    const sim = await freshSim(t, over, flag === undefined ? [] : ['--seed', String(flag)]);
    let s = '';
    for (let i = 0; i < 32; i++) s += (await postMessages(sim.url, 'key-1')).status === 529 ? 'x' : '.';
    await sim.stop();
    return s;
  }

  test('probability: deterministic for a seed, different for another, --seed wins over the script', async (t) => {
    const a = await sequence(t, 7);
    const b = await sequence(t, 7);
    const c = await sequence(t, 8);
    const d = await sequence(t, 7, { flag: 8 });
    assert.equal(a, b, 'same seed, same faults');
    const hits = [...a].filter((ch) => ch === 'x').length;
    assert.ok(hits >= 4 && hits <= 28, `p=0.5 over 32 requests hit ${hits}: ${a}`);
    assert.notEqual(a, c, 'another seed, other faults');
    assert.equal(d, c, '--seed 8 overrides the script seed 7');
  });
});
