// Acceptance (issue 15): the official SDK clients connect to /mcp through
// OAuth with the person's own Plausible key, given nothing but the URL.
// Each must discover /mcp's protected resource metadata from the 401,
// register itself (RFC 7591), authorize with PKCE S256 and the resource
// indicator of /mcp; the person (KeyFlowBrowser, over HTTP as a browser
// would) pastes the key and names a site on the key page and approves on
// the consent page; then the client calls tools, and the Plausible
// stand-in checks that every query arrived with that person's key and
// not the server's shared key. Client metadata documents on /mcp are in
// oauth-cimd.test.mjs (they need https and a stack of their own).
//
// Both SDKs: @modelcontextprotocol/sdk 1.32 (v1) and
// @modelcontextprotocol/client 2.4 (v2), each against a key of its own.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import * as v2 from '@modelcontextprotocol/client';
import { SAMPLE_CALLS, assertSampleResult } from './mcp-helpers.mjs';
import {
  BASE, challengeParams, internalCall, issueTokens, recordingFetch, s256,
} from './oauth-helpers.mjs';
import {
  addStandInKey, keyOf, mcpCall, mcpMetadataUrlOf, mcpResourceOf, revokeStandInKey, standInRequests,
} from './key-flow.mjs';
import { KeyFlowOAuthProvider, formFor, offeredSites } from './support/key-flow.mjs';

const MCP = mcpResourceOf();
const PRM_MCP = mcpMetadataUrlOf();
const SITE = 'example.com';
const SHARED_KEY = 'plausible-shared-key';

/** A Plausible key of this test's own, which the stand-in lets read SITE only. */
async function newKey(label) {
  const key = `e2e-${label}-${randomBytes(9).toString('base64url')}`;
  await addStandInKey(key, [SITE]);
  return key;
}

/** Stats API queries the stand-in received after `from` (an index into its log). */
async function queriesSince(from) {
  return (await standInRequests()).slice(from).filter((q) => q.path === '/api/v2/query');
}

const find = (log, method, path) => log.filter((e) => e.method === method && e.url.pathname === path);

/**
 * Asserts one authorization went through the key page and the consent
 * page and came back with a code, and returns the recorded steps.
 */
