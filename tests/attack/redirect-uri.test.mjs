// Redirect URI tricks (RFC 6749 §3.1.2.2, §10.6; OAuth 2.1 §2.3.1 and
// §7.5.1 exact matching; RFC 8252 §7.3 and §8.3 loopback; RFC 9700
// §4.1): at registration and at /authorize. Every refusal at /authorize
// is a page, never a redirect to the attacker's URI, and leaves the
// store as it was: no code, no grant, no pending sign-in.
import { before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { authorizationParams, pkce, randomState, register, registerClient } from '../e2e/oauth-helpers.mjs';
import { BASE, assertOAuthError, assertPage, assertUnchanged, attack, request, snapshot } from './support/attack.mjs';

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
