// Issue 11, the audit trail, against the running worker: every security
// event a client's life goes through (a real sign-in at the local OpenID
// provider, consent given and denied, a code issued and redeemed, a
// refresh, the retry of a lost refresh answer, a revocation, a code
// replay, a refresh token reused, a refused domain, a rate limit), and
// an operator's controls (an admin revoking a user and a client, blocking
// and unblocking a client on /connections; the email gate at refresh and
// the kill switch after a redeploy) leave their JSON lines on the
// worker's log with the fields an operator filters on; and nothing the
// test holds that is secret (the worker's secrets, the upstream client
// secret, every token, code and cookie it saw, the emails, the full
// client address) appears anywhere in what the worker and wrangler
// printed.
//
// A stack of its own: its secrets are the test's, AUDIT_LOG_EMAILS is
// unset, the test identity hook is off (every sign-in goes through the
// provider), and wrangler runs at `--log-level log`, the level at which
// it prints the worker's console.log (the audit trail's sink). It is
// restarted once over the same storage with other settings, as an
// operator redeploys; the output of both runs is searched.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStack } from '../../devstack/stack.mjs';
import {
  assertTokenError, assertTokens, redeemForm, refreshRequest, registerClient, revokeRequest, tokenRequest,
} from './oauth-helpers.mjs';
import { CookieJar, beginLogin, call, consentForm, pageErrorCode, pageText } from './login-helpers.mjs';
import { SOURCE_ADDRESS } from './support/source-address.mjs';

const COOKIE_SECRET = `audit-cookie-${randomBytes(24).toString('hex')}`;
const USER_KEY_SECRET = `audit-user-key-${randomBytes(24).toString('hex')}`;
const stamp = randomBytes(4).toString('hex');
const ALICE = `alice.audit.${stamp}@example.com`;
const BOB = `bob.audit.${stamp}@example.com`;
const MALLORY = `mallory.audit.${stamp}@evil.example`;
const CAROL = `carol.audit.${stamp}@example.com`;
const ADMIN = `admin.audit.${stamp}@example.com`;
/** The limit of the refresh tier (wrangler.toml LIMIT_REFRESHES). */
const REFRESH_LIMIT = 30;

let stack;
let persistTo;
let BASE;
/** What the stacks this file already stopped printed. */
let earlierOutput = '';
/** Everything the worker and wrangler printed, over every run. */
const output = () => earlierOutput + (stack?.output() ?? '');
const VARS = { COOKIE_SECRET, USER_KEY_SECRET, ADMIN_EMAILS: ADMIN };
/** Every value the test saw that must never be logged. */
const secrets = new Map();
const hold = (label, value) => {
  assert.ok(typeof value === 'string' && value.length >= 8, `${label}: ${value}`);
  secrets.set(value, label);
  return value;
};

before(async () => {
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-audit-'));
  stack = await startStack({ persistTo, logLevel: 'log', vars: VARS });
  BASE = stack.workerUrl;
  hold('COOKIE_SECRET', COOKIE_SECRET);
  hold('USER_KEY_SECRET', USER_KEY_SECRET);
  hold('the upstream client secret', stack.upstream.clientSecret);
  for (const email of [ALICE, BOB, MALLORY, CAROL, ADMIN]) hold(`the email ${email}`, email);
});

/**
 * Redeploys: the same storage and port (tokens are bound to
 * `<origin>/internal`), these settings on top of the file's own.
 */
async function restart(vars) {
  const port = Number(new URL(BASE).port);
  earlierOutput += stack.output();
  await stack.stop();
  stack = await startStack({ port, persistTo, logLevel: 'log', vars: { ...VARS, ...vars } });
  BASE = stack.workerUrl;
}

after(async () => {
  await stack?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

/**
 * Signs `email` in at the local provider from the worker's redirect to
 * it: the provider's own login form (one POST), then its redirects, up
 * to the redirect back to the worker's /callback, which is returned.
 */
async function atProvider(start, email) {
  const jar = new CookieJar();
  let url = start.toString();
  let signedIn = false;
  for (let hop = 0; hop < 12; hop++) {
    const r = await call(url, { jar });
    if (r.status === 200 && !signedIn && /^\/interaction\/[^/]+$/.test(new URL(url).pathname)) {
      assert.match(r.text, /name="email"/, 'the provider asks who signs in');
      const posted = await call(`${url}/login`, {
        jar, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email }).toString(),
      });
      assert.ok(posted.status >= 300 && posted.status < 400, `provider login: ${posted.status} ${posted.text}`);
      signedIn = true;
      url = new URL(posted.location, url).toString();
      continue;
    }
    assert.ok(r.status >= 300 && r.status < 400, `provider at ${url}: ${r.status} ${pageText(r.text).slice(0, 200)}`);
    const next = new URL(r.location, url);
    if (`${next.origin}${next.pathname}` === `${BASE}/callback`) {
      assert.ok(signedIn, 'the provider showed its login form');
      return next.toString();
    }
    url = next.toString();
  }
  assert.fail('the provider never redirected back to /callback');
}

