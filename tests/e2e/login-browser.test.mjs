// Acceptance: the real sign-in, in a real browser. The official v1 SDK
// (@modelcontextprotocol/sdk) is the OAuth client of /internal; its
// provider's redirectToAuthorization opens the authorization URL in
// Chromium, where the user signs in at the local OpenID provider
// (devstack/idp.mjs, standing in for Cloudflare Access), sees this
// server's consent page and approves. The client's redirect URI is a
// loopback listener of the test's own, as a native app's would be, and
// the code the browser brings there finishes the SDK's flow. (Playwright's
// page.route cannot stand in for it: it only intercepts the first request
// of a redirect chain, and the second authorization reaches the redirect
// URI at the end of one: /authorize → IdP → /callback → redirect URI.)
// No test identity header is sent anywhere: the upstream login runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startLoopback } from './support/browser.mjs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { SAMPLE_CALLS, assertSampleResult } from './mcp-helpers.mjs';
import { BASE, isWranglerRestart } from './oauth-helpers.mjs';
import { CODES, LOGIN_COOKIE_PREFIX, MESSAGES, WranglerRestart, pageErrorCode, pageText } from './login-helpers.mjs';
import { TestOAuthProvider } from './support/oauth-provider.mjs';

const SERVER_URL = `${BASE}/internal`;
const USER = 'alice.browser@example.com';
const SCREENSHOT = '/tmp/login-browser-consent.png';

let browser;
let REDIRECT_URL;
let listener;
/** Every request the client's redirect URI received, in order. */
const arrivals = [];
const arrivalWaiters = [];

