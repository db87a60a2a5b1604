// Issue 11, "Re-admission and the kill switch", against a stack of its own
// that is restarted with other settings over the same persisted state (as
// an operator changes a variable and redeploys):
//
// - each refresh applies the email gate as configured now: a removed
//   domain ends the grant (invalid_grant);
// - COOKIE_SECRET rotation: with COOKIE_SECRET_PREVIOUS set to the old
//   secret, grants, refreshes and consents made under it keep working;
//   without it they fail cleanly (400 invalid_grant, never a 500);
// - TOKENS_NOT_BEFORE: grants created before it are refused at /internal
//   and /token, consents survive, later grants work; a value in the future
//   answers 500 naming the variable (never its value);
// - revoking a refresh token at /revoke removes the user's consent for the
//   client: the next sign-in asks again;
// - consents expire: 91 days after the approval the sign-in asks again,
//   89 days after it does not; with CONSENT_TTL_DAYS=7, 8 days and 6.
//   "Days after" is the test build's clock hook (X-Test-Clock-Offset,
//   honoured on loopback with TEST_IDENTITY_HOOK only, absent from the
//   release build): those sign-ins run the worker's clock ahead, and the
//   rogue provider dates its ID token as far ahead (`clock_offset`).
//
// Sign-ins with consent go through the rogue OpenID provider
// (support/rogue-idp.mjs, which answers at once); the others through the
// test identity hook.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStack } from '../../devstack/stack.mjs';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, authorizeCode, internalCall, redeemForm, refreshRequest,
  registerClient, revokeRequest, tokenRequest,
} from './oauth-helpers.mjs';
import { CookieJar, approveConsent, beginLogin, consentForm, pageText } from './login-helpers.mjs';
import { throughRogueProvider } from './support/rogue-stack.mjs';
import { startRogueIdp } from './support/rogue-idp.mjs';

const UPSTREAM_CLIENT_ID = 'plausible-mcp-readmission-test';
const UPSTREAM_CLIENT_SECRET = 'readmission-test-secret';
const SECRET_A = 'readmission-cookie-secret-A-0123456789abcdef';
const SECRET_B = 'readmission-cookie-secret-B-0123456789abcdef';

let stack;
let rogue;
let persistTo;
let BASE;

/**
 * (Re)starts the worker over the same storage with these variables, on
 * the same port: tokens are bound to the resource `<origin>/internal`.
 */
async function restart(vars = {}) {
  const port = stack ? Number(new URL(stack.workerUrl).port) : 0;
  await stack?.stop();
  stack = await startStack({
    port,
    persistTo,
    vars: {
      ACCESS_ISSUER: rogue.issuer,
      ACCESS_CLIENT_ID: UPSTREAM_CLIENT_ID,
      ACCESS_CLIENT_SECRET: UPSTREAM_CLIENT_SECRET,
      TEST_IDENTITY_HOOK: 'enabled',
      COOKIE_SECRET: SECRET_A,
      ...vars,
    },
  });
  BASE = stack.workerUrl;
}

before(async () => {
  rogue = await startRogueIdp({ clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET });
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-readmission-'));
});

