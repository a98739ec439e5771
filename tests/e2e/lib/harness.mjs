// Shared plumbing of the end-to-end tests: temp dirs, the maxpool processes (sim now,
// server later) on ephemeral loopback ports, and the real Claude Code CLI run offline.
//
// Every process started here is tracked by PID; stop() ends exactly that PID, and a
// process-exit hook kills whatever a crashed test left behind. Nothing listens or connects
// anywhere but 127.0.0.1. (`maxpool server` for the proxy suites: lib/server.mjs.)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const HOST = '127.0.0.1';
export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(E2E_DIR, '..', '..');
export const MAXPOOL_BIN = process.env.MAXPOOL_BIN || join(REPO_DIR, 'maxpool');
export const CLAUDE_BIN = join(E2E_DIR, 'node_modules', '.bin', 'claude');

// ---------------------------------------------------------------- temp dirs

const tempDirs = new Set();

/** Creates a private temp dir (mode 0700); removed by removeTempDir() or at process exit. */
export function makeTempDir(prefix = 'maxpool-e2e-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  if (!dir) return;
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// ---------------------------------------------------------------- process tracking

const live = new Map(); // pid -> ChildProcess

process.on('exit', () => {
  for (const [pid] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function waitExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
}

/** Sends `signal` (SIGTERM) to the child's PID, waits up to graceMs, then SIGKILL; resolves {code, signal}. */
export async function stopChild(child, graceMs = 5000, signal = 'SIGTERM') {
  const exited = waitExit(child);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(child.pid, signal);
    } catch {
      /* raced with exit */
    }
    const t = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, graceMs);
    const r = await exited;
    clearTimeout(t);
    live.delete(child.pid);
    return r;
  }
  live.delete(child.pid);
  return exited;
}

// Keeps the last `cap` bytes of a stream so a chatty child cannot grow test memory.
function tail(stream, cap = 64 * 1024) {
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (d) => {
    text += d;
    if (text.length > cap) text = text.slice(text.length - cap);
  });
  return () => text;
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

/**
 * A daemon asked to stop must exit 0 by itself, and with a sanitizer build its stderr must
 * hold no report: either failure makes stop() reject, so the test whose after() hook stops
 * it fails (with an ASan build, `MAXPOOL_BIN=build-asan/maxpool`, this catches leaks too).
 */
function checkExit(name, r, stderr) {
  const m = SANITIZER.exec(stderr);
  if (m) throw new Error(`${name}: sanitizer report:\n${stderr.slice(Math.max(0, m.index - 200), m.index + 4000)}`);
  if (r.code !== 0 || r.signal !== null) {
    throw new Error(`${name}: exit ${JSON.stringify(r)} after a stop signal (expected code 0)\n${stderr.slice(-2000)}`);
  }
}

/** True when `maxpool help` lists the command (lets suites skip before a feature lands). */
export function hasCommand(name) {
  const r = spawnSync(MAXPOOL_BIN, ['help'], { encoding: 'utf8', timeout: 10000 });
  if (r.error) return false;
  const out = `${r.stdout}\n${r.stderr}`;
  return new RegExp(`^\\s+${name}(\\s|$)`, 'm').test(out);
}

// A child keeps the test's environment (sanitizer options, MAXPOOL_E2E_*, PATH) minus what
// could send it elsewhere or hand it someone's credentials: proxy variables, ANTHROPIC_* and
// CLAUDE_* of the developer's shell, and config paths. HOME and XDG_CONFIG_HOME point into
// its own temp dir so it never reads or writes the user's real config.
const DROP_ENV = /^(https?_proxy|all_proxy|no_proxy|ANTHROPIC_.*|CLAUDE_.*|MAXPOOL_CONFIG|TEAMCLAUDE_CONFIG)$/i;
function childEnv(dir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!DROP_ENV.test(k)) env[k] = v;
  env.HOME = dir;
  env.XDG_CONFIG_HOME = dir;
  return env;
}

/**
 * Starts `maxpool <args…> --port 0 --port-file F` with its own temp dir and waits (bounded by
 * readyTimeoutMs) until F holds the bound port (and, if given, stderr matches readyLine).
 * Resolves {child, port, url, dir, stderr()}.
 * Used by startSim and by startServer (lib/server.mjs).
 */
