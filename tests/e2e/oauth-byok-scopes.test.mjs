// Issue 15, scopes and step-up on /mcp (the key flow), over HTTP against
// the worker in workerd and the Plausible stand-in (which records the key
// each request carried):
//
// - a key grant for `sites:read` lists sites with the person's key; a query
//   tool gets the exact 403 step-up challenge toward /mcp's own metadata
//   (2025-11-25 and 2026-07-28) and nothing reaches Plausible;
// - re-authorizing with the challenge's scope goes through the key form
//   again (the key is never kept) and a consent page asking only for
//   `stats:read`, with `sites:read` listed as already allowed; the new
//   token does both;
// - a `stats:read` grant calling list_sites gets the challenge naming
//   `sites:read`;
// - the v2 SDK (@modelcontextprotocol/client) holding a `sites:read` key
//   grant steps up by itself, its user agent (KeyFlowBrowser) filling the
//   key form again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { BASE, challengeParams, pkce, randomState, recordingFetch, registerClient, tokenRequest } from './oauth-helpers.mjs';
import {
  addStandInKey, completeKeyFlow, keyOf, mcpAuthorizeUrl, mcpMetadataUrlOf, mcpResourceOf, standInRequests,
} from './key-flow.mjs';
import { post, postModern, rpc } from './mcp-helpers.mjs';
import { unescapeHtml } from './login-helpers.mjs';
import { KeyFlowOAuthProvider } from './support/key-flow.mjs';

const KEY = `byok-e2e-scopes-${randomState()}`;
const SITES = ['example.com', 'shop.example.com'];
await addStandInKey(KEY, SITES);

const BREAKDOWN = { name: 'get_breakdown', arguments: { site_id: 'example.com', date_range: '2024-02-01,2024-02-07', dimension: 'visit:source' } };
const LIST_SITES = { name: 'list_sites', arguments: {} };

/** The scopes a consent page lists in one of its lists (by id), in order. */
function listed(html, id) {
  const start = html.indexOf(`<ul id="${id}">`);
  if (start < 0) return [];
  const list = html.slice(start, html.indexOf('</ul>', start));
  return [...list.matchAll(/<code>([^<]*)<\/code>/g)].map((m) => unescapeHtml(m[1]));
}

/** The key flow for `scope` with this file's key: { tokens, consent } (the consent page's lists). */
async function keyGrantFor(client, scope) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  const flow = await completeKeyFlow(mcpAuthorizeUrl(client, { challenge, state, scope }), { apiKey: KEY, sites: SITES });
  assert.equal(flow.params.state, state);
  const r = await tokenRequest({
    grant_type: 'authorization_code', client_id: client.client_id, code: flow.params.code,
    code_verifier: verifier, redirect_uri: client.redirect_uris[0], resource: mcpResourceOf(),
  });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.resource, mcpResourceOf());
  assert.equal(r.json.scope, scope);
  const html = flow.consent.text;
  return { tokens: r.json, consent: { asked: listed(html, 'scopes-asked'), allowed: listed(html, 'scopes-allowed'), html } };
}

/** tools/call on /mcp with `token` under `version` (2026-07-28: stateless, headers mirrored). */
function call(token, params, version) {
  const auth = `Bearer ${token}`;
  return version === '2026-07-28' ? postModern('tools/call', params, { auth }) : post(rpc('tools/call', params), { version, auth });
}

const VERSIONS = ['2025-11-25', '2026-07-28'];

/** The stand-in's requests from `since` on (an index into its log). */
async function requestsSince(since) {
  return (await standInRequests()).slice(since);
}

/** Asserts a tool call succeeded (200, a result that is not a tool error). */
function assertWorks(r, label) {
  assert.equal(r.res.status, 200, `${label}: ${r.text}`);
  assert.equal(r.json.error, undefined, `${label}: ${r.text}`);
  assert.equal(r.json.result.isError, false, `${label}: ${r.text}`);
}

