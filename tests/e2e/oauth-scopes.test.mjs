// Issue 15, scopes and step-up on /internal, through the real sign-in
// (/authorize → provider → /callback → consent → code), against a stack
// of its own whose worker signs in at the rogue OpenID provider
// (support/rogue-idp.mjs answers at once, without a login form), so the
// consent page is met as a person meets it:
//
// - a token with `sites:read` lists sites, and a query tool gets the exact
//   403 step-up challenge; re-authorizing with the challenge's scope shows
//   a consent page asking only for `stats:read` (with `sites:read` listed
//   as already allowed), and the new token does both;
// - the approval recorded the union: later sign-ins for either scope or
//   both need no page; the umbrella `mcp` is asked for anew;
// - refresh narrows honouring the umbrella (an `mcp` grant to
//   `sites:read`), never widens, keeps the grant's scope when `scope` is
//   empty, and a narrowed token is held to it;
// - a request for the umbrella with its parts asks for the umbrella alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  assertTokenError, assertTokens, challengeParams, internalCall, refreshRequest, registerClient,
} from './oauth-helpers.mjs';
import { CookieJar, approveConsent, beginLogin, pageText, redeemBack, retrying, unescapeHtml } from './login-helpers.mjs';
import { startRogueStack, throughRogueProvider } from './support/rogue-stack.mjs';

const UPSTREAM_CLIENT_ID = 'plausible-mcp-scopes-test';
const UPSTREAM_CLIENT_SECRET = 'scopes-test-secret';

let own;
let rogue;
let BASE;

before(async () => {
  own = await startRogueStack({ name: 'oauth-scopes', clientId: UPSTREAM_CLIENT_ID, clientSecret: UPSTREAM_CLIENT_SECRET });
  ({ rogue } = own);
  BASE = own.stack.workerUrl;
});

after(async () => {
  await own?.stop();
});

const freshEmail = (label) => `${label}-${randomBytes(4).toString('hex')}@example.com`;
const PRM = () => `${BASE}/.well-known/oauth-protected-resource/internal`;

/** The scopes a consent page lists in one of its lists (by id), in order. */
function listed(html, id) {
  const start = html.indexOf(`<ul id="${id}">`);
  if (start < 0) return [];
  const list = html.slice(start, html.indexOf('</ul>', start));
  return [...list.matchAll(/<code>([^<]*)<\/code>/g)].map((m) => unescapeHtml(m[1]));
}

/**
 * One sign-in asking for `scope`: through the provider, then the consent
 * page if one is shown (its lists are returned, then approved). Returns
 * the tokens (asserted to grant `scope`) and the page seen, if any.
 */
async function signIn(client, email, scope) {
  const jar = new CookieJar();
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer, scope });
  let r = await throughRogueProvider(login, { jar, email });
  let page = null;
  if (r.status === 200) {
    page = { asked: listed(r.text, 'scopes-asked'), allowed: listed(r.text, 'scopes-allowed'), text: pageText(r.text) };
    r = await approveConsent(BASE, jar, r.text);
  }
  assert.equal(r.status, 302, pageText(r.text).slice(0, 300));
  const redeemed = await redeemBack(BASE, login, r);
  return { tokens: assertTokens(redeemed, BASE, scope), page };
}

const listSites = (token) => internalCall(token, { base: BASE, params: { name: 'list_sites', arguments: {} } });
const breakdown = (token) => internalCall(token, {
  base: BASE,
  params: { name: 'get_breakdown', arguments: { site_id: 'example.com', date_range: '2024-02-01,2024-02-07', dimension: 'visit:source' } },
});

/** Asserts a tool call succeeded (200, a result that is not a tool error). */
function assertWorks(r, label) {
  assert.equal(r.status, 200, `${label}: ${r.text}`);
  assert.equal(r.json.error, undefined, `${label}: ${r.text}`);
  assert.equal(r.json.result.isError, false, `${label}: ${r.text}`);
}

/** Asserts the exact step-up challenge for a call that needs `missing`, naming `scope`. */
function assertStepUp(r, missing, scope, label) {
  assert.equal(r.status, 403, `${label}: ${r.text}`);
  assert.equal(
    r.res.headers.get('www-authenticate'),
    `Bearer realm="plausible-mcp", resource_metadata="${PRM()}", scope="${scope}", error="insufficient_scope", error_description="This call needs the ${missing} scope"`,
    label,
  );
  const p = challengeParams(r.res.headers.get('www-authenticate'));
  assert.ok(!p.scope.split(' ').includes('offline_access'), label);
  assert.equal(r.json.error, 'insufficient_scope', label);
  assert.equal(r.json.scope, scope, label);
}

