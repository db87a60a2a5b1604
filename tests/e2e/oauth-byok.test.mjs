// Issue 15: /mcp as an OAuth-protected resource whose grants carry the
// person's own Plausible key, over HTTP against the worker in workerd and
// the Plausible stand-in (which checks which key each request carried).
// Every post of the key form counts against LIMIT_KEY_FORM (10 a minute
// per address; this file has an address of its own): the tests post it
// fewer times than that before the last one trips it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, PRM_PATH, challengeParams, internalCall, issueTokens, metadataUrlOf, pkce, randomState,
  refreshRequest, registerClient, resourceOf, send, tokenRequest,
} from './oauth-helpers.mjs';
import {
  MCP_PRM_PATH, addStandInKey, completeKeyFlow, keyGrant, keyOf, mcpAuthorizeUrl, mcpCall,
  mcpMetadataUrlOf, mcpResourceOf, openKeyForm, postKeyForm, revokeStandInKey, standInRequests, tickedSites,
} from './key-flow.mjs';

const KEY_A = 'byok-e2e-key-alpha-7f3a';
const KEY_B = 'byok-e2e-key-bravo-91c2';
await addStandInKey(KEY_A, ['example.com', 'shop.example.com']);
await addStandInKey(KEY_B, ['trends.example.com']);

/** The stand-in's requests from `since` on (an index into its log). */
async function requestsSince(since) {
  return (await standInRequests()).slice(since);
}

