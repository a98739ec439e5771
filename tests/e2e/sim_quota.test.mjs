// The quota model of `maxpool sim` seen from outside: subscription windows (5h, 7d) filling up
// through allowed → allowed_warning → 429 rejected, reset by /_sim/clock; time scale; API-key
// per-minute buckets. (sim-interface.md "Quota model")
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseScript, hasCommand, messageBody, postMessages, startSim } from './lib/harness.mjs';
import { assertApiError, assertNoUnified, hdr, nowSec, unified } from './lib/expect.mjs';

const skip = hasCommand('sim') ? false : 'maxpool sim is not in this build';

const H5 = 5 * 3600;
const D7 = 7 * 24 * 3600;
const REJECT_MSG = "This request would exceed your account's rate limit. Please try again later.";

function small(name, over = {}) {
  return {
    name,
    type: 'oauth',
    accessToken: `sk-ant-oat01-${name}`,
    refreshToken: `sk-ant-ort01-${name}`,
    email: `${name}@example.com`,
    tier: 'max',
    budget5h: 1000,
    budget7d: 1000000000,
    ...over,
  };
}

async function simWith(t, accounts, over = {}, args = []) {
  const script = baseScript(over);
  script.accounts.push(...accounts);
  const sim = await startSim({ script, args });
  t.after(() => sim.stop());
  return sim;
}

const bearer = (name) => ({ authorization: `Bearer sk-ant-oat01-${name}` });
const acct = async (sim, name) => (await sim.state()).accounts.find((a) => a.name === name);

