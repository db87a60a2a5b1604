// Acceptance: connected applications, in a real browser. People sign in
// to /connections through the real upstream login (devstack/idp.mjs in
// Chromium), see the applications connected to their account, and
// revoke them; an admin (ADMIN_EMAILS) looks up a user and a client,
// revokes all of a user's grants, and blocks a client. The applications
// connect through the test identity hook (the flow's own code path from
// the consent on: code, grant, listings), so each scenario starts from
// known grants.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './support/browser.mjs';
import {
  BASE, assertTokenError, assertTokenRejected, assertTokenWorks, assertTokens, authorizationParams, authorizeCode,
  authorizeRaw, pkce, randomState, redeemForm, refreshRequest, registerClient, tokenRequest,
} from './oauth-helpers.mjs';
import { call, pageErrorCode, retrying } from './login-helpers.mjs';

const stamp = Date.now().toString(36);
const email = (name) => `${name}.${stamp}@example.com`;
const ADMIN = 'connections.admin@example.com';

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => { await browser?.close(); });

/** A client of `name` connected by `who`: its tokens. */
async function connect(name, who) {
  const client = await registerClient({ client_name: name, redirect_uris: ['http://127.0.0.1:9/cb'] });
  const grant = await authorizeCode(client, { identity: who });
  const tokens = assertTokens(await tokenRequest(redeemForm(client, grant)));
  return { client, tokens };
}

/** Signs in at /connections in a fresh browser profile; returns the tab. */
async function signIn(who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const answers = [];
  page.on('response', (res) => answers.push({ url: new URL(res.url()), status: res.status(), headers: res.headers() }));
  await page.goto(`${BASE}/connections`);
  await page.click('a.button[href="/connections/login"]');
  await page.waitForSelector('input[name="email"]');
  await page.fill('input[name="email"]', who);
  await Promise.all([page.waitForURL(`${BASE}/connections`), page.click('button[type="submit"]')]);
  await page.waitForSelector('strong.email');
  assert.equal((await page.locator('strong.email').innerText()).trim(), who);
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === '__Host-pmcp_connections');
  assert.ok(session, 'the session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');
  assert.ok(!cookies.some((c) => c.name.startsWith('__Host-pmcp_login_')), 'the login cookie is cleared');
  return { context, page, answers, cookie: `${session.name}=${session.value}` };
}

/** The client ids shown in a section (`.own`, `.user-view`, `.client-view`). */
async function shown(page, section = '.own') {
  return page.locator(`${section} .connection`).evaluateAll((els) => els.map((e) => e.dataset.clientId));
}

