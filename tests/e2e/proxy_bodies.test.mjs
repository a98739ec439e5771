// Request bodies through the proxy (issue 4, Part A12): large bodies arrive upstream
// byte-identical (sha256 as the sim recorded it), whether the client sent a length or
// chunks; a body over limits.maxBodyBytes gets 413 with the JSON error and never leaves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { http } from './lib/harness.mjs';
import { SKIP_PROXY, assertCleanUpstream, bodyOfSize, parseHttpResponse, pool, rawConnect, sha256 } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const MB = 1024 * 1024;

function post(url, body, headers = {}) {
  return http(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body,
    timeoutMs: 30000,
  });
}

/** Sends body with Transfer-Encoding: chunked in pieces of `piece` bytes over a raw socket. */
async function postChunked(port, body, piece = 64 * 1024) {
  const c = await rawConnect({ port });
  c.write(
    'POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n',
  );
  for (let off = 0; off < body.length; off += piece) {
    const part = body.subarray(off, off + piece);
    c.write(`${part.length.toString(16)}\r\n`);
    c.write(part);
    c.write('\r\n');
  }
  c.write('0\r\n\r\n');
  await c.closed;
  return parseHttpResponse(c.bytes());
}

describe('request bodies', { skip }, () => {
  test('1 MB and 9 MB bodies arrive upstream byte-identical (length and sha256)', async (t) => {
    const { sim, server } = await pool(t);
    for (const size of [1 * MB, 9 * MB]) {
      const body = bodyOfSize(size);
      const r = await post(server.url, body, { 'x-api-key': 'client' });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.json.content[0].text, 'Hello from maxpool sim.');
      const [seen] = await sim.requests(1);
      assert.equal(seen.bodyBytes, size);
      assert.equal(seen.bodySha256, sha256(body), `${size} bytes: body changed on the way`);
      assert.equal(seen.headers['content-length'], String(size));
      assertCleanUpstream(seen, ['client']);
    }
  });

  test('a chunked 1 MB upload arrives upstream with its length and the same bytes', async (t) => {
    const { sim, server } = await pool(t);
    const body = bodyOfSize(MB + 12345, { stream: true });
    const r = await postChunked(server.port, body, 10007);
    assert.equal(r.status, 200);
    assert.equal(r.complete, true);
    assert.match(r.body.toString(), /event: message_stop/);
    const [seen] = await sim.requests(1);
    assert.equal(seen.bodyBytes, body.length);
    assert.equal(seen.bodySha256, sha256(body));
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.equal(seen.headers['content-length'], String(body.length));
  });

  test('a body over limits.maxBodyBytes gets 413 with the JSON error; at the limit it passes', async (t) => {
    const limit = 4096;
    const { sim, server } = await pool(t, { config: { limits: { maxBodyBytes: limit } } });
    const over = await post(server.url, bodyOfSize(limit + 1));
    assert.equal(over.status, 413, over.text);
    assert.match(over.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(over.json?.type, 'error', over.text);
    assert.equal(typeof over.json.error.type, 'string');
    assert.match(over.json.error.message, /4096/);
    const chunked = await postChunked(server.port, bodyOfSize(3 * limit), 1000);
    assert.equal(chunked.status, 413);
    assert.equal(JSON.parse(chunked.body).type, 'error');
    assert.equal((await sim.state()).requests, 0, 'nothing over the limit reached the upstream');
    const at = await post(server.url, bodyOfSize(limit));
    assert.equal(at.status, 200, at.text);
    // The server keeps serving on new connections.
    assert.equal((await post(server.url, bodyOfSize(200))).status, 200);
  });
});
