// Acceptance (issue 15): connections made with a Plausible key on /mcp,
// on /connections. On /mcp the user is the key, so nobody signs in: the
// browser that approved a key grant gets a key session cookie and sees
// what that key connected; any other browser enters the key again; an
// admin finds key grants among a client's connections, shown by the key's
// fingerprint, never the key. Each connection is made over HTTP the way
// a person's browser goes through the key page and the consent page
// (support/key-flow.mjs); the admin signs in through the real upstream
// login in Chromium.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { launchChromium } from './support/browser.mjs';
import {
  BASE, assertTokenError, authorizationParams, pkce, randomState, refreshRequest, registerClient, tokenRequest,
} from './oauth-helpers.mjs';
import { CookieJar, call, pageErrorCode, retrying } from './login-helpers.mjs';
import { addStandInKey, mcpCall, mcpResourceOf } from './key-flow.mjs';
import { KeyFlowBrowser, formFor, formsOf } from './support/key-flow.mjs';

const MCP = mcpResourceOf();
const ADMIN = 'connections.admin@example.com';
const SITE = 'example.com';

let browser;
before(async () => {
  browser = await launchChromium();
});
after(async () => { await browser?.close(); });

/** A Plausible key of this test's own, which the stand-in lets read SITE only. */
async function newKey(label) {
  const key = `e2e-${label}-${randomBytes(9).toString('base64url')}`;
  await addStandInKey(key, [SITE]);
  return key;
}

/**
 * A client connected to /mcp with `key` by a browser (returned, with its
 * cookie jar) going through the key page and the consent page.
 */
async function connectWithKey(name, key) {
  const client = await registerClient({ client_name: name, redirect_uris: ['http://127.0.0.1:9/cb'] });
  const { verifier, challenge } = pkce();
  const params = { ...authorizationParams(client, { challenge, state: randomState() }), resource: MCP };
  const agent = new KeyFlowBrowser({ base: BASE, key, sites: [SITE] });
  const back = await agent.authorize(`${BASE}/authorize?${new URLSearchParams(params)}`);
  assert.match(back.code ?? '', /^pmcp_ac_/, back.location);
  const r = await tokenRequest({
    grant_type: 'authorization_code', client_id: client.client_id, code: back.code, code_verifier: verifier,
    redirect_uri: client.redirect_uris[0], resource: MCP,
  });
  assert.equal(r.status, 200, r.text);
  return { client, tokens: r.json, agent };
}

/** The client ids a page lists in `section` (`.key`, `.client-view`, …). */
function listed(html, section) {
  const start = html.indexOf(`<section class="${section}`);
  if (start < 0) return [];
  const end = html.indexOf('</section>', start);
  return [...html.slice(start, end).matchAll(/data-client-id="([^"]+)"/g)].map((m) => m[1]);
}

/** The revoke form of `clientId`'s row, as { csrf, pair }. */
function revokeForm(html, clientId) {
  const at = html.indexOf(`data-client-id="${clientId}"`);
  assert.ok(at >= 0, `${clientId} is listed`);
  const form = formsOf(html.slice(at)).find((f) => f.fields.some((x) => x.name === 'action' && x.value === 'revoke'));
  const field = (n) => form.fields.find((x) => x.name === n)?.value;
  return { csrf: field('csrf'), pair: field('pair') };
}

const fingerprintOf = (html) => html.match(/<code class="fingerprint">([^<]*)<\/code>/)?.[1];

