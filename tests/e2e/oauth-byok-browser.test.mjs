// Acceptance (issue 15): connecting /mcp with your own Plausible key, in a
// real browser (the key form, then the site chooser on the consent page). The official v1 SDK is the OAuth client of /mcp: its
// 401 → protected resource metadata → registration → authorization URL
// (resource <origin>/mcp) is opened in Chromium, where the person pastes
// their key into the key form, names the sites, sees the consent page and
// approves. The code reaches the client's loopback redirect listener, the
// SDK redeems it, and a tool call reaches the Plausible stand-in with the
// person's key. No test identity header anywhere: no company sign-in is
// involved at all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { BASE } from './oauth-helpers.mjs';
import { addStandInKey, keyOf, mcpResourceOf, standInRequests } from './key-flow.mjs';
import { TestOAuthProvider } from './support/oauth-provider.mjs';

const SERVER_URL = `${BASE}/mcp`;
const KEY = 'byok-browser-key-c0ffee-5e1f';
const SCREENSHOT = '/tmp/byok-browser-key-form.png';

let browser;
let REDIRECT_URL;
let listener;
const arrivals = [];
const waiters = [];

function nextArrival(ms = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing reached the redirect URI within ${ms} ms`)), ms);
    timer.unref();
    waiters.push((url) => { clearTimeout(timer); resolve(url); });
  });
}

before(async () => {
  await addStandInKey(KEY, ['example.com', 'shop.example.com']);
  listener = createServer((req, res) => {
    const url = new URL(req.url, REDIRECT_URL);
    arrivals.push(url);
    for (const w of waiters.splice(0)) w(url);
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>Client</title><p>Back at the client.</p>');
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));
  REDIRECT_URL = `http://127.0.0.1:${listener.address().port}/callback`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  listener?.closeAllConnections();
  await new Promise((resolve) => (listener ? listener.close(resolve) : resolve()));
});

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

describe('the /mcp key flow in a real browser, driven by the official SDK', () => {
  test('key form → sites → consent → Approve → code → tokens → a tool call with the person\'s key', async (t) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const responses = [];
      page.on('response', (res) => responses.push({ url: new URL(res.url()), status: res.status(), headers: res.headers() }));
      const provider = new BrowserOAuthProvider({ page, redirectUrl: REDIRECT_URL, clientName: 'Browser Key Client' });

      // connect → 401 → discovery through /mcp's metadata → registration → the tab.
      const transport = new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider });
      await assert.rejects(new Client({ name: 'e2e-byok-browser', version: '1.0.0' }).connect(transport),
        (err) => err instanceof UnauthorizedError);
      const az = provider.authorizationUrls.at(-1);
      assert.equal(`${az.origin}${az.pathname}`, `${BASE}/authorize`);
      assert.equal(az.searchParams.get('resource'), mcpResourceOf(), 'the SDK asked for /mcp, from its metadata');

      // The key form, in the tab, with its protections.
      await page.waitForSelector('input[name="api_key"]');
      const form = responses.find((r) => r.url.origin === BASE && r.url.pathname === '/authorize');
      assert.equal(form.status, 200);
      assert.match(form.headers['content-security-policy'], /frame-ancestors 'none'/);
      assert.equal(form.headers['cache-control'], 'no-store');
      assert.equal(await page.getAttribute('input[name="api_key"]', 'type'), 'password');
      assert.equal(await page.getAttribute('input[name="api_key"]', 'autocomplete'), 'off');
      assert.equal(await page.getAttribute('form', 'autocomplete'), 'off');
      const keyCookie = (await context.cookies(BASE)).find((c) => c.name.startsWith('__Host-pmcp_key_'));
      assert.ok(keyCookie, 'the __Host- key form cookie is set');
      assert.equal(keyCookie.secure, true);
      assert.equal(keyCookie.httpOnly, true);
      assert.equal(keyCookie.sameSite, 'Strict');
      assert.match(await page.innerText('h1'), /Connect Browser Key Client with your Plausible API key/);

      // A site the key cannot read first: the form comes back naming it, the key field empty.
      await page.fill('input[name="api_key"]', KEY);
      await page.fill('textarea[name="sites"]', 'example.com\ntrends.example.com');
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      t.diagnostic(`key form screenshot: ${SCREENSHOT}`);
      await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
      assert.match(await page.innerText('p.notice'), /cannot read the site "trends\.example\.com"/);
      assert.equal(await page.inputValue('input[name="api_key"]'), '', 'the key is not sent back');
      assert.equal(await page.inputValue('textarea[name="sites"]'), 'example.com\ntrends.example.com');

      // Fixed: the consent page.
      const before = (await standInRequests()).length;
      await page.fill('input[name="api_key"]', KEY);
      await page.fill('textarea[name="sites"]', 'example.com, shop.example.com');
      await Promise.all([page.waitForLoadState('load'), page.click('button[type="submit"]')]);
      await page.waitForSelector('button[name="decision"][value="approve"]');
      const checks = (await standInRequests()).slice(before);
      assert.deepEqual(checks.map((q) => [keyOf(q), q.body.site_id]), [[KEY, 'example.com'], [KEY, 'shop.example.com']]);
      const dd = async (dt) => (await page.locator(`dt:text-is("${dt}") + dd`).innerText()).trim();
      assert.equal(await dd('With'), 'your Plausible API key ending in …5e1f');
      // The site chooser offers exactly the sites just checked, all ticked, and no "all sites".
      const boxes = page.locator('input[type="checkbox"][name="site"]');
      assert.deepEqual(await boxes.evaluateAll((els) => els.map((e) => [e.value, e.checked])),
        [['example.com', true], ['shop.example.com', true]]);
      assert.equal(await page.locator('input[name="all_sites"][value="1"]').count(), 0);
      // The person unticks one.
      await page.uncheck('input[name="site"][value="example.com"]');
      assert.ok(!(await page.content()).includes(KEY), 'the consent page never shows the key');

      // Approve: the code reaches the client, the SDK redeems it, a tool call runs with the key.
      const arrived = nextArrival();
      await page.click('button[name="decision"][value="approve"]');
      const redirect = await arrived;
      assert.equal(redirect.searchParams.get('iss'), BASE);
      assert.equal(redirect.searchParams.get('state'), provider.states.at(-1));
      await transport.finishAuth(redirect.searchParams.get('code'));
      assert.equal(provider.tokens().resource ?? mcpResourceOf(), mcpResourceOf());
      await transport.close();
      const client = new Client({ name: 'e2e-byok-browser', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider }));
      try {
        const mark = (await standInRequests()).length;
        const result = await client.callTool({ name: 'get_timeseries', arguments: { site_id: 'shop.example.com', date_range: '2024-03-01,2024-03-07' } });
        assert.equal(result.isError, false, JSON.stringify(result));
        assert.equal(result.structuredContent.results.length, 7);
        const used = (await standInRequests()).slice(mark);
        assert.deepEqual(used.map(keyOf), [KEY], 'the stand-in saw the person\'s key, never our token');
        // The unticked site is refused by the grant, before Plausible is asked.
        const refused = await client.callTool({ name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } });
        assert.equal(refused.isError, true, JSON.stringify(refused));
        assert.match(refused.content[0].text, /shop\.example\.com/);
        assert.equal((await standInRequests()).length, mark + 1);
      } finally {
        await client.close();
      }
      // The key form's cookie is cleared once the consent is decided.
      assert.equal((await context.cookies(BASE)).find((c) => c.name === keyCookie.name), undefined);
    } finally {
      await context.close();
    }
  });
});
