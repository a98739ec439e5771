// OAuth and account endpoints of `maxpool sim` (SPEC §4.3, §7; sim-interface.md "OAuth"):
// the test plays the browser (authorize → redirect), then exchanges the code with PKCE,
// rotates refresh tokens, and reads profile and usage.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { baseScript, hasCommand, http, postMessages, startSim } from './lib/harness.mjs';

const skip = hasCommand('sim') ? false : 'maxpool sim is not in this build';

const CLIENT_ID = '9d1c250a-e61b-44d9-88ed-5944d1962f5e';
const REDIRECT = 'http://localhost:54545/callback';
const SCOPE = 'org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload';
const b64url = (buf) => buf.toString('base64url');
const INVALID_GRANT = { error: 'invalid_grant', error_description: 'Refresh token not found or invalid' };

async function freshSim(t, over = {}) {
  const sim = await startSim({ script: baseScript(over) });
  t.after(() => sim.stop());
  return sim;
}

function pkce() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(32));
  return { verifier, challenge, state };
}

/** Plays the browser: GET the authorize URL, return {status, location, code, state}. */
async function authorize(sim, p, { account } = {}) {
  const q = new URLSearchParams({
    code: 'true',
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: SCOPE,
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    state: p.state,
  });
  if (account) q.set('account', account);
  const r = await http(`${sim.url}/oauth/authorize?${q}`);
  const location = r.headers.get('location');
  const u = location ? new URL(location) : null;
  return { status: r.status, location, url: u, code: u?.searchParams.get('code'), state: u?.searchParams.get('state') };
}

const token = (sim, body) => http(`${sim.url}/v1/oauth/token`, { method: 'POST', body });

function exchange(sim, p, code) {
  return token(sim, {
    grant_type: 'authorization_code',
    code,
    code_verifier: p.verifier,
    redirect_uri: REDIRECT,
    client_id: CLIENT_ID,
    state: p.state,
  });
}

const refresh = (sim, rt) => token(sim, { grant_type: 'refresh_token', refresh_token: rt, client_id: CLIENT_ID });

function assertTokens(r, ttl) {
  assert.equal(r.status, 200, r.text);
  const j = r.json;
  assert.equal(typeof j.access_token, 'string');
  assert.equal(typeof j.refresh_token, 'string');
  assert.match(j.access_token, /^sk-ant-oat01-/);
  assert.match(j.refresh_token, /^sk-ant-ort01-/);
  assert.equal(j.token_type, 'Bearer');
  assert.equal(typeof j.scope, 'string');
  if (ttl !== undefined) assert.equal(j.expires_in, ttl);
  else assert.ok(Number.isInteger(j.expires_in) && j.expires_in > 0);
  return j;
}

async function whoUsed(sim, accessToken) {
  const r = await postMessages(sim.url, { authorization: `Bearer ${accessToken}` });
  const reqs = await sim.requests(1);
  return { status: r.status, account: reqs.at(-1).account };
}

const profile = (sim, tok) => http(`${sim.url}/api/oauth/profile`, { headers: { authorization: `Bearer ${tok}`, 'anthropic-beta': 'oauth-2025-04-20' } });
const usage = (sim, tok) => http(`${sim.url}/api/oauth/usage`, { headers: { authorization: `Bearer ${tok}`, 'anthropic-beta': 'oauth-2025-04-20' } });

