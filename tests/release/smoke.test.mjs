// Smoke test of the release build (build/, what `wrangler deploy` ships):
// it serves, and it has none of the test build's hooks. The end-to-end
// suite runs the test build (build-test/, cargo feature `test-hooks`);
// this file is the check that the shipped build works too and that the
// X-Test-Identity hook, the X-Test-Clock-Offset clock hook, the storage
// knobs (latency, failing KV deletes) and the listings probe are not in
// it.
//
// Run by scripts/test.sh after both builds: node --test tests/release/smoke.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, startStack } from '../../devstack/stack.mjs';

/** Names only the test build may contain. */
const HOOK_STRINGS = [
  'x-test-identity', 'TEST_IDENTITY_HOOK', 'TEST_STORAGE_LATENCY_MS', 'TEST_GRANT_LAYOUT', '/__test/listings', '/__test/kat',
  'x-test-clock-offset', 'TEST_KV_FAIL_DELETES',
];

let stack;
let persistTo;
let base;

before(async () => {
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-release-smoke-'));
  // The hook and the knobs configured as the tests configure them: the
  // release build must ignore all of them.
  stack = await startStack({
    persistTo,
    bundle: 'build',
    vars: {
      TEST_IDENTITY_HOOK: 'enabled', TEST_STORAGE_LATENCY_MS: '20', TEST_GRANT_LAYOUT: 'per-client', TEST_KV_FAIL_DELETES: 'at: 5',
    },
  });
  base = stack.workerUrl;
});

after(async () => {
  await stack?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const wasmOf = (dir) => readFileSync(path.join(ROOT, dir, 'index_bg.wasm'));

test('the release wasm carries none of the test hooks; the test wasm does (control)', () => {
  const release = wasmOf('build');
  const testBuild = wasmOf('build-test');
  for (const s of HOOK_STRINGS) {
    assert.equal(release.includes(Buffer.from(s)), false, `release build contains "${s}"`);
    assert.equal(testBuild.includes(Buffer.from(s)), true, `test build lacks "${s}"`);
  }
});

test('GET /health', async () => {
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.equal(body.name, 'plausible-mcp');
});

test('/mcp answers a tool call from the Plausible stand-in', async () => {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: 'Bearer plausible-test-key',
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } },
    }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.error, undefined, JSON.stringify(body.error));
  assert.equal(body.result.isError, false, JSON.stringify(body.result));
  assert.equal(body.result.structuredContent.results.length, 7);
});

test('discovery metadata (RFC 8414, RFC 9728)', async () => {
  const as = await fetch(`${base}/.well-known/oauth-authorization-server`).then((r) => r.json());
  assert.equal(as.issuer, base);
  assert.equal(as.token_endpoint, `${base}/token`);
  assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
  const prm = await fetch(`${base}/.well-known/oauth-protected-resource/internal`).then((r) => r.json());
  assert.equal(prm.resource, `${base}/internal`);
  assert.deepEqual(prm.authorization_servers, [base]);
});

test('/authorize reaches the upstream provider, and X-Test-Identity is ignored', async () => {
  const reg = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'release smoke', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' }),
  });
  assert.equal(reg.status, 201);
  const client = await reg.json();
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: 'http://127.0.0.1:9/cb',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    state: 'smoke',
    scope: 'mcp',
    resource: `${base}/internal`,
  });
  for (const headers of [{}, { 'x-test-identity': 'tester@example.com' }]) {
    const res = await fetch(`${base}/authorize?${query}`, { redirect: 'manual', headers });
    const label = Object.keys(headers).length ? 'with X-Test-Identity' : 'plain';
    assert.equal(res.status, 302, label);
    const location = new URL(res.headers.get('location'));
    assert.equal(location.origin, new URL(stack.idp.issuer).origin, `${label}: to the provider, never back with a code`);
    assert.equal(location.searchParams.get('code'), null, label);
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('__Host-pmcp_login_')), `${label}: the login cookie`);
  }
});

test('X-Test-Clock-Offset is ignored: a registration made with it ends 90 days from now', async () => {
  const before = Math.floor(Date.now() / 1000);
  const reg = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-test-clock-offset': String(100 * 86400) },
    body: JSON.stringify({ client_name: 'release clock', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'client_secret_post' }),
  });
  assert.equal(reg.status, 201);
  const { client_secret_expires_at: expires } = await reg.json();
  const after = Math.floor(Date.now() / 1000);
  // The test build would date it 100 days ahead: 190 days from now.
  assert.ok(expires >= before + 90 * 86400 && expires <= after + 90 * 86400, `expires ${expires}, now ${after}`);
});

test('/__test/listings is not served by the release build, even on loopback with the hook configured', async () => {
  for (const method of ['GET', 'POST']) {
    const res = await fetch(`${base}/__test/listings?email=tester@example.com`, { method });
    assert.equal(res.status, 404, method);
    assert.equal((await res.json()).error, 'not_found', method);
  }
});

test('/__test/kat (the WebCrypto known-answer vectors) is not served by the release build', async () => {
  const res = await fetch(`${base}/__test/kat?repeat=1`);
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error, 'not_found');
});