export async function startDaemon({ args, dir, env = {}, readyTimeoutMs = 10000, name = 'maxpool', readyLine = null }) {
  const portFile = join(dir, `${name}.port`);
  const child = spawn(MAXPOOL_BIN, [...args, '--port', '0', '--port-file', portFile], {
    cwd: dir,
    env: { ...childEnv(dir), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.set(child.pid, child);
  const stdout = tail(child.stdout);
  const stderr = tail(child.stderr);
  let spawnError = null;
  child.once('error', (e) => {
    spawnError = e;
  });
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (spawnError) throw new Error(`${name}: cannot start ${MAXPOOL_BIN}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child.pid);
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${stderr()}${stdout()}`,
      );
    }
    let text = '';
    try {
      text = readFileSync(portFile, 'utf8');
    } catch {
      /* not yet */
    }
    if (/^\d+\n$/.test(text) && (!readyLine || readyLine.test(stderr()))) {
      const port = Number(text.trim());
      if (port > 0 && port < 65536) {
        return { child, port, url: `http://${HOST}:${port}`, dir, stderr, stdout };
      }
    }
    if (Date.now() > deadline) {
      await stopChild(child, 1000);
      throw new Error(`${name}: no port file after ${readyTimeoutMs} ms:\n${stderr()}`);
    }
    await sleep(20);
  }
}

/** Polls fn() every 20 ms until it returns a truthy value or timeoutMs passes; returns the last value. */
export async function waitFor(fn, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(20);
  }
}

// ---------------------------------------------------------------- HTTP helpers

/** fetch() with a hard timeout; never follows redirects (tests look at them). */
export async function http(url, { method = 'GET', headers = {}, body, timeoutMs = 10000 } = {}) {
  const init = { method, headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers = { ...headers, 'content-type': 'application/json' };
    }
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function jsonOk(url, opts) {
  const r = await http(url, opts);
  if (r.status !== 200) throw new Error(`${opts?.method || 'GET'} ${url} → ${r.status}: ${r.text}`);
  return r.json;
}

// ---------------------------------------------------------------- maxpool sim

/**
 * Starts `maxpool sim` with `script` (an object, written to a temp file) and extra `args`.
 * Resolves a handle: {port, url, pid, dir, state(), requests(limit), setScript(obj),
 * advance(ms), stderr(), stop(signal = 'SIGTERM')}. stop() is idempotent and removes the temp dir.
 */
export async function startSim({ script = {}, args = [], env = {}, readyTimeoutMs = 10000 } = {}) {
  const dir = makeTempDir('maxpool-sim-');
  const scriptFile = join(dir, 'script.json');
  writeFileSync(scriptFile, JSON.stringify(script, null, 2));
  let d;
  try {
    // The banner comes after the signal handlers are installed; the port file comes before
    // them (src/cli/cmd_sim.c), so a stop signal right after the port file could kill the sim.
    d = await startDaemon({
      args: ['sim', '--script', scriptFile, ...args],
      dir,
      env,
      readyTimeoutMs,
      name: 'sim',
      readyLine: /maxpool sim listening on http:\/\/127\.0\.0\.1:\d+\n/,
    });
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  let stopped = null;
  const sim = {
    port: d.port,
    url: d.url,
    pid: d.child.pid,
    dir,
    scriptFile,
    stderr: d.stderr,
    state: () => jsonOk(`${d.url}/_sim/state`),
    requests: async (limit = 256) => (await jsonOk(`${d.url}/_sim/requests?limit=${limit}`)).requests,
    setScript: (obj) => jsonOk(`${d.url}/_sim/script`, { method: 'POST', body: obj }),
    advance: (ms) => jsonOk(`${d.url}/_sim/clock`, { method: 'POST', body: { advanceMs: ms } }),
    alive: () => d.child.exitCode === null && d.child.signalCode === null,
    stop: (signal = 'SIGTERM') => {
      stopped ??= stopChild(d.child, 5000, signal).then((r) => {
        removeTempDir(dir);
        checkExit('sim', r, d.stderr());
        return r;
      });
      return stopped;
    },
  };
  return sim;
}

// ---------------------------------------------------------------- scripts and requests

/** The default account set of the tests: two subscription accounts and one API key. */
export function baseScript(over = {}) {
  return {
    seed: 42,
    response: { text: 'Hello from maxpool sim.', deltas: 20, deltaDelayMs: 0, firstByteDelayMs: 0, model: null },
    accounts: [
      {
        name: 'max-a',
        type: 'oauth',
        accessToken: 'sk-ant-oat01-a',
        refreshToken: 'sk-ant-ort01-a',
        uuid: '11111111-1111-4111-8111-111111111111',
        email: 'a@example.com',
        tier: 'max',
        budget5h: 2000000,
        budget7d: 20000000,
        tokenTtlSec: 28800,
      },
      {
        name: 'pro-b',
        type: 'oauth',
        accessToken: 'sk-ant-oat01-b',
        refreshToken: 'sk-ant-ort01-b',
        email: 'b@example.com',
        tier: 'pro',
        budget5h: 2000000,
        budget7d: 20000000,
      },
      { name: 'key-1', type: 'apikey', apiKey: 'sk-ant-api03-k1', tokensPerMinute: 400000, requestsPerMinute: 4000 },
    ],
    faults: [],
    ...over,
  };
}

export const CRED = {
  'max-a': { authorization: 'Bearer sk-ant-oat01-a' },
  'pro-b': { authorization: 'Bearer sk-ant-oat01-b' },
  'key-1': { 'x-api-key': 'sk-ant-api03-k1' },
};

export const MODEL = 'claude-sonnet-4-5';

export function messageBody(over = {}) {
  return { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }], ...over };
}