/** The next arrival at the client's redirect URI (rejects after `ms`). */
function nextArrival(ms = 30_000) {
  const arrival = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing reached the redirect URI within ${ms} ms`)), ms);
    timer.unref();
    arrivalWaiters.push((url) => { clearTimeout(timer); resolve(url); });
  });
  // An attempt abandoned after a wrangler reload leaves its waiter unawaited.
  arrival.catch(() => {});
  return arrival;
}

before(async () => {
  // The client's loopback redirect listener (RFC 8252 §7.3).
  listener = await startLoopback((req, res) => {
    const url = new URL(req.url, REDIRECT_URL);
    arrivals.push(url);
    for (const w of arrivalWaiters.splice(0)) w(url);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>Client</title><p>Back at the client. You can close this tab.</p>');
  });
  REDIRECT_URL = `${listener.origin}/callback`;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await listener?.close();
});

/**
 * A browser profile (context) with one tab, that records every response
 * the tab gets and notices wrangler's own "restarted mid-request" answers.
 */
async function openBrowser() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const b = { context, page, responses: [] };
  page.on('response', async (res) => {
    const entry = { url: new URL(res.url()), status: res.status(), method: res.request().method(), headers: res.headers() };
    b.responses.push(entry);
    if (entry.status === 503 && entry.url.origin === BASE) {
      const text = await res.text().catch(() => '');
      if (isWranglerRestart(503, text)) reloads.count++;
    }
  });
  /** Responses received since `mark` (an index into responses). */
  b.since = (mark) => b.responses.slice(mark);
  return b;
}

/**
 * How many of wrangler's own "restarted mid-request" answers (the worker
 * was reloaded because src/ was rebuilt) the browsers or the SDK got.
 */
const reloads = { count: 0 };

/** A fetch for the SDK that turns wrangler's reload answer into WranglerRestart. */
async function sdkFetch(url, init) {
  const res = await fetch(url, init);
  if (res.status === 503) {
    const text = await res.clone().text();
    if (isWranglerRestart(503, text)) {
      reloads.count++;
      throw new WranglerRestart(String(url));
    }
  }
  return res;
}

/**
 * The SDK's OAuthClientProvider (client/auth.d.ts) for a client with a
 * browser: redirectToAuthorization opens the URL in the tab.
 */
class BrowserOAuthProvider extends TestOAuthProvider {
  constructor({ page, redirectUrl, clientName }) {
    super({ redirectUrl, clientName });
    this.page = page;
    this.authorizationUrls = [];
  }

  async redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    await this.page.goto(url.toString());
  }
}

/**
 * Starts the SDK's flow: connect → 401 → discovery → (registration) →
 * the authorization URL opened in the tab. Resolves once the SDK has
 * handed over to the browser (connect rejects with UnauthorizedError).
 */
async function startAuthorization(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider, fetch: sdkFetch });
  const probe = new Client({ name: 'e2e-login-browser', version: '1.0.0' });
  await assert.rejects(probe.connect(transport), (err) => {
    if (err instanceof WranglerRestart) throw err;
    return err instanceof UnauthorizedError;
  });
  assert.equal(provider.authorizationUrls.length > 0, true, 'the SDK opened an authorization URL');
  const az = provider.authorizationUrls.at(-1);
  assert.equal(`${az.origin}${az.pathname}`, `${BASE}/authorize`);
  return transport;
}

/** Finishes the SDK's flow with the code from the redirect and calls a tool. */
async function finishAndCallTool(provider, transport, redirect) {
  await transport.finishAuth(redirect.searchParams.get('code'));
  await transport.close();
  const client = new Client({ name: 'e2e-login-browser', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider, fetch: sdkFetch }));
  try {
    const result = await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries });
    assertSampleResult('get_timeseries', result);
  } finally {
    await client.close();
  }
}

/** Signs in at the IdP's form, if it is showing; returns whether it was. */
async function signInAtIdp(page, email) {
  const here = new URL(page.url());
  if (here.origin === BASE || !here.pathname.startsWith('/interaction/')) return false;
  await page.waitForSelector('input[name="email"]');
  await page.fill('input[name="email"]', email);
  await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
  return true;
}

/** The worker's answers to /callback among `responses`. */
const callbacks = (responses) => responses.filter((r) => r.url.origin === BASE && r.url.pathname === '/callback');

/** Waits for the consent page in the tab and asserts what it says. */
async function assertConsentPage(b, mark, { clientName, clientId, email }) {
  await b.page.waitForSelector('button[name="decision"][value="approve"]');
  assert.equal(new URL(b.page.url()).origin, BASE);
  assert.equal(new URL(b.page.url()).pathname, '/callback');
  const [cb] = callbacks(b.since(mark));
  assert.ok(cb, 'the worker answered /callback');
  assert.equal(cb.status, 200);
  // The page's protections.
  const csp = cb.headers['content-security-policy'] ?? '';
  assert.match(csp, /frame-ancestors 'none'/, csp);
  assert.ok(!/script-src/.test(csp), `no script-src: ${csp}`);
  assert.ok(!/unsafe-inline/.test(csp), `no unsafe-inline: ${csp}`);
  assert.match(csp, /default-src 'none'/, csp);
  assert.ok(csp.includes(`form-action 'self' ${new URL(REDIRECT_URL).origin}`), csp);
  assert.equal(cb.headers['x-frame-options'], 'DENY');
  // What it says: who asks, where it will send you, what it may do, as whom.
  const text = pageText(await b.page.content());
  assert.ok(text.includes(`Allow ${clientName} to access Plausible Analytics?`), text);
  assert.ok(text.includes(clientId), `client id in: ${text}`);
  const dd = async (dt) => (await b.page.locator(`dt:text-is("${dt}") + dd`).innerText()).trim();
  assert.equal(await dd('After approval you will be sent to'), new URL(REDIRECT_URL).hostname);
  assert.equal(await dd('It will be able to'), 'mcp — list the Plausible Analytics sites available through this server and query their statistics (every tool)');
  assert.equal(await dd('Signed in as'), email);
  assert.ok((await dd('Application')).startsWith(clientName));
  // The login cookie is there, as a __Host- cookie.
  const cookies = await b.context.cookies(BASE);
  const login = cookies.find((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX));
  assert.ok(login, 'the __Host- login cookie is set');
  assert.equal(login.secure, true);
  assert.equal(login.httpOnly, true);
  assert.equal(login.path, '/');
  assert.equal(login.sameSite, 'Lax');
}

/**
 * Runs a browser test body again (from its start) when a wrangler reload
 * disturbed it; any other failure fails the test. Browsers the body opens
 * go in `seen` and are closed after each attempt.
 */
function retrying(body, tries = 3) {
  return async (t) => {
    for (let attempt = 1; ; attempt++) {
      const seen = [];
      const reloadsBefore = reloads.count;
      try {
        return await body(t, seen);
      } catch (err) {
        const restarted = err instanceof WranglerRestart || reloads.count > reloadsBefore;
        if (!restarted || attempt >= tries) throw err;
        t.diagnostic(`wrangler reloaded the worker during the test; running it again (${err.message})`);
      } finally {
        for (const b of seen) await b.context.close().catch(() => {});
      }
    }
  };
}

describe('sign-in and consent in a real browser, driven by the official SDK', () => {
  // Shared by the first two tests: one browser profile, one registration.
  let main;
  let provider;

  test('first authorization: sign in at the IdP, consent page, Approve, code → tokens → tools/call', retrying(async (t) => {
    if (main) await main.context.close();
    main = await openBrowser();
    const arrivalsBefore = arrivals.length;
    provider = new BrowserOAuthProvider({ page: main.page, redirectUrl: REDIRECT_URL, clientName: 'Browser E2E Client' });
    const transport = await startAuthorization(provider);
    // The tab is at the IdP's sign-in form (the worker sent it there).
    const idpUrl = new URL(main.page.url());
    assert.notEqual(idpUrl.origin, BASE, 'the browser left for the identity provider');
    assert.match(idpUrl.pathname, /^\/interaction\//);
    const workerAuthorize = main.responses.find((r) => r.url.origin === BASE && r.url.pathname === '/authorize');
    assert.equal(workerAuthorize.status, 302);
    const mark = main.responses.length;
    assert.equal(await signInAtIdp(main.page, USER), true, 'the sign-in form was shown');
    const clientId = provider.clientInformation().client_id;
    await assertConsentPage(main, mark, { clientName: 'Browser E2E Client', clientId, email: USER });
    await main.page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`consent page screenshot: ${SCREENSHOT}`);
    // Nothing reached the client yet.
    assert.equal(arrivals.length, arrivalsBefore);

    const arrived = nextArrival();
    await main.page.click('button[name="decision"][value="approve"]');
    const redirect = await arrived;
    assert.equal(redirect.searchParams.get('state'), provider.states.at(-1));
    assert.equal(redirect.searchParams.get('iss'), BASE);
    assert.match(redirect.searchParams.get('code') ?? '', /^pmcp_ac_/);
    assert.equal(redirect.searchParams.get('error'), null);
    // The browser's form post was accepted (302 to the client) and cleared the login cookie.
    const post = main.responses.find((r) => r.url.origin === BASE && r.url.pathname === '/consent');
    assert.equal(post.method, 'POST');
    assert.equal(post.status, 302);
    assert.ok(!(await main.context.cookies(BASE)).some((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX)), 'the login cookie is cleared');

    await finishAndCallTool(provider, transport, redirect);
  }));

  test('second authorization by the same user and client: no consent page, straight back with a code', retrying(async (t) => {
    assert.ok(provider?.clientInformation(), 'the first test registered a client');
    const registered = provider.clientInformation().client_id;
    provider.invalidateCredentials('tokens');
    const mark = main.responses.length;
    const arrived = nextArrival();
    const transport = await startAuthorization(provider);
    // The IdP may remember the session; if it asks again, sign in again.
    const askedToSignIn = await signInAtIdp(main.page, USER);
    const redirect = await arrived;
    assert.equal(provider.clientInformation().client_id, registered, 'the same registration');
    assert.equal(redirect.searchParams.get('state'), provider.states.at(-1));
    assert.equal(redirect.searchParams.get('iss'), BASE);
    assert.match(redirect.searchParams.get('code') ?? '', /^pmcp_ac_/);
    // The worker answered /callback with the redirect itself: no consent page, no consent post.
    const seen = main.since(mark);
    const [cb] = callbacks(seen);
    assert.equal(cb.status, 302);
    assert.equal(`${new URL(cb.headers.location).origin}${new URL(cb.headers.location).pathname}`, REDIRECT_URL);
    assert.ok(!seen.some((r) => r.url.origin === BASE && r.url.pathname === '/consent'), 'no consent post');
    assert.equal(await main.page.locator('button[name="decision"]').count(), 0);
    t.diagnostic(`the IdP ${askedToSignIn ? 'asked to sign in again' : 'remembered the session'}`);
    await finishAndCallTool(provider, transport, redirect);
  }));

  test('a new client (another registration) asks for consent again; Approve works', retrying(async () => {
    const mark = main.responses.length;
    const other = new BrowserOAuthProvider({ page: main.page, redirectUrl: REDIRECT_URL, clientName: 'Another Browser Client' });
    const transport = await startAuthorization(other);
    await signInAtIdp(main.page, USER);
    const clientId = other.clientInformation().client_id;
    assert.notEqual(clientId, provider.clientInformation().client_id, 'a new registration');
    await assertConsentPage(main, mark, { clientName: 'Another Browser Client', clientId, email: USER });
    const arrived = nextArrival();
    await main.page.click('button[name="decision"][value="approve"]');
    const redirect = await arrived;
    assert.equal(redirect.searchParams.get('state'), other.states.at(-1));
    await finishAndCallTool(other, transport, redirect);
  }));

  test('Deny: back to the client with error=access_denied, its state and iss, no code; consent is asked again next time', retrying(async () => {
    const mark = main.responses.length;
    const denier = new BrowserOAuthProvider({ page: main.page, redirectUrl: REDIRECT_URL, clientName: 'Client To Deny' });
    await startAuthorization(denier);
    await signInAtIdp(main.page, USER);
    const clientId = denier.clientInformation().client_id;
    await assertConsentPage(main, mark, { clientName: 'Client To Deny', clientId, email: USER });
    const arrived = nextArrival();
    await main.page.click('button[name="decision"][value="deny"]');
    const redirect = await arrived;
    assert.equal(redirect.searchParams.get('error'), 'access_denied');
    assert.equal(redirect.searchParams.get('state'), denier.states.at(-1));
    assert.equal(redirect.searchParams.get('iss'), BASE);
    assert.equal(redirect.searchParams.get('code'), null);
    // Nothing was recorded: the next authorization asks again.
    const again = main.responses.length;
    await startAuthorization(denier);
    await signInAtIdp(main.page, USER);
    await assertConsentPage(main, again, { clientName: 'Client To Deny', clientId, email: USER });
  }));

  test('a user of a disallowed domain is refused with a 403 page and never sent to the client', retrying(async (t, seen) => {
    const b = await openBrowser();
    seen.push(b);
    const arrivalsBefore = arrivals.length;
    const p = new BrowserOAuthProvider({ page: b.page, redirectUrl: REDIRECT_URL, clientName: 'Browser E2E Client (mallory)' });
    await startAuthorization(p);
    const mark = b.responses.length;
    assert.equal(await signInAtIdp(b.page, 'mallory@evil.example'), true, 'a fresh browser is asked to sign in');
    const [cb] = callbacks(b.since(mark));
    assert.ok(cb, 'the IdP sent the browser back to /callback');
    assert.equal(cb.status, 403);
    assert.equal(cb.headers.location, undefined);
    assert.equal(new URL(b.page.url()).pathname, '/callback');
    const html = await b.page.content();
    assert.equal(pageErrorCode(html), CODES.domain);
    assert.ok(pageText(html).includes(MESSAGES.domain), pageText(html));
    assert.equal(await b.page.locator('form').count(), 0, 'no consent form');
    assert.equal(arrivals.length, arrivalsBefore, 'nothing reached the client\'s redirect URI');
    assert.ok(!b.since(mark).some((r) => r.url.pathname === '/consent'));
  }));
});
