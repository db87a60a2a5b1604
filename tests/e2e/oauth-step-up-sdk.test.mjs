// Issue 15, the step-up through an official client: the v2 SDK
// (@modelcontextprotocol/client) holding a `sites:read` token for
// /internal lists sites, gets the 403 insufficient_scope challenge on a
// query tool, re-authorizes by itself with the union of what it holds and
// what the challenge names (and no refresh: a refresh cannot widen), and
// after finishAuth the same call succeeds. The user agent is
// HeadlessOAuthProvider (oauth-helpers.mjs), which signs in through the
// test identity hook; the consent page's own step-up behaviour is
// oauth-scopes.test.mjs's.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import {
  BASE, HeadlessOAuthProvider, challengeParams, issueTokens, metadataUrlOf, recordingFetch, registerClient, resourceOf,
} from './oauth-helpers.mjs';

const SERVER_URL = `${BASE}/internal`;
const REDIRECT_URL = 'http://127.0.0.1:8977/callback';
const BREAKDOWN = { site_id: 'example.com', date_range: '2024-02-01,2024-02-07', dimension: 'visit:source' };

const find = (log, method, path) => log.filter((e) => e.method === method && e.url.pathname === path);

describe('official SDK v2 client stepping up from sites:read', () => {
  test('403 insufficient_scope → re-authorization with the union scope → the call succeeds', async () => {
    // A client that holds a sites:read grant (obtained as a person would,
    // through the test identity hook), handed to the SDK's provider.
    const registered = await registerClient({ client_name: 'e2e step-up sdk', redirect_uris: [REDIRECT_URL] });
    const { tokens } = await issueTokens({ client: registered, scope: 'sites:read' });
    const provider = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL });
    provider.saveClientInformation({ ...registered, issuer: BASE });
    provider.saveTokens({ ...tokens, issuer: BASE });

    const rec = recordingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(SERVER_URL), { authProvider: provider, fetch: rec.fetch });
    const client = new Client({ name: 'e2e-step-up', version: '2.0.0' });
    await client.connect(transport);
    try {
      const sites = await client.callTool({ name: 'list_sites', arguments: {} });
      assert.equal(sites.isError, false, JSON.stringify(sites));

      // The query: 403, then the SDK re-authorizes on its own.
      await assert.rejects(client.callTool({ name: 'get_breakdown', arguments: BREAKDOWN }), UnauthorizedError);
      const refused = rec.log.find((e) => e.method === 'POST' && e.status === 403);
      assert.ok(refused, 'a 403 was answered');
      assert.equal(refused.body.params.name, 'get_breakdown');
      const challenge = challengeParams(refused.responseHeaders.get('www-authenticate'));
      assert.deepEqual(challenge, {
        realm: 'plausible-mcp',
        resource_metadata: metadataUrlOf(),
        scope: 'sites:read stats:read',
        error: 'insufficient_scope',
        error_description: 'This call needs the stats:read scope',
      });
      // No refresh (it could not widen), one new authorization request for
      // the union of what the token held and what the challenge named.
      assert.equal(find(rec.log, 'POST', '/token').length, 0, 'no refresh before the step-up');
      assert.equal(provider.authorizations.length, 1);
      const q = Object.fromEntries(provider.authorizations[0].url.searchParams);
      assert.deepEqual(q.scope.split(' ').sort(), ['sites:read', 'stats:read']);
      assert.equal(q.resource, resourceOf());
      assert.equal(q.client_id, registered.client_id);

      // The redirect carries `iss` (RFC 9207), which v2 checks.
      const iss = new URL(provider.authorizations[0].location).searchParams.get('iss');
      assert.equal(iss, BASE);
      await transport.finishAuth(provider.code, iss);
      const stepped = provider.tokens();
      assert.deepEqual(stepped.scope.split(' ').sort(), ['sites:read', 'stats:read']);
      assert.notEqual(stepped.access_token, tokens.access_token);

      const result = await client.callTool({ name: 'get_breakdown', arguments: BREAKDOWN });
      assert.equal(result.isError, false, JSON.stringify(result));
      assert.ok(result.structuredContent.results.length > 0);
      const again = await client.callTool({ name: 'list_sites', arguments: {} });
      assert.equal(again.isError, false, 'list_sites still works after the step-up');
    } finally {
      await client.close();
    }
  });
});