/** Waits (bounded) until `token` is refused at /internal: a revoke-all fans out by alarm. */
async function untilRejected(token, label) {
  for (let i = 0; i < 200; i++) {
    const r = await call(`${BASE}/internal`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    if (r.status === 401) return assertTokenRejected(token, { label });
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`${label}: still accepted`);
}

describe('connected applications', () => {
  test('the landing page says what this is and where to connect', async () => {
    const r = await call(`${BASE}/`);
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('content-security-policy'), /default-src 'none'/);
    for (const needle of [`${BASE}/internal`, `${BASE}/mcp`, 'claude mcp add --transport http', 'MCP Inspector', 'Cursor', 'href="/connections"']) {
      assert.ok(r.text.includes(needle), needle);
    }
  });

  test('a person sees two applications, revokes one: its token dies, the other works', retrying(async () => {
    const alice = email('alice');
    // Right-to-left letters, not a bidi control: registration refuses
    // controls since issue 10; <bdi> still has to isolate the letters.
    const a = await connect('Alpha <b>app</b> \u05e9\u05dc\u05d5\u05dd', alice);
    const b = await connect('Beta app', alice);
    const tab = await signIn(alice);
    // The signed-in page (the last answer at /connections).
    const answer = tab.answers.filter((x) => x.url.pathname === '/connections' && x.status === 200).at(-1);
    const csp = answer.headers['content-security-policy'];
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.ok(!/script-src|unsafe-inline/.test(csp), csp);
    assert.deepEqual((await shown(tab.page)).sort(), [a.client.client_id, b.client.client_id].sort());
    const alpha = tab.page.locator(`.connection[data-client-id="${a.client.client_id}"]`);
    // The name is text, isolated in <bdi>: no markup from the client.
    assert.equal(await alpha.locator('h2 bdi').innerText(), 'Alpha <b>app</b> \u05e9\u05dc\u05d5\u05dd');
    assert.equal(await alpha.locator('h2 b').count(), 0);
    assert.match(await alpha.innerText(), /Scopes\s+mcp/);
    assert.match(await alpha.innerText(), /Ends\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    assert.match(await alpha.innerText(), /Last refreshed\s+\d{4}-/);
    assert.equal(await tab.page.locator('dt:text-is("User")').count(), 0, 'no emails for non-admins');
    await Promise.all([tab.page.waitForURL(`${BASE}/connections`), alpha.locator('button', { hasText: 'Revoke' }).click()]);
    assert.deepEqual(await shown(tab.page), [b.client.client_id]);
    await assertTokenRejected(a.tokens.access_token, { label: 'revoked app' });
    assertTokenError(await refreshRequest(a.client, a.tokens.refresh_token), 400, 'invalid_grant', 'revoked refresh');
    await assertTokenWorks(b.tokens.access_token, { label: 'the other app' });
    await tab.context.close();
  }));

  test("a non-admin cannot reach another user's grants", retrying(async () => {
    const carol = email('carol');
    const bob = email('bob');
    await connect('Carol app', carol);
    const bobs = await connect('Bob app', bob);
    const tab = await signIn(carol);
    const csrf = await tab.page.locator('input[name="csrf"]').first().getAttribute('value');
    const listed = JSON.parse((await call(`${BASE}/__test/listings?${new URLSearchParams({ email: bob })}`)).text);
    const bobPair = listed.pairs[0].routing;
    const post = (fields, headers = {}) => call(`${BASE}/connections`, {
      method: 'POST',
      headers: { cookie: tab.cookie, 'content-type': 'application/x-www-form-urlencoded', origin: BASE, ...headers },
      body: new URLSearchParams({ csrf, ...fields }).toString(),
    });
    const forged = await post({ action: 'revoke', pair: bobPair });
    assert.equal(forged.status, 404, forged.text);
    assert.equal(pageErrorCode(forged.text), 'not_found');
    for (const fields of [
      { action: 'revoke_user', user: 'a'.repeat(64) },
      { action: 'revoke_client', client: bobs.client.client_id },
      { action: 'block_client', client: bobs.client.client_id },
      { action: 'find_user', email: bob },
    ]) {
      const r = await post(fields);
      assert.equal(r.status, 403, `${fields.action}: ${r.text}`);
      assert.equal(pageErrorCode(r.text), 'not_admin');
    }
    const view = await call(`${BASE}/connections?client=${encodeURIComponent(bobs.client.client_id)}`, { headers: { cookie: tab.cookie } });
    assert.equal(view.status, 403);
    assert.ok(!view.text.includes(bob));
    // Without the session's CSRF token, or from another origin: refused.
    const noCsrf = await call(`${BASE}/connections`, {
      method: 'POST',
      headers: { cookie: tab.cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'sign_out' }).toString(),
    });
    assert.equal(noCsrf.status, 403);
    assert.equal(pageErrorCode(noCsrf.text), 'csrf');
    const foreign = await post({ action: 'sign_out' }, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    // Without a session at all.
    const anon = await call(`${BASE}/connections`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, action: 'revoke', pair: bobPair }).toString(),
    });
    assert.equal(anon.status, 401);
    // Nothing changed.
    await assertTokenWorks(bobs.tokens.access_token, { label: "bob's app" });
    await tab.context.close();
  }));

  test("an admin sees a user's connections with their email and revokes them all", retrying(async () => {
    const dave = email('dave');
    const one = await connect('Dave one', dave);
    const two = await connect('Dave two', dave);
    const tab = await signIn(ADMIN);
    await tab.page.fill('input[name="email"]', dave.toUpperCase());
    await Promise.all([tab.page.waitForURL(/\/connections\?user=[0-9a-f]{64}$/), tab.page.click('form:has(input[value="find_user"]) button')]);
    assert.ok(!tab.page.url().includes('example.com'), 'the email stays out of the URL');
    assert.deepEqual((await shown(tab.page, '.user-view')).sort(), [one.client.client_id, two.client.client_id].sort());
    assert.equal((await tab.page.locator('.user-view dd.user').first().innerText()).split(' ')[0], dave);
    await Promise.all([tab.page.waitForURL(/\?user=/), tab.page.click('button:text-is("Revoke all of this user\'s grants")')]);
    await untilRejected(one.tokens.access_token, 'first app');
    await untilRejected(two.tokens.access_token, 'second app');
    await tab.context.close();
  }));

  test('an admin blocks a client: /authorize and /token refuse it from then on', retrying(async () => {
    const erin = email('erin');
    const app = await connect('Erin app', erin);
    const tab = await signIn(ADMIN);
    await tab.page.fill('input[name="client"]', app.client.client_id);
    await Promise.all([tab.page.waitForURL(/\?client=/), tab.page.click('form[method="get"] button')]);
    assert.deepEqual(await shown(tab.page, '.client-view'), [app.client.client_id]);
    assert.ok((await tab.page.locator('.client-view').innerText()).includes(erin), 'admins see the email');
    await Promise.all([tab.page.waitForURL(/\?client=/), tab.page.click('button:text-is("Block this application")')]);
    await tab.page.waitForSelector('.client-view p.blocked');
    const { challenge } = pkce();
    const az = await authorizeRaw(authorizationParams(app.client, { challenge, state: randomState() }), { identity: erin });
    assert.equal(az.status, 403, az.text);
    assert.equal(pageErrorCode(az.text), 'client_blocked');
    assert.equal(az.res.headers.get('location'), null);
    assertTokenError(await refreshRequest(app.client, app.tokens.refresh_token), 400, 'unauthorized_client', 'blocked refresh');
    await untilRejected(app.tokens.access_token, 'blocked app');
    // Unblocked, it may ask again.
    await Promise.all([tab.page.waitForURL(/\?client=/), tab.page.click('button:text-is("Unblock")')]);
    assert.equal(await tab.page.locator('.client-view p.blocked').count(), 0);
    const again = await authorizeRaw(authorizationParams(app.client, { challenge, state: randomState() }), { identity: erin });
    assert.equal(again.status, 302, again.text);
    await tab.context.close();
  }));
});
