// Acceptance (issue 15): a grant limited to chosen sites, chosen in a
// real browser. A person signs in through the real upstream login
// (devstack/idp.mjs in Chromium), picks one of the deployment's sites on
// the consent page (PLAUSIBLE_SITES of the stack: example.com,
// shop.example.com, trends.example.com), and approves. The token then
// reads that site only: any other is refused with the exact tool error
// before any request reaches Plausible, list_sites shows the one site, a
// refreshed token and a later sign-in (which skips the page) carry the
// same limit, and /connections shows it. No test identity header is sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startLoopback } from './support/browser.mjs';
import {
  BASE, assertTokens, authorizationParams, internalCall, pkce, randomState, redeemForm, refreshRequest, registerClient,
  tokenRequest,
} from './oauth-helpers.mjs';
import { retrying } from './login-helpers.mjs';

const STUB = process.env.PLAUSIBLE_STUB_URL;
const stamp = Date.now().toString(36);
const SCREENSHOT = '/tmp/sites-consent.png';
const CONFIGURED = ['example.com', 'shop.example.com', 'trends.example.com'];
const REFUSAL = 'Error: Invalid argument `site_id`: "example.com" is not a site this connection may read; it may read only "shop.example.com". To read another site, the user reconnects and chooses it on the consent page.';

let browser;
let listener;
let REDIRECT_URL;

before(async () => {
  // The client's loopback redirect URI (RFC 8252 §7.3): the browser ends there.
  listener = await startLoopback((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>Client</title><p>Back at the client.</p>');
  });
  REDIRECT_URL = `${listener.origin}/cb`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await listener?.close();
});

/** The stand-in's request log length (each Plausible request it answered). */
async function plausibleRequests() {
  const r = await fetch(`${STUB}/__stand-in/requests`);
  assert.equal(r.status, 200);
  const body = await r.json();
  return Array.isArray(body) ? body.length : body.requests.length;
}

/** Signs in at the IdP's form if it is showing (it may remember the session). */
async function signInIfAsked(page, email) {
  const here = new URL(page.url());
  if (here.origin === BASE || !here.pathname.startsWith('/interaction/')) return false;
  await page.waitForSelector('input[name="email"]');
  await page.fill('input[name="email"]', email);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
  return true;
}

/**
 * Opens an authorization for `client` in the tab. Resolves with what a
 * redemption needs and a promise of the worker's answer that carries the
 * code (the /callback's or the /consent post's 302 to the client).
 */
async function authorize(page, client) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  const params = new URLSearchParams(authorizationParams(client, { redirectUri: REDIRECT_URL, challenge, state }));
  const codeAnswer = page.waitForResponse((res) => {
    const u = new URL(res.url());
    return u.origin === BASE && ['/callback', '/consent'].includes(u.pathname) && res.status() === 302
      && (res.headers().location ?? '').startsWith(REDIRECT_URL);
  }, { timeout: 30_000 });
  codeAnswer.catch(() => {});
  await page.goto(`${BASE}/authorize?${params}`);
  return { verifier, state, codeAnswer };
}

/** The code in the worker's 302 to the client. */
async function codeOf(answer, state) {
  const location = new URL((await answer).headers().location);
  assert.equal(location.searchParams.get('state'), state);
  assert.equal(location.searchParams.get('iss'), BASE);
  const code = location.searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  return code;
}

async function redeem(client, code, verifier) {
  return assertTokens(await tokenRequest(redeemForm(client, { code, verifier, redirectUri: REDIRECT_URL })));
}

