// The official v1 SDK (@modelcontextprotocol/sdk 1.32) as an OAuth client
// of /internal, given nothing but the URL: it must discover the protected
// resource and authorization server metadata, register itself (RFC 7591),
// authorize with PKCE S256 and a resource indicator, call a tool, refresh,
// and cope with revocation. The user agent is HeadlessOAuthProvider
// (oauth-helpers.mjs), which signs in through the test identity hook.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { SAMPLE_CALLS, assertSampleResult } from './mcp-helpers.mjs';
import {
  BASE, HeadlessOAuthProvider, PRM_PATH, assertTokenError, assertTokenRejected, assertTokenWorks, assertTokens, challengeParams,
  internalCall, metadataUrlOf, recordingFetch, refreshRequest, resourceOf, revokeRequest, s256,
} from './oauth-helpers.mjs';

const SERVER_URL = `${BASE}/internal`;
const REDIRECT_URL = 'http://127.0.0.1:8976/callback';

/**
 * The SDK's whole first-time flow: connect (401 → discovery → DCR →
 * authorization), finishAuth with the captured code, connect again.
 */
async function connectWithOAuth(provider, rec) {
  const first = new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider, fetch: rec.fetch });
  const probe = new Client({ name: 'e2e-oauth-sdk', version: '1.0.0' });
  await assert.rejects(probe.connect(first), UnauthorizedError);
  assert.match(provider.code ?? '', /^pmcp_ac_/, 'the provider captured a code');
  await first.finishAuth(provider.code);
  await first.close();
  const transport = new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider, fetch: rec.fetch });
  const client = new Client({ name: 'e2e-oauth-sdk', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

const find = (log, method, path) => log.filter((e) => e.method === method && e.url.pathname === path);

describe('official SDK v1 OAuth client against /internal (dynamic registration)', () => {
  const rec = recordingFetch();
  const provider = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL });
  let session;

  test('connects from the bare URL: 401, discovery, registration, PKCE authorization, token', async () => {
    session = await connectWithOAuth(provider, rec);
    const { log } = rec;

    // 1. The first request was refused with a bare challenge naming the PRM.
    const firstPost = log.find((e) => e.method === 'POST' && e.url.pathname === '/internal');
    assert.equal(firstPost.status, 401);
    assert.equal(firstPost.headers.authorization, undefined);
    const challenge = challengeParams(firstPost.responseHeaders.get('www-authenticate'));
    assert.equal(challenge.resource_metadata, metadataUrlOf());
    assert.equal(challenge.scope, 'mcp');
    assert.equal(challenge.error, undefined);

    // 2. Discovery: the PRM it was pointed at, then the AS metadata of the
    //    authorization server the PRM names.
    const prm = find(log, 'GET', PRM_PATH);
    assert.ok(prm.length >= 1 && prm.every((e) => e.status === 200), 'PRM fetched');
    const asm = find(log, 'GET', '/.well-known/oauth-authorization-server');
    assert.ok(asm.length >= 1 && asm.every((e) => e.status === 200), 'AS metadata fetched');
    assert.equal(asm[0].url.origin, BASE);

    // 3. Dynamic registration, saved with the issuer stamp.
    const reg = find(log, 'POST', '/register');
    assert.equal(reg.length, 1);
    assert.equal(reg[0].status, 201);
    assert.deepEqual(reg[0].body.redirect_uris, [REDIRECT_URL]);
    assert.equal(provider.savedClients.length, 1);
    const saved = provider.savedClients[0];
    assert.match(saved.client_id, /^pmcp_client_[A-Za-z0-9_-]+$/);
    assert.equal(saved.token_endpoint_auth_method, 'none');
    assert.equal(saved.client_secret, undefined);

    // 4. The authorization request: PKCE S256 over the verifier it kept,
    //    the resource indicator of /internal, the scope from the challenge.
    assert.equal(provider.authorizations.length, 1);
    const az = provider.authorizations[0];
    assert.equal(`${az.url.origin}${az.url.pathname}`, `${BASE}/authorize`);
    const q = Object.fromEntries(az.url.searchParams);
    assert.equal(q.response_type, 'code');
    assert.equal(q.client_id, saved.client_id);
    assert.equal(q.redirect_uri, REDIRECT_URL);
    assert.equal(q.code_challenge_method, 'S256');
    assert.equal(provider.savedVerifiers.length, 1);
    assert.equal(q.code_challenge, s256(provider.savedVerifiers[0]));
    assert.equal(q.resource, resourceOf());
    assert.equal(q.scope, 'mcp');
    assert.equal(q.state, provider.states[0]);
    // The worker's answer: back to the redirect URI with code, state, iss.
    assert.equal(az.status, 302);
    const back = new URL(az.location);
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT_URL);
    assert.equal(back.searchParams.get('state'), q.state);
    assert.equal(back.searchParams.get('iss'), BASE);

    // 5. The code redemption: verifier, redirect URI, resource, client id.
    const tokenCalls = find(log, 'POST', '/token');
    assert.equal(tokenCalls.length, 1);
    assert.equal(tokenCalls[0].status, 200);
    assert.deepEqual(tokenCalls[0].body, {
      grant_type: 'authorization_code',
      code: az.code,
      code_verifier: provider.savedVerifiers[0],
      redirect_uri: REDIRECT_URL,
      resource: resourceOf(),
      client_id: saved.client_id,
    });
    assert.equal(provider.savedTokens.length, 1);
    const t = provider.savedTokens[0];
    assert.match(t.access_token, /^pmcp_at_/);
    assert.match(t.refresh_token, /^pmcp_rt_/);
    assert.equal(t.token_type, 'Bearer');
    assert.equal(t.scope, 'mcp');

    // 6. The reconnection carries the access token and succeeds.
    const init = log.findLast((e) => e.method === 'POST' && e.body?.method === 'initialize');
    assert.equal(init.status, 200);
    assert.equal(init.headers.authorization, `Bearer ${t.access_token}`);
  });

  test('tools/call get_timeseries on example.com returns the data (queried with the shared key)', async () => {
    const result = await session.client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries });
    assertSampleResult('get_timeseries', result);
  });

  test('a refresh forced by a rejected access token rotates the refresh token; reusing the old one revokes the grant', async () => {
    const before = provider.tokens();
    const oldRefresh = before.refresh_token;
    const tokenCallsBefore = find(rec.log, 'POST', '/token').length;
    // An access token the worker does not know (as an expired one would be):
    // the SDK gets 401, refreshes with the stored refresh token, retries.
    provider.setTokens({ ...before, access_token: `pmcp_at_${'x'.repeat(43)}` });
    const result = await session.client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries });
    assertSampleResult('get_timeseries', result);

    const refreshes = find(rec.log, 'POST', '/token').slice(tokenCallsBefore);
    assert.equal(refreshes.length, 1);
    assert.equal(refreshes[0].status, 200);
    assert.deepEqual(refreshes[0].body, {
      grant_type: 'refresh_token',
      refresh_token: oldRefresh,
      resource: resourceOf(),
      client_id: provider.clientInformation().client_id,
    });
    const now = provider.tokens();
    assert.equal(provider.savedTokens.at(-1), now);
    assert.match(now.refresh_token, /^pmcp_rt_/);
    assert.notEqual(now.refresh_token, oldRefresh, 'a new refresh token was issued');
    assert.notEqual(now.access_token, before.access_token);
    await assertTokenWorks(now.access_token, { label: 'refreshed access token' });

    // Once the new refresh token was presented, the rotated-out one is
    // refused, and presenting it ends the whole grant (OAuth 2.1 §4.3.1):
    // the newest tokens stop working too. (Before that, within 30 s, it
    // would get the same pair again: a lost response's retry, issue 11.)
    const newest = assertTokens(await refreshRequest(provider.clientInformation(), now.refresh_token));
    const replay = await refreshRequest(provider.clientInformation(), oldRefresh);
    assertTokenError(replay, 400, 'invalid_grant', 'old refresh token');
    await assertTokenRejected(newest.access_token, { label: 'access token of the revoked grant' });
    assertTokenError(await refreshRequest(provider.clientInformation(), newest.refresh_token), 400, 'invalid_grant', 'newest refresh token of the revoked grant');
    await session.client.close();
  });

  test('revoking the refresh token at /revoke ends access at /internal; the SDK then starts a new authorization', async () => {
    const rec2 = recordingFetch();
    const p2 = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL });
    const { client } = await connectWithOAuth(p2, rec2);
    const { access_token: access, refresh_token: refresh } = p2.tokens();
    assertSampleResult('get_timeseries', await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }));

    const revoked = await revokeRequest(p2.clientInformation(), refresh);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.text, '');

    const r = await internalCall(access);
    assert.equal(r.status, 401);
    const header = r.res.headers.get('www-authenticate');
    assert.match(header, /^Bearer /);
    assert.match(header, /error="invalid_token"/);
    assert.ok(header.includes(`resource_metadata="${metadataUrlOf()}"`), header);
    assertTokenError(await refreshRequest(p2.clientInformation(), refresh), 400, 'invalid_grant', 'revoked refresh token');

    // The SDK's reaction: 401 → refresh refused (invalid_grant) → drop the
    // tokens → a fresh authorization, which needs the user: UnauthorizedError.
    const authorizationsBefore = p2.authorizations.length;
    await assert.rejects(client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }), UnauthorizedError);
    assert.deepEqual(p2.invalidations, ['tokens']);
    assert.equal(p2.authorizations.length, authorizationsBefore + 1);
    assert.equal(p2.authorizations.at(-1).status, 302);
    // It kept its registration: no second /register.
    assert.equal(find(rec2.log, 'POST', '/register').length, 1);
    await client.close();
  });
});
