// Negative tests of the upstream login (/authorize → provider → /callback)
// and of the consent form (POST /consent), against the real worker.
//
// The real IdP only mints correct ID tokens, so this file starts a stack
// of its own whose worker signs in at a rogue OpenID provider
// (support/rogue-idp.mjs) that mints whatever a scenario asks for, and
// whose COOKIE_SECRET the test chose (so expiry of the signed state and of
// the sealed consent ticket can be tested by crafting values the server
// accepts, with a control case proving the crafting right).
//
// Every refusal is checked for its status and message, for handing
// nothing to the client (no Location, no code), and, where it applies,
// for leaving no way to a grant afterwards: the login cannot be finished
// later even with a valid upstream code, and the user is still asked for
// consent next time (nothing was recorded).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, startStack } from '../../devstack/stack.mjs';
import {
  assertTokenWorks, assertTokens, isWranglerRestart, pkce, randomState, redeemForm, registerClient, resourceOf, tokenRequest,
} from './oauth-helpers.mjs';
import {
  CookieJar, MESSAGES, WranglerRestart, assertRefused, beginLogin, call, callbackUrl, consentForm, csrfToken,
  deriveKeys, pageText, retrying, signState, splitState, statePayload,
} from './login-helpers.mjs';
import { startRogueStack } from './support/rogue-stack.mjs';
import { backLink } from './support/http.mjs';

const COOKIE_SECRET = `login-negative-${randomBytes(24).toString('hex')}`;
const UPSTREAM_CLIENT_ID = 'plausible-mcp-rogue-test';
// Characters RFC 6749 §2.3.1 says must be form-encoded before base64.
const UPSTREAM_CLIENT_SECRET = 'rogue secret:with/odd&chars=+%';

let own;
let rogue;
let BASE;
const keys = deriveKeys(COOKIE_SECRET);

before(async () => {
  own = await startRogueStack({
    name: 'login-negative', clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET, vars: { COOKIE_SECRET },
  });
  ({ rogue } = own);
  BASE = own.stack.workerUrl;
});

after(async () => {
  await own?.stop();
});

let emailCounter = 0;
/** A fresh user of the allowed domain (consent is per user and client). */
const freshEmail = (label) => `${label.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${++emailCounter}-${randomBytes(3).toString('hex')}@example.com`;

const newClient = () => registerClient({ client_name: 'login-negative client', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });

/**
 * Sends the browser on from the worker's redirect to the rogue provider
 * (with the scenario and email appended) and returns the /callback URL it
 * redirects back to.
 */
async function upstreamReturn(login, { scenario = 'good', email } = {}) {
  const u = new URL(login.upstream);
  u.searchParams.set('scenario', scenario);
  if (email) u.searchParams.set('email', email);
  const r = await call(u);
  assert.equal(r.status, 302, `rogue authorize: ${r.text}`);
  const back = new URL(r.location);
  assert.equal(`${back.origin}${back.pathname}`, `${BASE}/callback`);
  assert.equal(back.searchParams.get('state'), login.upstreamState);
  return back.toString();
}

/** A whole login up to the worker's answer at /callback. */
async function loginThrough(client, { scenario = 'good', email = freshEmail(scenario), jar = new CookieJar() } = {}) {
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
  const url = await upstreamReturn(login, { scenario, email });
  const r = await call(url, { jar });
  return { login, url, r, jar, email };
}

/** Asserts the consent page for `email` and returns its form fields. */
function assertConsentPage(r, email, label = '') {
  assert.equal(r.status, 200, `${label}: ${pageText(r.text).slice(0, 300)}`);
  assert.equal(r.location, null);
  assert.ok(pageText(r.text).includes(email), `${label}: the consent page names ${email}`);
  return consentForm(r.text);
}

/**
 * After a refused login: no grant can come of it. The same login cannot
 * be finished even with a valid upstream code now (it was used up), and
 * the same user and client are still asked for consent (nothing recorded).
 */
async function assertNoGrantAfter({ client, login, jar, email }, label) {
  const retry = await call(await upstreamReturn(login, { scenario: 'good', email }), { jar });
  assertRefused(retry, 400, MESSAGES.replayed, `${label}: finishing the refused login later with a valid code`);
  const fresh = await loginThrough(client, { email });
  assertConsentPage(fresh.r, email, `${label}: a new login of the same user still asks for consent`);
}