/** Asserts the exact step-up challenge for a call that needs `missing`, naming `scope`. */
function assertStepUp(r, missing, scope, label) {
  assert.equal(r.res.status, 403, `${label}: ${r.text}`);
  assert.equal(
    r.res.headers.get('www-authenticate'),
    `Bearer realm="plausible-mcp", resource_metadata="${BASE}/.well-known/oauth-protected-resource/mcp", scope="${scope}", error="insufficient_scope", error_description="This call needs the ${missing} scope"`,
    label,
  );
  assert.equal(challengeParams(r.res.headers.get('www-authenticate')).resource_metadata, mcpMetadataUrlOf(), label);
  assert.equal(r.json.error, 'insufficient_scope', label);
  assert.equal(r.json.scope, scope, label);
}

describe('scopes and step-up on /mcp', () => {
  test('sites:read lists sites with the key; a query gets the 403 and reaches nothing; the step-up asks only for stats:read', async () => {
    const client = await registerClient({ client_name: 'e2e key scopes' });
    const first = await keyGrantFor(client, 'sites:read');
    assert.deepEqual([first.consent.asked, first.consent.allowed], [['sites:read'], []], 'the first page asks for what was requested');

    const listing = [];
    for (const version of VERSIONS) {
      const since = (await standInRequests()).length;
      const listedSites = await call(first.tokens.access_token, LIST_SITES, version);
      assertWorks(listedSites, `list_sites with sites:read (${version})`);
      assert.deepEqual(listedSites.json.result.structuredContent.sites.map((s) => s.site_id), SITES, listedSites.text);
      listing.push(...await requestsSince(since));

      const before = (await standInRequests()).length;
      const refused = await call(first.tokens.access_token, BREAKDOWN, version);
      assertStepUp(refused, 'stats:read', 'sites:read stats:read', `get_breakdown with sites:read (${version})`);
      assert.deepEqual(await requestsSince(before), [], `nothing reached Plausible for the refused call (${version})`);
    }

    // list_sites asked Plausible (the Sites API, or each granted site the
    // first time; later answers may come from the edge cache), only ever
    // with the person's key.
    assert.ok(listing.length > 0, 'list_sites reached Plausible');
    assert.deepEqual([...new Set(listing.map(keyOf))], [KEY], 'only the person\'s key reached Plausible');

    // The client re-authorizes with exactly the challenge's scope: the key
    // form again, then a page asking only for what is new.
    const refused = await call(first.tokens.access_token, BREAKDOWN, '2025-11-25');
    const wider = challengeParams(refused.res.headers.get('www-authenticate')).scope;
    const stepped = await keyGrantFor(client, wider);
    assert.deepEqual(stepped.consent.asked, ['stats:read'], 'only what is new is asked');
    assert.deepEqual(stepped.consent.allowed, ['sites:read'], 'what was approved before is shown as such');
    assert.match(stepped.consent.html, /It asks to also/);
    for (const version of VERSIONS) {
      const since = (await standInRequests()).length;
      assertWorks(await call(stepped.tokens.access_token, BREAKDOWN, version), `get_breakdown after the step-up (${version})`);
      const used = await requestsSince(since);
      assert.ok(used.length <= 1, JSON.stringify(used));
      for (const q of used) assert.equal(keyOf(q), KEY);
      assertWorks(await call(stepped.tokens.access_token, LIST_SITES, version), `list_sites after the step-up (${version})`);
    }
    // The first token keeps its own scope.
    assertStepUp(await call(first.tokens.access_token, BREAKDOWN, '2025-11-25'), 'stats:read', 'sites:read stats:read', 'the first token still');
  });

  test('stats:read queries with the key, and list_sites gets the 403 naming sites:read', async () => {
    const client = await registerClient({ client_name: 'e2e key stats only' });
    const { tokens, consent } = await keyGrantFor(client, 'stats:read');
    assert.deepEqual([consent.asked, consent.allowed], [['stats:read'], []]);
    for (const version of VERSIONS) {
      const since = (await standInRequests()).length;
      assertWorks(await call(tokens.access_token, { ...BREAKDOWN, arguments: { ...BREAKDOWN.arguments, date_range: version === VERSIONS[0] ? '2024-02-08,2024-02-14' : '2024-02-15,2024-02-21' } }, version), `get_breakdown with stats:read (${version})`);
      assert.deepEqual((await requestsSince(since)).map(keyOf), [KEY], 'the query went out with the person\'s key');
      const before = (await standInRequests()).length;
      assertStepUp(await call(tokens.access_token, LIST_SITES, version), 'sites:read', 'sites:read stats:read', `list_sites with stats:read (${version})`);
      assert.deepEqual(await requestsSince(before), [], `nothing reached Plausible for the refused call (${version})`);
    }
  });
});