describe('sim quota: subscription windows', { skip }, () => {
  test('charge = ceil(body/4) input + 3 per delta output, stream and non-stream alike; count_tokens is free', async (t) => {
    const sim = await simWith(t, [small('q', { budget5h: 1000000 })]);
    const body = JSON.stringify(messageBody());
    const inTok = Math.max(1, Math.ceil(Buffer.byteLength(body) / 4));
    const ct = await postMessages(sim.url, bearer('q'), body, { path: '/v1/messages/count_tokens' });
    assert.equal(ct.status, 200);
    const fresh = unified(ct.headers);
    assert.equal(fresh.u5h, 0);
    assert.equal(fresh.reset5h, null, 'a closed window has no reset header');
    const closed = (await acct(sim, 'q')).windows;
    for (const w of ['5h', '7d']) {
      assert.equal(closed[w].used, 0);
      assert.equal(closed[w].utilization, 0);
      assert.equal(closed[w].resetsAt, null, `a closed ${w} window has no reset`);
    }

    const r1 = await postMessages(sim.url, bearer('q'), body);
    assert.equal(r1.status, 200);
    assert.equal(r1.json.usage.input_tokens, inTok);
    assert.equal(r1.json.usage.output_tokens, 60);
    const sbody = JSON.stringify(messageBody({ stream: true }));
    const r2 = await postMessages(sim.url, bearer('q'), sbody);
    assert.equal(r2.status, 200);
    const sIn = Math.max(1, Math.ceil(Buffer.byteLength(sbody) / 4));
    const a = await acct(sim, 'q');
    assert.equal(a.inputTokens, inTok + sIn);
    assert.equal(a.outputTokens, 120);
    assert.equal(a.windows['5h'].used, inTok + sIn + 120);
    assert.equal(a.windows['7d'].used, inTok + sIn + 120);
    assert.equal(a.windows['5h'].budget, 1000000);
    assert.ok(Math.abs(a.windows['5h'].utilization - (inTok + sIn + 120) / 1000000) < 1e-9);
    const after = unified(r2.headers);
    assert.ok(after.reset5h !== null && Math.abs(after.reset5h - (nowSec() + H5)) <= 60, `5h reset ${after.reset5h}`);
    assert.ok(after.reset7d !== null && Math.abs(after.reset7d - (nowSec() + D7)) <= 60, `7d reset ${after.reset7d}`);
    assert.equal(a.windows['5h'].resetsAt, after.reset5h);
  });

  test('5h window fills: allowed → allowed_warning → 429 rejected with retry-after; clock advance reopens it', async (t) => {
    const sim = await simWith(t, [small('q')]);
    const seen = [];
    let rejected = null;
    let last5h = -1;
    for (let i = 0; i < 40 && !rejected; i++) {
      const r = await postMessages(sim.url, bearer('q'));
      const u = unified(r.headers);
      seen.push(u.status);
      if (r.status === 429) {
        rejected = r;
        break;
      }
      assert.equal(r.status, 200);
      assert.ok(u.u5h > last5h, `5h utilization grows: ${u.u5h} after ${last5h}`);
      last5h = u.u5h;
    }
    assert.ok(rejected, `no 429 after 40 requests of ~83 tokens on a 1000-token budget: ${seen}`);
    assert.ok(seen.includes('allowed') && seen.includes('allowed_warning'), `statuses: ${seen}`);
    assertApiError(rejected, 429, 'rate_limit_error', REJECT_MSG);
    const u = unified(rejected.headers);
    assert.equal(u.status, 'rejected');
    assert.equal(u.claim, 'five_hour');
    const ra = Number(rejected.headers.get('retry-after'));
    assert.ok(Number.isInteger(ra) && ra > H5 - 600 && ra <= H5, `retry-after ${ra}`);
    assert.ok(Math.abs(u.reset5h - (nowSec() + ra)) <= 2, 'retry-after points at the 5h reset');

    // A rejected request charges nothing.
    const used = (await acct(sim, 'q')).windows['5h'].used;
    assert.equal((await postMessages(sim.url, bearer('q'))).status, 429);
    const st = await acct(sim, 'q');
    assert.equal(st.windows['5h'].used, used);
    assert.ok(st.windows['5h'].utilization >= 1);
    assert.ok(st.statuses['429'] >= 2 && st.statuses['200'] >= 1);

    const before7d = st.windows['7d'].used;
    await sim.advance(H5 * 1000 + 1000);
    const again = await postMessages(sim.url, bearer('q'));
    assert.equal(again.status, 200);
    const ua = unified(again.headers);
    assert.equal(ua.status, 'allowed');
    assert.ok(ua.u5h < 0.2, `fresh 5h window: ${ua.u5h}`);
    const st2 = await acct(sim, 'q');
    assert.ok(st2.windows['5h'].used < used);
    assert.ok(st2.windows['7d'].used > before7d, 'the 7d window kept counting');
  });

  test('7d window full: 429 rejected, claim seven_day; 5h of clock does not help, 7d does', async (t) => {
    const sim = await simWith(t, [small('w', { budget5h: 1000000000, budget7d: 300 })]);
    let r;
    for (let i = 0; i < 10; i++) {
      r = await postMessages(sim.url, bearer('w'));
      if (r.status === 429) break;
    }
    assertApiError(r, 429, 'rate_limit_error', REJECT_MSG);
    const u = unified(r.headers);
    assert.equal(u.claim, 'seven_day');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra > D7 - 600 && ra <= D7, `retry-after ${ra}`);
    await sim.advance(H5 * 1000 + 1000);
    assert.equal((await postMessages(sim.url, bearer('w'))).status, 429);
    await sim.advance(D7 * 1000);
    assert.equal((await postMessages(sim.url, bearer('w'))).status, 200);
  });

  test('starting utilization: used5h 0.85 warns at once, used5h 1 rejects at once', async (t) => {
    const sim = await simWith(t, [small('warm', { budget5h: 1000000, used5h: 0.85 }), small('full', { used5h: 1 })]);
    const r = await postMessages(sim.url, bearer('warm'));
    assert.equal(r.status, 200);
    const u = unified(r.headers);
    assert.equal(u.status, 'allowed_warning');
    assert.ok(u.u5h >= 0.85 && u.u5h < 0.9, `5h ${u.u5h}`);
    assert.ok(u.reset5h !== null && u.reset5h <= nowSec() + H5 + 2);
    const f = await postMessages(sim.url, bearer('full'));
    assertApiError(f, 429, 'rate_limit_error', REJECT_MSG);
    assert.equal(unified(f.headers).status, 'rejected');
  });

  test('time scale: resets are printed on the real clock, K times sooner; --time-scale wins', async (t) => {
    const s1 = await simWith(t, [small('ts', { budget5h: 1000000 })], { timeScale: 3600 });
    const u1 = unified((await postMessages(s1.url, bearer('ts'))).headers);
    const now = nowSec();
    assert.ok(u1.reset5h - now >= 0 && u1.reset5h - now <= 7, `5h reset in ${u1.reset5h - now} s at K=3600`);
    assert.ok(u1.reset7d - now >= 160 && u1.reset7d - now <= 170, `7d reset in ${u1.reset7d - now} s`);
    const s2 = await simWith(t, [small('ts', { budget5h: 1000000 })], { timeScale: 3600 }, ['--time-scale', '60']);
    const u2 = unified((await postMessages(s2.url, bearer('ts'))).headers);
    const d = u2.reset5h - nowSec();
    assert.ok(d >= 290 && d <= 302, `5h reset in ${d} s at K=60`);
  });

  test('POST /_sim/script updates an account by name: a smaller budget applies at once, usage is kept', async (t) => {
    const sim = await simWith(t, [small('live', { budget5h: 1000000 })]);
    assert.equal((await postMessages(sim.url, bearer('live'))).status, 200);
    const used = (await acct(sim, 'live')).windows['5h'].used;
    assert.ok(used > 0);
    await sim.setScript({ accounts: [small('live', { budget5h: used })] });
    const r = await postMessages(sim.url, bearer('live'));
    assertApiError(r, 429, 'rate_limit_error', REJECT_MSG);
    assert.equal(unified(r.headers).u5h, 1);
    const st = await acct(sim, 'live');
    assert.equal(st.windows['5h'].budget, used);
    assert.equal(st.windows['5h'].used, used);
  });

  test('unified headers ride on error answers of oauth accounts, never on API-key ones', async (t) => {
    const sim = await simWith(t, [], { faults: [{ kind: 'overloaded' }] });
    unified((await postMessages(sim.url, 'max-a')).headers);
    assertNoUnified((await postMessages(sim.url, 'key-1')).headers);
    await sim.setScript({ faults: [] });
    assertNoUnified((await postMessages(sim.url, 'key-1')).headers);
  });
});