describe('connections made with a Plausible key', () => {
  test('the browser that approved sees the key\'s connection, revokes it, and its tokens die', retrying(async () => {
    const key = await newKey('approver');
    const { client, tokens, agent } = await connectWithKey('Key app', key);
    assert.equal((await mcpCall(tokens.access_token)).status, 200);

    // The approval set the key session cookie: __Host-, HttpOnly, Lax, 30 minutes, no key in it.
    const approval = agent.steps.find((s) => s.step === 'consent');
    const set = approval.res.headers.getSetCookie().find((c) => c.startsWith('__Host-pmcp_connections_key='));
    assert.ok(set, 'the key session cookie');
    for (const attr of ['Path=/', 'Secure', 'HttpOnly', 'SameSite=Lax', 'Max-Age=1800']) assert.ok(set.includes(attr), attr);
    assert.ok(!set.includes(key));

    const page = await call(`${BASE}/connections`, { jar: agent.jar });
    assert.equal(page.status, 200, page.text);
    assert.match(page.res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
    assert.deepEqual(listed(page.text, 'key'), [client.client_id]);
    assert.match(fingerprintOf(page.text) ?? '', /^[0-9a-f]{8}$/);
    // The grant's sites: the one chosen on the consent page.
    const sites = page.text.match(/<dd class="sites">([\s\S]*?)<\/dd>/)?.[1] ?? '';
    assert.deepEqual([...sites.matchAll(/<code>([^<]*)<\/code>/g)].map((m) => m[1]), [SITE]);
    assert.ok(!page.text.includes(key), 'the page never shows the key');
    assert.ok(!page.text.includes('Signed in as'), 'nobody signed in');

    const { csrf, pair } = revokeForm(page.text, client.client_id);
    const revoked = await call(`${BASE}/connections`, {
      jar: agent.jar, method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
      body: new URLSearchParams({ csrf, action: 'revoke', pair }).toString(),
    });
    assert.equal(revoked.status, 303, revoked.text);
    assert.equal(revoked.location, '/connections');
    const after = await call(`${BASE}/connections`, { jar: agent.jar });
    assert.deepEqual(listed(after.text, 'key'), []);
    const dead = await mcpCall(tokens.access_token);
    assert.equal(dead.status, 401, dead.text);
    assert.match(dead.res.headers.get('www-authenticate'), /error="invalid_token"/);
    assertTokenError(await refreshRequest(client, tokens.refresh_token), 400, 'invalid_grant', 'revoked refresh');
  }));

  test('Deny on the consent page opens no view of the key\'s connections', retrying(async () => {
    const key = await newKey('denier');
    const client = await registerClient({ client_name: 'Denied key app', redirect_uris: ['http://127.0.0.1:9/cb'] });
    const params = { ...authorizationParams(client, { challenge: pkce().challenge, state: randomState() }), resource: MCP };
    const agent = new KeyFlowBrowser({ base: BASE, key, sites: [SITE], approve: false });
    const back = await agent.authorize(`${BASE}/authorize?${new URLSearchParams(params)}`);
    assert.equal(back.params.error, 'access_denied', back.location);
    assert.equal(back.code, undefined);
    assert.equal(agent.jar.get('__Host-pmcp_connections_key'), undefined, 'no key session after Deny');
    const page = await call(`${BASE}/connections`, { jar: agent.jar });
    assert.ok(formFor(page.text, '/connections/key'), 'the signed-out page, with the key form');
  }));

  test('another browser enters the key again and sees what the key connected; another key sees nothing', retrying(async () => {
    const key = await newKey('teammate');
    const { client, tokens } = await connectWithKey('Shared key app', key);
    const jar = new CookieJar();
    const signedOut = await call(`${BASE}/connections`, { jar });
    assert.equal(signedOut.status, 200);
    const form = formFor(signedOut.text, '/connections/key');
    assert.ok(form, 'the signed-out page offers the key form');
    assert.equal(form.attrs.autocomplete, 'off');
    assert.ok(form.fields.some((f) => f.name === 'api_key' && f.type === 'password'));
    assert.ok(jar.get('__Host-pmcp_connections_form'), 'the form is bound to this browser');
    const csrf = form.fields.find((f) => f.name === 'csrf').value;
    const enter = (fields, headers = {}) => call(`${BASE}/connections/key`, {
      jar, method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE, ...headers },
      body: new URLSearchParams(fields).toString(),
    });

    // Refusals first: a token from nowhere, then something that is no key.
    const forged = await enter({ api_key: key });
    assert.equal(forged.status, 403, forged.text);
    assert.equal(pageErrorCode(forged.text), 'csrf');
    const notKey = await enter({ csrf, api_key: 'not a key' });
    assert.equal(notKey.status, 400, notKey.text);
    assert.equal(pageErrorCode(notKey.text), 'not_a_key');
    assert.equal(jar.get('__Host-pmcp_connections_key'), undefined, 'no session from a refusal');

    // The key itself, as pasted (surrounding blanks forgiven).
    const entered = await enter({ csrf, api_key: ` ${key}\n` });
    assert.equal(entered.status, 303, entered.text);
    assert.equal(entered.location, '/connections');
    const page = await call(`${BASE}/connections`, { jar });
    assert.deepEqual(listed(page.text, 'key'), [client.client_id]);
    assert.ok(!page.text.includes(key));
    assert.equal((await mcpCall(tokens.access_token)).status, 200, 'looking changed nothing');

    // Another (well-formed, never connected) key, in a fresh browser: an empty list.
    const other = new CookieJar();
    const blank = await call(`${BASE}/connections`, { jar: other });
    const otherCsrf = formFor(blank.text, '/connections/key').fields.find((f) => f.name === 'csrf').value;
    const r = await call(`${BASE}/connections/key`, {
      jar: other, method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: BASE },
      body: new URLSearchParams({ csrf: otherCsrf, api_key: `never-connected-${randomBytes(6).toString('hex')}` }).toString(),
    });
    assert.equal(r.status, 303, r.text);
    const none = await call(`${BASE}/connections`, { jar: other });
    assert.deepEqual(listed(none.text, 'key'), []);
    assert.ok(none.text.includes('No application is connected with this key.'));
    assert.notEqual(fingerprintOf(none.text), fingerprintOf(page.text));
  }));

  test('an admin finds a key grant among a client\'s connections by its fingerprint, and revokes it', retrying(async () => {
    const key = await newKey('admin-view');
    const { client, tokens, agent } = await connectWithKey('Key app for the admin', key);
    const own = await call(`${BASE}/connections`, { jar: agent.jar });
    const fingerprint = fingerprintOf(own.text);
    assert.match(fingerprint ?? '', /^[0-9a-f]{8}$/);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/connections`);
    await page.click('a.button[href="/connections/login"]');
    await page.waitForSelector('input[name="email"]');
    await page.fill('input[name="email"]', ADMIN);
    await Promise.all([page.waitForURL(`${BASE}/connections`), page.click('button[type="submit"]')]);
    await page.waitForSelector('section.admin');
    await page.fill('input[name="client"]', client.client_id);
    await Promise.all([page.waitForURL(/\?client=/), page.click('form[method="get"] button')]);
    const row = page.locator(`.client-view .connection[data-client-id="${client.client_id}"]`);
    assert.equal(await row.count(), 1);
    const who = await row.locator('dd.user').innerText();
    assert.ok(who.includes(`Plausible key ${fingerprint}`), who);
    assert.ok(!(await page.content()).includes(key), 'the admin never sees the key');
    await Promise.all([page.waitForURL(/\?client=/), row.locator('button', { hasText: 'Revoke' }).click()]);
    assert.equal(await page.locator(`.client-view .connection[data-client-id="${client.client_id}"]`).count(), 0);
    const dead = await mcpCall(tokens.access_token);
    assert.equal(dead.status, 401, dead.text);
    await context.close();
  }));
});