/** POST /consent as a form; `cookie` ({ name, value }) null sends none, `origin` null sends none. */
function postConsent(fields, { cookie, origin = BASE } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (cookie !== null && cookie !== undefined) headers.cookie = `${cookie.name}=${cookie.value}`;
  if (origin !== null) headers.origin = origin;
  const body = new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== undefined)).toString();
  return call(`${BASE}/consent`, { method: 'POST', headers, body });
}

/** Asserts a redirect to the client with a code, and redeems it. */
async function assertCodeRedeemable(r, login, label = '') {
  assert.equal(r.status, 302, `${label}: ${pageText(r.text).slice(0, 300)}`);
  const back = new URL(r.location);
  assert.equal(`${back.origin}${back.pathname}`, login.redirectUri);
  assert.equal(back.searchParams.get('state'), login.state);
  assert.equal(back.searchParams.get('iss'), BASE);
  const code = back.searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  const redeemed = await tokenRequest(redeemForm(login.client, { code, verifier: login.verifier, redirectUri: login.redirectUri }, BASE), { base: BASE });
  if (isWranglerRestart(redeemed.status, redeemed.text)) throw new WranglerRestart('/token');
  const t = assertTokens(redeemed, BASE);
  await assertTokenWorks(t.access_token, { base: BASE, label });
  return t;
}

describe('control: a correct login at the rogue provider', () => {
  test('reaches the consent page, and Approve hands the client a working code', retrying(async () => {
    const client = await newClient();
    const before = rogue.tokenRequests.length;
    const { r, login, jar, email } = await loginThrough(client, { scenario: 'good' });
    const form = assertConsentPage(r, email, 'good token');
    // The worker authenticated at the token endpoint with client_secret_basic
    // (form-encoded parts) and sent its PKCE verifier: the rogue checked both.
    const exchanges = rogue.tokenRequests.slice(before);
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0].refused, undefined, `token request refused: ${exchanges[0].refused}`);
    assert.equal(exchanges[0].form.redirect_uri, `${BASE}/callback`);
    assert.equal(exchanges[0].form.client_secret, undefined, 'no secret in the body');
    const approved = await postConsent({ ...form, decision: 'approve' }, { cookie: jar.loginCookie() });
    await assertCodeRedeemable(approved, login, 'approved');
    // Consent is remembered: the next login goes straight back with a code.
    const again = await loginThrough(client, { email });
    await assertCodeRedeemable(again.r, again.login, 'second login, no consent page');
  }));
});

describe('forged or defective ID tokens are refused (403)', () => {
  const tokenScenarios = [
    ['alg-none', 'alg "none", no signature'],
    ['alg-hs256', 'HS256 keyed with the provider\'s public key'],
    ['alg-rs512-label', 'a valid RS256 signature under an RS512 header'],
    ['wrong-key', 'signed by another key under the provider\'s kid'],
    ['unknown-kid', 'signed by another key with a kid not in the JWKS'],
    ['wrong-issuer', 'iss is another issuer'],
    ['wrong-audience', 'aud is another client'],
    ['extra-audience-without-azp', 'two audiences and no azp'],
    ['wrong-azp', 'azp names another client'],
    ['wrong-nonce', 'a nonce other than the one sent'],
    ['no-nonce', 'no nonce'],
    ['expired', 'exp an hour ago'],
    ['not-yet-valid', 'nbf an hour ahead'],
    ['issued-in-future', 'iat an hour ahead'],
    ['no-exp', 'no exp'],
    ['no-iat', 'no iat'],
  ];
  let client;
  before(async () => { client = await newClient(); });
  for (const [scenario, what] of tokenScenarios) {
    test(`${scenario}: ${what}`, retrying(async () => {
      const before = rogue.tokenRequests.length;
      const { r, login, jar, email } = await loginThrough(client, { scenario });
      // The token endpoint really handed the worker the crafted token.
      assert.equal(rogue.tokenRequests.slice(before).filter((e) => e.scenario === scenario).length, 1);
      assertRefused(r, 403, MESSAGES.token, scenario);
      await assertNoGrantAfter({ client, login, jar, email }, scenario);
    }));
  }
});

/**
 * A refused person's page also links back to the client with
 * access_denied, its state and iss (issue 10, RFC 9700 §4.11.2: a page
 * with a plain link, not a redirect, so a connector waiting on its
 * callback still learns the outcome when the person follows it).
 */
