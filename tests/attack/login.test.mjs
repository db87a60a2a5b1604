// Forged ID tokens (OIDC Core §3.1.3.7, RFC 8725 §3.1-§3.2, RFC 7519
// §4.1), email-domain bypasses (the ALLOWED_EMAIL_DOMAIN gate), and
// state, CSRF and consent tampering (RFC 6749 §10.12, RFC 9700 §4.7,
// OIDC Core §3.1.2.1 nonce), through the real browser flow against the
// rogue upstream provider the harness started. A refused sign-in leaves
// at most the mark that its state was used (UsedStates): no consent, no
// code, no grant.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { register, registerClient } from '../e2e/oauth-helpers.mjs';
import {
  CookieJar, beginLogin, call, callbackUrl, consentForm, csrfToken, deriveKeys, signState, splitState, statePayload,
} from '../e2e/login-helpers.mjs';
import {
  BASE, COOKIE_SECRET, UPSTREAM, assertBackToClientPage, assertOAuthError, assertOnly, assertPage, assertUnchanged, attack, callsSince,
  changesSince, snapshot,
} from './support/attack.mjs';
import { dumpState } from './support/state.mjs';

const USED_STATE = [/^do:UsedStates\//];
const USED_TICKET = [/^do:UsedStates\/[^/]+\/_cf_KV\/ticket:/];
const keys = deriveKeys(COOKIE_SECRET);
let n = 0;
const freshEmail = (label) => `${label}-${++n}-${randomBytes(3).toString('hex')}@example.com`;
const CLIENT_NAME = 'attack: login';
const newClient = () => registerClient({ client_name: CLIENT_NAME, redirect_uris: ['http://127.0.0.1:9/cb'] });

/**
 * A refused person's page (issue 10, RFC 9700 §4.11.2): 403 with `code`,
 * and a plain link telling the client access_denied with its state and
 * iss, so a connector waiting on its callback learns the outcome.
 */
const assertRefusedWithLink = (r, login, code, label) => assertBackToClientPage(r, {
  status: 403, code, redirectUri: login.redirectUri, error: 'access_denied', state: login.state, clientName: CLIENT_NAME,
}, label);

/** The /callback URL the rogue provider sends the browser back to. */
async function upstreamReturn(login, { scenario = 'good', email }) {
  const u = new URL(login.upstream);
  u.searchParams.set('scenario', scenario);
  u.searchParams.set('email', email);
  const r = await call(u);
  assert.equal(r.status, 302, r.text);
  return r.location;
}

async function loginUpTo(client, { scenario = 'good', email = freshEmail(scenario), jar = new CookieJar() } = {}) {
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: UPSTREAM });
  const url = await upstreamReturn(login, { scenario, email });
  return { login, url, jar, email };
}

/** Consent page reached by a good login: its form and the browser's cookie. */
async function toConsent(client, email = freshEmail('consent')) {
  const { url, jar, login } = await loginUpTo(client, { email });
  const r = await call(url, { jar });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  return { form: consentForm(r.text), cookie: { name: login.cookieName, value: jar.get(login.cookieName) }, jar, email, login };
}

function postConsent(fields, { cookie, origin = BASE } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (cookie) headers.cookie = `${cookie.name}=${cookie.value}`;
  if (origin) headers.origin = origin;
  return call(`${BASE}/consent`, { method: 'POST', headers, body: new URLSearchParams(fields).toString() });
}

describe('forged ID tokens: 403 id_token_rejected, nothing but the used state stored', () => {
  const scenarios = [
    ['ID-01', 'alg none', 'alg-none'],
    ['ID-02', 'HS256 keyed with the provider\'s public key', 'alg-hs256'],
    ['ID-03', 'an RS256 signature labelled RS512', 'alg-rs512-label'],
    ['ID-04', 'the provider\'s kid, another key', 'wrong-key'],
    ['ID-05', 'an unknown kid', 'unknown-kid'],
    ['ID-06', 'another issuer', 'wrong-issuer'],
    ['ID-07', 'another audience', 'wrong-audience'],
    ['ID-08', 'an extra audience without azp', 'extra-audience-without-azp'],
    ['ID-09', 'an azp naming another client', 'wrong-azp'],
    ['ID-10', 'another nonce', 'wrong-nonce'],
    ['ID-11', 'no nonce', 'no-nonce'],
    ['ID-12', 'expired', 'expired'],
    ['ID-13', 'not yet valid (nbf)', 'not-yet-valid'],
    ['ID-14', 'issued in the future', 'issued-in-future'],
    ['ID-15', 'no exp', 'no-exp'],
  ];
  let client;
  for (const [id, name, scenario] of scenarios) {
    attack(id, name, async () => {
      client ??= await newClient();
      const { url, jar } = await loginUpTo(client, { scenario });
      const snap = await snapshot();
      assertPage(await call(url, { jar }), 403, 'id_token_rejected', name);
      await assertOnly(snap, USED_STATE, name, { upstream: 'any' });
    });
  }
});