describe('sim quota: API-key buckets', { skip }, () => {
  const key = (name, over) => ({ name, type: 'apikey', apiKey: `sk-ant-api03-${name}`, ...over });
  const xkey = (name) => ({ 'x-api-key': `sk-ant-api03-${name}` });

  test('requests per minute: headers count down, an empty bucket is a 429 with retry-after, a minute refills', async (t) => {
    const sim = await simWith(t, [key('rpm', { requestsPerMinute: 3, tokensPerMinute: 1000000 })]);
    const remaining = [];
    for (let i = 0; i < 3; i++) {
      const r = await postMessages(sim.url, xkey('rpm'));
      assert.equal(r.status, 200);
      assert.equal(hdr(r.headers, 'anthropic-ratelimit-requests-limit'), '3');
      assert.equal(hdr(r.headers, 'anthropic-ratelimit-tokens-limit'), '1000000');
      assert.ok(!Number.isNaN(Date.parse(hdr(r.headers, 'anthropic-ratelimit-requests-reset'))), 'ISO 8601 reset');
      assert.ok(!Number.isNaN(Date.parse(hdr(r.headers, 'anthropic-ratelimit-tokens-reset'))), 'ISO 8601 reset');
      assert.match(hdr(r.headers, 'anthropic-ratelimit-tokens-remaining'), /^\d+$/);
      remaining.push(Number(hdr(r.headers, 'anthropic-ratelimit-requests-remaining')));
    }
    assert.ok(remaining[0] > remaining[1] && remaining[1] > remaining[2] && remaining[2] >= 0, `${remaining}`);
    const r = await postMessages(sim.url, xkey('rpm'));
    assert.equal(r.status, 429);
    assert.equal(r.json.error.type, 'rate_limit_error');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(Number.isInteger(ra) && ra >= 1 && ra <= 60, `retry-after ${ra}`);
    assertNoUnified(r.headers);
    await sim.advance(60000);
    assert.equal((await postMessages(sim.url, xkey('rpm'))).status, 200);
  });

  test('tokens per minute: the bucket drains by the charged tokens and then answers 429', async (t) => {
    const sim = await simWith(t, [key('tpm', { requestsPerMinute: 1000, tokensPerMinute: 200 })]);
    const left = [];
    let r;
    for (let i = 0; i < 6; i++) {
      r = await postMessages(sim.url, xkey('tpm'));
      if (r.status !== 200) break;
      left.push(Number(hdr(r.headers, 'anthropic-ratelimit-tokens-remaining')));
    }
    assert.equal(r.status, 429, `tokens remaining went ${left}`);
    assert.equal(r.json.error.type, 'rate_limit_error');
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    for (let i = 1; i < left.length; i++) assert.ok(left[i] < left[i - 1], `${left}`);
    await sim.advance(60000);
    assert.equal((await postMessages(sim.url, xkey('tpm'))).status, 200);
  });
});
