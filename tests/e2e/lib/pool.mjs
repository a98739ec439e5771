// Shared pieces of the proxy suites (tests/e2e/proxy_*.test.mjs): a sim with a proxy in
// front of it, the checks on what the upstream saw, the proxy's memory, and a raw client
// that can stall its reads.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseScript, hasCommand, startSim } from './harness.mjs';
import { accountsFor, startServer } from './server.mjs';

export const SKIP_PROXY = hasCommand('server') && hasCommand('sim') ? false : 'maxpool server is not in this build';

/** True when the binary under test is a sanitizer build (memory numbers and timing differ). */
export const SANITIZED = process.env.MAXPOOL_E2E_SANITIZED === '1';

/**
 * A sim with `script` (baseScript() merged with `over`) and a proxy in front of it with the
 * same accounts (or only the ones named in `only`). Both are stopped after the test.
 */
export async function pool(t, { over = {}, only = null, config = {}, serverEnv = {}, args = [] } = {}) {
  const script = baseScript(over);
  const sim = await startSim({ script });
  t.after(() => sim.stop());
  let accounts = accountsFor(script);
  if (only) accounts = accounts.filter((a) => only.includes(a.name));
  const server = await startServer({ upstream: sim.url, accounts, config, env: serverEnv, args });
  t.after(() => server.stop());
  return { sim, server, script };
}

export const ACCOUNT_CREDS = new Set(['Bearer sk-ant-oat01-a', 'Bearer sk-ant-oat01-b', 'sk-ant-api03-k1']);

const HOP = ['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection'];

/**
 * What every proxied request must look like upstream (§3.5, Part A6, A11): exactly one
 * credential, an account's, none of `clientSecrets`; no internal or hop-by-hop headers.
 */
export function assertCleanUpstream(r, clientSecrets = []) {
  const h = r.headers;
  const cred = h['x-api-key'] ?? h.authorization;
  assert.ok(ACCOUNT_CREDS.has(cred), `upstream saw an account credential, got ${cred}`);
  assert.ok(!(h['x-api-key'] && h.authorization), `never both credentials: ${JSON.stringify(h)}`);
  if (h['x-api-key']) assert.equal(r.account, 'key-1');
  const all = JSON.stringify(h);
  for (const s of clientSecrets) assert.ok(!all.includes(s), `client secret ${s} reached the upstream`);
  for (const name of Object.keys(h)) {
    assert.ok(!name.startsWith('x-maxpool-') && !name.startsWith('x-teamclaude-'), `internal header upstream: ${name}`);
    assert.ok(!HOP.includes(name), `hop-by-hop header upstream: ${name}: ${h[name]}`);
  }
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS). */
export function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** A JSON /v1/messages body of exactly `bytes` bytes (ASCII), varied so no run of it repeats. */
export function bodyOfSize(bytes, { model = 'claude-sonnet-4-5', stream = false } = {}) {
  const head = JSON.stringify({ model, max_tokens: 16, stream, messages: [{ role: 'user', content: '' }] });
  const cut = head.lastIndexOf('""') + 1; // inside the empty content string
  const fill = bytes - head.length;
  assert.ok(fill >= 0, 'body too small for its frame');
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,';
  const chars = Buffer.alloc(fill);
  let x = 0x9e3779b9;
  for (let i = 0; i < fill; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    chars[i] = alphabet.charCodeAt((x >>> 0) % alphabet.length);
  }
  const body = Buffer.concat([Buffer.from(head.slice(0, cut)), chars, Buffer.from(head.slice(cut))]);
  assert.equal(body.length, bytes);
  return body;
}

/** Waits until pred() is truthy (polling every stepMs), at most timeoutMs; returns its value or throws. */
export async function waitFor(pred, { timeoutMs = 5000, stepMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/**
 * Opens a raw connection and sends `data` (a string or Buffer; nothing if omitted). Resolves a
 * handle collecting every byte that comes back: {sock, bytes() (Buffer), text(), closed
 * (promise of 'end'|'reset'|'error'), isClosed(), write(d)}. localAddress picks the source
 * address (127.0.0.2 counts as a non-local client, §3.3).
 */
export function rawConnect({ port, host = '127.0.0.1', data, localAddress, timeoutMs = 60000 }) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let closedHow = null;
    const sock = net.connect({ host, port, localAddress });
    const timer = setTimeout(() => sock.destroy(), timeoutMs);
    const closed = new Promise((res) => {
      sock.on('error', (e) => {
        closedHow ??= e.code === 'ECONNRESET' ? 'reset' : 'error';
      });
      sock.on('end', () => {
        closedHow ??= 'end';
      });
      sock.on('close', () => {
        clearTimeout(timer);
        closedHow ??= 'end';
        res(closedHow);
      });
    });
    sock.on('data', (d) => chunks.push(d));
    sock.once('connect', () => {
      if (data !== undefined) sock.write(data);
      resolve({
        sock,
        closed,
        isClosed: () => closedHow !== null,
        bytes: () => Buffer.concat(chunks),
        text: () => Buffer.concat(chunks).toString('latin1'),
        write: (d) => sock.write(d),
      });
    });
    sock.once('error', (e) => {
      if (!sock.connecting) return;
      reject(e);
    });
  });
}

/** Splits a raw HTTP/1.1 response (head + body, chunked or with a length) into {status, headers, body Buffer, complete}. */
export function parseHttpResponse(buf) {
  const i = buf.indexOf('\r\n\r\n');
  if (i < 0) return null;
  const lines = buf.subarray(0, i).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
  }
  let rest = buf.subarray(i + 4);
  if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    let complete = false;
    for (;;) {
      const j = rest.indexOf('\r\n');
      if (j < 0) break;
      const size = parseInt(rest.subarray(0, j).toString('latin1'), 16);
      if (size === 0) {
        complete = true;
        break;
      }
      if (rest.length < j + 2 + size + 2) break;
      parts.push(rest.subarray(j + 2, j + 2 + size));
      rest = rest.subarray(j + 2 + size + 2);
    }
    return { status, headers, body: Buffer.concat(parts), complete };
  }
  const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : rest.length;
  return { status, headers, body: rest.subarray(0, len), complete: rest.length >= len };
}