describe('email-domain bypasses (ALLOWED_EMAIL_DOMAIN=example.com): 403, nothing issued', () => {
  const emails = [
    ['EM-01', 'another domain', 'mallory@evil.example', 'domain_not_allowed'],
    ['EM-02', 'a subdomain of the allowed one', 'mallory@sub.example.com', 'domain_not_allowed'],
    ['EM-03', 'the allowed domain as a suffix of another', 'mallory@notexample.com', 'domain_not_allowed'],
    ['EM-04', 'the allowed domain as a prefix of another', 'mallory@example.com.evil.example', 'domain_not_allowed'],
    ['EM-05', 'a Cyrillic look-alike of the allowed domain', 'mallory@exаmple.com', 'domain_not_allowed'],
    ['EM-06', 'the allowed domain in a plus-address local part', 'mallory+example.com@evil.example', 'domain_not_allowed'],
    ['EM-07', 'the allowed domain in a quoted local part', '"mallory@example.com"@evil.example', 'no_email'],
    ['EM-08', 'two @ signs, the allowed domain last', 'mallory@evil.example@example.com', 'no_email'],
    ['EM-09', 'a trailing dot on the allowed domain', 'mallory@example.com.', 'domain_not_allowed'],
  ];
  let client;
  for (const [id, name, email, code] of emails) {
    attack(id, `${name} (${email}) → 403 ${code}`, async () => {
      client ??= await newClient();
      const { url, jar, login } = await loginUpTo(client, { email });
      const snap = await snapshot();
      // Since issue 10 the refusal page also links back with access_denied.
      assertRefusedWithLink(await call(url, { jar }), login, code, name);
      await assertOnly(snap, USED_STATE, name, { upstream: 'any' });
    });
  }

  attack('EM-10', 'an allowed address the provider marks unverified → 403 email_unverified', async () => {
    const client = await newClient();
    const { url, jar, login } = await loginUpTo(client, { scenario: 'unverified-email' });
    const snap = await snapshot();
    assertRefusedWithLink(await call(url, { jar }), login, 'email_unverified', 'unverified-email');
    await assertOnly(snap, USED_STATE, '', { upstream: 'any' });
  });

  attack('EM-11', 'an ID token without an email → 403 no_email', async () => {
    const client = await newClient();
    const { url, jar, login } = await loginUpTo(client, { scenario: 'no-email' });
    const snap = await snapshot();
    assertRefusedWithLink(await call(url, { jar }), login, 'no_email', 'no-email');
    await assertOnly(snap, USED_STATE, '', { upstream: 'any' });
  });
});

