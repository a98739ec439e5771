// The proxy's HTTP surface against the real binaries (SPEC §13 scenarios 10–19 and 36):
// `maxpool status`, exact-match local routes, client authentication from a non-loopback
// address, header hygiene both ways, model echo, the truncation sentinel, the token relay
// and pass-through of upstream 4xx.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { MAXPOOL_BIN, MODEL, http, makeTempDir, messageBody, parseSse, postMessages } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { PROXY_KEY } from './lib/server.mjs';
import { SKIP_PROXY, assertCleanUpstream, parseHttpResponse, pool, rawConnect } from './lib/pool.mjs';

const skip = SKIP_PROXY;

function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Runs `maxpool status` with a config pointing at port/key; resolves {code, stdout, stderr}. */
function runStatus(port, apiKey) {
  const dir = makeTempDir('maxpool-status-');
  const cfg = join(dir, 'maxpool.json');
  writeFileSync(
    cfg,
    JSON.stringify({ proxy: { host: '127.0.0.1', port, apiKey }, updateCheck: false, quotaProbeSeconds: 0, accounts: [] }),
    { mode: 0o600 },
  );
  const r = spawnSync(MAXPOOL_BIN, ['status'], {
    env: { ...process.env, MAXPOOL_CONFIG: cfg, HOME: dir },
    encoding: 'utf8',
    timeout: 20000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('maxpool status (§13 scenario 10, Part A9)', { skip }, () => {
  test('server down → "Cannot connect to proxy at …", exit 1', async () => {
    const port = await freePort();
    const r = runStatus(port, PROXY_KEY);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Cannot connect to proxy at 127\\.0\\.0\\.1:${port}`));
    assert.equal(r.stdout, '');
  });

  test('server up: the right key prints the accounts; a wrong key is reported as a wrong key', async (t) => {
    const { server } = await pool(t);
    const ok = runStatus(server.port, PROXY_KEY);
    assert.equal(ok.code, 0, ok.stderr);
    for (const name of ['max-a', 'pro-b', 'key-1']) assert.match(ok.stdout, new RegExp(name));
    assert.doesNotMatch(ok.stdout, /sk-ant-/);
    const bad = runStatus(server.port, 'mp-not-the-key');
    assert.equal(bad.code, 1);
    assert.doesNotMatch(bad.stderr, /Cannot connect/, 'a wrong key is not a dead server');
    assert.match(bad.stderr, /key/i);
    assert.match(bad.stderr, /refused|wrong|invalid/i);
  });
});

describe('HTTP surface (§13 scenarios 12–19, 36)', { skip }, () => {
  test('12: GET /maxpool/status?x=1 is not the local route: it is proxied with its query', async (t) => {
    const { sim, server } = await pool(t);
    const r = await http(`${server.url}/maxpool/status?x=1`);
    assert.equal(r.status, 404, 'the sim does not know this path');
    assert.equal(r.json?.error?.type, 'not_found_error');
    const [seen] = await sim.requests(1);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.target, '/maxpool/status?x=1');
    assertCleanUpstream(seen);
  });

  test('13: a non-loopback client needs the proxy key; with it the request is proxied', async (t) => {
    const { sim, server } = await pool(t);
    const body = JSON.stringify(messageBody());
    const req = (extra) =>
      `POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n` +
      `${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
    // 127.0.0.2 is loopback to the kernel but not "local" by §3.3's exact-address rule.
    const noKey = await rawConnect({ port: server.port, localAddress: '127.0.0.2', data: req('') });
    await noKey.closed;
    let r = parseHttpResponse(noKey.bytes());
    assert.equal(r.status, 401, noKey.text());
    assert.deepEqual(JSON.parse(r.body), { type: 'error', error: { type: 'authentication_error', message: 'Invalid proxy API key' } });
    const wrong = await rawConnect({ port: server.port, localAddress: '127.0.0.2', data: req('x-api-key: junk\r\n') });
    await wrong.closed;
    assert.equal(parseHttpResponse(wrong.bytes()).status, 401);
    assert.equal((await sim.state()).requests, 0, 'nothing reached the upstream');

    const withKey = await rawConnect({ port: server.port, localAddress: '127.0.0.2', data: req(`x-api-key: ${PROXY_KEY}\r\n`) });
    await withKey.closed;
    r = parseHttpResponse(withKey.bytes());
    assert.equal(r.status, 200, withKey.text());
    assert.equal(JSON.parse(r.body).content[0].text, 'Hello from maxpool sim.');
    const [seen] = await sim.requests(1);
    assertCleanUpstream(seen, [PROXY_KEY]);

    // The loopback address itself needs nothing.
    const local = await postMessages(server.url, {});
    assert.equal(local.status, 200);
  });

  test('14: client credentials, internal headers, accept-encoding and hop-by-hop never reach the upstream', async (t) => {
    const { sim, server } = await pool(t, { only: ['key-1'] });
    const clientHeaders = {
      'x-api-key': 'junk-client-key',
      authorization: 'Bearer client-bearer',
      'x-maxpool-session': 's',
      'x-maxpool-profile': 'claude',
      'x-teamclaude-session': 'legacy',
      'accept-encoding': 'gzip',
      connection: 'keep-alive, x-hop-nominated',
      'x-hop-nominated': 'drop-me',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      'anthropic-beta': 'interleaved-thinking-2025-05-14,oauth-2025-04-20',
      'x-custom-pass': 'kept',
    };
    const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...clientHeaders }, body: JSON.stringify(messageBody()) });
    assert.equal(r.status, 200, r.body);
    const [seen] = await sim.requests(1);
    assertCleanUpstream(seen, ['junk-client-key', 'client-bearer', 'cHJveHk6c2VjcmV0']);
    assert.equal(seen.headers['x-api-key'], 'sk-ant-api03-k1');
    assert.equal(seen.headers.authorization, undefined);
    assert.notEqual(seen.headers['accept-encoding'], 'gzip', "the client's accept-encoding is not forwarded");
    assert.equal(seen.headers['x-hop-nominated'], undefined, 'a header named in Connection is hop-by-hop');
    assert.equal(seen.headers['anthropic-beta'], clientHeaders['anthropic-beta']);
    assert.equal(seen.headers['anthropic-version'], '2023-06-01');
    assert.equal(seen.headers['x-custom-pass'], 'kept');
  });

  test('14: an OAuth account gets Authorization: Bearer <token> and no x-api-key', async (t) => {
    const { sim, server } = await pool(t, { only: ['max-a'] });
    const r = await postMessages(server.url, { 'x-api-key': 'junk', authorization: 'Bearer client', 'anthropic-beta': 'oauth-2025-04-20' });
    assert.equal(r.status, 200, r.text);
    const [seen] = await sim.requests(1);
    assert.equal(seen.headers.authorization, 'Bearer sk-ant-oat01-a');
    assert.equal(seen.headers['x-api-key'], undefined);
    assert.equal(seen.headers['anthropic-beta'], 'oauth-2025-04-20', 'nothing added, nothing lost');
    assertCleanUpstream(seen, ['junk', 'Bearer client']);
  });

  test('15: response headers carry the rate-limit headers and x-maxpool-worker, never content-encoding', async (t) => {
    const { server } = await pool(t, { only: ['max-a'] });
    const r = await rawRequest({
      port: server.port,
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip, deflate, br, zstd' },
      body: JSON.stringify(messageBody({ stream: true })),
    });
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.equal(r.headers['x-maxpool-worker'], String(server.pid));
    assert.match(r.headers['anthropic-ratelimit-unified-status'] ?? '', /^allowed/);
    assert.ok(r.headers['anthropic-ratelimit-unified-5h-utilization'] !== undefined);
    assert.match(r.headers['request-id'] ?? '', /^req_sim_\d+$/);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    assert.equal(r.events.at(-1).event, 'message_stop', 'plain text SSE, uncompressed');
  });

  test('16: a non-streamed answer gets the requested model back, with a correct length', async (t) => {
    const { sim, server } = await pool(t, { over: { response: { text: 'Echo me.', model: 'upstream-model' } } });
    const direct = await postMessages(sim.url, 'key-1', messageBody({ model: 'claude-x' }));
    assert.equal(direct.json.model, 'upstream-model', 'the sim answers with its own model');
    const r = await rawRequest({
      port: server.port,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(messageBody({ model: 'claude-x' })),
    });
    assert.equal(r.status, 200);
    const len = Number(r.headers['content-length']);
    assert.equal(len, Buffer.byteLength(r.body), 'content-length matches the rewritten body');
    const msg = JSON.parse(r.body);
    assert.equal(msg.model, 'claude-x');
    assert.equal(msg.content[0].text, 'Echo me.');
    // Everything but the model (and the message id) is what the sim sent.
    assert.deepEqual({ ...msg, id: 'x', model: 'x' }, { ...direct.json, id: 'x', model: 'x' });
  });

  test('17: streaming: message_start gets the requested model, every other event is byte-identical', async (t) => {
    const { sim, server } = await pool(t, { only: ['key-1'], over: { response: { text: 'Stream me, please, intact.', deltas: 7, model: 'upstream-model' } } });
    const body = JSON.stringify(messageBody({ model: 'claude-x', stream: true }));
    const direct = await rawRequest({ port: sim.port, headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-k1' }, body });
    const viaProxy = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body });
    assert.equal(viaProxy.status, 200);
    assert.equal(viaProxy.end, 'complete');
    assert.equal(viaProxy.partialEvent, '');
    assert.equal(viaProxy.events.length, direct.events.length);
    const [d0, ...dRest] = direct.events;
    const [p0, ...pRest] = viaProxy.events;
    assert.equal(p0.event, 'message_start');
    assert.equal(p0.data.message.model, 'claude-x');
    assert.equal(d0.data.message.model, 'upstream-model');
    const expected0 = d0.raw
      .replace('"model":"upstream-model"', '"model":"claude-x"')
      .replace(d0.data.message.id, p0.data.message.id);
    assert.equal(p0.raw, expected0, 'only the model changed in message_start');
    assert.deepEqual(pRest.map((e) => e.raw), dRest.map((e) => e.raw));
    assert.equal(viaProxy.body.indexOf('upstream-model'), -1);
  });

  test('18: an upstream stream cut mid-event ends with the api_error SSE frame', async (t) => {
    const { server } = await pool(t, { over: { faults: [{ kind: 'truncate' }] } });
    const r = await rawRequest({ port: server.port, headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageBody({ stream: true })) });
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete', 'the chunked body still ends cleanly');
    const last = r.events.at(-1);
    assert.equal(last.event, 'error', r.body.slice(-400));
    assert.deepEqual(last.data, {
      type: 'error',
      error: { type: 'api_error', message: 'Upstream closed the stream before the response completed. Retry the message.' },
    });
    assert.ok(!r.events.some((e) => e.event === 'message_stop'), 'the cut event is not completed');
    assert.equal(r.partialEvent, '');
  });

  test('19: POST /v1/oauth/token is relayed with only content-type/accept/user-agent; no account counts it', async (t) => {
    const { sim, server } = await pool(t);
    const before = await server.status();
    const body = JSON.stringify({ grant_type: 'refresh_token', refresh_token: 'sk-ant-ort01-a', client_id: 'client-123' });
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/plain, */*',
      'user-agent': 'claude-cli/9.9.9',
      authorization: 'Bearer sk-ant-oat01-client',
      'x-api-key': 'client-key',
      'x-maxpool-session': 's',
      'anthropic-beta': 'oauth-2025-04-20',
      'x-custom': 'no',
    };
    const r = await http(`${server.url}/v1/oauth/token`, { method: 'POST', headers, body });
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.access_token, /^sk-ant-oat01-/);
    assert.match(r.json.refresh_token, /^sk-ant-ort01-/);
    assert.equal(r.json.token_type, 'Bearer');
    const [seen] = await sim.requests(1);
    assert.equal(seen.target, '/v1/oauth/token');
    assert.equal(seen.method, 'POST');
    assert.equal(seen.bodyBytes, Buffer.byteLength(body));
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers.accept, headers.accept);
    assert.equal(seen.headers['user-agent'], headers['user-agent']);
    const extra = Object.keys(seen.headers).filter((h) => !['content-type', 'accept', 'user-agent', 'host', 'content-length'].includes(h));
    assert.deepEqual(extra, [], `only three client headers are relayed: ${JSON.stringify(seen.headers)}`);

    // The refresh token is single-use at the sim: the relay returns the upstream's 400 as is.
    // A raw request without accept/user-agent (fetch would add its own).
    const again = await rawRequest({ port: server.port, path: '/v1/oauth/token', headers: { 'content-type': 'application/json' }, body });
    assert.equal(again.status, 400);
    assert.deepEqual(JSON.parse(again.body), { error: 'invalid_grant', error_description: 'Refresh token not found or invalid' });
    const [seen2] = await sim.requests(1);
    assert.equal(seen2.headers.accept, 'application/json', 'default accept');
    assert.equal(seen2.headers['user-agent'], 'node', 'default user-agent');

    const after = await server.status();
    const counts = (s) => s.accounts.map((a) => [a.name, a.completedRequests, a.failedRequests, a.inFlight, a.usage.totalRequests]);
    assert.deepEqual(counts(after), counts(before), 'the relay involves no account');
  });

  test('19: the relay answers 502 proxy_error "Upstream unreachable" when the upstream is down', async (t) => {
    const { sim, server } = await pool(t);
    await sim.stop();
    const r = await http(`${server.url}/v1/oauth/token`, { method: 'POST', body: { grant_type: 'refresh_token', refresh_token: 'x' } });
    assert.equal(r.status, 502);
    assert.deepEqual(r.json, { type: 'error', error: { type: 'proxy_error', message: 'Upstream unreachable' } });
  });

  test('36: an upstream 400 passes through unchanged, without failover', async (t) => {
    const { sim, server } = await pool(t, { only: ['key-1'], over: { faults: [{ kind: 'status', status: 400, message: 'messages: bad shape' }] } });
    const direct = await postMessages(sim.url, 'key-1');
    assert.equal(direct.status, 400);
    const r = await postMessages(server.url, {});
    assert.equal(r.status, 400);
    assert.equal(r.text, direct.text, 'body byte-identical');
    for (const h of ['content-type', 'anthropic-ratelimit-requests-limit']) {
      if (direct.headers.get(h) !== null) assert.equal(r.headers.get(h), direct.headers.get(h), h);
    }
    assert.match(r.headers.get('request-id') ?? '', /^req_sim_\d+$/);
    const seen = await sim.requests(10);
    assert.equal(seen.length, 2, 'one direct request and exactly one proxied attempt');
    const st = await server.status();
    assert.ok(st.accounts.every((a) => a.inFlight === 0));
  });

  test('an upstream redirect is returned as is, never followed (§3.5); GET goes without a body', async (t) => {
    const { sim, server } = await pool(t, { only: ['max-a'] });
    const q = 'client_id=c&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&state=s1&code_challenge=abc&code_challenge_method=S256';
    const r = await http(`${server.url}/oauth/authorize?${q}`);
    assert.equal(r.status, 302);
    assert.match(r.headers.get('location') ?? '', /^http:\/\/localhost\/cb\?code=[^&]+&state=s1$/);
    assert.equal((await sim.requests(1))[0].status, 302);
    const g = await rawConnect({ port: server.port, data: 'GET /v1/models HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello' });
    await g.closed;
    assert.equal(parseHttpResponse(g.bytes()).status, 200);
    const [seen] = await sim.requests(1);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.bodyBytes, 0);
    assert.equal(seen.headers['content-length'], undefined);
  });

  test('count_tokens and streaming through the proxy keep their model and target', async (t) => {
    const { sim, server } = await pool(t);
    const r = await postMessages(server.url, {}, messageBody(), { path: '/v1/messages/count_tokens?beta=true' });
    assert.equal(r.status, 200);
    assert.ok(r.json.input_tokens >= 1);
    const [seen] = await sim.requests(1);
    assert.equal(seen.target, '/v1/messages/count_tokens?beta=true');
    const s = await postMessages(server.url, {}, messageBody({ stream: true }));
    const { events, partial } = parseSse(s.text);
    assert.equal(partial, '');
    assert.equal(events[0].data.message.model, MODEL);
  });
});
