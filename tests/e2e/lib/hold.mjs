// Shared pieces of the queue suites (tests/e2e/queue_*.test.mjs, SPEC §6.9, Part A1/A2):
// fast queue settings, waiting for the proxy to hold N requests, streaming requests that
// record every event as it lands, and a tiny scripted upstream for the cases the sim cannot
// stage (an error answer that comes late).
import assert from 'node:assert/strict';
import http from 'node:http';
import { messageBody } from './harness.mjs';
import { rawRequest } from './rawhttp.mjs';
import { waitFor } from './pool.mjs';

/** Queue settings that keep the suites short: the fastest poll and heartbeat the config allows. */
export const FAST_QUEUE = { pollMs: 100, heartbeatMs: 1000 };

/** Waits until the proxy holds exactly n requests (status `scheduler.queued`). */
export async function waitQueued(server, n, timeoutMs = 10000) {
  let last;
  await waitFor(
    async () => {
      last = (await server.status()).scheduler.queued;
      return last === n;
    },
    { timeoutMs, stepMs: 25, what: `${n} held request(s) (queued now: ${last})` },
  );
}

/** A 429 fault that reads as an account limit (§6.3 "session … limit … reached"). */
export function sessionLimit(account, retryAfter, extra = {}) {
  return { kind: 'rate_limit', account, retryAfter, message: 'Session limit reached', ...extra };
}

/** One raw request to the proxy (JSON body object or string); see rawRequest for the result. */
export function send(server, body, { timeoutMs = 30000, headers = {}, stopWhen = null, path } = {}) {
  return rawRequest({
    port: server.port,
    path,
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    timeoutMs,
    stopWhen,
  });
}

/** A streaming /v1/messages body whose prompt names it (so the upstream order can be read). */
export function namedStream(name, over = {}) {
  return messageBody({ stream: true, messages: [{ role: 'user', content: name }], ...over });
}

/** The text of a relayed stream (the text_delta pieces joined). */
export function streamText(r) {
  return r.events
    .filter((e) => e.event === 'content_block_delta' && e.data?.delta?.type === 'text_delta')
    .map((e) => e.data.delta.text)
    .join('');
}

/** Checks a held stream: our 200 head, §6.9 pings, then a clean relayed stream with `text`. */
export function assertHeldStream(r, text) {
  assert.equal(r.status, 200, r.body);
  assert.match(r.headers['content-type'] ?? '', /^text\/event-stream/);
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.equal(r.end, 'complete', `stream ended ${r.end}: ${r.body.slice(-300)}`);
  const first = r.events.findIndex((e) => e.event !== 'ping');
  assert.ok(first >= 1, 'at least one ping before the real events');
  for (const e of r.events.slice(0, first)) assert.equal(e.raw, 'event: ping\ndata: {}', 'the §6.9 ping, byte for byte');
  const rest = r.events.slice(first);
  assert.equal(rest[0].event, 'message_start', rest.map((e) => e.event).join(','));
  assert.equal(rest.at(-1).event, 'message_stop');
  assert.ok(!r.events.some((e) => e.event === 'error'), 'no error event');
  assert.equal(streamText(r), text);
  return r.events.slice(0, first);
}

/**
 * A scripted upstream on 127.0.0.1 for what the sim cannot stage. handler(n, req, body) is
 * called for the n-th (1-based) request and resolves {status, headers, body, delayMs}.
 * Resolves {url, count(), close()}.
 */
export async function startFakeUpstream(handler) {
  let n = 0;
  const timers = new Set();
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.method === 'HEAD' || req.url === '/') {
        res.end();
        return;
      }
      const a = await handler(++n, req, Buffer.concat(chunks).toString());
      const t = setTimeout(() => {
        timers.delete(t);
        res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers || {}) });
        res.end(typeof a.body === 'string' ? a.body : JSON.stringify(a.body));
      }, a.delayMs || 0);
      timers.add(t);
    });
  });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    count: () => n,
    close: () =>
      new Promise((res) => {
        for (const t of timers) clearTimeout(t);
        srv.closeAllConnections?.();
        srv.close(() => res());
      }),
  };
}
