// PKCE downgrade and malformed challenges (RFC 7636 §4.1-§4.6; OAuth 2.1
// §4.1.1 and §7.5.2: S256 only, a missing method is not "plain"; MCP
// authorization: PKCE S256 required). A refused authorization request
// creates no code; a redemption with a wrong verifier issues nothing.
import { before, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  IDENTITY, assertTokens, authorizationParams, authorizeCode, pkce, randomState, redeemForm, registerClient, s256, tokenRequest,
} from '../e2e/oauth-helpers.mjs';
import {
  BASE, assertAuthorizeRedirectError, assertOAuthError, assertUnchanged, attack, request, snapshot,
} from './support/attack.mjs';

const REDIRECT = 'http://127.0.0.1/cb';
let client;
before(async () => {
  client = await registerClient({ client_name: 'attack: pkce', redirect_uris: [REDIRECT] });
});

function authorizeWith(change) {
  const params = authorizationParams(client, { challenge: pkce().challenge, state: randomState() });
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete params[k]; else params[k] = v;
  }
  return request(`${BASE}/authorize?${new URLSearchParams(params)}`, { headers: { 'x-test-identity': IDENTITY } });
}

describe('the challenge at /authorize: anything but a well-formed S256 challenge is refused, no code', () => {
  const verifier = pkce().verifier;
  const cases = [
    ['PK-01', 'code_challenge_method=plain (downgrade)', { code_challenge_method: 'plain', code_challenge: verifier }],
    ['PK-02', 'no code_challenge_method (RFC 7636 would default to plain)', { code_challenge_method: undefined }],
    ['PK-03', 'no code_challenge at all', { code_challenge: undefined, code_challenge_method: undefined }],
    ['PK-04', 'a method but no challenge', { code_challenge: undefined }],
    ['PK-05', 'code_challenge_method=s256 (wrong case)', { code_challenge_method: 's256' }],
    ['PK-06', 'a 42-character challenge', { code_challenge: 'A'.repeat(42) }],
    ['PK-07', 'a 44-character challenge', { code_challenge: 'A'.repeat(44) }],
    ['PK-08', 'a challenge in standard base64 (+ and /)', { code_challenge: `${'A'.repeat(41)}+/` }],
    ['PK-09', 'a padded challenge', { code_challenge: `${'A'.repeat(42)}=` }],
    ['PK-10', 'a challenge with a space', { code_challenge: `${'A'.repeat(21)} ${'A'.repeat(21)}` }],
    ['PK-11', 'an unknown method', { code_challenge_method: 'S512' }],
  ];
  for (const [id, name, change] of cases) {
    attack(id, `${name} → invalid_request to the client, no code`, async () => {
      const snap = await snapshot();
      const r = await authorizeWith(change);
      assertAuthorizeRedirectError(r, REDIRECT, 'invalid_request', name);
      await assertUnchanged(snap, name);
    });
  }
});

describe('the verifier at /token (RFC 7636 §4.6): a wrong or malformed verifier issues nothing', () => {
  /** A fresh code, and the snapshot taken after it was stored. */
  async function freshCode() {
    const grant = await authorizeCode(client);
    return { grant, snap: await snapshot() };
  }
  const cases = [
    ['PK-12', 'another valid-looking verifier', () => pkce().verifier, 'invalid_grant'],
    ['PK-13', 'the challenge itself as the verifier (plain downgrade)', (g) => s256(g.verifier), 'invalid_grant'],
  ];
  for (const [id, name, verifierOf, error] of cases) {
    attack(id, `${name} → 400 ${error}, nothing stored; the owner can still redeem`, async () => {
      const { grant, snap } = await freshCode();
      const r = await tokenRequest(redeemForm(client, { ...grant, verifier: verifierOf(grant) }));
      assertOAuthError(r, 400, error, name);
      await assertUnchanged(snap, name);
      // Someone holding a stolen code and guessing verifiers can neither
      // redeem it nor spoil it for the client that holds the verifier.
      assertTokens(await tokenRequest(redeemForm(client, grant)));
    });
  }

  const malformed = [
    ['PK-14', 'a 42-character verifier', () => 'a'.repeat(42)],
    ['PK-15', 'a 129-character verifier', () => 'a'.repeat(129)],
    ['PK-16', 'a verifier with characters outside the unreserved set', (g) => `${g.verifier.slice(0, -1)}!`],
  ];
  for (const [id, name, verifierOf] of malformed) {
    attack(id, `${name} → 400 invalid_request before the code is looked at`, async () => {
      const { grant, snap } = await freshCode();
      const r = await tokenRequest(redeemForm(client, { ...grant, verifier: verifierOf(grant) }));
      assertOAuthError(r, 400, 'invalid_request', name);
      await assertUnchanged(snap, name);
    });
  }

  attack('PK-17', 'no code_verifier → 400 invalid_request, the code untouched', async () => {
    const { grant, snap } = await freshCode();
    const form = redeemForm(client, grant);
    delete form.code_verifier;
    assertOAuthError(await tokenRequest(form), 400, 'invalid_request');
    await assertUnchanged(snap);
  });

  attack('PK-18', 'code_verifier twice → 400 invalid_request, the code untouched', async () => {
    const { grant, snap } = await freshCode();
    const body = `${new URLSearchParams(redeemForm(client, grant))}&code_verifier=${pkce().verifier}`;
    assertOAuthError(await tokenRequest(null, { body }), 400, 'invalid_request');
    await assertUnchanged(snap);
  });
});