describe('state and login-cookie tampering at /callback: refused before the upstream code is redeemed', () => {
  let client;
  const setup = async () => { client ??= await newClient(); return loginUpTo(client); };

  attack('ST-01', 'a state whose payload was edited (signature kept) → 400 bad_state', async () => {
    const { url, jar } = await setup();
    const u = new URL(url);
    const [body, sig] = splitState(u.searchParams.get('state'));
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString());
    const edited = Buffer.from(JSON.stringify({ ...payload, e: payload.e + 3600 })).toString('base64url');
    u.searchParams.set('state', `${edited}.${sig}`);
    const snap = await snapshot();
    assertPage(await call(u, { jar }), 400, 'bad_state');
    await assertUnchanged(snap);
  });

  attack('ST-02', 'a state signed with another key → 400 bad_state', async () => {
    const { url, jar } = await setup();
    const u = new URL(url);
    u.searchParams.set('state', signState(deriveKeys('someone-else-entirely-0123456789abcdef'), statePayload(u.searchParams.get('state'))));
    const snap = await snapshot();
    assertPage(await call(u, { jar }), 400, 'bad_state');
    await assertUnchanged(snap);
  });

  attack('ST-03', 'an expired state, correctly signed → 400 bad_state', async () => {
    const { url, jar } = await setup();
    const u = new URL(url);
    const payload = statePayload(u.searchParams.get('state'));
    const now = Math.floor(Date.now() / 1000);
    // The payload's `e` is its expiry (src/oauth/flow/login.rs: l = login id, e = expiry).
    assert.ok(payload.e > now, `the state carries its expiry in e: ${JSON.stringify(payload)}`);
    const expired = { ...payload, e: now - 1 };
    u.searchParams.set('state', signState(keys, expired));
    const snap = await snapshot();
    assertPage(await call(u, { jar }), 400, 'bad_state');
    await assertUnchanged(snap);
  });

  attack('ST-04', 'no state → 400 bad_state', async () => {
    const { url, jar } = await setup();
    const u = new URL(url);
    u.searchParams.delete('state');
    const snap = await snapshot();
    assertPage(await call(u, { jar }), 400, 'bad_state');
    await assertUnchanged(snap);
  });

  attack('ST-05', 'the callback in a browser without the login cookie (login CSRF) → 400 other_browser', async () => {
    const { url } = await setup();
    const snap = await snapshot();
    assertPage(await call(url), 400, 'other_browser');
    await assertUnchanged(snap);
  });

  attack('ST-06', 'another login\'s cookie (swapped) → 400 other_browser', async () => {
    const { url } = await setup();
    const other = await setup();
    const snap = await snapshot();
    assertPage(await call(url, { jar: other.jar }), 400, 'other_browser');
    await assertUnchanged(snap);
  });

  attack('ST-07', 'a callback replayed after success → 400 login_replayed, no second consent', async () => {
    const { url, jar } = await setup();
    assert.equal((await call(url, { jar })).status, 200);
    const snap = await snapshot();
    assertPage(await call(url, { jar }), 400, 'login_replayed');
    await assertUnchanged(snap);
  });

  attack('ST-08', 'a fresh upstream code under an already used state → 400 login_replayed', async () => {
    const { login, url, jar, email } = await setup();
    assert.equal((await call(url, { jar })).status, 200);
    const again = await upstreamReturn(login, { email });
    const snap = await snapshot();
    assertPage(await call(again, { jar }), 400, 'login_replayed');
    await assertUnchanged(snap, '', { upstream: 'no-token' });
  });
});