describe('scopes and step-up on /internal', () => {
  test('sites:read lists sites; a query gets the 403 challenge; stepping up asks only for stats:read', retrying(async () => {
    const client = await registerClient({ client_name: 'scopes', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const email = freshEmail('step-up');

    const first = await signIn(client, email, 'sites:read');
    assert.deepEqual(first.page?.asked, ['sites:read'], 'the first page asks for what was requested');
    assert.deepEqual(first.page.allowed, []);
    assert.ok(first.page.text.includes('sites:read — list the Plausible Analytics sites available through this server'), first.page.text);
    assertWorks(await listSites(first.tokens.access_token), 'list_sites with sites:read');
    const refused = await breakdown(first.tokens.access_token);
    assertStepUp(refused, 'stats:read', 'sites:read stats:read', 'get_breakdown with sites:read');

    // The client re-authorizes with exactly the challenge's scope.
    const stepped = await signIn(client, email, challengeParams(refused.res.headers.get('www-authenticate')).scope);
    assert.deepEqual(stepped.page?.asked, ['stats:read'], 'only what is new is asked');
    assert.deepEqual(stepped.page.allowed, ['sites:read'], 'what was approved before is shown as such');
    assert.ok(stepped.page.text.includes('Already allowed'), stepped.page.text);
    assertWorks(await breakdown(stepped.tokens.access_token), 'get_breakdown after the step-up');
    assertWorks(await listSites(stepped.tokens.access_token), 'list_sites after the step-up');
    // The first token keeps its own scope.
    assertStepUp(await breakdown(first.tokens.access_token), 'stats:read', 'sites:read stats:read', 'the first token still');

    // The approval recorded the union: no page for either scope or both.
    for (const scope of ['stats:read', 'sites:read', 'sites:read stats:read']) {
      const again = await signIn(client, email, scope);
      assert.equal(again.page, null, `${scope}: no consent page`);
    }
    // The umbrella is not granted by its parts: asked anew, the rest shown as allowed.
    const umbrella = await signIn(client, email, 'mcp');
    assert.deepEqual(umbrella.page?.asked, ['mcp']);
    assertWorks(await breakdown(umbrella.tokens.access_token), 'mcp');
    assertWorks(await listSites(umbrella.tokens.access_token), 'mcp');
  }));

  test('stats:read alone queries, and list_sites asks for sites:read keeping stats:read', retrying(async () => {
    const client = await registerClient({ client_name: 'scopes stats', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const { tokens } = await signIn(client, freshEmail('stats-only'), 'stats:read');
    assertWorks(await breakdown(tokens.access_token), 'get_breakdown with stats:read');
    assertStepUp(await listSites(tokens.access_token), 'sites:read', 'sites:read stats:read', 'list_sites with stats:read');
    // A resource read needs its content's scope too.
    const read = await internalCall(tokens.access_token, { base: BASE, method: 'resources/read', params: { uri: 'plausible://sites' } });
    assertStepUp(read, 'sites:read', 'sites:read stats:read', 'plausible://sites with stats:read');
    // Listings need any one scope.
    for (const method of ['tools/list', 'prompts/list', 'resources/list']) {
      const r = await internalCall(tokens.access_token, { base: BASE, method, params: {} });
      assert.equal(r.status, 200, `${method}: ${r.text}`);
    }
  }));

  test('refresh narrows through the umbrella and never widens; a narrowed token is held to it', retrying(async () => {
    const client = await registerClient({ client_name: 'scopes refresh', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const { tokens } = await signIn(client, freshEmail('narrow'), 'mcp');
    const narrowed = assertTokens(await refreshRequest(client, tokens.refresh_token, { base: BASE, extra: { scope: 'sites:read' } }), BASE, 'sites:read');
    assertWorks(await listSites(narrowed.access_token), 'narrowed list_sites');
    assertStepUp(await breakdown(narrowed.access_token), 'stats:read', 'sites:read stats:read', 'narrowed get_breakdown');

    const client2 = await registerClient({ client_name: 'scopes no widen', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const small = await signIn(client2, freshEmail('widen'), 'sites:read');
    for (const scope of ['mcp', 'stats:read', 'sites:read stats:read']) {
      assertTokenError(await refreshRequest(client2, small.tokens.refresh_token, { base: BASE, extra: { scope } }), 400, 'invalid_scope', scope);
    }
    // RFC 6749 §6: an empty scope is an omitted one, the grant's own
    // (not the authorization default `mcp`, which would be a widening).
    assertTokens(await refreshRequest(client2, small.tokens.refresh_token, { base: BASE, extra: { scope: '' } }), BASE, 'sites:read');
  }));

  test('asking for the umbrella with its parts lists the umbrella alone', retrying(async () => {
    const client = await registerClient({ client_name: 'scopes umbrella', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const { page } = await signIn(client, freshEmail('umbrella'), 'mcp sites:read stats:read');
    assert.deepEqual([page?.asked, page?.allowed], [['mcp'], []]);
  }));
});
