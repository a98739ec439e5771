// `maxpool server` for the end-to-end tests: a private config (temp dir, proxy.port 0) whose
// upstream is a running `maxpool sim`, started by PID and stopped by PID.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { http, makeTempDir, removeTempDir, startDaemon, stopChild } from './harness.mjs';

export const PROXY_KEY = 'mp-e2e-proxy-key';

/** Config accounts matching the sim's baseScript() accounts (same credentials). */
export function accountsFor(script) {
  return script.accounts.map((a) =>
    a.type === 'oauth'
      ? { name: a.name, type: 'oauth', accessToken: a.accessToken, refreshToken: a.refreshToken, expiresAt: 4102444800000 }
      : { name: a.name, type: 'apikey', apiKey: a.apiKey },
  );
}

/**
 * Starts `maxpool server` in front of `upstream` (a base URL) with `accounts` and any config
 * overrides. Resolves {port, url, pid, dir, configFile, status(), stderr(), stop()}.
 */
export async function startServer({ upstream, accounts, config = {}, args = [], env = {} }) {
  const dir = makeTempDir('maxpool-server-');
  const configFile = join(dir, 'maxpool.json');
  const cfg = {
    proxy: { port: 0, host: '127.0.0.1', apiKey: PROXY_KEY },
    upstream,
    updateCheck: false,
    quotaProbeSeconds: 0,
    preventSleep: false,
    accounts,
    ...config,
  };
  writeFileSync(configFile, JSON.stringify(cfg, null, 2), { mode: 0o600 });
  let d;
  try {
    d = await startDaemon({ args: ['server', ...args], dir, env: { MAXPOOL_CONFIG: configFile, ...env }, name: 'server' });
  } catch (e) {
    removeTempDir(dir);
    throw e;
  }
  let stopped = null;
  return {
    port: d.port,
    url: d.url,
    pid: d.child.pid,
    child: d.child,
    dir,
    configFile,
    stderr: d.stderr,
    status: async () => (await http(`${d.url}/maxpool/status`, { headers: { 'x-api-key': PROXY_KEY } })).json,
    stop: (graceMs) => {
      stopped ??= stopChild(d.child, graceMs).then((r) => {
        removeTempDir(dir);
        return r;
      });
      return stopped;
    },
  };
}
