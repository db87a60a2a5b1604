// Issue 10, "Protocol edges" and client metadata documents: each case
// names the rule it defends (RFC section or the finding) and
// checks the running worker's answer, plus that nothing was granted.
// The /authorize page-instead-of-redirect cases live in
// oauth-endpoints.test.mjs (request errors) and login-negative.test.mjs
// (refused sign-ins).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import {
  BASE, assertTokenError, assertTokenRejected, assertTokenWorks, assertTokens, authorizationParams, authorizeCode,
  authorizeRaw, pkce, randomState, redeemForm, refreshRequest, register, registerClient, send, tokenRequest,
} from './oauth-helpers.mjs';
import { pageErrorCode } from './support/http.mjs';

/** GET `path` on the worker with a chosen Host header (fetch may not set Host). */
function withHost(path, host) {
  const u = new URL(BASE);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'GET', headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Host allowlist on every route (issue 10: a foreign Host was reflected into the issuer)', () => {
  const paths = [
    '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource/internal',
    '/authorize?client_id=x', '/register', '/token', '/revoke', '/callback', '/consent', '/health', '/robots.txt', '/nowhere',
  ];
  for (const path of paths) {
    test(`${path} on Host evil.example → 403, nothing reflected`, async () => {
      const r = await withHost(path, 'evil.example');
      assert.equal(r.status, 403, r.body);
      assert.ok(!r.body.includes('evil.example'), r.body);
    });
  }

  test('MCP endpoints keep their JSON-RPC 403 on a foreign Host', async () => {
    for (const path of ['/mcp', '/internal']) {
      const r = await withHost(path, 'evil.example');
      assert.equal(r.status, 403, path);
      assert.equal(JSON.parse(r.body).error.code, -32600, path);
    }
  });

  test('the allowed hosts still answer, with the issuer of the host asked', async () => {
    const port = new URL(BASE).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const r = await withHost('/.well-known/oauth-authorization-server', host);
      assert.equal(r.status, 200, host);
      assert.equal(JSON.parse(r.body).issuer, `http://${host}`);
    }
  });
});

describe('crawlers (issue 10: X-Robots-Tag and robots.txt)', () => {
  test('/robots.txt disallows every path', async () => {
    const r = await send(`${BASE}/robots.txt`);
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('content-type'), /^text\/plain/);
    assert.equal(r.text, 'User-agent: *\nDisallow: /\n');
  });

  test('OAuth, MCP and page responses carry X-Robots-Tag: noindex', async () => {
    const answers = [
      await send(`${BASE}/.well-known/oauth-authorization-server`),
      await send(`${BASE}/authorize`),
      await send(`${BASE}/token`, { method: 'POST' }),
      await send(`${BASE}/register`, { method: 'POST' }),
      await send(`${BASE}/mcp`, { method: 'POST' }),
      await send(`${BASE}/internal`, { method: 'POST' }),
    ];
    for (const r of answers) assert.match(r.res.headers.get('x-robots-tag') ?? '', /noindex/, r.res.url);
  });
});