function assertLinksBack(r, login, label) {
  assert.match(r.text, /<bdi>login-negative client<\/bdi>/, `${label}: names the application`);
  assert.match(r.text, /<code>127\.0\.0\.1<\/code>/, `${label}: names the redirect host`);
  const link = backLink(r.text);
  assert.ok(link, `${label}: a link back`);
  const u = new URL(link);
  assert.equal(`${u.origin}${u.pathname}`, login.redirectUri, label);
  assert.equal(u.searchParams.get('error'), 'access_denied', label);
  assert.equal(u.searchParams.get('state'), login.state, label);
  assert.equal(u.searchParams.get('iss'), BASE, label);
  assert.equal(u.searchParams.get('code'), null, label);
}

describe('people who are not admitted are refused (403)', () => {
  const cases = [
    ['another domain', 'good', 'mallory@evil.example', MESSAGES.domain],
    ['a subdomain of the allowed one', 'good', 'mallory@sub.example.com', MESSAGES.domain],
    ['the allowed domain as a prefix', 'good', 'mallory@example.com.evil.example', MESSAGES.domain],
    ['the allowed domain as a suffix', 'good', 'mallory@notexample.com', MESSAGES.domain],
    ['email_verified false', 'unverified-email', null, MESSAGES.unverified],
    ['no email claim', 'no-email', null, MESSAGES.noEmail],
  ];
  let client;
  before(async () => { client = await newClient(); });
  for (const [label, scenario, email, message] of cases) {
    test(label, retrying(async () => {
      const { r, login, jar } = await loginThrough(client, { scenario, email: email ?? freshEmail(label) });
      assertRefused(r, 403, message, label);
      assertLinksBack(r, login, label);
      // The login is used up: a valid token for an allowed user cannot
      // finish it now.
      const retry = await call(await upstreamReturn(login, { scenario: 'good', email: freshEmail('late') }), { jar });
      assertRefused(retry, 400, MESSAGES.replayed, `${label}: finishing it later`);
    }));
  }
});

describe('upstream errors and provider failures', () => {
  let client;
  before(async () => { client = await newClient(); });

  test('error=access_denied from the provider → 403, and the login is used up', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const url = await upstreamReturn(login, { scenario: 'upstream-error:access_denied' });
    assert.equal(new URL(url).searchParams.get('code'), null);
    const denied = await call(url, { jar });
    assertRefused(denied, 403, MESSAGES.upstreamDenied, 'access_denied');
    assertLinksBack(denied, login, 'access_denied');
    await assertNoGrantAfter({ client, login, jar, email: freshEmail('denied') }, 'access_denied');
  }));

  test('error=server_error from the provider → 502', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const url = await upstreamReturn(login, { scenario: 'upstream-error:server_error' });
    const failed = await call(url, { jar });
    assertRefused(failed, 502, MESSAGES.upstreamError, 'server_error');
    assert.equal(backLink(failed.text), null, 'a provider failure is not a refusal: no link back');
    await assertNoGrantAfter({ client, login, jar, email: freshEmail('server-error') }, 'server_error');
  }));

  test('an error and a code together: the error wins (403)', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const good = new URL(await upstreamReturn(login, { scenario: 'good' }));
    good.searchParams.set('error', 'access_denied');
    assertRefused(await call(good, { jar }), 403, MESSAGES.upstreamDenied, 'error with code');
  }));

  test('a callback with a valid state but no code → 400', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    assertRefused(await call(callbackUrl(BASE, { state: login.upstreamState }), { jar }), 400, MESSAGES.missingCode, 'no code');
  }));

  test('a code the provider does not know → 502', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const r = await call(callbackUrl(BASE, { code: 'good.made-up', state: login.upstreamState }), { jar });
    assertRefused(r, 502, MESSAGES.provider, 'unknown code');
    await assertNoGrantAfter({ client, login, jar, email: freshEmail('unknown-code') }, 'unknown code');
  }));

  test('the token endpoint fails (500) → 502', retrying(async () => {
    const { r, login, jar, email } = await loginThrough(client, { scenario: 'token-endpoint-500' });
    assertRefused(r, 502, MESSAGES.provider, 'token endpoint 500');
    await assertNoGrantAfter({ client, login, jar, email }, 'token endpoint 500');
  }));

  test('the token response has no id_token → 502', retrying(async () => {
    const { r, login, jar, email } = await loginThrough(client, { scenario: 'no-id-token' });
    assertRefused(r, 502, MESSAGES.provider, 'no id_token');
    await assertNoGrantAfter({ client, login, jar, email }, 'no id_token');
  }));
});

