// The foundation: the real worker answers in workerd with its version and
// the baseline security headers on every response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const BASE = process.env.WORKER_URL;
const cargoVersion = readFileSync(new URL('../../Cargo.toml', import.meta.url), 'utf8')
  .match(/^version = "([^"]+)"/m)[1];

function assertSecurityHeaders(res) {
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  assert.ok(res.headers.get('referrer-policy'));
}

test('GET /health reports status, version and commit', async () => {
  const res = await fetch(`${BASE}/health`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assertSecurityHeaders(res);
  const body = await res.json();
  assert.equal(body.status, 'ok');
  assert.equal(body.name, 'plausible-mcp');
  assert.equal(body.version, cargoVersion);
  assert.match(body.commit, /^([0-9a-f]{7,}(-dirty)?|unknown)$/);
});

test('unknown paths get a JSON 404 with the security headers', async () => {
  // `/` is the landing page (tests/e2e/connections.test.mjs).
  for (const p of ['/nope', '/healthz', '/mcpx', '/connectionsx']) {
    const res = await fetch(`${BASE}${p}`);
    assert.equal(res.status, 404, p);
    assertSecurityHeaders(res);
    assert.equal((await res.json()).error, 'not_found');
  }
});

test('POST /health is 405 with Allow', async () => {
  const res = await fetch(`${BASE}/health`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET, HEAD');
  assertSecurityHeaders(res);
});
