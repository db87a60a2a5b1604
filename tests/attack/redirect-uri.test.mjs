// Redirect URI tricks (RFC 6749 §3.1.2.2, §10.6; OAuth 2.1 §2.3.1 and
// §7.5.1 exact matching; RFC 8252 §7.3 and §8.3 loopback; RFC 9700
// §4.1): at registration and at /authorize. Every refusal at /authorize
// is a page, never a redirect to the attacker's URI, and leaves the
// store as it was: no code, no grant, no pending sign-in.
import { before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { authorizationParams, pkce, randomState, register, registerClient } from '../e2e/oauth-helpers.mjs';
import {
  BASE, assertAuthorizeErrorPage, assertOAuthError, assertPage, assertUnchanged, attack, request, snapshot,
} from './support/attack.mjs';

const REGISTERED = 'https://app.example.com/cb';
const LOOPBACK = 'http://127.0.0.1/cb';
let client;

before(async () => {
  client = await registerClient({ client_name: 'attack: redirect uris', redirect_uris: [REGISTERED, LOOPBACK] });
});

/** /authorize for `client` with `redirect_uri` = `uri`, signed in through the test identity hook. */
function authorizeWith(uri, { rawQuery } = {}) {
  const { challenge } = pkce();
  const params = new URLSearchParams(authorizationParams(client, { redirectUri: uri, challenge, state: randomState() }));
  return request(`${BASE}/authorize?${rawQuery ?? params}`, { headers: { 'x-test-identity': 'tester@example.com' } });
}

describe('redirect_uri at /authorize: anything but an exact registered match is a page, never a redirect', () => {
  const tricks = [
    ['RU-01', 'another host', 'https://evil.example/cb'],
    ['RU-02', 'the registered URI as a prefix (longer path)', `${REGISTERED}/extra`],
    ['RU-03', 'a prefix of the registered URI (shorter path)', 'https://app.example.com/c'],
    ['RU-04', 'an added query', `${REGISTERED}?next=https://evil.example`],
    ['RU-05', 'an added fragment', `${REGISTERED}#https://evil.example`],
    ['RU-06', 'userinfo naming the registered host before an evil host', 'https://app.example.com@evil.example/cb'],
    ['RU-07', 'userinfo added to the registered host', 'https://evil.example@app.example.com/cb'],
    ['RU-08', 'a percent-encoded path', 'https://app.example.com/%63b'],
    ['RU-09', 'scheme downgraded to http', 'http://app.example.com/cb'],
    ['RU-10', 'the registered host as a subdomain of an evil one', 'https://app.example.com.evil.example/cb'],
    ['RU-11', 'a trailing dot on the host', 'https://app.example.com./cb'],
    ['RU-12', 'another port', 'https://app.example.com:8443/cb'],
    ['RU-13', 'a backslash before an evil host', 'https://app.example.com\\@evil.example/cb'],
    ['RU-14', 'a path traversal', 'https://app.example.com/cb/../evil'],
    ['RU-15', 'another loopback address than the registered one', 'http://127.0.0.2/cb'],
    ['RU-16', 'a loopback path that differs', 'http://127.0.0.1/cb2'],
    ['RU-17', 'a loopback-looking DNS name', 'http://127.0.0.1.evil.example/cb'],
    ['RU-18', 'https instead of the registered loopback http', 'https://127.0.0.1/cb'],
    ['RU-19', 'a javascript: URI', 'javascript:alert(document.domain)//'],
    ['RU-20', 'a relative URI', '/cb'],
  ];
  for (const [id, name, uri] of tricks) {
    attack(id, `${name} → 400 unregistered_redirect_uri`, async () => {
      const snap = await snapshot();
      const r = await authorizeWith(uri);
      assertPage(r, 400, 'unregistered_redirect_uri', name);
      await assertUnchanged(snap, name);
    });
  }

  attack('RU-21', 'redirect_uri twice (registered, then evil) → 400 duplicate_parameter', async () => {
    const { challenge } = pkce();
    const params = new URLSearchParams(authorizationParams(client, { redirectUri: REGISTERED, challenge, state: 's' }));
    params.append('redirect_uri', 'https://evil.example/cb');
    const snap = await snapshot();
    assertPage(await authorizeWith(null, { rawQuery: params }), 400, 'duplicate_parameter');
    await assertUnchanged(snap);
  });

  attack('RU-22', 'no redirect_uri while two are registered → 400 missing_redirect_uri', async () => {
    const { challenge } = pkce();
    const params = new URLSearchParams(authorizationParams(client, { challenge, state: 's' }));
    params.delete('redirect_uri');
    const snap = await snapshot();
    assertPage(await authorizeWith(null, { rawQuery: params }), 400, 'missing_redirect_uri');
    await assertUnchanged(snap);
  });

  attack('RU-23', 'an unknown client_id → 400 unknown_client, nothing redirected', async () => {
    const params = new URLSearchParams(authorizationParams({ client_id: 'pmcp_client_doesnotexist', redirect_uris: [REGISTERED] }, { challenge: pkce().challenge, state: 's' }));
    const snap = await snapshot();
    assertPage(await authorizeWith(null, { rawQuery: params }), 400, 'unknown_client');
    await assertUnchanged(snap);
  });
});

describe('redirect_uris at registration (RFC 7591 §2, §3.2.2): refused URIs create no client', () => {
  const refused = [
    ['RU-24', 'plain http to a non-loopback host', 'http://evil.example/cb'],
    ['RU-25', 'a fragment', 'https://app.example.com/cb#frag'],
    ['RU-26', 'a javascript: URI', 'javascript:alert(1)'],
    ['RU-27', 'a data: URI', 'data:text/html,<script>alert(1)</script>'],
    ['RU-28', 'a relative reference', '/cb'],
    ['RU-29', 'userinfo', 'https://user:pass@app.example.com/cb'],
  ];
  for (const [id, name, uri] of refused) {
    attack(id, `${name} → 400 invalid_redirect_uri`, async () => {
      const snap = await snapshot();
      const r = await register({ client_name: 'attack', redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      assertOAuthError(r, 400, 'invalid_redirect_uri', name);
      assert.equal(r.json.client_id, undefined);
      await assertUnchanged(snap, name);
    });
  }
});

// Issue 10, "Open redirector" (RFC 9700 §4.11.2): anyone can register a
// redirect URI, so an error after the URI matched must not send the
// browser there by itself before anyone signed in.
describe('open redirector: an error for a verified client is a page with a link, not a redirect', () => {
  attack('RU-30', 'an attacker registers its own landing URI; a PKCE error → 400 page naming the application and host, one plain link with error, state and iss', async () => {
    const landing = 'https://landing.evil.example/cb';
    const name = 'Totally <b>Legit</b> App';
    const own = await registerClient({ client_name: name, redirect_uris: [landing] });
    const state = randomState();
    const params = { ...authorizationParams(own, { challenge: pkce().challenge, state }), code_challenge_method: 'plain' };
    const snap = await snapshot();
    const r = await request(`${BASE}/authorize?${new URLSearchParams(params)}`, { headers: { 'x-test-identity': 'tester@example.com' } });
    const link = assertAuthorizeErrorPage(r, { redirectUri: landing, error: 'invalid_request', state, clientName: name });
    assert.ok(!r.text.includes('<b>Legit</b>'), 'the name is text, not markup');
    assert.equal(link.host, 'landing.evil.example');
    await assertUnchanged(snap);
  });
});

// Issue 10, "Registration": a redirect URI's host is a DNS name or an IP
// literal; no control characters or whitespace anywhere in the raw
// string (RFC 3986 §2: they are not URI characters; RFC 9110 §5.5: CR/LF
// in a Location would split the header).
describe('redirect_uris at registration (issue 10): wildcards, control characters, whitespace', () => {
  const refused = [
    ['RU-33', 'a wildcard host (https://*.example.com/cb)', ['https://*.example.com/cb'], /DNS host name or an IP literal/],
    ['RU-34', 'CR/LF and a header (\\r\\nSet-Cookie: x=1)', ['https://app.example.com/cb\r\nSet-Cookie: x=1'], /control characters or whitespace/],
    ['RU-35', 'a space, a tab, a leading space, a NUL', ['https://app.example.com/c b', 'https://app.example.com/c\tb', ' https://app.example.com/cb', 'https://app.example.com/cb\u0000'], /control characters or whitespace/],
  ];
  for (const [id, name, uris, message] of refused) {
    attack(id, `${name} → 400 invalid_redirect_uri, no client`, async () => {
      const snap = await snapshot();
      for (const uri of uris) {
        const r = await register({ client_name: 'attack', redirect_uris: ['https://app.example.com/ok', uri], token_endpoint_auth_method: 'none' });
        assertOAuthError(r, 400, 'invalid_redirect_uri', JSON.stringify(uri));
        assert.match(r.json.error_description, message, JSON.stringify(uri));
        assert.equal(r.json.client_id, undefined);
        assert.equal(r.res.headers.get('set-cookie'), null, 'no header split');
      }
      await assertUnchanged(snap);
    });
  }

  attack('RU-36', 'client_name with U+202E (right-to-left override) → 400 invalid_client_metadata, no client', async () => {
    const snap = await snapshot();
    for (const name of ['Claude\u202Etxt.exe', '\u2067evil\u2069', 'a\u200Fb']) {
      const r = await register({ client_name: name, redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' });
      assertOAuthError(r, 400, 'invalid_client_metadata', JSON.stringify(name));
      assert.match(r.json.error_description, /bidirectional/, JSON.stringify(name));
    }
    await assertUnchanged(snap);
  });
});

// RFC 8252 §7.3: a loopback redirect URI matches on any port, the host
// compared exactly; `localhost` is a registrable loopback host (Claude
// Code, Claude Desktop and MCP Inspector register http://localhost/…).
describe('loopback localhost (issue 10; RFC 8252 §7.3)', () => {
  attack('RU-38', 'http://localhost/cb registered: any port accepted; localhost.evil.example, 127.0.0.1 and another path refused (400 unregistered_redirect_uri)', async () => {
    const loop = await registerClient({ client_name: 'attack: localhost', redirect_uris: ['http://localhost/cb'] });
    const go = (redirectUri) => request(`${BASE}/authorize?${new URLSearchParams(authorizationParams(loop, { redirectUri, challenge: pkce().challenge, state: 's' }))}`, { headers: { 'x-test-identity': 'tester@example.com' } });
    for (const port of [51234, 1]) {
      const ok = await go(`http://localhost:${port}/cb`);
      assert.equal(ok.status, 302, ok.text);
      const back = new URL(ok.location);
      assert.equal(`${back.origin}${back.pathname}`, `http://localhost:${port}/cb`, 'the code goes to the port asked for');
      assert.ok(back.searchParams.get('code'), 'a code');
    }
    const snap = await snapshot();
    for (const uri of ['http://localhost.evil.example:51234/cb', 'http://localhost.evil.example/cb', 'http://127.0.0.1:51234/cb', 'http://[::1]:51234/cb', 'http://localhost:51234/cb/x', 'https://localhost:51234/cb']) {
      assertPage(await go(uri), 400, 'unregistered_redirect_uri', uri);
    }
    await assertUnchanged(snap);
  });
});