/** POST /v1/messages as `account` (a CRED key or a headers object) with fetch. */
export function postMessages(base, account, body = messageBody(), { path = '/v1/messages', headers = {}, timeoutMs } = {}) {
  const cred = typeof account === 'string' ? CRED[account] : account;
  return http(`${base}${path}`, {
    method: 'POST',
    headers: { 'anthropic-version': '2023-06-01', 'content-type': 'application/json', ...cred, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    timeoutMs,
  });
}

/** Orders /_sim/requests ids ("req_sim_12", the request's request-id) numerically. */
export function reqNum(id) {
  return typeof id === 'number' ? id : Number(String(id).replace(/^\D+/, ''));
}

/** Splits an SSE body into [{event, data(parsed JSON or raw), raw}]; a trailing partial event is returned as `partial`. */
export function parseSse(text) {
  const parts = text.split('\n\n');
  const partial = parts.pop();
  const events = parts.filter((p) => p.length > 0).map(parseSseEvent);
  return { events, partial };
}

export function parseSseEvent(raw) {
  let event = 'message';
  const data = [];
  for (const line of raw.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  let parsed = data.join('\n');
  try {
    parsed = JSON.parse(parsed);
  } catch {
    /* leave raw */
  }
  return { event, data: parsed, raw };
}

// ---------------------------------------------------------------- Claude Code CLI

/**
 * Runs the real `claude -p PROMPT` offline against baseURL (CLIENTS.md): env built from
 * scratch, a private HOME, closed stdin, and a hard timeout (SIGKILL by PID).
 * Pass apiKey (API-key mode) or oauthToken (subscription mode). Resolves {code, signal,
 * stdout, stderr, timedOut}.
 */
export async function runClaude({ baseURL, apiKey, oauthToken, prompt = 'say hi', timeoutMs = 120000, args = [], env = {} }) {
  const home = makeTempDir('maxpool-claude-home-');
  mkdirSync(join(home, '.config'), { recursive: true });
  const cenv = {
    HOME: home,
    PATH: process.env.PATH || '/usr/bin:/bin',
    TERM: 'dumb',
    LANG: 'C.UTF-8',
    TMPDIR: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    ANTHROPIC_BASE_URL: baseURL,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    ...env,
  };
  if (apiKey) cenv.ANTHROPIC_API_KEY = apiKey;
  if (oauthToken) cenv.CLAUDE_CODE_OAUTH_TOKEN = oauthToken;
  const child = spawn(CLAUDE_BIN, ['-p', prompt, ...args], { cwd: home, env: cenv, stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child.pid, child);
  const stdout = tail(child.stdout, 1 << 20);
  const stderr = tail(child.stderr, 1 << 20);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, timeoutMs);
  // 'close' fires after exit AND after stdout/stderr are drained.
  const closed = new Promise((res, rej) => {
    child.once('close', (code, signal) => res({ code, signal }));
    child.once('error', rej);
  });
  try {
    const { code, signal } = await closed;
    return { code, signal, stdout: stdout(), stderr: stderr(), timedOut };
  } finally {
    clearTimeout(timer);
    live.delete(child.pid);
    removeTempDir(home);
  }
}