describe('/mcp as a protected resource', () => {
  test('its metadata names /mcp, and a request without credentials is challenged toward it', async () => {
    const prm = await send(`${BASE}${MCP_PRM_PATH}`);
    assert.equal(prm.status, 200);
    assert.equal(prm.json.resource, mcpResourceOf());
    assert.deepEqual(prm.json.authorization_servers, [BASE]);
    assert.deepEqual(prm.json.bearer_methods_supported, ['header']);
    // /internal's document is unchanged.
    assert.equal((await send(`${BASE}${PRM_PATH}`)).json.resource, resourceOf());
    const r = await mcpCall(null, { method: 'ping', params: {} });
    assert.equal(r.status, 401);
    const p = challengeParams(r.res.headers.get('www-authenticate'));
    assert.equal(p.resource_metadata, mcpMetadataUrlOf());
    assert.equal(p.error, undefined, 'RFC 6750 §3.1: no error code without credentials');
  });

  test('a raw Plausible key as the bearer works as before', async () => {
    const since = (await standInRequests()).length;
    const r = await mcpCall(KEY_B, { params: { name: 'get_timeseries', arguments: { site_id: 'trends.example.com', date_range: '2024-03-01,2024-03-07' } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.result.isError, false, r.text);
    assert.deepEqual((await requestsSince(since)).map(keyOf), [KEY_B]);
  });
});

describe('the key flow', () => {
  test('key form → Plausible check → consent → code → token → tool calls with the person\'s key', async () => {
    const since = (await standInRequests()).length;
    const { client, tokens, flow } = await keyGrant({ apiKey: KEY_A, sites: ['example.com', 'shop.example.com'] });
    // The form: no-store, no framing, no autocomplete, a __Host- cookie.
    const form = flow.form;
    assert.equal(form.res.headers.get('cache-control'), 'no-store');
    assert.match(form.res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
    assert.equal(form.res.headers.get('x-frame-options'), 'DENY');
    assert.match(form.text, /<form method="post" action="\/authorize\/key" autocomplete="off">/);
    assert.match(form.res.headers.get('set-cookie'), /^__Host-pmcp_key_[^=]+=[^;]+; Path=\/; Secure; HttpOnly; SameSite=Strict/);
    // The consent page names the key by its last four characters, and the sites.
    assert.match(flow.consent.text, /your Plausible API key ending in <code>…7f3a<\/code>/);
    // The site chooser offers the sites the form checked, all ticked, and no "all sites".
    assert.deepEqual(tickedSites(flow.consent.text), ['example.com', 'shop.example.com']);
    assert.doesNotMatch(flow.consent.text, /name="all_sites" value="1"/);
    assert.ok(!flow.consent.text.includes(KEY_A), 'the key is never shown');
    // One query per site to validate, each with the key.
    const checks = await requestsSince(since);
    assert.deepEqual(checks.map((q) => [keyOf(q), q.body.site_id, q.body.date_range]),
      [[KEY_A, 'example.com', 'day'], [KEY_A, 'shop.example.com', 'day']]);
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.scope, 'mcp');

    const before = (await standInRequests()).length;
    const r = await mcpCall(tokens.access_token);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.result.isError, false, r.text);
    assert.equal(r.json.result.structuredContent.results.length, 7);
    const used = await requestsSince(before);
    assert.deepEqual(used.map(keyOf), [KEY_A], 'the person\'s key reached Plausible, never our token');

    // A refresh keeps the grant on /mcp, and its new token works there.
    const refreshed = await refreshRequest(client, tokens.refresh_token);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.equal(refreshed.json.resource, mcpResourceOf());
    const again = await mcpCall(refreshed.json.access_token);
    assert.equal(again.json.result.isError, false, again.text);
  });

  test('tokens of one endpoint are refused by the other, both ways', async () => {
    const { client, tokens } = await keyGrant({ apiKey: KEY_B, sites: 'trends.example.com' });
    // A /mcp token at /internal.
    const atInternal = await internalCall(tokens.access_token);
    assert.equal(atInternal.status, 401, atInternal.text);
    let p = challengeParams(atInternal.res.headers.get('www-authenticate'));
    assert.equal(p.error, 'invalid_token');
    assert.equal(p.resource_metadata, metadataUrlOf());
    // An /internal token at /mcp.
    const internal = await issueTokens();
    const atMcp = await mcpCall(internal.tokens.access_token);
    assert.equal(atMcp.status, 401, atMcp.text);
    p = challengeParams(atMcp.res.headers.get('www-authenticate'));
    assert.equal(p.error, 'invalid_token');
    assert.equal(p.resource_metadata, mcpMetadataUrlOf());
    // A refresh of the /mcp grant for /internal, and of the /internal grant for /mcp.
    const cross = await refreshRequest(client, tokens.refresh_token, { extra: { resource: resourceOf() } });
    assert.equal(cross.status, 400, cross.text);
    assert.equal(cross.json.error, 'invalid_target');
    const back = await refreshRequest(internal.client, internal.tokens.refresh_token, { extra: { resource: mcpResourceOf() } });
    assert.equal(back.json.error, 'invalid_target');
  });

  test('a code of the key flow is not redeemed for /internal', async () => {
    const client = await registerClient({ client_name: 'e2e key client' });
    const { verifier, challenge } = pkce();
    const flow = await completeKeyFlow(mcpAuthorizeUrl(client, { challenge }), { apiKey: KEY_B, sites: 'trends.example.com' });
    const r = await tokenRequest({
      grant_type: 'authorization_code', client_id: client.client_id, code: flow.params.code,
      code_verifier: verifier, redirect_uri: client.redirect_uris[0], resource: resourceOf(),
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error, 'invalid_target');
  });
});

describe('what the key form refuses, and how it says so', () => {
  /** A fresh key form for a fresh client. */
  async function freshForm() {
    const client = await registerClient({ client_name: 'e2e key client' });
    const form = await openKeyForm(mcpAuthorizeUrl(client, { challenge: pkce().challenge, state: randomState() }));
    assert.equal(form.status, 200, form.text);
    return form;
  }

  test('a wrong key: the form again, naming the site, after one query; the key not echoed', async () => {
    const form = await freshForm();
    const since = (await standInRequests()).length;
    const r = await postKeyForm(form, { apiKey: 'byok-e2e-not-a-real-key', sites: 'example.com\nshop.example.com' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.code, 'key_refused');
    assert.match(r.text, /Plausible did not accept this key for the site &quot;example\.com&quot;/);
    assert.ok(!r.text.includes('byok-e2e-not-a-real-key'));
    assert.match(r.text, /<textarea[^>]*>example\.com\nshop\.example\.com<\/textarea>/, 'the sites are kept');
    assert.equal((await requestsSince(since)).length, 1, 'a wrong key costs one query');
  });

  test('a site the key cannot read is named', async () => {
    const form = await freshForm();
    const r = await postKeyForm(form, { apiKey: KEY_A, sites: 'example.com, trends.example.com' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.code, 'site_unreadable');
    assert.match(r.text, /Plausible accepted this key, but it cannot read the site &quot;trends\.example\.com&quot;/);
  });

  test('a client whose redirect host is not verified gets a page naming it, and no form', async () => {
    const client = await registerClient({ client_name: 'e2e lookalike', redirect_uris: ['https://app.example/oauth/callback'] });
    const r = await openKeyForm(mcpAuthorizeUrl(client, { challenge: pkce().challenge }));
    assert.equal(r.status, 403, r.text);
    assert.equal(r.code, 'unverified_redirect_host');
    assert.match(r.text, /would send you back to https:\/\/app\.example, which this server has not verified/);
    assert.ok(!r.text.includes('<form') && !r.text.includes('api_key'), 'no key form');
    assert.equal(r.cookie, null, 'no cookie either');
  });

  test('a post without its CSRF token, or from another origin, is refused before Plausible is asked', async () => {
    const form = await freshForm();
    const since = (await standInRequests()).length;
    const noCsrf = await postKeyForm(form, { apiKey: KEY_A, sites: 'example.com', csrf: null });
    assert.equal(noCsrf.status, 400, noCsrf.text);
    assert.equal(noCsrf.code, 'bad_csrf');
    const foreign = await postKeyForm(form, { apiKey: KEY_A, sites: 'example.com', origin: 'https://evil.example' });
    assert.equal(foreign.status, 403, foreign.text);
    assert.equal(foreign.code, 'foreign_origin');
    assert.equal((await requestsSince(since)).length, 0);
  });
});

describe('a key revoked at Plausible', () => {
  test('the tool call says to reconnect', async () => {
    const key = `byok-e2e-key-revoked-${randomState()}`;
    await addStandInKey(key, ['example.com']);
    const { tokens } = await keyGrant({ apiKey: key, sites: 'example.com' });
    assert.equal((await mcpCall(tokens.access_token)).json.result.isError, false);
    await revokeStandInKey(key);
    // Another range: the one already asked may come from the edge cache
    // (PLAUSIBLE_CACHE_TTL) without reaching Plausible.
    const r = await mcpCall(tokens.access_token, {
      params: { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-04-01,2024-04-07' } },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.result.isError, true, r.text);
    assert.match(r.json.result.content[0].text,
      /Plausible no longer accepts the API key of this connection for the site "example\.com" \(401\).*Reconnect this server in your MCP client/);
  });
});

describe('the per-address limit', () => {
  test('every post counts; past the limit the form answers 429 with Retry-After', async () => {
    // LIMIT_KEY_FORM is 10 / 60 s (wrangler.toml); the binding counts in
    // fixed windows, so up to twice the limit plus one.
    const client = await registerClient({ client_name: 'e2e key client' });
    const form = await openKeyForm(mcpAuthorizeUrl(client, { challenge: pkce().challenge }));
    let limited = null;
    for (let i = 0; i <= 20 && !limited; i++) {
      const r = await postKeyForm(form, { apiKey: 'short', sites: 'example.com' });
      if (r.status === 429) limited = r;
      else assert.equal(r.code, 'invalid_key', r.text);
    }
    assert.ok(limited, 'the key form was never limited');
    assert.equal(limited.res.headers.get('retry-after'), '60');
    assert.equal(limited.code, 'temporarily_unavailable');
    // A correct post is refused too while the period lasts.
    const r = await postKeyForm(form, { apiKey: KEY_A, sites: 'example.com' });
    assert.equal(r.status, 429);
  });
});
