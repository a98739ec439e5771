// Backpressure (issue 4, §3.7): a client that stops reading a long SSE stream pauses the
// upstream read instead of growing the proxy. The proxy's RSS (/proc/<pid>/status VmRSS)
// stays flat while ~35 MB wait behind a stalled and then a slow reader; afterwards the
// client reads everything and the stream is complete and intact.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageBody } from './lib/harness.mjs';
import { SANITIZED, SKIP_PROXY, parseHttpResponse, pool, rawConnect, rssBytes, waitFor } from './lib/pool.mjs';

const skip = SKIP_PROXY || (SANITIZED ? 'RSS is not meaningful under ASan' : false);
const MB = 1024 * 1024;
const DELTAS = 100000;
const PIECE = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. '; // 86 bytes
const TEXT = PIECE.repeat(Math.ceil((24 * MB) / PIECE.length));
// Headroom for one socket's buffers, the relay's high-water mark and allocator noise; the
// stream itself is ~35 MB, so growing with it fails by far.
const MAX_GROWTH = 8 * MB;

describe('backpressure: a slow reader of a long stream', { skip }, () => {
  test('proxy RSS stays flat while the client stalls, then the whole stream arrives intact', async (t) => {
    const { server, sim } = await pool(t, { only: ['key-1'], over: { response: { text: TEXT, deltas: DELTAS } } });
    // Warm up libcurl and the connection pool with a small request.
    const warm = await fetch(`${server.url}/v1/messages/count_tokens`, { method: 'POST', body: JSON.stringify(messageBody()) });
    assert.equal(warm.status, 200);
    await warm.text();
    const base = rssBytes(server.pid);

    const body = JSON.stringify(messageBody({ stream: true }));
    const c = await rawConnect({
      port: server.port,
      timeoutMs: 120000,
      data: `POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    });
    t.after(() => c.sock.destroy());
    // Let the first bytes in, then stop reading entirely.
    await waitFor(() => c.bytes().length > 0, { timeoutMs: 10000, what: 'the first response bytes' });
    c.sock.pause();
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, rssBytes(server.pid));
    };
    for (let i = 0; i < 30; i++) {
      await sleep(100);
      sample();
    }
    const stalledAt = c.bytes().length;
    assert.ok(stalledAt < 20 * MB, `the client held ${stalledAt} bytes while paused: nothing throttled the stream`);
    assert.ok(peak - base < MAX_GROWTH, `proxy grew ${((peak - base) / MB).toFixed(1)} MB behind a stalled reader (base ${(base / MB).toFixed(1)} MB)`);

    // A slow reader: short reads with long pauses.
    for (let i = 0; i < 20; i++) {
      c.sock.resume();
      await sleep(2);
      c.sock.pause();
      await sleep(48);
      sample();
    }
    assert.ok(peak - base < MAX_GROWTH, `proxy grew ${((peak - base) / MB).toFixed(1)} MB behind a slow reader`);

    // Now read everything as fast as possible.
    c.sock.resume();
    const sampler = setInterval(sample, 50);
    const how = await c.closed;
    clearInterval(sampler);
    assert.ok(peak - base < MAX_GROWTH, `proxy grew ${((peak - base) / MB).toFixed(1)} MB while the stream drained`);
    assert.equal(how, 'end');

    const r = parseHttpResponse(c.bytes());
    assert.equal(r.status, 200);
    assert.equal(r.complete, true, 'the chunked body ended with its terminator');
    const events = r.body.toString('utf8').split('\n\n');
    assert.equal(events.pop(), '', 'no partial event at the end');
    assert.ok(events.at(-1).startsWith('event: message_stop'), events.at(-1));
    let text = '';
    let n = 0;
    for (const ev of events) {
      if (!ev.startsWith('event: content_block_delta')) continue;
      n++;
      text += JSON.parse(ev.slice(ev.indexOf('data: ') + 6)).delta.text;
    }
    assert.equal(n, DELTAS);
    assert.equal(text.length, TEXT.length);
    assert.ok(text === TEXT, 'the text arrived intact');
    const [seen] = await sim.requests(1);
    assert.equal(seen.status, 200);
  });
});