after(async () => {
  await stack?.stop();
  if (rogue?.listening) await rogue.close();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const freshEmail = (label) => `${label}-${randomBytes(4).toString('hex')}@example.com`;

/** A client registered at the current stack. */
const newClient = (name) => registerClient({ client_name: name, redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });

/** Tokens through the test identity hook (no consent page). */
async function hookTokens(client) {
  const grant = await authorizeCode(client, { base: BASE });
  return assertTokens(await tokenRequest(redeemForm(client, grant, BASE), { base: BASE }), BASE);
}

const DAY = 86400;

/**
 * A real sign-in at the rogue provider, approving consent if asked; the
 * tokens and whether it asked. `ahead`: seconds the worker's clock (and
 * the provider's ID token) run ahead for it; `approve: false` stops at
 * the consent page when asked.
 */
async function signIn(client, email, { ahead = 0, approve = true } = {}) {
  const jar = new CookieJar();
  const headers = ahead ? { 'x-test-clock-offset': String(ahead) } : {};
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer, headers });
  let r = await throughRogueProvider(login, { jar, email, params: { clock_offset: String(ahead) }, headers });
  const asked = r.status === 200;
  if (asked) assert.ok(consentForm(r.text).ticket, `a consent page: ${pageText(r.text).slice(0, 300)}`);
  if (asked && !approve) return { asked };
  if (asked) {
    r = await approveConsent(BASE, jar, r.text);
  }
  assert.equal(r.status, 302, pageText(r.text).slice(0, 300));
  const code = new URL(r.location).searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  const redeemed = await tokenRequest(redeemForm(client, { code, verifier: login.verifier, redirectUri: login.redirectUri }, BASE), { base: BASE });
  return { tokens: assertTokens(redeemed, BASE), asked };
}

const refresh = (client, token) => refreshRequest(client, token, { base: BASE });

function assertInvalidGrant(r, label) {
  assert.equal(r.status, 400, `${label}: ${r.status} ${r.text}`);
  assert.equal(r.json.error, 'invalid_grant', label);
}