describe('the signed state', () => {
  let client;
  before(async () => { client = await newClient(); });

  /** Flips one character in the middle of `s` (to another base64url one). */
  const flip = (s, at = Math.floor(s.length / 2)) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);

  for (const [label, tamper] of [
    ['a character of the payload flipped', (st) => { const [b, s] = splitState(st); return `${flip(b)}.${s}`; }],
    ['a character of the signature flipped', (st) => { const [b, s] = splitState(st); return `${b}.${flip(s)}`; }],
    ['the payload re-encoded with a later expiry', (st) => { const p = statePayload(st); p.e += 3600; return `${Buffer.from(JSON.stringify(p)).toString('base64url')}.${splitState(st)[1]}`; }],
    ['no signature', (st) => splitState(st)[0]],
    ['an empty signature', (st) => `${splitState(st)[0]}.`],
  ]) {
    test(`tampered state (${label}) → 400; the untouched state still works in its browser`, retrying(async () => {
      const jar = new CookieJar();
      const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
      const email = freshEmail('tamper');
      const url = new URL(await upstreamReturn(login, { email }));
      const tampered = tamper(login.upstreamState);
      assert.notEqual(tampered, login.upstreamState);
      const bad = new URL(url);
      bad.searchParams.set('state', tampered);
      assertRefused(await call(bad, { jar }), 400, MESSAGES.badState, label);
      // Control: only the state differed.
      assertConsentPage(await call(url, { jar }), email, `${label}: control`);
    }));
  }

  test('another login\'s signature on this login\'s payload → 400', retrying(async () => {
    const jar = new CookieJar();
    const a = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const b = await beginLogin(BASE, client, { jar: new CookieJar(), upstreamIssuer: rogue.issuer });
    const url = new URL(await upstreamReturn(a));
    url.searchParams.set('state', `${splitState(a.upstreamState)[0]}.${splitState(b.upstreamState)[1]}`);
    assertRefused(await call(url, { jar }), 400, MESSAGES.badState, 'spliced signature');
  }));

  test('no state, or state given twice → 400', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const url = new URL(await upstreamReturn(login));
    assertRefused(await call(callbackUrl(BASE, { code: url.searchParams.get('code') }), { jar }), 400, MESSAGES.badState, 'no state');
    const twice = `${BASE}/callback?code=${encodeURIComponent(url.searchParams.get('code'))}&state=${login.upstreamState}&state=${login.upstreamState}`;
    assertRefused(await call(twice, { jar }), 400, MESSAGES.badState, 'state twice');
  }));

  test('an expired state → 400 (crafted with the test stack\'s key; an unexpired control signed the same way is accepted)', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const email = freshEmail('expiry');
    const url = new URL(await upstreamReturn(login, { email }));
    const payload = statePayload(login.upstreamState);
    // The payload as the worker made it: only the login id and expiry;
    // the request travels sealed in this browser's cookie, bound to that id.
    assert.deepEqual(Object.keys(payload).sort(), ['e', 'l']);
    const sealed = JSON.parse(keys.open(login.cookie, `login-cookie:${payload.l}`));
    assert.equal(sealed.l, payload.l);
    assert.equal(sealed.e, payload.e);
    assert.equal(sealed.r.state, login.state, 'the client\'s request is in the cookie');
    // Our copy of the signing key is right: re-signing the original
    // payload reproduces the worker's state exactly.
    assert.equal(signState(keys, payload), login.upstreamState, 'the test derives the worker\'s state key');
    const now = Math.floor(Date.now() / 1000);
    const expired = new URL(url);
    expired.searchParams.set('state', signState(keys, { ...payload, e: now - 1 }));
    assertRefused(await call(expired, { jar }), 400, MESSAGES.badState, 'expired state');
    const expiredLongAgo = new URL(url);
    expiredLongAgo.searchParams.set('state', signState(keys, { ...payload, e: now - 3600 }));
    assertRefused(await call(expiredLongAgo, { jar }), 400, MESSAGES.badState, 'state expired an hour ago');
    // Control: the same payload with an expiry still ahead, signed the same way.
    const fresh = new URL(url);
    fresh.searchParams.set('state', signState(keys, { ...payload, e: now + 120 }));
    assertConsentPage(await call(fresh, { jar }), email, 'unexpired re-signed state');
  }));

  test('a /callback URL used once successfully is refused the second time (400)', retrying(async () => {
    const { r, url, jar, email } = await loginThrough(client);
    assertConsentPage(r, email, 'first use');
    assertRefused(await call(url, { jar }), 400, MESSAGES.replayed, 'replay after success');
  }));

  test('a /callback URL used once and refused is refused the second time (400), even with a good code', retrying(async () => {
    const { r, url, jar, login, email } = await loginThrough(client, { scenario: 'wrong-nonce' });
    assertRefused(r, 403, MESSAGES.token, 'first use');
    assertRefused(await call(url, { jar }), 400, MESSAGES.replayed, 'replay after failure');
    await assertNoGrantAfter({ client, login, jar, email }, 'replay after failure');
  }));

  test('two sign-ins started at once in one browser both finish (each login has its own cookie)', retrying(async () => {
    const jar = new CookieJar();
    const first = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const second = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    assert.notEqual(first.cookieName, second.cookieName);
    const emailA = freshEmail('parallel-a');
    const emailB = freshEmail('parallel-b');
    const urlA = await upstreamReturn(first, { email: emailA });
    const urlB = await upstreamReturn(second, { email: emailB });
    // The first one finishes although the second started after it.
    assertConsentPage(await call(urlA, { jar }), emailA, 'the earlier login');
    assertConsentPage(await call(urlB, { jar }), emailB, 'the later login');
  }));

  test('cross-browser: /callback without the cookie, with another browser\'s, or with a made-up one → 400; the starting browser can still finish', retrying(async () => {
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const email = freshEmail('cross');
    const url = await upstreamReturn(login, { email });
    // Another browser, with a login of its own (so a real cookie).
    const other = new CookieJar();
    await beginLogin(BASE, client, { jar: other, upstreamIssuer: rogue.issuer });
    assert.notEqual(other.loginCookie().value, jar.loginCookie().value);
    assertRefused(await call(url), 400, MESSAGES.otherBrowser, 'no cookie');
    assertRefused(await call(url, { jar: other }), 400, MESSAGES.otherBrowser, 'another browser\'s cookie');
    assertRefused(await call(url, { headers: { cookie: `${login.cookieName}=${randomBytes(32).toString('base64url')}` } }), 400, MESSAGES.otherBrowser, 'a made-up cookie');
    // A cookie of the right value under a look-alike name does not count.
    assertRefused(await call(url, { headers: { cookie: `x${login.cookieName}=${login.cookie}` } }), 400, MESSAGES.otherBrowser, 'look-alike cookie name');
    // Control: the refusals consumed nothing.
    assertConsentPage(await call(url, { jar }), email, 'the starting browser');
  }));
});

