// Assertions shared by the e2e suites: the exact shapes the sim interface documents.
import assert from 'node:assert/strict';

export const REQUEST_ID = /^req_sim_\d+$/;

/** Header lookup that works for fetch Headers and for rawRequest's plain object. */
export function hdr(headers, name) {
  if (typeof headers.get === 'function') return headers.get(name);
  return headers[name.toLowerCase()] ?? null;
}

export function assertRequestId(headers) {
  const id = hdr(headers, 'request-id');
  assert.match(id ?? '', REQUEST_ID, `request-id header: ${id}`);
  return id;
}

/** An error answer: exact status, JSON error body {type:"error",error:{type,message}}, request-id. */
export function assertApiError(r, status, type, message) {
  assert.equal(r.status, status, `status (body: ${r.text ?? r.body})`);
  assert.match(hdr(r.headers, 'content-type') ?? '', /application\/json/);
  assertRequestId(r.headers);
  const body = r.json ?? JSON.parse(r.body);
  assert.deepEqual(body, { type: 'error', error: { type, message } });
}

export const UNIFIED_HEADERS = [
  'anthropic-ratelimit-unified-status',
  'anthropic-ratelimit-unified-5h-utilization',
  'anthropic-ratelimit-unified-5h-status',
  'anthropic-ratelimit-unified-7d-utilization',
  'anthropic-ratelimit-unified-7d-status',
  'anthropic-ratelimit-unified-representative-claim',
  'anthropic-ratelimit-unified-fallback-percentage',
];

/** Classifies a utilization the way the interface does: allowed < 0.8 ≤ allowed_warning < 1.0 ≤ rejected. */
export function classify(u) {
  if (u >= 1) return 'rejected';
  if (u >= 0.8) return 'allowed_warning';
  return 'allowed';
}

/** Parses and checks the unified headers of an oauth account's answer; returns the numbers. */
export function unified(headers) {
  for (const h of UNIFIED_HEADERS) assert.notEqual(hdr(headers, h), null, `missing ${h}`);
  const num = (h) => {
    const v = hdr(headers, h);
    assert.match(v, /^\d+(\.\d{1,4})?$/, `${h}: ${v} (a decimal with up to 4 digits)`);
    return Number(v);
  };
  const intOrNull = (h) => {
    const v = hdr(headers, h);
    if (v === null) return null;
    assert.match(v, /^\d+$/, `${h}: ${v} (unix seconds)`);
    return Number(v);
  };
  const u = {
    status: hdr(headers, 'anthropic-ratelimit-unified-status'),
    u5h: num('anthropic-ratelimit-unified-5h-utilization'),
    u7d: num('anthropic-ratelimit-unified-7d-utilization'),
    s5h: hdr(headers, 'anthropic-ratelimit-unified-5h-status'),
    s7d: hdr(headers, 'anthropic-ratelimit-unified-7d-status'),
    reset5h: intOrNull('anthropic-ratelimit-unified-5h-reset'),
    reset7d: intOrNull('anthropic-ratelimit-unified-7d-reset'),
    reset: intOrNull('anthropic-ratelimit-unified-reset'),
    claim: hdr(headers, 'anthropic-ratelimit-unified-representative-claim'),
    fallback: hdr(headers, 'anthropic-ratelimit-unified-fallback-percentage'),
  };
  assert.equal(u.fallback, '0.5');
  assert.ok(['allowed', 'allowed_warning', 'rejected'].includes(u.status), `unified-status ${u.status}`);
  assert.equal(u.status, classify(Math.max(u.u5h, u.u7d)), `unified-status vs utilizations ${JSON.stringify(u)}`);
  assert.equal(u.s5h, classify(u.u5h), '5h-status');
  assert.equal(u.s7d, classify(u.u7d), '7d-status');
  assert.ok(['five_hour', 'seven_day'].includes(u.claim), `representative-claim ${u.claim}`);
  if (u.u5h > u.u7d) assert.equal(u.claim, 'five_hour', 'the fuller window is claimed');
  if (u.u7d > u.u5h) assert.equal(u.claim, 'seven_day', 'the fuller window is claimed');
  assert.equal(u.reset, u.claim === 'five_hour' ? u.reset5h : u.reset7d, 'unified-reset is the claimed window\'s reset');
  return u;
}

export function assertNoUnified(headers) {
  for (const h of UNIFIED_HEADERS) assert.equal(hdr(headers, h), null, `unexpected ${h}`);
}

/** The expected event names of a plain (no thinking) stream with n text deltas. */
export function plainStreamEvents(n) {
  return [
    'message_start',
    'content_block_start',
    'ping',
    ...Array(n).fill('content_block_delta'),
    'content_block_stop',
    'message_delta',
    'message_stop',
  ];
}

export const nowSec = () => Math.floor(Date.now() / 1000);