describe('official SDK v2 client stepping up on /mcp', () => {
  const REDIRECT_URL = 'http://127.0.0.1:8981/callback';

  test('403 insufficient_scope → the key form and a consent page for stats:read alone → the call succeeds with the key', async () => {
    // A client holding a sites:read key grant, handed to the SDK's provider,
    // whose user agent fills the key form as a person would.
    const registered = await registerClient({ client_name: 'e2e key step-up sdk', redirect_uris: [REDIRECT_URL] });
    const { tokens } = await keyGrantFor(registered, 'sites:read');
    const provider = new KeyFlowOAuthProvider({ base: BASE, key: KEY, sites: SITES, redirectUrl: REDIRECT_URL });
    provider.saveClientInformation({ ...registered, issuer: BASE });
    provider.saveTokens({ ...tokens, issuer: BASE });

    const rec = recordingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(mcpResourceOf()), { authProvider: provider, fetch: rec.fetch });
    const client = new Client({ name: 'e2e-key-step-up', version: '2.0.0' });
    await client.connect(transport);
    try {
      const sites = await client.callTool({ name: 'list_sites', arguments: {} });
      assert.equal(sites.isError, false, JSON.stringify(sites));

      const before = (await standInRequests()).length;
      await assert.rejects(client.callTool({ name: 'get_breakdown', arguments: BREAKDOWN.arguments }), UnauthorizedError);
      const refused = rec.log.find((e) => e.method === 'POST' && e.status === 403);
      assert.ok(refused, 'a 403 was answered');
      assert.equal(refused.body.params.name, 'get_breakdown');
      assert.equal(
        refused.responseHeaders.get('www-authenticate'),
        `Bearer realm="plausible-mcp", resource_metadata="${mcpMetadataUrlOf()}", scope="sites:read stats:read", error="insufficient_scope", error_description="This call needs the stats:read scope"`,
      );
      // The refused call reached nothing: what Plausible saw since is only
      // the key form's check during the re-authorization (one query a site).
      assert.deepEqual((await requestsSince(before)).map((r) => [keyOf(r), r.body.site_id, r.body.date_range]),
        SITES.map((site) => [KEY, site, 'day']), 'only the key form\'s checks');
      // No refresh (it could not widen); one authorization for the union,
      // through the key form again and a consent page asking only for what is new.
      assert.equal(rec.log.filter((e) => e.method === 'POST' && e.url.pathname === '/token').length, 0, 'no refresh before the step-up');
      assert.equal(provider.authorizations.length, 1);
      const az = provider.authorizations[0];
      const q = Object.fromEntries(az.url.searchParams);
      assert.deepEqual(q.scope.split(' ').sort(), ['sites:read', 'stats:read']);
      assert.equal(q.resource, mcpResourceOf());
      const steps = az.browser.steps;
      assert.deepEqual(steps.map((s) => `${s.step} ${s.status}`), ['authorize 200', 'key 200', 'consent 302']);
      assert.deepEqual([listed(steps[1].text, 'scopes-asked'), listed(steps[1].text, 'scopes-allowed')], [['stats:read'], ['sites:read']]);

      const iss = new URL(az.location).searchParams.get('iss');
      assert.equal(iss, BASE);
      await transport.finishAuth(provider.code, iss);
      const stepped = provider.tokens();
      assert.deepEqual(stepped.scope.split(' ').sort(), ['sites:read', 'stats:read']);
      assert.notEqual(stepped.access_token, tokens.access_token);

      const since = (await standInRequests()).length;
      const args = { ...BREAKDOWN.arguments, date_range: '2024-02-22,2024-02-28' };
      const result = await client.callTool({ name: 'get_breakdown', arguments: args });
      assert.equal(result.isError, false, JSON.stringify(result));
      assert.deepEqual((await requestsSince(since)).map(keyOf), [KEY], 'the query went out with the person\'s key');
    } finally {
      await client.close();
    }
  });
});
