// `maxpool server --log-to DIR` (§11.1, §13 scenario 46): one file per request outcome with
// the REQUEST / RESPONSE sections, credentials masked, the streamed body kept raw.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { baseScript, makeTempDir, messageBody, postMessages } from './lib/harness.mjs';
import { SKIP_PROXY, pool, waitFor } from './lib/pool.mjs';

const skip = SKIP_PROXY;
const LONG_KEY = 'sk-ant-api03-k1-0123456789-this-tail-is-secret';
const TEXT = 'Logged, masked and kept.';

describe('--log-to DIR', { skip }, () => {
  test('one file per request, sections in order, credentials masked', async (t) => {
    const dir = join(makeTempDir('maxpool-logto-'), 'nested', 'logs');
    const accounts = baseScript().accounts.map((a) => (a.name === 'key-1' ? { ...a, apiKey: LONG_KEY } : a));
    const { sim, server } = await pool(t, {
      only: ['max-a', 'key-1'],
      over: { accounts, response: { text: TEXT, deltas: 3 }, faults: [{ kind: 'rate_limit', retryAfter: 9, count: 1 }] },
      args: ['--log-to', dir],
    });
    // 1: 429 on the first account, served by the other; 2 and 3: stream and JSON.
    assert.equal((await postMessages(server.url, { 'x-api-key': 'client-secret-key-xyz' })).status, 200);
    assert.equal((await postMessages(server.url, {}, messageBody({ stream: true }))).status, 200);
    assert.equal((await postMessages(server.url, {}, messageBody())).status, 200);
    assert.equal((await sim.state()).requests, 4);
    const files = await waitFor(
      () => {
        let names = [];
        try {
          names = readdirSync(dir).sort();
        } catch {
          return null;
        }
        return names.length >= 3 ? names : null;
      },
      { what: 'three request logs' },
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(readdirSync(dir).length, 3, `one file per request outcome: ${readdirSync(dir)}`);
    for (const f of files) {
      assert.match(f, /^\d{8}_\d{6}\.\d{3}_\d{5}\.log$/);
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} mode`);
    }
    const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
    const all = texts.join('\n');
    assert.ok(!all.includes(LONG_KEY), 'the API key is masked');
    assert.ok(!all.includes('Bearer sk-ant-oat01-a'), 'the OAuth token is masked');
    assert.ok(!all.includes('client-secret-key-xyz'), "the client's key is not logged");
    for (const text of texts) {
      const order = ['=== REQUEST (account: ', '=== REQUEST BODY', '=== RESPONSE 200 ===', '=== RESPONSE BODY'].map((s) => text.indexOf(s));
      assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `sections in order:\n${text.slice(0, 600)}`);
      assert.match(text, new RegExp(`^=== REQUEST \\(account: (max-a|key-1), retry: \\d\\) ===\\nPOST ${sim.url}/v1/messages\\n`));
      const cred = /^ {2}(x-api-key|authorization): (.*)$/im.exec(text);
      assert.ok(cred, 'the credential header is shown');
      assert.match(cred[2], /\.\.\.$/, `masked: ${cred[2]}`);
    }
    assert.match(texts[0], /retry: 1\)/, 'the failed-over request is logged once, as its second attempt');
    assert.match(texts[1], /=== RESPONSE BODY \(streamed\) ===\nevent: message_start/);
    assert.match(texts[1], /event: message_stop/);
    assert.match(texts[2], new RegExp(TEXT));
  });
});