describe('the consent form (POST /consent)', () => {
  let client;
  before(async () => { client = await newClient(); });

  /** A login up to the consent page: its form, cookie and request. */
  async function atConsent(label) {
    const { r, jar, login, email } = await loginThrough(client, { email: freshEmail(label) });
    const form = assertConsentPage(r, email, label);
    return { form, cookie: jar.loginCookie(), login, email };
  }

  /** Nothing was recorded: the same user is asked for consent again. */
  async function assertConsentNotRecorded(email, label) {
    const again = await loginThrough(client, { email });
    assertConsentPage(again.r, email, `${label}: still asks for consent`);
  }

  test('a client name with markup is shown escaped, never as markup', retrying(async () => {
    const evil = await registerClient({ client_name: '<script>alert(1)</script><img src=x onerror=alert(2)> Evil & Co', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const { r, email } = await loginThrough(evil);
    assertConsentPage(r, email, 'markup in the client name');
    assert.ok(!/<script|<img/i.test(r.text), 'no markup from the client name');
    assert.ok(r.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; Evil &amp; Co'), 'the name, escaped');
  }));

  test('without the csrf field → 400, nothing recorded', retrying(async () => {
    const { form, cookie, email } = await atConsent('no-csrf');
    assertRefused(await postConsent({ ticket: form.ticket, decision: 'approve' }, { cookie }), 400, MESSAGES.csrf, 'no csrf');
    assertRefused(await postConsent({ ticket: form.ticket, csrf: '', decision: 'approve' }, { cookie }), 400, MESSAGES.csrf, 'empty csrf');
    await assertConsentNotRecorded(email, 'no csrf');
  }));

  test('with a wrong csrf → 400, nothing recorded', retrying(async () => {
    const { form, cookie, email } = await atConsent('wrong-csrf');
    const other = await atConsent('wrong-csrf-other');
    const mid = Math.floor(form.csrf.length / 2);
    const flipped = form.csrf.slice(0, mid) + (form.csrf[mid] === 'A' ? 'B' : 'A') + form.csrf.slice(mid + 1);
    for (const [label, csrf] of [['flipped', flipped], ['another form\'s token', other.form.csrf], ['the ticket itself', form.ticket]]) {
      assertRefused(await postConsent({ ticket: form.ticket, csrf, decision: 'approve' }, { cookie }), 400, MESSAGES.csrf, label);
    }
    await assertConsentNotRecorded(email, 'wrong csrf');
  }));

  test('from another Origin → 403, nothing recorded', retrying(async () => {
    const { form, cookie, email } = await atConsent('origin');
    const port = new URL(BASE).port;
    for (const origin of ['https://evil.example', 'null', `http://localhost:${port}`, `https://127.0.0.1:${port}`]) {
      assertRefused(await postConsent({ ...form, decision: 'approve' }, { cookie, origin }), 403, MESSAGES.otherOrigin, `Origin ${origin}`);
    }
    await assertConsentNotRecorded(email, 'other origin');
  }));

  test('without the cookie, or with another browser\'s → 400, nothing recorded', retrying(async () => {
    const { form, email, cookie } = await atConsent('no-cookie');
    const other = await atConsent('no-cookie-other');
    assert.notEqual(other.cookie.name, cookie.name, 'each login has its own cookie');
    // Another browser's cookie value under this login's cookie name.
    assertRefused(await postConsent({ ...form, decision: 'approve' }, { cookie: { name: cookie.name, value: other.cookie.value } }), 400, MESSAGES.consentOtherBrowser, 'another browser\'s cookie value');
    assertRefused(await postConsent({ ...form, decision: 'approve' }, { cookie: null }), 400, MESSAGES.consentOtherBrowser, 'no cookie');
    assertRefused(await postConsent({ ...form, decision: 'approve' }, { cookie: other.cookie }), 400, MESSAGES.consentOtherBrowser, 'another browser\'s cookie');
    // Another browser with its own token for this ticket: still not its ticket.
    assertRefused(await postConsent({ ticket: form.ticket, csrf: other.form.csrf, decision: 'approve' }, { cookie: other.cookie }), 400, MESSAGES.consentOtherBrowser, 'another browser\'s cookie and token');
    await assertConsentNotRecorded(email, 'no cookie');
  }));

  test('without a decision → 400, nothing recorded', retrying(async () => {
    const { form, cookie, email } = await atConsent('no-decision');
    assertRefused(await postConsent({ ...form }, { cookie }), 400, MESSAGES.noDecision, 'no decision');
    assertRefused(await postConsent({ ...form, decision: 'yes' }, { cookie }), 400, MESSAGES.noDecision, 'unknown decision');
    await assertConsentNotRecorded(email, 'no decision');
  }));

  test('a garbled or foreign ticket → 400', retrying(async () => {
    const { form, cookie } = await atConsent('garbled');
    const mid = Math.floor(form.ticket.length / 2);
    const garbled = form.ticket.slice(0, mid) + (form.ticket[mid] === 'A' ? 'B' : 'A') + form.ticket.slice(mid + 1);
    assertRefused(await postConsent({ ticket: garbled, csrf: form.csrf, decision: 'approve' }, { cookie }), 400, MESSAGES.ticket, 'garbled');
    // Sealed under another secret, with a token that matches it.
    const foreign = deriveKeys(`another-secret-${randomBytes(16).toString('hex')}`);
    const forged = foreign.seal(keys.open(form.ticket, 'consent-ticket'), 'consent-ticket');
    assertRefused(await postConsent({ ticket: forged, csrf: csrfToken(foreign, forged, cookie.value), decision: 'approve' }, { cookie }), 400, MESSAGES.ticket, 'foreign key');
  }));

  test('replaying a used ticket → 400 (after Approve, and after Deny)', retrying(async () => {
    const a = await atConsent('replay-approve');
    const approved = await postConsent({ ...a.form, decision: 'approve' }, { cookie: a.cookie });
    await assertCodeRedeemable(approved, a.login, 'first approve');
    // The cookie was cleared in the browser; a replay presents it anyway.
    assert.ok(approved.res.headers.getSetCookie().some((c) => c.startsWith(`${a.cookie.name}=;`) && /Max-Age=0/i.test(c)), 'the login cookie is cleared');
    assertRefused(await postConsent({ ...a.form, decision: 'approve' }, { cookie: a.cookie }), 400, MESSAGES.ticketUsed, 'approve replayed');

    const d = await atConsent('replay-deny');
    const denied = await postConsent({ ...d.form, decision: 'deny' }, { cookie: d.cookie });
    assert.equal(denied.status, 302);
    const back = new URL(denied.location);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('code'), null);
    assertRefused(await postConsent({ ...d.form, decision: 'approve' }, { cookie: d.cookie }), 400, MESSAGES.ticketUsed, 'approve after deny');
    await assertConsentNotRecorded(d.email, 'approve after deny');
  }));

  test('an expired ticket → 400 (crafted with the test stack\'s key; an unexpired control sealed the same way is accepted)', retrying(async () => {
    const { form, cookie, login } = await atConsent('expired-ticket');
    // Our copy of the keys is right: the worker's own CSRF token is reproduced.
    assert.equal(csrfToken(keys, form.ticket, cookie.value), form.csrf, 'the test derives the worker\'s CSRF key');
    const ticket = JSON.parse(keys.open(form.ticket, 'consent-ticket'));
    const now = Math.floor(Date.now() / 1000);
    assert.ok(ticket.expires_at > now && ticket.expires_at <= now + 660, `ticket expiry ${ticket.expires_at}`);
    const reseal = (expires_at) => {
      const t = keys.seal(JSON.stringify({ ...ticket, expires_at }), 'consent-ticket');
      return { ticket: t, csrf: csrfToken(keys, t, cookie.value) };
    };
    assertRefused(await postConsent({ ...reseal(now - 1), decision: 'approve' }, { cookie }), 400, MESSAGES.ticket, 'expired ticket');
    // Control: sealed the same way, not expired: accepted.
    await assertCodeRedeemable(await postConsent({ ...reseal(now + 120), decision: 'approve' }, { cookie }), login, 'unexpired resealed ticket');
  }));
});

// Last: stops the rogue provider for good.
describe('the provider is down', () => {
  test('/callback when the provider cannot be reached → 502, and no grant', retrying(async () => {
    const client = await newClient();
    const jar = new CookieJar();
    const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer });
    const url = await upstreamReturn(login, { scenario: 'good' });
    if (rogue.listening) await rogue.close();
    // The discovery document is cached; the code exchange needs the provider.
    assertRefused(await call(url, { jar }), 502, MESSAGES.provider, 'provider down');
    assertRefused(await call(url, { jar }), 400, MESSAGES.replayed, 'and the login is used up');
  }));
});