describe('registration (issue 10; RFC 7591 §3.2.2 error codes)', () => {
  const cases = [
    ['a * wildcard host', { redirect_uris: ['https://*.example.com/cb'] }, 'invalid_redirect_uri', /DNS host name or an IP literal/],
    ['a lone * host', { redirect_uris: ['https://*/cb'] }, 'invalid_redirect_uri', /DNS host name or an IP literal/],
    ['an underscore in the host', { redirect_uris: ['https://a_b.example/cb'] }, 'invalid_redirect_uri', /DNS host name/],
    ['CR/LF and a header in the URI', { redirect_uris: ['https://app.example/cb\r\nSet-Cookie: a=b'] }, 'invalid_redirect_uri', /control characters or whitespace/],
    ['a tab inside the URI', { redirect_uris: ['https://app.example/c\tb'] }, 'invalid_redirect_uri', /control characters or whitespace/],
    ['a space around the URI', { redirect_uris: [' https://app.example/cb'] }, 'invalid_redirect_uri', /control characters or whitespace/],
    ['http on 127.0.0.2 (only 127.0.0.1, [::1], localhost; RFC 8252 §7.3)', { redirect_uris: ['http://127.0.0.2/cb'] }, 'invalid_redirect_uri', /127\.0\.0\.1, \[::1\] or localhost/],
    ['a non-ASCII host (its own message, not "not an absolute URL")', { redirect_uris: ['https://münchen.example/cb'] }, 'invalid_redirect_uri', /Punycode/],
    ['a bidi override in client_name', { redirect_uris: ['https://app.example/cb'], client_name: 'Claude\u202Etxt.exe' }, 'invalid_client_metadata', /bidirectional/],
    ['a zero-width space in client_name', { redirect_uris: ['https://app.example/cb'], client_name: 'Cla\u200Bude' }, 'invalid_client_metadata', /zero-width/],
    ['a bidi isolate in client_name', { redirect_uris: ['https://app.example/cb'], client_name: '\u2067evil\u2069' }, 'invalid_client_metadata', /bidirectional/],
  ];
  for (const [name, meta, error, message] of cases) {
    test(`${name} → 400 ${error}`, async () => {
      const r = await register(meta);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error, error);
      assert.match(r.json.error_description, message);
      assert.equal(r.json.client_id, undefined, 'no client registered');
      assert.equal(r.res.headers.get('set-cookie'), null);
    });
  }

  test('the loopback literals and localhost are accepted, and punycode hosts too', async () => {
    const c = await registerClient({ redirect_uris: ['http://127.0.0.1/cb', 'http://[::1]/cb', 'http://localhost/cb', 'https://xn--mnchen-3ya.example/cb'] });
    assert.equal(c.redirect_uris.length, 4);
  });

  test('a registered localhost redirect takes any port but not another loopback host (RFC 8252 §7.3: host exact, port ignored)', async () => {
    const c = await registerClient({ redirect_uris: ['http://localhost/cb'], token_endpoint_auth_method: 'none' });
    const ok = await authorizeRaw(authorizationParams(c, { redirectUri: 'http://localhost:51234/cb', challenge: pkce().challenge, state: 's' }));
    assert.equal(ok.status, 302, ok.text);
    const other = await authorizeRaw(authorizationParams(c, { redirectUri: 'http://127.0.0.1:51234/cb', challenge: pkce().challenge, state: 's' }));
    assert.equal(other.status, 400);
    assert.equal(pageErrorCode(other.text), 'unregistered_redirect_uri');
  });
});

describe('code replay (issue 10; RFC 6749 §4.1.2, RFC 9700 §4.5.3.1)', () => {
  test('a replay without the PKCE verifier is refused and leaves the grant alone; with it, the grant is revoked', async () => {
    const client = await registerClient({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    const grant = await authorizeCode(client);
    const first = assertTokens(await tokenRequest(redeemForm(client, grant)));
    // A stranger holding the used code (logs, history) but not the verifier.
    const stranger = await tokenRequest(redeemForm(client, { ...grant, verifier: pkce().verifier }));
    assertTokenError(stranger, 400, 'invalid_grant', 'replay without the verifier');
    await assertTokenWorks(first.access_token, { label: 'owner after the stranger' });
    const refreshed = assertTokens(await refreshRequest(client, first.refresh_token));
    // The holder of the verifier replaying: the code leaked from them, so the grant ends.
    const owner = await tokenRequest(redeemForm(client, grant));
    assertTokenError(owner, 400, 'invalid_grant', 'replay with the verifier');
    await assertTokenRejected(refreshed.access_token, { label: 'after the verified replay' });
    assertTokenError(await refreshRequest(client, refreshed.refresh_token), 400, 'invalid_grant', 'refresh after revocation');
  });
});

describe('client metadata document URLs (issue 10)', () => {
  const attempt = (clientId) => authorizeRaw(
    authorizationParams({ client_id: clientId, redirect_uris: ['https://app.example/cb'] }, { challenge: pkce().challenge, state: randomState() }),
  );

  test('a client_id on this server itself → 400 page, nothing fetched from ourselves', async () => {
    const r = await attempt(`${BASE}/.well-known/oauth-authorization-server`);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.res.headers.get('location'), null);
    assert.equal(pageErrorCode(r.text), 'invalid_client_metadata');
    assert.match(r.text, /names this server itself/);
  });

  test('a percent-encoded non-ASCII host → a specific message, not "not an absolute URL"', async () => {
    const r = await attempt('https://m%C3%BCnchen.example/client.json');
    assert.equal(r.status, 400, r.text);
    assert.equal(pageErrorCode(r.text), 'invalid_client_metadata');
    assert.match(r.text, /Punycode/);
    assert.ok(!/not an absolute URL/.test(r.text));
  });
});
