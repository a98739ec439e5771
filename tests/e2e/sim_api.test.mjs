// The plain API surface of `maxpool sim` (sim-interface.md "Endpoints"): message shapes
// (JSON and SSE, thinking), count_tokens, HEAD /, models, the control routes, --log and
// the process contract (port file, banner, SIGTERM → 0).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseScript, hasCommand, http, makeTempDir, MAXPOOL_BIN, messageBody, removeTempDir, parseSse, postMessages, reqNum, startSim, waitFor, MODEL } from './lib/harness.mjs';
import { assertRequestId, plainStreamEvents } from './lib/expect.mjs';
import { expectContinue, rawRequest } from './lib/rawhttp.mjs';

const skip = hasCommand('sim') ? false : 'maxpool sim is not in this build';

async function freshSim(t, over = {}, args = []) {
  const sim = await startSim({ script: baseScript(over), args });
  t.after(() => sim.stop());
  return sim;
}

const TEXT = 'Hello from maxpool sim.';
const inputTokens = (body) => Math.max(1, Math.ceil(Buffer.byteLength(body) / 4));

describe('sim api', { skip }, () => {
  test('process: banner on stderr, port file, SIGTERM and SIGINT exit 0', async () => {
    const sim = await startSim({ script: baseScript() });
    try {
      assert.equal(readFileSync(join(sim.dir, 'sim.port'), 'utf8'), `${sim.port}\n`);
      // The banner and the port file come from the same moment; the pipe may lag a little.
      const banner = new RegExp(`maxpool sim listening on http://127\\.0\\.0\\.1:${sim.port}\\n`);
      await waitFor(() => banner.test(sim.stderr()));
      assert.match(sim.stderr(), banner);
    } finally {
      const r = await sim.stop();
      assert.deepEqual(r, { code: 0, signal: null });
    }
    const sim2 = await startSim({ script: baseScript() });
    assert.deepEqual(await sim2.stop('SIGINT'), { code: 0, signal: null }, 'SIGINT exits 0 too');
  });

  test(
    'a stop signal as soon as the port file exists exits 0',
    async () => {
      for (let i = 0; i < 20; i++) {
        const dir = makeTempDir('maxpool-simsig-');
        const portFile = join(dir, 'port');
        writeFileSync(join(dir, 's.json'), JSON.stringify(baseScript()));
        const child = spawn(MAXPOOL_BIN, ['sim', '--port', '0', '--port-file', portFile, '--script', join(dir, 's.json')], {
          stdio: 'ignore',
        });
        const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
        // Signal the moment the port file is renamed into place, like a supervisor would.
        await new Promise((res) => {
          const w = watch(dir, () => {
            if (existsSync(portFile)) {
              w.close();
              res();
            }
          });
          setTimeout(() => {
            w.close();
            res();
          }, 5000);
        });
        process.kill(child.pid, i % 2 ? 'SIGINT' : 'SIGTERM');
        const r = await exited;
        removeTempDir(dir);
        assert.deepEqual(r, { code: 0, signal: null }, `run ${i}`);
      }
    },
  );

  test('non-streaming message: the documented JSON shape, model echoed, usage by size', async (t) => {
    const sim = await freshSim(t);
    const body = JSON.stringify(messageBody({ model: 'claude-opus-4-1' }));
    const r = await postMessages(sim.url, 'key-1', body);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assertRequestId(r.headers);
    const m = r.json;
    assert.equal(typeof m.id, 'string');
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'claude-opus-4-1');
    assert.deepEqual(m.content, [{ type: 'text', text: TEXT }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.equal(m.usage.input_tokens, inputTokens(body));
    assert.equal(m.usage.output_tokens, 60);
  });

  test('streaming message: the real event order, deltas that add up to the text, usage', async (t) => {
    const sim = await freshSim(t);
    const body = JSON.stringify(messageBody({ stream: true }));
    const r = await postMessages(sim.url, 'max-a', body, { path: '/v1/messages?beta=true' });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    assertRequestId(r.headers);
    const { events, partial } = parseSse(r.text);
    assert.equal(partial, '');
    assert.deepEqual(
      events.map((e) => e.event),
      plainStreamEvents(20),
    );
    for (const e of events) assert.equal(e.data.type, e.event, 'data.type matches the event name');
    const start = events[0].data.message;
    assert.equal(start.role, 'assistant');
    assert.equal(start.model, MODEL);
    assert.equal(start.usage.input_tokens, inputTokens(body));
    assert.equal(start.usage.cache_creation_input_tokens, 0);
    assert.equal(start.usage.cache_read_input_tokens, 0);
    assert.equal(start.usage.output_tokens, 1);
    assert.deepEqual(events[1].data.content_block, { type: 'text', text: '' });
    const deltas = events.filter((e) => e.event === 'content_block_delta');
    assert.ok(deltas.every((d) => d.data.delta.type === 'text_delta' && d.data.index === 0));
    assert.equal(deltas.map((d) => d.data.delta.text).join(''), TEXT);
    const md = events.at(-2).data;
    assert.equal(md.delta.stop_reason, 'end_turn');
    assert.equal(md.usage.output_tokens, 60);
  });

  test('streaming with a thinking key: a thinking block (thinking + signature deltas) before the text block', async (t) => {
    const sim = await freshSim(t);
    const body = messageBody({ stream: true, thinking: { type: 'adaptive' } });
    const r = await postMessages(sim.url, 'max-a', body);
    const { events } = parseSse(r.text);
    const starts = events.filter((e) => e.event === 'content_block_start').map((e) => e.data);
    assert.equal(starts.length, 2);
    assert.equal(starts[0].index, 0);
    assert.equal(starts[0].content_block.type, 'thinking');
    assert.equal(starts[1].index, 1);
    assert.equal(starts[1].content_block.type, 'text');
    const d0 = events.filter((e) => e.event === 'content_block_delta' && e.data.index === 0).map((e) => e.data.delta.type);
    assert.ok(d0.length >= 2 && d0.slice(0, -1).every((x) => x === 'thinking_delta'), `${d0}`);
    assert.equal(d0.at(-1), 'signature_delta');
    const d1 = events.filter((e) => e.event === 'content_block_delta' && e.data.index === 1);
    assert.equal(d1.length, 20);
    assert.equal(d1.map((e) => e.data.delta.text).join(''), TEXT);
    assert.equal(events.filter((e) => e.event === 'content_block_stop').length, 2);
    assert.equal(events.at(-1).event, 'message_stop');
  });

  test('scripted response: text, deltas, model override, per-event delay', async (t) => {
    const sim = await freshSim(t, {
      response: { text: 'abcdefghij', deltas: 5, deltaDelayMs: 20, firstByteDelayMs: 0, model: 'claude-fixed' },
    });
    const body = JSON.stringify(messageBody({ stream: true }));
    const t0 = performance.now();
    const r = await postMessages(sim.url, 'key-1', body);
    const took = performance.now() - t0;
    const { events } = parseSse(r.text);
    const deltas = events.filter((e) => e.event === 'content_block_delta');
    assert.equal(deltas.length, 5);
    assert.equal(deltas.map((d) => d.data.delta.text).join(''), 'abcdefghij');
    assert.equal(events[0].data.message.model, 'claude-fixed');
    assert.equal(events.at(-2).data.usage.output_tokens, 15);
    assert.ok(took >= 5 * 20, `a 20 ms pause between events: the stream took ${took} ms`);
    const nj = await postMessages(sim.url, 'key-1');
    assert.equal(nj.json.content[0].text, 'abcdefghij');
    assert.equal(nj.json.usage.output_tokens, 15);

    await sim.setScript({ response: { text: 'abcdefghij', deltas: 5, deltaDelayMs: 0, firstByteDelayMs: 300 } });
    const slow = await rawRequest({
      port: sim.port,
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-k1' },
      body,
    });
    assert.equal(slow.status, 200);
    assert.ok(slow.firstByteMs >= 295, `firstByteDelayMs 300: first byte after ${slow.firstByteMs} ms`);
    assert.equal(slow.events.filter((e) => e.event === 'content_block_delta').length, 5);
  });

  test('count_tokens, HEAD /, GET /v1/models', async (t) => {
    const sim = await freshSim(t);
    const body = JSON.stringify(messageBody());
    const c = await postMessages(sim.url, 'key-1', body, { path: '/v1/messages/count_tokens' });
    assert.equal(c.status, 200);
    assertRequestId(c.headers);
    assert.deepEqual(c.json, { input_tokens: inputTokens(body) });
    const st = (await sim.state()).accounts.find((a) => a.name === 'key-1');
    assert.equal(st.inputTokens, 0, 'count_tokens charges nothing');

    const h = await http(`${sim.url}/`, { method: 'HEAD' });
    assert.equal(h.status, 200);
    assert.equal(h.text, '');

    const m = await http(`${sim.url}/v1/models`, { headers: { 'x-api-key': 'sk-ant-api03-k1', 'anthropic-version': '2023-06-01' } });
    assert.equal(m.status, 200);
    assert.ok(Array.isArray(m.json.data) && m.json.data.length > 0);
    for (const d of m.json.data) {
      assert.equal(d.type, 'model');
      assert.equal(typeof d.id, 'string');
      assert.equal(typeof d.display_name, 'string');
    }
  });

  test('/_sim/requests: lowercased headers, account, body size and SHA-256, oldest first, ring of 256', async (t) => {
    const sim = await freshSim(t);
    const body = JSON.stringify(messageBody({ metadata: { user_id: 'u' } }));
    await postMessages(sim.url, 'max-a', body, { headers: { 'X-Custom-Thing': 'Yes' } });
    await postMessages(sim.url, { 'x-api-key': 'sk-ant-api03-who' }, body);
    let reqs = await sim.requests(2);
    assert.equal(reqs.length, 2);
    const [a, b] = reqs;
    assert.equal(a.method, 'POST');
    assert.equal(a.target, '/v1/messages');
    assert.equal(a.account, 'max-a');
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-custom-thing'], 'Yes');
    assert.equal(a.headers.authorization, 'Bearer sk-ant-oat01-a');
    assert.equal(a.bodyBytes, Buffer.byteLength(body));
    assert.equal(a.bodySha256, createHash('sha256').update(body).digest('hex'));
    assert.equal(b.account, null);
    assert.equal(b.status, 401);
    assert.ok(reqNum(b.id) > reqNum(a.id));
    assert.match(a.id, /^req_sim_\d+$/, 'the id is the request-id');

    for (let i = 0; i < 270; i++) await http(`${sim.url}/`, { method: 'HEAD' });
    reqs = await sim.requests(1000);
    assert.equal(reqs.length, 256);
    for (let i = 1; i < reqs.length; i++) assert.ok(reqNum(reqs[i].id) > reqNum(reqs[i - 1].id), 'oldest first');
    assert.ok(reqs.every((q) => q.method === 'HEAD' && q.target === '/'));
    assert.equal((await sim.requests(5)).length, 5);
  });

  test('/_sim/state: totals and per-account counters by status', async (t) => {
    const sim = await freshSim(t, { faults: [{ kind: 'overloaded', account: 'key-1', count: 1 }] });
    await postMessages(sim.url, 'key-1');
    await postMessages(sim.url, 'key-1');
    await postMessages(sim.url, 'max-a');
    const s = await sim.state();
    assert.equal(typeof s.now, 'number');
    assert.ok(s.requests >= 3);
    const k = s.accounts.find((a) => a.name === 'key-1');
    assert.equal(k.type, 'apikey');
    assert.equal(k.requests, 2);
    assert.deepEqual(k.statuses, { 200: 1, 529: 1 });
    assert.equal(k.outputTokens, 60);
    const m = s.accounts.find((a) => a.name === 'max-a');
    assert.equal(m.type, 'oauth');
    assert.equal(m.requests, 1);
    assert.ok(m.windows['5h'] && m.windows['7d']);
    const before = s.now;
    await sim.advance(3600000);
    assert.ok((await sim.state()).now >= before + 3600000);
  });

  test('--log appends one line per request', async (t) => {
    const logDir = makeTempDir('maxpool-simlog-');
    t.after(() => removeTempDir(logDir));
    const logFile = join(logDir, 'sim.log');
    writeFileSync(logFile, 'an earlier line\n');
    const sim = await freshSim(t, {}, ['--log', logFile]);
    await postMessages(sim.url, 'max-a');
    await http(`${sim.url}/`, { method: 'HEAD' });
    await postMessages(sim.url, { 'x-api-key': 'nope' });
    await sim.stop();
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    assert.equal(lines.shift(), 'an earlier line', 'the log is appended to');
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0], /^\d{4}-\d\d-\d\dT\S+ POST \/v1\/messages max-a 200 \d+$/);
    assert.match(lines[1], /^\S+ HEAD \/ - 200 \d+$/);
    assert.match(lines[2], /^\S+ POST \/v1\/messages - 401 \d+$/);
    assert.ok(!readFileSync(logFile, 'utf8').includes('sk-ant'), 'no secret in the log');
  });

  test('large request bodies arrive intact: 9 MB with Content-Length, 1 MB chunked', async (t) => {
    // 9 MB is ~2.4 M input tokens: more than key-1's 400k per minute would let through.
    const script = baseScript();
    script.accounts.push({ name: 'key-big', type: 'apikey', apiKey: 'sk-ant-api03-big', tokensPerMinute: 1000000000, requestsPerMinute: 1000 });
    const sim = await startSim({ script });
    t.after(() => sim.stop());
    const big = (n) => JSON.stringify({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(n) }] });
    const sha = (b) => createHash('sha256').update(b).digest('hex');
    const nine = big(9 * 1024 * 1024);
    const r = await postMessages(sim.url, { 'x-api-key': 'sk-ant-api03-big' }, nine, { timeoutMs: 30000 });
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.input_tokens, inputTokens(nine));
    let [seen] = await sim.requests(1);
    assert.equal(seen.bodyBytes, Buffer.byteLength(nine));
    assert.equal(seen.bodySha256, sha(nine));

    const one = big(1024 * 1024);
    const c = await rawRequest({
      port: sim.port,
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-big', 'anthropic-version': '2023-06-01' },
      body: one,
      chunked: true,
    });
    assert.equal(c.status, 200, c.body.slice(0, 300));
    [seen] = await sim.requests(1);
    assert.equal(seen.bodyBytes, Buffer.byteLength(one));
    assert.equal(seen.bodySha256, sha(one));
  });

  test('Expect: 100-continue is answered before the body is sent (libcurl asks for it on large bodies)', async (t) => {
    const sim = await freshSim(t);
    const body = JSON.stringify(messageBody());
    const r = await expectContinue({
      port: sim.port,
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-k1', 'anthropic-version': '2023-06-01' },
      body,
      waitMs: 2000,
    });
    assert.notEqual(r.continueMs, null, `no 100 Continue within 2 s: ${r.raw.slice(0, 200)}`);
    assert.equal(r.status, 200);
  });
});