/** /authorize → the provider → /callback: the worker's answer there. */
async function signIn(client, email) {
  const jar = new CookieJar();
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: stack.idp.issuer });
  const back = await call(await atProvider(login.upstream, email), { jar });
  return { login, jar, back };
}

/** Decides on the consent page `back` shows; returns the worker's answer. */
async function decide({ jar, back }, decision) {
  assert.equal(back.status, 200, `consent page: ${pageText(back.text).slice(0, 300)}`);
  const form = consentForm(back.text);
  const cookie = jar.loginCookie();
  return call(`${BASE}/consent`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE, cookie: `${cookie.name}=${cookie.value}` },
    body: new URLSearchParams({ ...form, decision }).toString(),
  });
}

/** A real sign-in and approval: the code and what redeeming it needs. */
async function approvedCode(client, email) {
  const flow = await signIn(client, email);
  const r = await decide(flow, 'approve');
  assert.equal(r.status, 302, `consent: ${pageText(r.text).slice(0, 300)}`);
  const code = new URL(r.location).searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  hold('an authorization code', code);
  return { code, verifier: flow.login.verifier, redirectUri: flow.login.redirectUri };
}

/** Redeems a code: the tokens, held. */
async function redeem(client, grant) {
  const t = assertTokens(await tokenRequest(redeemForm(client, grant, BASE), { base: BASE }), BASE);
  hold('an access token', t.access_token);
  hold('a refresh token', t.refresh_token);
  return t;
}

async function refresh(client, refreshToken) {
  const r = await refreshRequest(client, refreshToken, { base: BASE });
  if (r.status === 200) {
    hold('an access token', r.json.access_token);
    hold('a refresh token', r.json.refresh_token);
  }
  return r;
}

const newClient = (name) => registerClient({ client_name: name, redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });

