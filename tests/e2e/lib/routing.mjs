// Shared pieces of the routing suites (tests/e2e/routing_*.test.mjs, SPEC §4–§6, §13
// scenarios 20–38): reading one account out of /maxpool/status, what the sim saw since a
// mark, and a tiny scripted upstream for the header shapes the sim never produces.
import assert from 'node:assert/strict';
import http from 'node:http';
import { baseScript, messageBody, postMessages, startSim } from './harness.mjs';
import { accountsFor, startServer } from './server.mjs';

/** The account `name` of a /maxpool/status document (throws when absent). */
export function acct(st, name) {
  const a = st.accounts.find((x) => x.name === name);
  assert.ok(a, `account ${name} in status: ${JSON.stringify(st.accounts.map((x) => x.name))}`);
  return a;
}

const idNum = (r) => Number(String(r.id).replace(/^req_sim_/, ''));

/** The sim's request ring as a cursor: since() returns the requests after the last mark(). */
export async function simCursor(sim) {
  let last = 0;
  const all = async () => sim.requests(256);
  const c = {
    async mark() {
      const r = await all();
      last = r.length ? idNum(r.at(-1)) : 0;
    },
    async since() {
      return (await all()).filter((r) => idNum(r) > last);
    },
    /** [[account, status], …] since the mark, in order. */
    async seen() {
      return (await c.since()).map((r) => [r.account, r.status]);
    },
  };
  await c.mark();
  return c;
}

/** Milliseconds from now until an ISO stamp (or a ms epoch); NaN for null. */
export function msUntil(stamp) {
  if (stamp === null || stamp === undefined) return NaN;
  const t = typeof stamp === 'number' ? stamp : Date.parse(stamp);
  return t - Date.now();
}

/** POST /v1/messages to the proxy with the given body overrides and extra headers. */
export function send(server, over = {}, headers = {}, timeoutMs = 15000) {
  return postMessages(server.url, {}, messageBody(over), { headers, timeoutMs });
}

/**
 * A scripted upstream on 127.0.0.1 for header shapes the sim never sends (a utilization
 * without its reset stamp, A4). respond(req, n) returns {status, headers, body}; every
 * request is recorded as {method, url, headers}. Resolves {url, seen, close()}.
 */
export function startMockUpstream(respond) {
  const seen = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      const { status = 200, headers = {}, body = '' } = respond(req, seen.length);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${srv.address().port}`,
        seen,
        close: () => new Promise((r) => srv.close(() => r())),
      });
    });
  });
}

/** A minimal Anthropic JSON message for the mock upstream. */
export function mockMessage(model = 'claude-sonnet-4-5') {
  return {
    id: 'msg_mock',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: 'mock' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 5, output_tokens: 3 },
  };
}

/**
 * A sim and a proxy in front of it for one test, both stopped after it. `sim` patches the
 * sim's accounts by name (e.g. {'max-a': {used5h: 0.95}}), `cfg` patches the proxy's config
 * accounts by name (e.g. {'pro-b': {enabled: false}}); `only` keeps those accounts on both
 * sides. `simArgs` go to `maxpool sim` (e.g. ['--time-scale', '3600']).
 */
export async function rpool(t, { over = {}, only = ['max-a', 'pro-b'], sim: simPatch = {}, cfg = {}, config = {}, serverEnv = {}, simArgs = [] } = {}) {
  const script = baseScript(over);
  script.accounts = script.accounts.filter((a) => only.includes(a.name)).map((a) => ({ ...a, ...(simPatch[a.name] || {}) }));
  const sim = await startSim({ script, args: simArgs });
  t.after(() => sim.stop());
  const accounts = accountsFor(script).map((a) => ({ ...a, ...(cfg[a.name] || {}) }));
  // The routing suites look at routing and failover on their own: the queue (§6.9) stays
  // off unless a test turns it on (the queue_* and hold tests do).
  const server = await startServer({ upstream: sim.url, accounts, config: { ...config, queue: { enabled: false, ...(config.queue || {}) } }, env: serverEnv });
  t.after(() => server.stop());
  const cur = await simCursor(sim);
  return { sim, server, script, cur };
}

/** Waits (≤ timeoutMs) until the server's stderr matches `re` (log lines may trail the response); asserts it does. */
export async function waitLog(server, re, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(server.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(server.stderr(), re);
}