function assertKeyFlow(entry, { key, redirectUrl }) {
  const steps = entry.browser.steps;
  assert.deepEqual(steps.map((s) => `${s.step} ${s.status}`), ['authorize 200', 'key 200', 'consent 302']);
  const [page, posted, approved] = steps;
  // The key page: never cached, never framed, the key field unfilled by the browser.
  assert.equal(page.res.headers.get('cache-control'), 'no-store');
  assert.match(page.res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(page.text, /name="api_key"/);
  assert.match(page.text, /autocomplete="off"/);
  assert.ok(!page.text.includes(key));
  // The post carried the key once; the consent page that followed never shows it.
  assert.equal(posted.url.pathname, '/authorize/key');
  assert.ok(!posted.text.includes(key), 'the consent page does not show the key');
  assert.ok(posted.text.includes(SITE), 'the consent page names the site');
  // Its site chooser offers exactly the sites the key page checked (no "all sites").
  const consentForm = formFor(posted.text, '/consent');
  assert.deepEqual(offeredSites(consentForm), [SITE]);
  assert.ok(!consentForm.fields.some((f) => f.name === 'all_sites' && f.value === '1'), 'no "all sites" for a key');
  // Back to the client: code, state, iss (RFC 9207).
  const back = new URL(approved.location);
  assert.equal(`${back.origin}${back.pathname}`, redirectUrl);
  assert.match(back.searchParams.get('code') ?? '', /^pmcp_ac_/);
  assert.equal(back.searchParams.get('iss'), BASE);
  assert.equal(back.searchParams.get('state'), entry.url.searchParams.get('state'));
  return steps;
}

describe('official SDK v1 OAuth client on /mcp: dynamic registration, the key page, tools with the own key', () => {
  const REDIRECT_URL = 'http://127.0.0.1:8978/callback';
  const rec = recordingFetch();
  let key;
  let provider;
  let client;

  before(async () => {
    key = await newKey('sdk-v1');
    provider = new KeyFlowOAuthProvider({ base: BASE, key, sites: [SITE], redirectUrl: REDIRECT_URL, clientName: 'e2e sdk v1 on /mcp' });
  });

  test('connects from the bare URL: 401, /mcp discovery, registration, key page, consent, token', async () => {
    const first = new StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider, fetch: rec.fetch });
    await assert.rejects(new Client({ name: 'e2e-oauth-sdk-mcp', version: '1.0.0' }).connect(first), UnauthorizedError);
    assert.match(provider.code ?? '', /^pmcp_ac_/, 'the key flow gave a code');
    await first.finishAuth(provider.code);
    await first.close();
    client = new Client({ name: 'e2e-oauth-sdk-mcp', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider, fetch: rec.fetch }));
    const { log } = rec;

    // 1. The first POST had no credentials: a bare challenge naming /mcp's PRM.
    const firstPost = log.find((e) => e.method === 'POST' && e.url.pathname === '/mcp');
    assert.equal(firstPost.status, 401);
    assert.equal(firstPost.headers.authorization, undefined);
    const challenge = challengeParams(firstPost.responseHeaders.get('www-authenticate'));
    assert.equal(challenge.resource_metadata, PRM_MCP);
    assert.equal(challenge.error, undefined);

    // 2. Discovery: /mcp's PRM (resource <origin>/mcp), then the AS metadata.
    const prm = find(log, 'GET', '/.well-known/oauth-protected-resource/mcp');
    assert.ok(prm.length >= 1 && prm.every((e) => e.status === 200), 'the /mcp PRM was fetched');
    const prmBody = await (await fetch(PRM_MCP)).json();
    assert.equal(prmBody.resource, MCP);
    assert.deepEqual(prmBody.authorization_servers, [BASE]);
    assert.ok(find(log, 'GET', '/.well-known/oauth-authorization-server').every((e) => e.status === 200));

    // 3. Registration.
    const reg = find(log, 'POST', '/register');
    assert.equal(reg.length, 1);
    assert.equal(reg[0].status, 201);
    const saved = provider.clientInformation();
    assert.match(saved.client_id, /^pmcp_client_/);

    // 4. The authorization request: /mcp's resource, PKCE S256 over the kept verifier.
    assert.equal(provider.authorizations.length, 1);
    const az = provider.authorizations[0];
    const q = Object.fromEntries(az.url.searchParams);
    assert.equal(`${az.url.origin}${az.url.pathname}`, `${BASE}/authorize`);
    assert.equal(q.resource, MCP);
    assert.equal(q.client_id, saved.client_id);
    assert.equal(q.code_challenge_method, 'S256');
    assert.equal(q.code_challenge, s256(provider.savedVerifiers[0]));
    assertKeyFlow(az, { key, redirectUrl: REDIRECT_URL });

    // 5. The redemption names /mcp; the tokens are ours, bound to /mcp.
    const tokenCalls = find(log, 'POST', '/token');
    assert.equal(tokenCalls.length, 1);
    assert.equal(tokenCalls[0].status, 200);
    assert.equal(tokenCalls[0].body.resource, MCP);
    assert.equal(tokenCalls[0].body.code, az.code);
    const t = provider.tokens();
    assert.match(t.access_token, /^pmcp_at_/);
    assert.match(t.refresh_token, /^pmcp_rt_/);
    assert.ok(!JSON.stringify(t).includes(key), 'the token response does not carry the key');

    // 6. The reconnection carried the access token, not the key.
    const init = log.findLast((e) => e.method === 'POST' && e.body?.method === 'initialize');
    assert.equal(init.status, 200);
    assert.equal(init.headers.authorization, `Bearer ${t.access_token}`);
  });

  test('tools/call reaches Plausible with the person\'s key, never the shared one', async () => {
    const from = (await standInRequests()).length;
    const result = await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries });
    assertSampleResult('get_timeseries', result);
    const queries = await queriesSince(from);
    assert.ok(queries.length >= 1, 'the call reached the stand-in');
    for (const q of queries) {
      assert.equal(keyOf(q), key);
      assert.equal(q.body.site_id, SITE);
    }
    assert.ok(!queries.some((q) => keyOf(q) === SHARED_KEY));
  });

  test('a refresh forced by a rejected access token keeps querying with the key', async () => {
    const before = provider.tokens();
    provider.setTokens({ ...before, access_token: `pmcp_at_${'x'.repeat(43)}` });
    const from = (await standInRequests()).length;
    const tokenCallsBefore = find(rec.log, 'POST', '/token').length;
    const result = await client.callTool({ name: 'get_breakdown', arguments: SAMPLE_CALLS.get_breakdown });
    assertSampleResult('get_breakdown', result);
    const refreshes = find(rec.log, 'POST', '/token').slice(tokenCallsBefore);
    assert.equal(refreshes.length, 1);
    assert.equal(refreshes[0].status, 200);
    assert.equal(refreshes[0].body.grant_type, 'refresh_token');
    assert.equal(refreshes[0].body.resource, MCP);
    assert.notEqual(provider.tokens().refresh_token, before.refresh_token, 'rotated');
    const queries = await queriesSince(from);
    assert.ok(queries.length >= 1);
    assert.ok(queries.every((q) => keyOf(q) === key));
  });

  test('the key revoked at Plausible: the next tool call is a tool error asking to reconnect, not a protocol error', async () => {
    await revokeStandInKey(key);
    // A range no earlier call used, so no cached answer stands in for Plausible's.
    const result = await client.callTool({ name: 'get_timeseries', arguments: { site_id: SITE, date_range: '2024-02-01,2024-02-07' } });
    assert.equal(result.isError, true, JSON.stringify(result));
    const text = result.content.map((c) => c.text).join('\n');
    assert.match(text, /Plausible no longer accepts the API key of this connection for the site "example\.com"/);
    assert.match(text, /Reconnect this server in your MCP client and enter a current key\./);
    assert.ok(!text.includes(key), 'the message never carries the key');
  });

  test('tokens are bound to their endpoint: a /mcp token at /internal and an /internal token at /mcp get 401 invalid_token', async () => {
    const mcpToken = provider.tokens().access_token;
    const atInternal = await internalCall(mcpToken);
    assert.equal(atInternal.status, 401, atInternal.text);
    assert.equal(challengeParams(atInternal.res.headers.get('www-authenticate')).error, 'invalid_token');

    const { tokens } = await issueTokens();
    const r = await mcpCall(tokens.access_token, { method: 'tools/list', params: {} });
    assert.equal(r.status, 401, r.text);
    const p = challengeParams(r.res.headers.get('www-authenticate'));
    assert.equal(p.error, 'invalid_token');
    assert.equal(p.resource_metadata, PRM_MCP);
    await client.close();
  });
});