describe('sim oauth: authorization code with PKCE', { skip }, () => {
  test('authorize redirects to redirect_uri with code and state; the code buys tokens for the first oauth account', async (t) => {
    const sim = await freshSim(t);
    const p = pkce();
    const a = await authorize(sim, p);
    assert.equal(a.status, 302);
    assert.equal(`${a.url.origin}${a.url.pathname}`, REDIRECT);
    assert.equal(a.state, p.state);
    assert.ok(a.code && a.code.length >= 8, `code ${a.code}`);
    const j = assertTokens(await exchange(sim, p, a.code), 28800);
    assert.deepEqual(await whoUsed(sim, j.access_token), { status: 200, account: 'max-a' });
    // The old credential of the account keeps working.
    assert.deepEqual(await whoUsed(sim, 'sk-ant-oat01-a'), { status: 200, account: 'max-a' });
  });

  test('a code is single-use', async (t) => {
    const sim = await freshSim(t);
    const p = pkce();
    const a = await authorize(sim, p);
    assertTokens(await exchange(sim, p, a.code));
    const again = await exchange(sim, p, a.code);
    assert.equal(again.status, 400);
    assert.equal(again.json?.error, 'invalid_grant');
  });

  test('a wrong code_verifier is refused (and burns nothing else)', async (t) => {
    const sim = await freshSim(t);
    const p = pkce();
    const a = await authorize(sim, p);
    const bad = await exchange(sim, { ...p, verifier: b64url(randomBytes(32)) }, a.code);
    assert.equal(bad.status, 400);
    assert.equal(bad.json?.error, 'invalid_grant');
    const unknown = await exchange(sim, p, 'no-such-code');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json?.error, 'invalid_grant');
  });

  test('account=NAME picks the account; its profile tells who it is', async (t) => {
    const sim = await freshSim(t);
    const p = pkce();
    const a = await authorize(sim, p, { account: 'pro-b' });
    assert.equal(a.status, 302);
    const j = assertTokens(await exchange(sim, p, a.code));
    assert.deepEqual(await whoUsed(sim, j.access_token), { status: 200, account: 'pro-b' });
    const pr = await profile(sim, j.access_token);
    assert.equal(pr.status, 200);
    assert.equal(pr.json.account.email, 'b@example.com');
  });
});

describe('sim oauth: refresh rotation', { skip }, () => {
  test('each refresh token works once; reuse → 400 invalid_grant; every issued access token works', async (t) => {
    const sim = await freshSim(t);
    const r1 = assertTokens(await refresh(sim, 'sk-ant-ort01-a'), 28800);
    assert.notEqual(r1.refresh_token, 'sk-ant-ort01-a');
    assert.notEqual(r1.access_token, 'sk-ant-oat01-a');
    const reuse = await refresh(sim, 'sk-ant-ort01-a');
    assert.equal(reuse.status, 400);
    assert.deepEqual(reuse.json, INVALID_GRANT);
    const r2 = assertTokens(await refresh(sim, r1.refresh_token));
    assert.notEqual(r2.refresh_token, r1.refresh_token);
    assert.notEqual(r2.access_token, r1.access_token);
    assert.deepEqual((await refresh(sim, r1.refresh_token)).json, INVALID_GRANT);
    assert.deepEqual((await refresh(sim, 'sk-ant-ort01-never-issued')).json, INVALID_GRANT);
    for (const tok of [r1.access_token, r2.access_token, 'sk-ant-oat01-a']) {
      assert.deepEqual(await whoUsed(sim, tok), { status: 200, account: 'max-a' }, tok);
    }
    // Rotation of one account leaves the other alone.
    assertTokens(await refresh(sim, 'sk-ant-ort01-b'));
  });

  test('a refreshed access token expires after tokenTtlSec of simulated time', async (t) => {
    const over = baseScript();
    over.accounts[0].tokenTtlSec = 60;
    const sim = await freshSim(t, { accounts: over.accounts });
    const r1 = assertTokens(await refresh(sim, 'sk-ant-ort01-a'), 60);
    assert.equal((await whoUsed(sim, r1.access_token)).status, 200);
    await sim.advance(61000);
    const r = await postMessages(sim.url, { authorization: `Bearer ${r1.access_token}` });
    assert.equal(r.status, 401);
    assert.equal(r.json?.error?.type, 'authentication_error');
    // Its refresh token still rotates.
    assertTokens(await refresh(sim, r1.refresh_token), 60);
  });
});

