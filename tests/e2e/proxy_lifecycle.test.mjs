// `maxpool server` shutdown (SPEC §10.1, §13 scenario 43): SIGTERM drains in-flight
// requests, a stuck stream ends the drain after shutdown.drainTimeoutMs with exit 1, a
// second signal forces the exit at once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { messageBody } from './lib/harness.mjs';
import { rawRequest } from './lib/rawhttp.mjs';
import { SKIP_PROXY, pool, waitFor } from './lib/pool.mjs';

const skip = SKIP_PROXY;

/** Resolves {code, signal, ms} when the child exits (measured from now). */
function exitOf(child) {
  const t0 = Date.now();
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
  return new Promise((res) => child.once('exit', (code, signal) => res({ code, signal, ms: Date.now() - t0 })));
}

/** Bounds a promise: rejects after ms with `what`. */
function within(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function connectRefused(port) {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(false);
    });
    s.once('error', (e) => res(e.code === 'ECONNREFUSED'));
  });
}

const streamBody = JSON.stringify(messageBody({ stream: true }));

/** Starts a streaming request and resolves once its first events arrived: {result (promise)}. */
async function startStream(port) {
  let sawEvents = false;
  const result = rawRequest({
    port,
    headers: { 'content-type': 'application/json' },
    body: streamBody,
    timeoutMs: 30000,
    stopWhen: (r) => {
      sawEvents = r.events.length >= 1;
      return false;
    },
  });
  await waitFor(() => sawEvents, { timeoutMs: 10000, what: 'the first SSE event' });
  return { result };
}

describe('shutdown (§10.1, §13 scenario 43)', { skip }, () => {
  test('SIGTERM when idle: "Draining shutdown (SIGTERM)." … "Shutdown complete.", exit 0', async (t) => {
    const { server } = await pool(t, { config: { shutdown: { drainTimeoutMs: 1000 } } });
    const exited = exitOf(server.child);
    process.kill(server.pid, 'SIGTERM');
    const r = await within(exited, 5000, 'idle shutdown');
    assert.equal(r.code, 0, server.stderr());
    const log = server.stderr();
    const a = log.indexOf('Draining shutdown (SIGTERM).');
    const b = log.indexOf('Stopped accepting new requests; waiting up to 1s for 0 active request(s)');
    const c = log.indexOf('Shutdown complete.');
    assert.ok(a >= 0 && b > a && c > b, log);
  });

  test('SIGTERM with a stream in flight: no new connections, the stream completes, exit 0', async (t) => {
    const { server } = await pool(t, {
      over: { response: { text: 'Finished during the drain.', deltas: 12, deltaDelayMs: 100 } },
      config: { shutdown: { drainTimeoutMs: 20000 } },
    });
    const exited = exitOf(server.child);
    const { result } = await startStream(server.port);
    process.kill(server.pid, 'SIGTERM');
    await waitFor(() => server.stderr().includes('Draining shutdown (SIGTERM).'), { what: 'the drain log line' });
    assert.match(server.stderr(), /waiting up to 20s for 1 active request\(s\)/);
    assert.equal(await connectRefused(server.port), true, 'the listener is closed while draining');
    const r = await result;
    assert.equal(r.status, 200);
    assert.equal(r.end, 'complete');
    assert.equal(r.events.at(-1).event, 'message_stop');
    const text = r.events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join('');
    assert.equal(text, 'Finished during the drain.');
    const x = await within(exited, 5000, 'exit after the drain');
    assert.equal(x.code, 0, server.stderr());
    assert.match(server.stderr(), /Shutdown complete\./);
  });

  test('SIGTERM with a stuck stream: exit 1 after shutdown.drainTimeoutMs (1 s)', async (t) => {
    const { server } = await pool(t, {
      over: { faults: [{ kind: 'stall', afterEvents: 3 }] },
      config: { shutdown: { drainTimeoutMs: 1000 } },
    });
    const exited = exitOf(server.child);
    const { result } = await startStream(server.port);
    process.kill(server.pid, 'SIGTERM');
    const x = await within(exited, 8000, 'drain timeout exit');
    assert.equal(x.code, 1, server.stderr());
    assert.ok(x.ms >= 900, `exited after ${x.ms} ms, before the drain timeout`);
    assert.match(server.stderr(), /Drain timeout after 1s; exiting with 1 active request\(s\) still open\./);
    assert.doesNotMatch(server.stderr(), /Shutdown complete/);
    const r = await result;
    assert.notEqual(r.end, 'complete', 'the stuck stream was not finished');
  });

  test('a long drain reports "Still draining 1 active request(s)..." every 5 s', async (t) => {
    const { server } = await pool(t, {
      over: { faults: [{ kind: 'stall', afterEvents: 3 }] },
      config: { shutdown: { drainTimeoutMs: 6000 } },
    });
    const exited = exitOf(server.child);
    const { result } = await startStream(server.port);
    process.kill(server.pid, 'SIGTERM');
    const x = await within(exited, 15000, 'drain timeout exit');
    assert.equal(x.code, 1, server.stderr());
    assert.equal(server.stderr().match(/Still draining 1 active request\(s\)\.\.\./g)?.length, 1, server.stderr());
    assert.match(server.stderr(), /Drain timeout after 6s; exiting with 1 active request\(s\) still open\./);
    await result;
  });

  test('a second SIGTERM while draining forces the exit at once (exit 1)', async (t) => {
    const { server } = await pool(t, {
      over: { faults: [{ kind: 'stall', afterEvents: 3 }] },
      config: { shutdown: { drainTimeoutMs: 60000 } },
    });
    const exited = exitOf(server.child);
    const { result } = await startStream(server.port);
    process.kill(server.pid, 'SIGTERM');
    await waitFor(() => server.stderr().includes('Draining shutdown (SIGTERM).'), { what: 'the drain log line' });
    process.kill(server.pid, 'SIGTERM');
    const x = await within(exited, 3000, 'forced exit');
    assert.equal(x.code, 1, server.stderr());
    assert.match(server.stderr(), /Force exiting with 1 active request\(s\) still open\./);
    await result;
  });
});