describe('the provider cannot be reached when the login starts', () => {
  let down;
  let downPersist;
  before(async () => {
    // A worker whose ACCESS_ISSUER is a port nobody listens on, so
    // discovery fails (nothing cached).
    downPersist = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-login-down-'));
    down = await startStack({
      persistTo: downPersist,
      vars: { ACCESS_ISSUER: `http://127.0.0.1:${await freePort()}`, ACCESS_CLIENT_ID: UPSTREAM_CLIENT_ID, ACCESS_CLIENT_SECRET: UPSTREAM_CLIENT_SECRET, COOKIE_SECRET },
    });
  });
  after(async () => {
    await down?.stop();
    if (downPersist) rmSync(downPersist, { recursive: true, force: true });
  });

  test('/authorize → 502 page: no redirect, no login cookie', retrying(async () => {
    const base = down.workerUrl;
    const client = await registerClient({ client_name: 'login-negative client', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base });
    const { challenge } = pkce();
    const params = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0], code_challenge: challenge,
      code_challenge_method: 'S256', state: randomState(), scope: 'mcp', resource: resourceOf(base),
    });
    const r = await call(`${base}/authorize?${params}`);
    assertRefused(r, 502, MESSAGES.provider, 'discovery unreachable');
    assert.ok(pageText(r.text).includes('Sign-in is unavailable'));
    assert.deepEqual(r.res.headers.getSetCookie(), [], 'no login cookie');
  }));
});