/** tools/call on /internal: the JSON-RPC result. */
async function callTool(token, name, args) {
  const r = await internalCall(token, { params: { name, arguments: args } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.error, undefined, r.text);
  return r.json.result;
}

/** The token reads shop.example.com only, and says so exactly. */
async function assertLimitedToShop(token, label) {
  const before = await plausibleRequests();
  const refused = await callTool(token, 'get_timeseries', { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' });
  assert.equal(refused.isError, true, `${label}: ${JSON.stringify(refused)}`);
  assert.equal(refused.content[0].text, REFUSAL, label);
  assert.equal(await plausibleRequests(), before, `${label}: refused before any request to Plausible`);
  const listed = await callTool(token, 'list_sites', {});
  assert.equal(listed.isError, false, label);
  assert.equal(listed.structuredContent.source, 'grant', label);
  assert.deepEqual(listed.structuredContent.sites, [{ site_id: 'shop.example.com', timezone: 'Europe/Berlin' }], label);
  const allowed = await callTool(token, 'get_timeseries', { site_id: 'shop.example.com', date_range: '2024-03-01,2024-03-07' });
  assert.equal(allowed.isError, false, `${label}: ${JSON.stringify(allowed)}`);
  assert.equal(allowed.structuredContent.results.length, 7, label);
}

describe('per-site grants chosen on the consent page, in a real browser', () => {
  test('pick one of the sites, approve: other sites refused, list_sites shows one, refresh and a later sign-in keep it, /connections shows it', retrying(async (t) => {
    const user = `sites.${stamp}.${Math.random().toString(36).slice(2, 6)}@example.com`;
    const client = await registerClient({ client_name: 'Sites E2E Client', redirect_uris: [REDIRECT_URL] });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const first = await authorize(page, client);
      assert.equal(await signInIfAsked(page, user), true, 'a new person signs in');
      await page.waitForSelector('button[name="decision"][value="approve"]');

      // The chooser: all sites preselected, each configured site offered, none checked.
      const allSites = page.locator('input[type="radio"][name="all_sites"][value="1"]');
      const onlyChecked = page.locator('input[type="radio"][name="all_sites"][value="0"]');
      assert.equal(await allSites.isChecked(), true, 'all sites is the default');
      assert.equal(await onlyChecked.isChecked(), false);
      const boxes = page.locator('input[type="checkbox"][name="site"]');
      assert.deepEqual(await boxes.evaluateAll((els) => els.map((e) => e.value)), CONFIGURED);
      assert.deepEqual(await boxes.evaluateAll((els) => els.map((e) => e.checked)), [false, false, false]);
      assert.match(await page.locator('fieldset.sites legend').innerText(), /Sites it may read/);
      assert.match(await page.locator('fieldset.sites').innerText(), /All sites \(including sites added later\)/);

      await onlyChecked.check();
      await page.locator('input[type="checkbox"][name="site"][value="shop.example.com"]').check();
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      t.diagnostic(`consent page screenshot: ${SCREENSHOT}`);
      await page.click('button[name="decision"][value="approve"]');
      const tokens = await redeem(client, await codeOf(first.codeAnswer, first.state), first.verifier);
      await assertLimitedToShop(tokens.access_token, 'first token');

      // A refreshed token carries the grant's sites.
      const refreshed = assertTokens(await refreshRequest(client, tokens.refresh_token));
      await assertLimitedToShop(refreshed.access_token, 'refreshed token');

      // A later sign-in: the approval covers it, no page, the same sites.
      const second = await authorize(page, client);
      await signInIfAsked(page, user);
      const again = await redeem(client, await codeOf(second.codeAnswer, second.state), second.verifier);
      assert.equal(await page.locator('button[name="decision"]').count(), 0, 'no consent page');
      await assertLimitedToShop(again.access_token, 'second sign-in');

      // /connections names the site.
      await page.goto(`${BASE}/connections`);
      await page.click('a.button[href="/connections/login"]');
      await signInIfAsked(page, user);
      await page.waitForURL(`${BASE}/connections`);
      await page.waitForSelector('strong.email');
      const row = page.locator(`.connection[data-client-id="${client.client_id}"]`);
      assert.equal(await row.locator('dd.sites code').first().innerText(), 'shop.example.com');
      assert.equal(await row.locator('dd.sites code').count(), 1);
      assert.match(await row.locator('dd.sites').innerText(), /A new sign-in of this application gets these sites without asking again/);
    } finally {
      await context.close();
    }
  }));

  test('approving with the default keeps every site readable', retrying(async () => {
    const user = `allsites.${stamp}.${Math.random().toString(36).slice(2, 6)}@example.com`;
    const client = await registerClient({ client_name: 'All Sites Client', redirect_uris: [REDIRECT_URL] });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const flow = await authorize(page, client);
      await signInIfAsked(page, user);
      await page.waitForSelector('button[name="decision"][value="approve"]');
      await page.click('button[name="decision"][value="approve"]');
      const tokens = await redeem(client, await codeOf(flow.codeAnswer, flow.state), flow.verifier);
      for (const site of ['example.com', 'trends.example.com']) {
        const result = await callTool(tokens.access_token, 'get_timeseries', { site_id: site, date_range: '2024-03-01,2024-03-07' });
        assert.equal(result.isError, false, `${site}: ${JSON.stringify(result)}`);
      }
      const listed = await callTool(tokens.access_token, 'list_sites', {});
      assert.deepEqual(listed.structuredContent.sites.map((s) => s.site_id), CONFIGURED);
    } finally {
      await context.close();
    }
  }));
});
