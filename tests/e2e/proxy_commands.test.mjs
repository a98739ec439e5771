// `maxpool run` and `maxpool api` (§1), driven as a user would from a shell.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseScript, makeTempDir, MAXPOOL_BIN, startSim } from './lib/harness.mjs';
import { SKIP_PROXY } from './lib/pool.mjs';
import { accountsFor } from './lib/server.mjs';

function configFor(dir, upstream, accounts) {
  const file = join(dir, 'maxpool.json');
  writeFileSync(file, JSON.stringify({ proxy: { port: 45678, host: '127.0.0.1', apiKey: 'mp-k' }, upstream, accounts }), { mode: 0o600 });
  return file;
}

function maxpool(args, env) {
  return spawnSync(MAXPOOL_BIN, args, { encoding: 'utf8', timeout: 20000, env: { PATH: process.env.PATH, HOME: env.HOME, ...env } });
}

describe('maxpool run / api', { skip: SKIP_PROXY }, () => {
  test('run: execs claude with ANTHROPIC_BASE_URL set to the proxy, passes the args, returns its status', () => {
    const dir = makeTempDir();
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // A stand-in `claude` that reports what it got.
    writeFileSync(join(bin, 'claude'), '#!/bin/sh\necho "url=$ANTHROPIC_BASE_URL key=${ANTHROPIC_API_KEY:-none} args=$*"\nexit 3\n');
    chmodSync(join(bin, 'claude'), 0o755);
    const cfg = configFor(dir, 'http://127.0.0.1:1', []);
    const r = maxpool(['run', '--', '-p', 'hello there'], { HOME: dir, MAXPOOL_CONFIG: cfg, PATH: `${bin}:${process.env.PATH}` });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout.trim(), 'url=http://127.0.0.1:45678 key=none args=-p hello there');
  });

  test('run: without claude on PATH → the §1 message, exit 1', () => {
    const dir = makeTempDir();
    const cfg = configFor(dir, 'http://127.0.0.1:1', []);
    const r = maxpool(['run'], { HOME: dir, MAXPOOL_CONFIG: cfg, PATH: dir });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Claude Code not found in PATH\. Install it first\./);
  });

  test('api: one raw call with an account credential; head on stderr, pretty JSON on stdout', async (t) => {
    const script = baseScript();
    const sim = await startSim({ script });
    t.after(() => sim.stop());
    const dir = makeTempDir();
    const cfg = configFor(dir, sim.url, accountsFor(script));
    const r = maxpool(['api', '/v1/models', '--account', 'key-1'], { HOME: dir, MAXPOOL_CONFIG: cfg });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^200 /);
    assert.ok(Array.isArray(JSON.parse(r.stdout).data), r.stdout);
    const [seen] = await sim.requests(1);
    assert.equal(seen.headers['x-api-key'], 'sk-ant-api03-k1');
    const missing = maxpool(['api', '/v1/models', '--account', 'nope'], { HOME: dir, MAXPOOL_CONFIG: cfg });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /Account "nope" not found/);
  });
});