describe('consent tampering at POST /consent: nothing approved, no code, no consent stored', () => {
  let client;
  const setup = async () => { client ??= await newClient(); return toConsent(client); };
  const cases = [
    ['CS-01', 'no CSRF token', 400, 'bad_csrf', (c) => [{ ticket: c.form.ticket, decision: 'approve' }, { cookie: c.cookie }]],
    ['CS-02', 'a forged CSRF token', 400, 'bad_csrf', (c) => [{ ticket: c.form.ticket, csrf: `${c.form.csrf.slice(0, -4)}AAAA`, decision: 'approve' }, { cookie: c.cookie }]],
    ['CS-03', 'a CSRF token made with another key', 400, 'bad_csrf', (c) => [{ ticket: c.form.ticket, csrf: csrfToken(deriveKeys('another-secret-0123456789abcdef0123'), c.form.ticket, c.cookie.value), decision: 'approve' }, { cookie: c.cookie }]],
    ['CS-04', 'no cookie', 400, 'ticket_other_browser', (c) => [{ ...c.form, decision: 'approve' }, { cookie: null }]],
    ['CS-05', 'a foreign Origin', 403, 'foreign_origin', (c) => [{ ...c.form, decision: 'approve' }, { cookie: c.cookie, origin: 'https://evil.example' }]],
    ['CS-06', 'Origin null', 403, 'foreign_origin', (c) => [{ ...c.form, decision: 'approve' }, { cookie: c.cookie, origin: 'null' }]],
    ['CS-07', 'no decision', 400, 'no_decision', (c) => [{ ...c.form }, { cookie: c.cookie }]],
    ['CS-08', 'a garbled ticket', 400, 'bad_ticket', (c) => [{ ticket: `${c.form.ticket}x`, csrf: c.form.csrf, decision: 'approve' }, { cookie: c.cookie }]],
    // Issue 15: the site choice can only narrow what the sealed ticket offered.
    ['CS-12', 'a site the page did not offer', 400, 'site_not_offered', (c) => [{ ...c.form, decision: 'approve', all_sites: '0', site: 'evil.example' }, { cookie: c.cookie }]],
    ['CS-13', 'all sites and a particular site together', 400, 'sites_ambiguous', (c) => [{ ...c.form, decision: 'approve', all_sites: '1', site: 'example.com' }, { cookie: c.cookie }]],
    ['CS-14', 'only the checked sites, none checked', 400, 'no_sites_chosen', (c) => [{ ...c.form, decision: 'approve', all_sites: '0' }, { cookie: c.cookie }]],
    ['CS-15', 'a site choice that is neither 1 nor 0', 400, 'sites_unreadable', (c) => [{ ...c.form, decision: 'approve', all_sites: 'all' }, { cookie: c.cookie }]],
  ];
  for (const [id, name, status, code, build] of cases) {
    attack(id, `${name} → ${status} ${code}`, async () => {
      const c = await setup();
      const [fields, opts] = build(c);
      const snap = await snapshot();
      assertPage(await postConsent(fields, opts), status, code, name);
      await assertUnchanged(snap, name);
    });
  }

  attack('CS-09', 'another user\'s ticket with my cookie and token (cross-user) → 400 ticket_other_browser', async () => {
    const victim = await setup();
    const me = await setup();
    const snap = await snapshot();
    const r = await postConsent({ ticket: victim.form.ticket, csrf: csrfToken(keys, victim.form.ticket, me.cookie.value), decision: 'approve' }, { cookie: me.cookie });
    assertPage(r, 400, 'ticket_other_browser');
    await assertUnchanged(snap);
  });

  attack('CS-10', 'an approval replayed → 400 ticket_used, no second code', async () => {
    const c = await setup();
    const first = await postConsent({ ...c.form, decision: 'approve' }, { cookie: c.cookie });
    assert.equal(first.status, 302, first.text.slice(0, 200));
    const snap = await snapshot();
    assertPage(await postConsent({ ...c.form, decision: 'approve' }, { cookie: c.cookie }), 400, 'ticket_used');
    await assertUnchanged(snap);
  });

  attack('CS-11', 'approve after deny → 400 ticket_used, no code', async () => {
    const c = await setup();
    assert.equal((await postConsent({ ...c.form, decision: 'deny' }, { cookie: c.cookie })).status, 302);
    const snap = await snapshot();
    assertPage(await postConsent({ ...c.form, decision: 'approve' }, { cookie: c.cookie }), 400, 'ticket_used');
    await assertUnchanged(snap);
  });
});