describe('official SDK v2 OAuth client on /mcp: the same flow through @modelcontextprotocol/client', () => {
  const REDIRECT_URL = 'http://127.0.0.1:8979/callback';

  test('registers, goes through the key page, calls a tool with its own key', async () => {
    const key = await newKey('sdk-v2');
    const rec = recordingFetch();
    const provider = new KeyFlowOAuthProvider({ base: BASE, key, sites: [SITE], redirectUrl: REDIRECT_URL, clientName: 'e2e sdk v2 on /mcp' });
    const first = new v2.StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider, fetch: rec.fetch });
    await assert.rejects(new v2.Client({ name: 'e2e-oauth-sdk-mcp-v2', version: '2.0.0' }).connect(first), v2.UnauthorizedError);
    const az = provider.authorizations[0];
    assert.equal(az.url.searchParams.get('resource'), MCP);
    assertKeyFlow(az, { key, redirectUrl: REDIRECT_URL });
    // v2 checks iss against the issuer it discovered (RFC 9207) before redeeming.
    await first.finishAuth(new URL(az.location).searchParams);
    await first.close();
    assert.equal(find(rec.log, 'POST', '/register').length, 1);
    const [redeem] = find(rec.log, 'POST', '/token');
    assert.equal(redeem.status, 200);
    assert.equal(redeem.body.resource, MCP);

    const client = new v2.Client({ name: 'e2e-oauth-sdk-mcp-v2', version: '2.0.0' });
    await client.connect(new v2.StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider, fetch: rec.fetch }));
    const from = (await standInRequests()).length;
    assertSampleResult('get_conversions', await client.callTool({ name: 'get_conversions', arguments: SAMPLE_CALLS.get_conversions }));
    const queries = await queriesSince(from);
    assert.ok(queries.length >= 1);
    assert.ok(queries.every((q) => keyOf(q) === key), JSON.stringify(queries.map(keyOf)));
    await client.close();
  });
});