/** The audit lines printed so far, parsed. */
function auditLines() {
  return output().split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{"audit":'))
    .map((l) => JSON.parse(l));
}

/** The audit lines matching `fields`, once at least `count` have been printed. */
async function linesFor(fields, count = 1) {
  const matches = () => auditLines().filter((l) => Object.entries(fields).every(([k, v]) => l[k] === v));
  // The worker's output reaches this process through a pipe: wait,
  // bounded, for the lines of requests already answered.
  for (let i = 0; i < 100 && matches().length < count; i++) await new Promise((r) => setTimeout(r, 50));
  const found = matches();
  assert.ok(found.length >= count, `expected ${count} audit line(s) with ${JSON.stringify(fields)}; lines:\n${auditLines().map((l) => JSON.stringify(l)).join('\n')}`);
  return found;
}

const USER_HASH = /^[0-9a-f]{64}$/;
/** What `ip` must read: this file's source address cut to its /24. */
const EXPECTED_IP = `${SOURCE_ADDRESS.split('.').slice(0, 3).join('.')}.0/24`;

/** The fields every line has, and the ones this test never sets. */
function assertCommon(line) {
  for (const field of ['audit', 'event', 'outcome', 'reason', 'client_id', 'user', 'email', 'ip', 'grant', 'by', 'action', 'variable', 'at']) {
    assert.ok(field in line, `${field} in ${JSON.stringify(line)}`);
  }
  assert.equal(line.audit, 1);
  assert.equal(line.email, null, 'no email without AUDIT_LOG_EMAILS');
  assert.equal(line.ip, EXPECTED_IP, 'the client address, cut to its /24');
  assert.match(line.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
}

/** The USER_HASH-shaped key of the person a client's sign-in line names. */
async function userOf(client) {
  const [line] = await linesFor({ event: 'sign_in', client_id: client.client_id });
  return line.user;
}

/** The grant a client's code was issued for (its code_issued line). */
async function grantOf(client) {
  const [line] = await linesFor({ event: 'code_issued', client_id: client.client_id });
  return line.grant;
}

/**
 * An admin signed in at /connections through the provider: the cookie
 * jar and the page's CSRF token, both held as secrets.
 */
async function adminSession() {
  const jar = new CookieJar();
  const start = await call(`${BASE}/connections/login`, { jar });
  assert.equal(start.status, 302, `connections login: ${pageText(start.text).slice(0, 300)}`);
  for (const [name, value] of jar.cookies) hold(`the cookie ${name}`, value);
  const back = await call(await atProvider(new URL(start.location), ADMIN), { jar });
  assert.ok([302, 303].includes(back.status), `callback: ${back.status} ${pageText(back.text).slice(0, 300)}`);
  const session = jar.get('__Host-pmcp_connections');
  hold('the connections session cookie', session);
  const page = await call(`${BASE}/connections`, { jar });
  assert.equal(page.status, 200, pageText(page.text).slice(0, 300));
  const csrf = page.text.match(/name="csrf" value="([^"]+)"/)?.[1];
  hold('the connections CSRF token', csrf);
  return { jar, csrf };
}

/** An admin's action on /connections: the worker's answer. */
function act({ jar, csrf }, fields) {
  return call(`${BASE}/connections`, {
    jar,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
    body: new URLSearchParams({ csrf, ...fields }).toString(),
  });
}

/** Waits, bounded, until `token` is refused at /internal: a revoke-all fans out by alarm. */
async function untilRefused(token, label) {
  for (let i = 0; i < 200; i++) {
    const r = await call(`${BASE}/internal`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    if (r.status === 401) return;
    assert.equal(r.status, 200, `${label}: ${r.text}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`${label}: still accepted`);
}

describe('the audit trail', () => {
  const users = {};
  let clientA;
  let clientB;
  let clientC;

  test('a sign-in, consent, code issued and redeemed, a refresh, a retry, a reuse', async () => {
    clientA = await newClient('audit A');
    const grant = await approvedCode(clientA, ALICE);
    const first = await redeem(clientA, grant);
    // A refresh, then the same (rotated-out) token again at once: the
    // lost answer's retry gets the same pair.
    const rotated = await refresh(clientA, first.refresh_token);
    assert.equal(rotated.status, 200, rotated.text);
    const retried = await refresh(clientA, first.refresh_token);
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.json.refresh_token, rotated.json.refresh_token, 'a retry gets the same pair');
    // The new token is used; the old one again is now a reuse.
    const next = await refresh(clientA, rotated.json.refresh_token);
    assert.equal(next.status, 200, next.text);
    assertTokenError(await refresh(clientA, first.refresh_token), 400, 'invalid_grant', 'reuse');

    const a = { client_id: clientA.client_id };
    const [signIn] = await linesFor({ event: 'sign_in', ...a });
    assert.equal(signIn.outcome, 'success');
    assert.equal(signIn.reason, 'authorize');
    assert.match(signIn.user, USER_HASH);
    users.alice = signIn.user;
    const [consent] = await linesFor({ event: 'consent_given', ...a });
    assert.equal(consent.outcome, 'success');
    assert.equal(consent.user, users.alice, 'one person, one key');
    const [issued] = await linesFor({ event: 'code_issued', ...a });
    assert.equal(issued.outcome, 'success');
    assert.equal(issued.user, users.alice);
    assert.match(issued.grant ?? '', /\S/, 'the grant is named');
    const [redeemed] = await linesFor({ event: 'code_redeemed', ...a });
    assert.equal(redeemed.outcome, 'success');
    assert.equal(redeemed.grant, issued.grant, 'the redemption names the grant its code was issued for');
    const refreshed = await linesFor({ event: 'token_refreshed', ...a }, 2);
    assert.equal(refreshed.length, 2, 'two rotations, the retry not among them');
    for (const l of refreshed) {
      assert.equal(l.outcome, 'success');
      assert.equal(l.user, users.alice);
      assert.equal(l.grant, issued.grant);
    }
    const [retry] = await linesFor({ event: 'refresh_retry', ...a });
    assert.equal(retry.outcome, 'success');
    assert.equal(retry.user, users.alice);
    assert.equal(retry.grant, issued.grant);
    const [replay] = await linesFor({ event: 'replay_detected', ...a });
    assert.equal(replay.outcome, 'refused');
    assert.equal(replay.reason, 'rotated-out refresh token reused; grant revoked');
    const [revoked] = await linesFor({ event: 'grant_revoked', ...a });
    assert.equal(revoked.outcome, 'success');
    assert.equal(revoked.by, 'replay');
    assert.equal(revoked.reason, replay.reason);
    for (const l of [replay, revoked]) {
      assert.equal(l.user, users.alice, 'a replay names whose grant it ended');
      assert.equal(l.grant, issued.grant);
    }
    for (const l of [signIn, consent, issued, redeemed, ...refreshed, retry, replay, revoked]) assertCommon(l);
  });

  test('a code replayed ends its grant; a revocation at /revoke says the client did it', async () => {
    clientB = await newClient('audit B');
    const grant = await approvedCode(clientB, BOB);
    await redeem(clientB, grant);
    assertTokenError(await tokenRequest(redeemForm(clientB, grant, BASE), { base: BASE }), 400, 'invalid_grant', 'code replay');
    const b = { client_id: clientB.client_id };
    const [signIn] = await linesFor({ event: 'sign_in', ...b });
    users.bob = signIn.user;
    assert.match(users.bob, USER_HASH);
    assert.notEqual(users.bob, users.alice, 'each person has a key of their own');
    const [replay] = await linesFor({ event: 'replay_detected', ...b });
    assert.equal(replay.reason, 'code replayed; grant revoked');
    const [revoked] = await linesFor({ event: 'grant_revoked', ...b });
    assert.equal(revoked.by, 'replay');
    const [issued] = await linesFor({ event: 'code_issued', ...b });
    const [redeemed] = await linesFor({ event: 'code_redeemed', ...b });
    assert.equal(redeemed.grant, issued.grant);
    for (const l of [replay, revoked]) {
      assert.equal(l.user, users.bob, 'a code replay names whose grant it ended');
      assert.equal(l.grant, issued.grant);
    }

    clientC = await newClient('audit C');
    const tokens = await redeem(clientC, await approvedCode(clientC, ALICE));
    const r = await revokeRequest(clientC, tokens.refresh_token, { base: BASE });
    assert.equal(r.status, 200, r.text);
    assertTokenError(await refresh(clientC, tokens.refresh_token), 400, 'invalid_grant', 'revoked');
    const [byClient] = await linesFor({ event: 'grant_revoked', client_id: clientC.client_id });
    assert.equal(byClient.outcome, 'success');
    assert.equal(byClient.by, 'client');
    assert.equal(byClient.reason, 'refresh token revoked at /revoke');
    const [cSignIn] = await linesFor({ event: 'sign_in', client_id: clientC.client_id });
    assert.equal(cSignIn.user, users.alice, 'the same person on another client');
    for (const l of [signIn, replay, revoked, byClient]) assertCommon(l);
  });

  test('consent denied, and a domain the gate refuses', async () => {
    const client = await newClient('audit D');
    const denied = await decide(await signIn(client, ALICE), 'deny');
    assert.equal(denied.status, 302);
    assert.equal(new URL(denied.location).searchParams.get('error'), 'access_denied');
    const [line] = await linesFor({ event: 'consent_denied', client_id: client.client_id });
    assert.equal(line.outcome, 'refused');
    assert.equal(line.user, users.alice);
    assertCommon(line);

    const { back } = await signIn(client, MALLORY);
    assert.equal(back.status, 403, pageText(back.text).slice(0, 300));
    assert.equal(pageErrorCode(back.text), 'domain_not_allowed');
    const [last] = await linesFor({ event: 'domain_refused', client_id: client.client_id });
    assert.equal(last.outcome, 'refused');
    assert.equal(last.reason, 'domain_not_allowed');
    assert.equal(last.user, null, 'a refused person gets no key');
    assertCommon(last);
  });

  test('a refresh over the rate limit', async () => {
    const client = await newClient('audit E');
    let { refresh_token: current } = await redeem(client, await approvedCode(client, BOB));
    let limited;
    // The binding counts in clock-aligned windows: up to twice the limit.
    for (let i = 0; i <= 2 * REFRESH_LIMIT && !limited; i++) {
      const r = await refresh(client, current);
      if (r.status === 429) limited = r;
      else {
        assert.equal(r.status, 200, r.text);
        current = r.json.refresh_token;
      }
    }
    assert.ok(limited, 'a 429 within twice the limit');
    const [line] = await linesFor({ event: 'rate_limited', reason: 'LIMIT_REFRESHES' });
    assert.equal(line.outcome, 'refused');
    assertCommon(line);
  });

  test('admin actions: revoke a user, revoke a client, block and unblock a client', async () => {
    const clientU = await newClient('audit U');
    const carol = await redeem(clientU, await approvedCode(clientU, CAROL));
    const clientR = await newClient('audit R');
    const revokedApp = await redeem(clientR, await approvedCode(clientR, ALICE));
    const clientK = await newClient('audit K');
    const blockedApp = await redeem(clientK, await approvedCode(clientK, ALICE));
    const carolKey = await userOf(clientU);
    assert.match(carolKey, USER_HASH);

    const admin = await adminSession();
    const [adminIn] = await linesFor({ event: 'sign_in', reason: 'connections' });
    assert.equal(adminIn.outcome, 'success');
    assert.match(adminIn.user, USER_HASH);
    assertCommon(adminIn);
    const expectAction = async (fields, line) => {
      const r = await act(admin, fields);
      assert.equal(r.status, 303, `${fields.action}: ${r.status} ${pageText(r.text).slice(0, 300)}`);
      const [found] = await linesFor({ event: 'admin_action', action: fields.action, ...line });
      assert.equal(found.outcome, 'success', fields.action);
      assert.equal(found.by, 'admin', fields.action);
      assertCommon(found);
      return found;
    };

    const byUser = await expectAction({ action: 'revoke_user', user: carolKey }, { user: carolKey });
    assert.equal(byUser.client_id, null);
    await untilRefused(carol.access_token, "the revoked user's token");
    const byClient = await expectAction({ action: 'revoke_client', client: clientR.client_id }, { client_id: clientR.client_id });
    assert.equal(byClient.user, null);
    await untilRefused(revokedApp.access_token, "the revoked client's token");
    await expectAction({ action: 'block_client', client: clientK.client_id }, { client_id: clientK.client_id });
    assertTokenError(await refresh(clientK, blockedApp.refresh_token), 400, 'unauthorized_client', 'blocked client');
    await expectAction({ action: 'unblock_client', client: clientK.client_id }, { client_id: clientK.client_id });
  });

  test('after a redeploy: the kill switch refuses an older grant, the email gate ends a grant at refresh', async () => {
    const clientK = await newClient('audit kill');
    const old = await redeem(clientK, await approvedCode(clientK, ALICE));
    // TOKENS_NOT_BEFORE: the next whole second, so the grant above is older.
    const cutoff = Math.floor(Date.now() / 1000) + 1;
    while (Date.now() < cutoff * 1000) await new Promise((r) => setTimeout(r, 50));
    const clientG = await newClient('audit gate');
    const gated = await redeem(clientG, await approvedCode(clientG, BOB));
    const [aliceKey, bobKey] = [await userOf(clientK), await userOf(clientG)];
    const [oldGrant, gatedGrant] = [await grantOf(clientK), await grantOf(clientG)];

    // Both at once, as an operator might: everyone from before the cutoff
    // out, and example.com no longer admitted.
    await restart({ TOKENS_NOT_BEFORE: new Date(cutoff * 1000).toISOString().replace('.000Z', 'Z'), ALLOWED_EMAIL_DOMAIN: 'other.example' });

    assertTokenError(await refresh(clientK, old.refresh_token), 400, 'invalid_grant', 'a grant from before TOKENS_NOT_BEFORE');
    const [kill] = await linesFor({ event: 'token_refreshed', client_id: clientK.client_id, outcome: 'refused' });
    assert.equal(kill.by, 'kill_switch');
    assert.equal(kill.reason, 'grant created before TOKENS_NOT_BEFORE');
    assert.equal(kill.user, aliceKey);
    assert.equal(kill.grant, oldGrant);
    assertCommon(kill);

    assertTokenError(await refresh(clientG, gated.refresh_token), 400, 'invalid_grant', 'a grant whose domain was removed');
    const [gate] = await linesFor({ event: 'grant_revoked', client_id: clientG.client_id });
    assert.equal(gate.outcome, 'success');
    assert.equal(gate.by, 'email_gate');
    assert.equal(gate.reason, "the email gate refuses the grant's user now; grant revoked");
    assert.equal(gate.user, bobKey);
    assert.equal(gate.grant, gatedGrant);
    assertCommon(gate);

    // And at sign-in, the same gate (a person of the removed domain).
    const { back } = await signIn(clientG, ALICE);
    assert.equal(back.status, 403, pageText(back.text).slice(0, 300));
    const [refused] = await linesFor({ event: 'domain_refused', client_id: clientG.client_id });
    assert.equal(refused.reason, 'domain_not_allowed');
    assertCommon(refused);
  });

  test('nothing secret reaches the output', () => {
    const printed = output();
    assert.ok(auditLines().length >= 20, 'the trail was captured');
    assert.ok(secrets.size >= 20, `the test held ${secrets.size} secrets`);
    // The control: what is public is there, so the search below looks
    // where the lines are.
    for (const shown of [clientA.client_id, clientB.client_id, users.alice, EXPECTED_IP]) {
      assert.ok(printed.includes(shown), `${shown} is in the output`);
    }
    for (const [value, label] of secrets) {
      assert.ok(!printed.includes(value), `${label} appears in the worker's output`);
    }
    assert.ok(!printed.includes(SOURCE_ADDRESS), 'the full client address appears in the output');
  });
});
