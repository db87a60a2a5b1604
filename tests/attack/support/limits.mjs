// The rate-limit tiers as the attack cases see them: each tier's limit
// and period read from wrangler.toml (the production settings the suite
// runs with), and the way a case trips one.
//
// The binding counts in fixed windows aligned to the clock
// (floor(now / period)); a run whose requests all fell in one window
// asserts the exact count the limit allows, and one that straddled a
// boundary (its count started over once) asserts only that the limit was
// not cut short and that a 429 came within twice the limit.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../../devstack/stack.mjs';

/** Each tier's limit and period, from wrangler.toml. */
export const LIMITS = Object.fromEntries([...readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8')
  .matchAll(/name = "(LIMIT_\w+)"[\s\S]*?simple = \{ limit = (\d+), period = (\d+) \}/g)]
  .map((m) => [m[1], { limit: Number(m[2]), period: Number(m[3]) }]));
assert.deepEqual(Object.keys(LIMITS).sort(), ['LIMIT_FAILURES', 'LIMIT_KEY_FORM', 'LIMIT_MCP_ADDRESS', 'LIMIT_MCP_CREDENTIAL', 'LIMIT_REFRESHES', 'LIMIT_REGISTRATIONS']);

export const windowOf = (binding) => Math.floor(Date.now() / (LIMITS[binding].period * 1000));

/**
 * Sends `attempt(i)` until an answer is 429, at most 2 × limit + 1 times;
 * `spent` requests were already counted under the same key in the same
 * window. Returns the 429 and how many requests went before it.
 */
export async function untilLimited(binding, attempt, { spent = 0 } = {}) {
  const { limit } = LIMITS[binding];
  const window = windowOf(binding);
  for (let i = 0; i <= 2 * limit; i++) {
    const r = await attempt(i);
    if (r.status !== 429) continue;
    if (windowOf(binding) === window) {
      assert.equal(i, limit - spent, `${binding}: limited after ${i} requests; the limit allows ${limit - spent} more`);
    } else {
      assert.ok(i >= limit - spent, `${binding}: limited after ${i} requests, before its limit (the window turned over)`);
    }
    return { r, before: i, sameWindow: windowOf(binding) === window };
  }
  return assert.fail(`${binding}: no 429 in ${2 * limit + 1} requests`);
}

/** 429 in OAuth JSON form (RFC 6749 §5.2 shape, `temporarily_unavailable`). */
export function assertOAuthLimited(r, binding, label = '') {
  assert.equal(r.status, 429, `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.headers.get('retry-after'), String(LIMITS[binding].period), label);
  assert.equal(r.json?.error, 'temporarily_unavailable', label);
  assert.equal(r.json.access_token, undefined, label);
  assert.equal(r.json.client_id, undefined, label);
}