describe('sim oauth: profile and usage', { skip }, () => {
  test('profile: uuid, email, display name, tier flags, organization', async (t) => {
    const sim = await freshSim(t);
    const a = await profile(sim, 'sk-ant-oat01-a');
    assert.equal(a.status, 200);
    assert.equal(a.json.account.uuid, '11111111-1111-4111-8111-111111111111');
    assert.equal(a.json.account.email, 'a@example.com');
    assert.equal(typeof a.json.account.display_name, 'string');
    assert.equal(a.json.account.has_claude_max, true);
    assert.equal(a.json.account.has_claude_pro, false);
    for (const k of ['uuid', 'name', 'organization_type']) assert.equal(typeof a.json.organization[k], 'string', k);
    const b = await profile(sim, 'sk-ant-oat01-b');
    assert.equal(b.json.account.has_claude_max, false);
    assert.equal(b.json.account.has_claude_pro, true);
    assert.match(b.json.account.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal((await profile(sim, 'sk-ant-oat01-b')).json.account.uuid, b.json.account.uuid, 'stable uuid');
    assert.notEqual(b.json.account.uuid, a.json.account.uuid);
    // Generated from the name: the same in another sim with the same script.
    const other = await freshSim(t);
    assert.equal((await profile(other, 'sk-ant-oat01-b')).json.account.uuid, b.json.account.uuid);
    assert.equal((await profile(sim, 'sk-ant-oat01-unknown')).status, 401);
  });

  test('usage: limits[] and five_hour/seven_day, closed windows first, then after a charge', async (t) => {
    const sim = await freshSim(t);
    const u0 = await usage(sim, 'sk-ant-oat01-a');
    assert.equal(u0.status, 200);
    const kinds = u0.json.limits.map((l) => l.kind);
    assert.ok(kinds.includes('session') && kinds.includes('weekly_all'), `${kinds}`);
    for (const l of u0.json.limits) {
      assert.equal(l.percent, 0);
      assert.equal(l.resets_at, null);
      assert.equal(l.severity, 'normal');
      assert.equal(l.is_active, true);
    }
    assert.equal(u0.json.five_hour.utilization, 0);
    assert.equal(u0.json.five_hour.resets_at, null);
    assert.equal(u0.json.seven_day.utilization, 0);

    // Fill ~1% of the 5h budget (2,000,000) with a large body: ceil(80000/4) = 20000 tokens.
    const big = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(80000) }] });
    assert.equal((await postMessages(sim.url, 'max-a', big)).status, 200);
    const st = (await sim.state()).accounts.find((a) => a.name === 'max-a');
    const u1 = await usage(sim, 'sk-ant-oat01-a');
    const session = u1.json.limits.find((l) => l.kind === 'session');
    const weekly = u1.json.limits.find((l) => l.kind === 'weekly_all');
    assert.ok(Math.abs(session.percent - st.windows['5h'].utilization * 100) < 0.01, `${session.percent} vs ${st.windows['5h'].utilization}`);
    assert.ok(Math.abs(weekly.percent - st.windows['7d'].utilization * 100) < 0.01);
    assert.ok(session.percent > 0.9 && session.percent < 1.2, `session ${session.percent}%`);
    assert.ok(Math.abs(u1.json.five_hour.utilization - session.percent) < 0.01);
    const reset = Date.parse(session.resets_at);
    assert.ok(Math.abs(reset / 1000 - st.windows['5h'].resetsAt) <= 1, `${session.resets_at} vs ${st.windows['5h'].resetsAt}`);
    assert.equal(Date.parse(u1.json.five_hour.resets_at), reset);
    assert.ok(Date.parse(u1.json.seven_day.resets_at) > reset);
    // The other account is untouched; an unknown token is refused.
    assert.equal((await usage(sim, 'sk-ant-oat01-b')).json.five_hour.utilization, 0);
    assert.equal((await usage(sim, 'sk-ant-oat01-zzz')).status, 401);
  });
});