// Issue 10's protocol edges, through the real sign-in at the rogue
// provider.
describe('issue 10 edges through the real sign-in', () => {
  let client;
  const setup = async () => { client ??= await newClient(); return client; };

  attack('RU-31', 'the upstream provider answers access_denied → 403 upstream_denied page linking back (no 302), no code redeemed upstream', async () => {
    const { url, jar, login } = await loginUpTo(await setup(), { scenario: 'upstream-error:access_denied' });
    const snap = await snapshot();
    const r = await call(url, { jar });
    // Was a 302 to the client before issue 10 (RFC 9700 §4.11.2).
    assertRefusedWithLink(r, login, 'upstream_denied', 'access_denied');
    await assertOnly(snap, USED_STATE);
  });

  attack('RU-32', 'Deny on the consent page (control) → still a 302 to the client with access_denied, state and iss; no code, no consent', async () => {
    const c = await toConsent(await setup());
    const snap = await snapshot();
    const r = await postConsent({ ...c.form, decision: 'deny' }, { cookie: c.cookie });
    assert.equal(r.status, 302, r.text.slice(0, 300));
    const back = new URL(r.location);
    assert.equal(`${back.origin}${back.pathname}`, c.login.redirectUri);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), c.login.state);
    assert.equal(back.searchParams.get('iss'), BASE);
    assert.equal(back.searchParams.get('code'), null);
    // The ticket is spent (CS-11); nothing else.
    await assertOnly(snap, USED_TICKET);
  });

  attack('RU-37', 'client_name with U+200B → 400 invalid_client_metadata; an RTL name is isolated in <bdi> on the consent page', async () => {
    const snap = await snapshot();
    for (const name of ['Cla\u200Bude', '\u200DApp', 'App\uFEFF']) {
      const r = await register({ client_name: name, redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'none' });
      assertOAuthError(r, 400, 'invalid_client_metadata', JSON.stringify(name));
      assert.match(r.json.error_description, /zero-width/, JSON.stringify(name));
    }
    await assertUnchanged(snap);
    const rtl = 'שלום App';
    const named = await registerClient({ client_name: rtl, redirect_uris: ['http://127.0.0.1:9/cb'] });
    const { url, jar } = await loginUpTo(named);
    const page = await call(url, { jar });
    assert.equal(page.status, 200, page.text.slice(0, 300));
    const shown = [...page.text.matchAll(new RegExp(rtl, 'g'))].length;
    const isolated = [...page.text.matchAll(new RegExp(`<bdi>${rtl}</bdi>`, 'g'))].length;
    assert.ok(shown > 0 && isolated === shown, `every mention of the name is in <bdi> (${isolated} of ${shown})`);
  });

  attack('RU-39', 'a loopback client\'s consent is asked once across ephemeral ports (RFC 8252 §7.3)', async () => {
    const loop = await registerClient({ client_name: 'attack: loopback ports', redirect_uris: ['http://localhost/cb'] });
    const email = freshEmail('ports');

    const jar1 = new CookieJar();
    const login1 = await beginLogin(BASE, loop, { jar: jar1, upstreamIssuer: UPSTREAM, redirectUri: 'http://localhost:50001/cb' });

    const consentPage = await call(await upstreamReturn(login1, { email }), { jar: jar1 });
    assert.equal(consentPage.status, 200, 'the first port asks for consent');
    const approved = await postConsent({ ...consentForm(consentPage.text), decision: 'approve' }, { cookie: { name: login1.cookieName, value: jar1.get(login1.cookieName) } });
    assert.equal(approved.status, 302, approved.text.slice(0, 300));
    assert.ok(new URL(approved.location).searchParams.get('code'));
    const jar2 = new CookieJar();
    const login2 = await beginLogin(BASE, loop, { jar: jar2, upstreamIssuer: UPSTREAM, redirectUri: 'http://localhost:50002/cb' });
    const r = await call(await upstreamReturn(login2, { email }), { jar: jar2 });
    assert.equal(r.status, 302, `another port: no second consent page (${r.status})`);
    const back = new URL(r.location);
    assert.equal(`${back.origin}${back.pathname}`, 'http://localhost:50002/cb', 'the code goes to the new port');
    assert.ok(back.searchParams.get('code'));
    assert.equal(back.searchParams.get('state'), login2.state);
  });

  attack('ID-16', '20 ID tokens each naming another unknown kid → 403 id_token_rejected each; at most one key-set fetch a minute, nothing stored but used states', async () => {
    await setup();
    const logins = [];
    for (let i = 0; i < 20; i++) logins.push(await loginUpTo(client, { scenario: `unknown-kid:${i}-${randomBytes(3).toString('hex')}` }));
    const started = Date.now();
    const snap = await snapshot();
    for (const { url, jar } of logins) assertPage(await call(url, { jar }), 403, 'id_token_rejected');
    const minutes = Math.floor((Date.now() - started) / 60_000);
    await assertOnly(snap, USED_STATE, '', { upstream: 'any' });
    const fetches = (await callsSince(snap)).upstream.filter((r) => r.path === '/jwks').length;
    assert.ok(fetches <= 1 + minutes, `${fetches} key-set fetches for 20 unknown kids in ${minutes + 1} minute(s)`);
  });

  attack('SX-01', 'a signed-in person\'s email appears nowhere in the store, neither plain nor as a bare SHA-256 (a staff list would reverse it)', async () => {
    const email = freshEmail('staff');
    const snap = await snapshot();
    const c = await toConsent(await setup(), email);
    const approved = await postConsent({ ...c.form, decision: 'approve' }, { cookie: c.cookie });
    assert.equal(approved.status, 302, approved.text.slice(0, 300));
    // Control: the sign-in did store the person's consent, so the search below looks at real entries.
    const added = changesSince(snap).added;
    assert.ok(added.some((k) => /consent/i.test(k)), `a consent was stored: ${added.join(', ')}`);
    const sha = (s) => createHash('sha256').update(s).digest();
    const guesses = [email, email.toLowerCase()].flatMap((e) => [e, `user:${e}`]).flatMap((e) => [
      e, sha(e).toString('hex'), sha(e).toString('base64url'), sha(e).toString('base64'),
    ]);
    const store = dumpState(process.env.ATTACK_PERSIST_DIR);
    for (const [name, value] of store) {
      for (const g of guesses) {
        // A 16-character prefix catches truncated marks too.
        const probe = g.includes('@') ? g : g.slice(0, 16);
        assert.ok(!name.includes(probe) && !String(value).includes(probe), `${name} holds ${probe}`);
      }
    }
  });
});
