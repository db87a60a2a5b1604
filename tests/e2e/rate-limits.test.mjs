// The abuse limits (issue 10) against the running worker, with the
// production limits from wrangler.toml. One named test trips each tier.
// Tripping a per-address tier blocks 127.0.0.1 for the rest of its
// period, so this file runs a stack of its own, and orders its tests so
// no tier it trips is one a later test needs. No request sets
// CF-Connecting-IP: Miniflare sets it to the socket's address.
//
// The binding counts in fixed windows aligned to the clock, so a run that
// straddles a window boundary sees its count start over once. Each test
// therefore sends up to twice the limit plus one and asserts that the
// first `limit` were allowed and that a 429 came before the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, startStack } from '../../devstack/stack.mjs';
import { authorizeCode, redeemForm, refreshRequest, tokenRequest } from './oauth-helpers.mjs';
import { pageErrorCode } from './support/http.mjs';

/** Each tier's limit and period, read from wrangler.toml. */
function limits() {
  const toml = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8');
  const out = {};
  for (const m of toml.matchAll(/name = "(LIMIT_\w+)"[\s\S]*?simple = \{ limit = (\d+), period = (\d+) \}/g)) {
    out[m[1]] = { limit: Number(m[2]), period: Number(m[3]) };
  }
  return out;
}
const LIMITS = limits();

let stack;
let base;
let workDir;

before(async () => {
  workDir = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-limits-'));
  stack = await startStack({ persistTo: workDir, vars: { TEST_IDENTITY_HOOK: 'enabled' } });
  base = stack.workerUrl;
});

after(async () => {
  await stack?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/**
 * Sends `send(i)` until an answer is 429, at most 2 × limit + 1 times
 * (`spent` more may have been counted by earlier tests under that key);
 * returns the 429 and how many went before it.
 */
async function untilLimited(binding, send, { spent = 0 } = {}) {
  const { limit } = LIMITS[binding];
  for (let i = 0; i <= 2 * limit; i++) {
    const r = await send(i);
    if (r.status === 429) {
      // `spent`: requests earlier tests counted under the same key.
      assert.ok(i >= limit - spent, `${binding}: limited after ${i} requests, before its limit of ${limit}`);
      return { r, before: i };
    }
  }
  assert.fail(`${binding}: no 429 in ${2 * limit + 1} requests`);
}

async function answer(res) {
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a page */ }
  return { status: res.status, headers: res.headers, text, json };
}

const post = (p, body, headers = {}) => fetch(`${base}${p}`, { method: 'POST', headers, body }).then(answer);
const form = { 'content-type': 'application/x-www-form-urlencoded' };

function assertOAuthLimited(r, binding) {
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), String(LIMITS[binding].period));
  assert.equal(r.json.error, 'temporarily_unavailable');
}

function assertRpcLimited(r, binding) {
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), String(LIMITS[binding].period));
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, null);
  assert.equal(r.json.error.code, -32600);
  assert.equal(r.json.error.data.retryAfter, LIMITS[binding].period);
}

const register = () => post('/register', JSON.stringify({
  redirect_uris: ['http://127.0.0.1:8977/callback'], token_endpoint_auth_method: 'none',
}), { 'content-type': 'application/json' });

describe('rate limits at production settings', () => {
  test('LIMIT_REFRESHES: one grant refreshing past its limit gets 429 temporarily_unavailable', async () => {
    const reg = await register();
    assert.equal(reg.status, 201);
    const client = reg.json;
    const issued = await authorizeCode(client, { base });
    const tokens = await tokenRequest(redeemForm(client, issued, base), { base });
    assert.equal(tokens.status, 200, tokens.text);
    let refresh = tokens.json.refresh_token;
    const { r } = await untilLimited('LIMIT_REFRESHES', async () => {
      const got = await refreshRequest(client, refresh, { base });
      if (got.status === 200) refresh = got.json.refresh_token;
      else assert.equal(got.status, 429, got.text);
      return { status: got.status, headers: got.res.headers, json: got.json };
    });
    assertOAuthLimited(r, 'LIMIT_REFRESHES');
  });

  test('LIMIT_REGISTRATIONS: registrations from one address past the limit get 429', async () => {
    const { r } = await untilLimited('LIMIT_REGISTRATIONS', async () => {
      const got = await register();
      assert.ok([201, 429].includes(got.status), got.text);
      return got;
    }, { spent: 1 });
    assertOAuthLimited(r, 'LIMIT_REGISTRATIONS');
  });

  test('LIMIT_FAILURES: failed token requests past the limit get 429, then every counted route refuses up front', async () => {
    const bad = 'grant_type=authorization_code&code=pmcp_ac_nope&client_id=pmcp_client_nope&redirect_uri=http%3A%2F%2F127.0.0.1%3A8977%2Fcallback&code_verifier=' + 'v'.repeat(43);
    const { r } = await untilLimited('LIMIT_FAILURES', async () => {
      const got = await post('/token', bad, form);
      assert.ok([400, 401, 429].includes(got.status), got.text);
      return got;
    });
    assertOAuthLimited(r, 'LIMIT_FAILURES');
    const revoke = await post('/revoke', 'token=pmcp_rt_nope&client_id=pmcp_client_nope', form);
    assertOAuthLimited(revoke, 'LIMIT_FAILURES');
    const consent = await post('/consent', 'ticket=x&csrf=y&decision=approve', form);
    assert.equal(consent.status, 429);
    assert.equal(consent.headers.get('retry-after'), String(LIMITS.LIMIT_FAILURES.period));
    assert.equal(pageErrorCode(consent.text), 'temporarily_unavailable');
  });

  let mcpPings = 0;
  const ping = (key, p = '/mcp') => (p === '/mcp' ? mcpPings++ : 0, post(p, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${key}`,
  }));

  test('LIMIT_MCP_CREDENTIAL: one Plausible key past its limit on /mcp gets a JSON-RPC 429; another key does not', async () => {
    const { r } = await untilLimited('LIMIT_MCP_CREDENTIAL', () => ping('plausible-limits-key-1'));
    assertRpcLimited(r, 'LIMIT_MCP_CREDENTIAL');
    assert.equal((await ping('plausible-limits-key-2')).status, 200);
  });

  test('LIMIT_MCP_CREDENTIAL: one bearer past its limit on /internal gets a JSON-RPC 429', async () => {
    // A token of a shape we mint (the legacy 43 characters), unknown to
    // storage: one of no such shape is refused before any limiter is
    // counted (answer_before_body), so it could never reach this tier.
    const { r } = await untilLimited('LIMIT_MCP_CREDENTIAL', () => ping(`pmcp_at_${'L'.repeat(43)}`, '/internal'));
    assertRpcLimited(r, 'LIMIT_MCP_CREDENTIAL');
  });

  test('LIMIT_MCP_ADDRESS: one address past its limit on /mcp gets a JSON-RPC 429, whatever the key', async () => {
    const spent = mcpPings;
    const { r } = await untilLimited('LIMIT_MCP_ADDRESS', (i) => ping(`plausible-limits-address-${i}`), { spent });
    assertRpcLimited(r, 'LIMIT_MCP_ADDRESS');
  });
});