describe('re-admission and the kill switch', () => {
  test('a removed email domain ends the grant at its next refresh', async () => {
    await restart();
    const client = await newClient('gate');
    const tokens = await hookTokens(client);
    await restart({ ALLOWED_EMAIL_DOMAIN: 'other.example' });
    assertInvalidGrant(await refresh(client, tokens.refresh_token), 'refresh after the domain was removed');
    // The grant was revoked, not merely refused: the domain coming back
    // does not revive it.
    await restart();
    assertInvalidGrant(await refresh(client, tokens.refresh_token), 'refresh after the domain came back');
    await assertTokenRejected(tokens.access_token, { base: BASE, label: 'access token of the ended grant' });
    // Someone signing in now is admitted as before.
    await assertTokenWorks((await hookTokens(client)).access_token, { base: BASE, label: 'a new sign-in' });
  });

  test('revoking a refresh token at /revoke removes the consent: the next sign-in asks again', async () => {
    await restart();
    const client = await newClient('consent');
    const email = freshEmail('revoke');
    const first = await signIn(client, email);
    assert.equal(first.asked, true, 'first sign-in asks');
    assert.equal((await signIn(client, email)).asked, false, 'consent on record');
    const r = await revokeRequest(client, first.tokens.refresh_token, { base: BASE });
    assert.equal(r.status, 200, r.text);
    assert.equal((await signIn(client, email)).asked, true, 'asked again after the revocation');
  });

  test('consents expire after CONSENT_TTL_DAYS (default 90): asked again 91 days on, not 89; 7 days honoured', async () => {
    await restart();
    // A registered client expires 90 days after its registration (it
    // registers again, with a new id and so a consent of its own): this
    // one is registered with the clock 100 days ahead, so it outlives
    // every sign-in below. What expires here is the consent alone.
    const client = await registerClient(
      { client_name: 'consent-expiry', redirect_uris: ['http://127.0.0.1:9/cb'] },
      { base: BASE, headers: { 'x-test-clock-offset': String(100 * DAY) } },
    );
    const email = freshEmail('expiry');
    assert.equal((await signIn(client, email)).asked, true, 'the first sign-in asks');
    assert.equal((await signIn(client, email)).asked, false, 'the consent is on record');
    // A covered sign-in does not renew the consent: the later checks
    // still measure from the approval.
    assert.equal((await signIn(client, email, { ahead: 89 * DAY })).asked, false, '89 days on: still covered');
    assert.equal((await signIn(client, email, { ahead: 91 * DAY, approve: false })).asked, true, '91 days on: asked again');
    await restart({ CONSENT_TTL_DAYS: '7' });
    assert.equal((await signIn(client, email, { ahead: 6 * DAY })).asked, false, 'CONSENT_TTL_DAYS=7, 6 days on: covered');
    assert.equal((await signIn(client, email, { ahead: 8 * DAY, approve: false })).asked, true, 'CONSENT_TTL_DAYS=7, 8 days on: asked again');
    // The clock hook moved only those requests: now, it is still covered.
    assert.equal((await signIn(client, email)).asked, false, 'back at the real time: covered');
  });

  test('COOKIE_SECRET rotation: the previous secret keeps grants, refreshes and consents; without it they fail cleanly', async () => {
    await restart({ COOKIE_SECRET: SECRET_A });
    const client = await newClient('rotation');
    const email = freshEmail('rotation');
    const signedIn = await signIn(client, email);
    assert.equal(signedIn.asked, true);
    const hooked = await hookTokens(client);

    await restart({ COOKIE_SECRET: SECRET_B, COOKIE_SECRET_PREVIOUS: SECRET_A });
    await assertTokenWorks(signedIn.tokens.access_token, { base: BASE, label: 'access token from before the rotation' });
    const refreshed = assertTokens(await refresh(client, signedIn.tokens.refresh_token), BASE);
    await assertTokenWorks(refreshed.access_token, { base: BASE, label: 'refreshed under the new secret' });
    const again = await signIn(client, email);
    assert.equal(again.asked, false, 'the consent survives the rotation');

    await restart({ COOKIE_SECRET: SECRET_B });
    // The grants' sealed identities were made under A: they no longer
    // open, so their refreshes end them, as a 400, never a 500.
    assertInvalidGrant(await refresh(client, hooked.refresh_token), 'grant sealed under A, A gone');
    assertInvalidGrant(await refresh(client, refreshed.refresh_token), 'chain of a grant sealed under A, A gone');
    // Grants made under B keep working, and consents never depended on it.
    const fresh = await signIn(client, email);
    assert.equal(fresh.asked, false, 'consents are keyed by USER_KEY_SECRET');
    assertTokens(await refresh(client, fresh.tokens.refresh_token), BASE);
  });

  test('TOKENS_NOT_BEFORE refuses older grants everywhere, keeps consents; a future value is a 500 naming it', async () => {
    await restart();
    const client = await newClient('kill-switch');
    const email = freshEmail('kill');
    const old = await signIn(client, email);
    assert.equal(old.asked, true);
    // The next whole second: after the grant's creation (seconds).
    const cutoff = Math.floor(Date.now() / 1000) + 1;
    const cutoffText = new Date(cutoff * 1000).toISOString().replace('.000Z', 'Z');
    await restart({ TOKENS_NOT_BEFORE: cutoffText });
    // The time must be in the past for the worker (else it is a
    // misconfiguration); a restart takes longer than a second, so this
    // normally returns at once.
    while (Date.now() < cutoff * 1000) await new Promise((r) => setTimeout(r, 50));
    await assertTokenRejected(old.tokens.access_token, { base: BASE, label: 'access token of a grant from before' });
    assertInvalidGrant(await refresh(client, old.tokens.refresh_token), 'refresh of a grant from before');
    const after = await signIn(client, email);
    assert.equal(after.asked, false, 'the consent survives the kill switch');
    await assertTokenWorks(after.tokens.access_token, { base: BASE, label: 'a grant created after' });
    assertTokens(await refresh(client, after.tokens.refresh_token), BASE);

    const future = '2099-01-01T00:00:00Z';
    await restart({ TOKENS_NOT_BEFORE: future });
    const internal = await internalCall(after.tokens.access_token, { base: BASE, method: 'tools/list', params: {} });
    const token = await refresh(client, after.tokens.refresh_token);
    for (const [label, r] of [['/internal', internal], ['/token', token]]) {
      assert.equal(r.status, 500, `${label}: ${r.text}`);
      assert.equal(r.json.error, 'server_error', label);
      assert.match(r.json.error_description, /TOKENS_NOT_BEFORE/, label);
      assert.ok(!r.text.includes('2099'), `${label} never shows the value: ${r.text}`);
    }
  });
});
