// The authorization server's endpoints over raw HTTP, case by case:
// metadata, the /internal challenge, /register, /authorize, /token and
// /revoke. Each case checks the status, the Location (or its absence) and
// the body the RFCs call for.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, PRM_PATH, assertTokenError, assertTokenRejected, assertTokenWorks, assertTokens, authorizationParams,
  authorizeCode, authorizeRaw, basic, challengeParams, internalCall, issueTokens, locationParams, metadataUrlOf, pkce,
  redeemForm, refreshRequest, register, registerClient, resourceOf, revokeRequest, send, tokenRequest,
  withoutQuery,
} from './oauth-helpers.mjs';
import { backLink, pageErrorCode } from './support/http.mjs';

const RESOURCE = resourceOf();

function assertCors(res, methods, label = '') {
  assert.equal(res.headers.get('access-control-allow-origin'), '*', label);
  assert.equal(res.headers.get('access-control-allow-methods'), methods, label);
  assert.ok(res.headers.get('access-control-allow-headers'), label);
}

describe('metadata', () => {
  test('authorization server metadata (RFC 8414): exact issuer, every endpoint, S256 only', async () => {
    const r = await send(`${BASE}/.well-known/oauth-authorization-server`);
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('content-type'), /^application\/json/);
    const m = r.json;
    assert.equal(m.issuer, BASE);
    assert.ok(!m.issuer.endsWith('/'));
    assert.equal(m.authorization_endpoint, `${BASE}/authorize`);
    assert.equal(m.token_endpoint, `${BASE}/token`);
    assert.equal(m.registration_endpoint, `${BASE}/register`);
    assert.equal(m.revocation_endpoint, `${BASE}/revoke`);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(m.response_types_supported, ['code']);
    assert.deepEqual(m.grant_types_supported, ['authorization_code', 'refresh_token']);
    assert.deepEqual(m.scopes_supported, ['mcp', 'sites:read', 'stats:read']);
    assert.ok(!m.scopes_supported.includes('offline_access'));
    assert.deepEqual([...m.token_endpoint_auth_methods_supported].sort(), ['client_secret_basic', 'client_secret_post', 'none']);
    assert.equal(m.client_id_metadata_document_supported, true);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assertCors(r.res, 'GET, OPTIONS');
  });

  test('protected resource metadata (RFC 9728), root and /internal forms', async () => {
    for (const p of ['/.well-known/oauth-protected-resource', PRM_PATH]) {
      const r = await send(`${BASE}${p}`);
      assert.equal(r.status, 200, p);
      assert.equal(r.json.resource, RESOURCE, p);
      assert.deepEqual(r.json.authorization_servers, [BASE], p);
      assert.deepEqual(r.json.scopes_supported, ['mcp', 'sites:read', 'stats:read'], p);
      assert.deepEqual(r.json.bearer_methods_supported, ['header'], p);
      assertCors(r.res, 'GET, OPTIONS', p);
    }
  });

  test('metadata documents refuse POST (405 with Allow) and answer preflights', async () => {
    for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource', PRM_PATH]) {
      const r = await send(`${BASE}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(r.status, 405, p);
      assert.equal(r.res.headers.get('allow'), 'GET, HEAD, OPTIONS', p);
      assert.equal(r.json.error, 'method_not_allowed', p);
      const pre = await send(`${BASE}${p}`, { method: 'OPTIONS', headers: { origin: 'https://claude.ai', 'access-control-request-method': 'GET' } });
      assert.equal(pre.status, 204, p);
      assertCors(pre.res, 'GET, OPTIONS', p);
    }
  });
});

describe('/internal challenges (RFC 6750 §3, RFC 9728 §5.1)', () => {
  test('no token: 401 with a bare Bearer challenge naming the metadata and the scope', async () => {
    for (const auth of [null, 'Basic dXNlcjpwYXNz']) {
      const r = auth === null
        ? await internalCall(null)
        : await send(`${BASE}/internal`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: auth },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        });
      assert.equal(r.status, 401, String(auth));
      const header = r.res.headers.get('www-authenticate');
      assert.match(header, /^Bearer /);
      const p = challengeParams(header);
      assert.equal(p.resource_metadata, metadataUrlOf());
      assert.equal(p.scope, 'mcp');
      assert.equal(p.error, undefined, header);
      assert.ok(!header.includes('error='), header);
    }
  });

  test('an unknown or malformed token: 401 error="invalid_token"', async () => {
    for (const token of ['garbage', `pmcp_at_${'A'.repeat(43)}`, 'plausible-shared-key']) {
      await assertTokenRejected(token, { label: token });
    }
  });
});

describe('/register (RFC 7591)', () => {
  test('a public client: 201, an id, no secret', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await register({
      client_name: 'Public',
      redirect_uris: ['https://app.example/cb', 'http://127.0.0.1:6274/oauth/callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.res.headers.get('cache-control'), 'no-store');
    assertCors(r.res, 'POST, OPTIONS');
    const c = r.json;
    assert.match(c.client_id, /^pmcp_client_[A-Za-z0-9_-]{20,}$/);
    assert.equal(c.client_name, 'Public');
    assert.deepEqual(c.redirect_uris, ['https://app.example/cb', 'http://127.0.0.1:6274/oauth/callback']);
    assert.equal(c.token_endpoint_auth_method, 'none');
    assert.deepEqual(c.grant_types, ['authorization_code', 'refresh_token']);
    assert.deepEqual(c.response_types, ['code']);
    assert.ok(c.client_id_issued_at >= before - 5 && c.client_id_issued_at <= before + 60, String(c.client_id_issued_at));
    assert.equal('client_secret' in c, false);
    assert.equal('client_secret_expires_at' in c, false);
  });

  test('confidential clients: the secret is in the 201 body (only there) and authenticates at /token', async () => {
    const now = Math.floor(Date.now() / 1000);
    // No method given: RFC 7591 §2's default, client_secret_basic.
    for (const [meta, method] of [[{}, 'client_secret_basic'], [{ token_endpoint_auth_method: 'client_secret_post' }, 'client_secret_post']]) {
      const r = await register({ redirect_uris: ['https://app.example/cb'], ...meta });
      assert.equal(r.status, 201, r.text);
      const c = r.json;
      assert.equal(c.token_endpoint_auth_method, method);
      assert.match(c.client_secret, /^pmcp_cs_[A-Za-z0-9_-]{20,}$/);
      assert.ok(c.client_secret_expires_at > now + 80 * 86400, 'expires with the registration');
      // A second identical registration is another client with another secret.
      const again = (await register({ redirect_uris: ['https://app.example/cb'], ...meta })).json;
      assert.notEqual(again.client_id, c.client_id);
      assert.notEqual(again.client_secret, c.client_secret);
      // The secret works with the registered method.
      const grant = await authorizeCode(c);
      const form = { grant_type: 'authorization_code', code: grant.code, code_verifier: grant.verifier, redirect_uri: grant.redirectUri };
      const t = method === 'client_secret_basic'
        ? await tokenRequest(form, { auth: basic(c.client_id, c.client_secret) })
        : await tokenRequest({ ...form, client_id: c.client_id, client_secret: c.client_secret });
      assertTokens(t);
    }
  });

  test('media type parameters are allowed: application/json; charset=utf-8', async () => {
    const r = await register({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' }, { contentType: 'application/json; charset=utf-8' });
    assert.equal(r.status, 201, r.text);
    assert.match(r.json.client_id, /^pmcp_client_/);
  });

  const good = { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' };
  const bad = [
    ['missing redirect_uris', { token_endpoint_auth_method: 'none' }, 'invalid_redirect_uri'],
    ['empty redirect_uris', { ...good, redirect_uris: [] }, 'invalid_redirect_uri'],
    ['redirect_uris not an array', { ...good, redirect_uris: 'https://app.example/cb' }, 'invalid_redirect_uri'],
    ['http on a non-loopback host', { ...good, redirect_uris: ['http://app.example/cb'] }, 'invalid_redirect_uri'],
    ['javascript: URI', { ...good, redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
    ['fragment', { ...good, redirect_uris: ['https://app.example/cb#frag'] }, 'invalid_redirect_uri'],
    ['relative URI', { ...good, redirect_uris: ['/cb'] }, 'invalid_redirect_uri'],
    ['credentials in the URI', { ...good, redirect_uris: ['https://user:pw@app.example/cb'] }, 'invalid_redirect_uri'],
    ['eleven redirect_uris', { ...good, redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example/${i}`) }, 'invalid_redirect_uri'],
    ['unsupported auth method', { ...good, token_endpoint_auth_method: 'private_key_jwt' }, 'invalid_client_metadata'],
    ['client_credentials grant', { ...good, grant_types: ['client_credentials'] }, 'invalid_client_metadata'],
    ['implicit grant', { ...good, grant_types: ['authorization_code', 'implicit'] }, 'invalid_client_metadata'],
    ['token response type', { ...good, response_types: ['token'] }, 'invalid_client_metadata'],
    ['non-https client_uri', { ...good, client_uri: 'http://app.example' }, 'invalid_client_metadata'],
    ['JSON that is not an object', '["https://app.example/cb"]', 'invalid_client_metadata'],
    ['malformed JSON', '{"redirect_uris": [', 'invalid_client_metadata'],
    ['non-JSON content type', JSON.stringify(good), 'invalid_client_metadata', 'text/plain'],
    ['form content type', new URLSearchParams({ redirect_uris: 'https://app.example/cb' }).toString(), 'invalid_client_metadata', 'application/x-www-form-urlencoded'],
    ['huge body (over 16 KiB)', { ...good, padding: 'x'.repeat(20 * 1024) }, 'invalid_client_metadata'],
  ];
  for (const [name, body, error, contentType] of bad) {
    test(`refused: ${name} → 400 ${error}`, async () => {
      const r = await register(body, contentType ? { contentType } : {});
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json?.error, error, r.text);
      assert.equal(typeof r.json.error_description, 'string');
      assert.equal(r.json.client_id, undefined);
      assert.equal(r.res.headers.get('cache-control'), 'no-store');
    });
  }

  // A 1 MiB body used to be read whole and refused here as metadata (400
  // invalid_client_metadata). Issue 10 ("Bounded inputs") refuses it by
  // its length before reading, with 413: that case lives in
  // bounded-bodies.test.mjs (and the attack suite's BD-06), not here,
  // because in local runs wrangler dev's proxy may take the refused
  // upload's reset for a worker restart and hold the next GET through it
  // (seen: GET /register unanswered for 300 s right after).
  test('GET /register → 405', async () => {
    const r = await send(`${BASE}/register`);
    assert.equal(r.status, 405);
    assert.equal(r.res.headers.get('allow'), 'POST, OPTIONS');
  });
});

describe('/authorize', () => {
  let client;
  let twoUris;
  before(async () => {
    client = await registerClient({ redirect_uris: ['https://app.example/cb'] });
    twoUris = await registerClient({ redirect_uris: ['https://app.example/cb', 'https://app.example/other'] });
  });

  const params = (c, change = {}) => {
    const p = { ...authorizationParams(c, { challenge: pkce().challenge, state: 'state-123' }), ...change };
    for (const [k, v] of Object.entries(p)) if (v === undefined) delete p[k];
    return p;
  };

  // Each page names its error in <meta name="error">; the text is checked too.
  const pageCases = [
    ['unknown client', () => params({ client_id: 'pmcp_client_doesnotexist', redirect_uris: ['https://app.example/cb'] }), 'unknown_client', /not registered/],
    ['unregistered redirect_uri', () => params(client, { redirect_uri: 'https://evil.example/cb' }), 'unregistered_redirect_uri', /not one this application registered/],
    ['redirect_uri differing by a trailing slash', () => params(client, { redirect_uri: 'https://app.example/cb/' }), 'unregistered_redirect_uri', /not one this application registered/],
    ['missing redirect_uri with several registered', () => params(twoUris, { redirect_uri: undefined }), 'missing_redirect_uri', /no redirect_uri/],
    ['missing client_id', () => params(client, { client_id: undefined }), 'missing_client_id', /no client_id/],
    ['duplicate parameter', () => `${new URLSearchParams(params(client))}&state=again`, 'duplicate_parameter', /&quot;state&quot; appears more than once/],
    ['duplicate client_id', () => `${new URLSearchParams(params(client))}&client_id=${client.client_id}`, 'duplicate_parameter', /&quot;client_id&quot; appears more than once/],
  ];
  for (const [name, build, code, message] of pageCases) {
    test(`error page, no redirect: ${name}`, async () => {
      const built = build();
      const r = typeof built === 'string' ? await authorizeRaw(null, { rawQuery: built }) : await authorizeRaw(built);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.res.headers.get('location'), null);
      assert.match(r.res.headers.get('content-type'), /^text\/html/);
      const csp = r.res.headers.get('content-security-policy');
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(r.res.headers.get('x-frame-options'), 'DENY');
      assert.match(r.text, /^<!doctype html>/i);
      assert.equal(pageErrorCode(r.text), code);
      assert.match(r.text, message);
    });
  }

  const redirectCases = [
    ['response_type=token', { response_type: 'token' }, 'unsupported_response_type'],
    ['missing response_type', { response_type: undefined }, 'invalid_request'],
    ['missing code_challenge_method', { code_challenge_method: undefined }, 'invalid_request'],
    ['code_challenge_method=plain', { code_challenge_method: 'plain' }, 'invalid_request'],
    ['missing code_challenge', { code_challenge: undefined }, 'invalid_request'],
    ['malformed code_challenge', { code_challenge: 'short' }, 'invalid_request'],
    ['unknown scope', { scope: 'admin' }, 'invalid_scope'],
    ['mcp plus an unknown scope', { scope: 'mcp admin' }, 'invalid_scope'],
    ['foreign resource', { resource: 'https://other.example/internal' }, 'invalid_target'],
    ['a path below this server\'s endpoint', { resource: `${BASE}/mcp/x` }, 'invalid_target'],
  ];
  // These used to be immediate 302s to the redirect URI. Issue 10 (RFC
  // 9700 §4.11.2): anyone can register a redirect URI, and nobody has
  // signed in yet, so an immediate redirect made /authorize an open
  // redirector. Now a 400 page names the application and its redirect
  // host and offers a plain link carrying error, state and iss.
  /** Asserts the page that stops a verified client's flow, and returns its link's parameters. */
  function assertBackPage(r, status, pageCode, label) {
    assert.equal(r.status, status, `${label}: ${r.text}`);
    assert.equal(r.res.headers.get('location'), null, `${label}: no redirect`);
    assert.match(r.res.headers.get('content-type'), /^text\/html/);
    assert.equal(pageErrorCode(r.text), pageCode, label);
    assert.ok(!/http-equiv|<script/i.test(r.text), `${label}: no refresh, no script`);
    assert.match(r.res.headers.get('content-security-policy'), /default-src 'none'/);
    assert.match(r.res.headers.get('x-robots-tag') ?? '', /noindex/);
    assert.match(r.text, /<code>app\.example<\/code>/, `${label}: names the redirect host`);
    const link = backLink(r.text);
    assert.ok(link, `${label}: a link back`);
    assert.equal(withoutQuery(link), 'https://app.example/cb', label);
    return locationParams(link);
  }

  for (const [name, change, error] of redirectCases) {
    test(`error after the redirect URI matched: ${name} → 400 page linking back with ${error}, state and iss`, async () => {
      const r = await authorizeRaw(params(client, change));
      const q = assertBackPage(r, 400, error, name);
      assert.equal(q.error, error);
      assert.equal(typeof q.error_description, 'string');
      assert.equal(q.state, 'state-123');
      assert.equal(q.iss, BASE);
      assert.equal(q.code, undefined);
    });
  }

  test('a state longer than 1024 characters → invalid_request page, its link without the state', async () => {
    const r = await authorizeRaw(params(client, { state: 's'.repeat(1025) }));
    const q = assertBackPage(r, 400, 'invalid_request', 'long state');
    assert.equal(q.error, 'invalid_request');
    assert.equal(q.state, undefined);
    assert.equal(q.iss, BASE);
  });

  // Was a 302 with access_denied: a refused sign-in now stops on a 403
  // page (as the provider's access_denied at /callback does), whose link
  // tells the client (issue 10, RFC 9700 §4.11.2).
  test('an identity outside the allowed domain → 403 page linking back with access_denied', async () => {
    const r = await authorizeRaw(params(client), { identity: 'someone@evil.example' });
    const q = assertBackPage(r, 403, 'domain_not_allowed', 'domain');
    assert.equal(q.error, 'access_denied');
    assert.equal(q.state, 'state-123');
    assert.equal(q.iss, BASE);
    assert.equal(q.code, undefined);
  });

  test('success: 302 with code, state and iss only; a lone registered redirect_uri may be omitted', async () => {
    const r = await authorizeRaw(params(client, { redirect_uri: undefined, resource: `${RESOURCE}/` }));
    assert.equal(r.status, 302, r.text);
    const location = r.res.headers.get('location');
    assert.equal(withoutQuery(location), 'https://app.example/cb');
    const q = locationParams(location);
    assert.deepEqual(Object.keys(q).sort(), ['code', 'iss', 'state']);
    assert.match(q.code, /^pmcp_ac_/);
    assert.equal(q.state, 'state-123');
    assert.equal(q.iss, BASE);
  });

  test('a loopback redirect registered as http://127.0.0.1/cb accepts any port, and the code is bound to it', async () => {
    const loop = await registerClient({ redirect_uris: ['http://127.0.0.1/cb'] });
    for (const port of [49152, 61234]) {
      const redirectUri = `http://127.0.0.1:${port}/cb`;
      const grant = await authorizeCode(loop, { redirectUri });
      // Redeemed with another port: not the redirect URI it was issued for.
      const other = await tokenRequest(redeemForm(loop, { ...grant, redirectUri: `http://127.0.0.1:${port + 1}/cb` }));
      assertTokenError(other, 400, 'invalid_grant', 'other port');
      assertTokens(await tokenRequest(redeemForm(loop, grant)));
    }
    // Port freedom is not path or host freedom.
    for (const redirectUri of ['http://127.0.0.1:49152/other', 'http://localhost:49152/cb']) {
      const r = await authorizeRaw(params(loop, { redirect_uri: redirectUri }));
      assert.equal(r.status, 400, redirectUri);
      assert.equal(r.res.headers.get('location'), null, redirectUri);
    }
  });

  test('POST /authorize → 405', async () => {
    const r = await send(`${BASE}/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(r.status, 405);
    assert.equal(r.res.headers.get('location'), null);
  });
});

describe('/token (RFC 6749 §3.2, §5)', () => {
  let pub;
  let other;
  let conf;
  let confPost;
  before(async () => {
    pub = await registerClient();
    other = await registerClient();
    conf = await registerClient({ token_endpoint_auth_method: 'client_secret_basic', redirect_uris: ['https://app.example/cb'] });
    confPost = await registerClient({ token_endpoint_auth_method: 'client_secret_post', redirect_uris: ['https://app.example/cb'] });
  });

  /** A fresh code for `c` and its authorization_code form (auth left to the case). */
  async function codeForm(c) {
    const g = await authorizeCode(c);
    return { grant_type: 'authorization_code', code: g.code, code_verifier: g.verifier, redirect_uri: g.redirectUri, resource: RESOURCE };
  }

  const cases = [
    ['wrong content type (JSON)', async () => {
      const form = { ...(await codeForm(pub)), client_id: pub.client_id };
      return tokenRequest(null, { contentType: 'application/json', body: JSON.stringify(form) });
    }, 400, 'invalid_request'],
    ['missing grant_type', async () => tokenRequest({ client_id: pub.client_id, code: 'pmcp_ac_x' }), 400, 'invalid_request'],
    ['unsupported grant (password)', async () => tokenRequest({ grant_type: 'password', client_id: pub.client_id, username: 'a', password: 'b' }), 400, 'unsupported_grant_type'],
    ['unsupported grant (client_credentials, confidential client)', async () => tokenRequest({ grant_type: 'client_credentials' }, { auth: basic(conf.client_id, conf.client_secret) }), 400, 'unsupported_grant_type'],
    ['repeated parameter', async () => {
      const form = { ...(await codeForm(pub)), client_id: pub.client_id };
      return tokenRequest(null, { body: `${new URLSearchParams(form)}&code=pmcp_ac_again` });
    }, 400, 'invalid_request'],
    ['missing code_verifier', async () => {
      const { code_verifier: _, ...form } = await codeForm(pub);
      return tokenRequest({ ...form, client_id: pub.client_id });
    }, 400, 'invalid_request'],
    ['malformed code_verifier (too short)', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, code_verifier: 'short' }), 400, 'invalid_request'],
    ['missing code', async () => {
      const { code: _, ...form } = await codeForm(pub);
      return tokenRequest({ ...form, client_id: pub.client_id });
    }, 400, 'invalid_request'],
    ['redirect_uri omitted though /authorize had one (RFC 6749 §4.1.3: must repeat it)', async () => {
      const { redirect_uri: _, ...form } = await codeForm(pub);
      return tokenRequest({ ...form, client_id: pub.client_id });
    }, 400, 'invalid_grant'],
    ['wrong code_verifier', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, code_verifier: pkce().verifier }), 400, 'invalid_grant'],
    ['wrong redirect_uri', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, redirect_uri: 'http://127.0.0.1/other' }), 400, 'invalid_grant'],
    ['unknown code', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, code: 'pmcp_ac_unknown' }), 400, 'invalid_grant'],
    ['code issued to another client', async () => tokenRequest({ ...(await codeForm(pub)), client_id: other.client_id }), 400, 'invalid_grant'],
    ['foreign resource', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, resource: 'https://other.example/internal' }), 400, 'invalid_target'],
    ['unknown client', async () => tokenRequest({ ...(await codeForm(pub)), client_id: 'pmcp_client_doesnotexist' }), 401, 'invalid_client'],
    ['no client_id at all', async () => tokenRequest(await codeForm(pub)), 401, 'invalid_client'],
    ['wrong client secret (client_secret_basic)', async () => tokenRequest(await codeForm(conf), { auth: basic(conf.client_id, 'pmcp_cs_wrong') }), 401, 'invalid_client', 'basic'],
    ['unparseable Basic credentials', async () => tokenRequest(await codeForm(conf), { auth: 'Basic !!!not-base64!!!' }), 401, 'invalid_client', 'basic'],
    ['confidential (basic) client using client_secret_post', async () => tokenRequest({ ...(await codeForm(conf)), client_id: conf.client_id, client_secret: conf.client_secret }), 401, 'invalid_client'],
    ['confidential (basic) client sending no secret', async () => tokenRequest({ ...(await codeForm(conf)), client_id: conf.client_id }), 401, 'invalid_client'],
    ['confidential (post) client using client_secret_basic', async () => tokenRequest(await codeForm(confPost), { auth: basic(confPost.client_id, confPost.client_secret) }), 401, 'invalid_client', 'basic'],
    ['wrong client secret (client_secret_post)', async () => tokenRequest({ ...(await codeForm(confPost)), client_id: confPost.client_id, client_secret: 'pmcp_cs_wrong' }), 401, 'invalid_client'],
    ['public client presenting a secret', async () => tokenRequest({ ...(await codeForm(pub)), client_id: pub.client_id, client_secret: 'anything' }), 401, 'invalid_client'],
    ['two authentication methods at once', async () => tokenRequest({ ...(await codeForm(conf)), client_secret: conf.client_secret }, { auth: basic(conf.client_id, conf.client_secret) }), 400, 'invalid_request'],
  ];
  for (const [name, run, status, error, challenge] of cases) {
    test(`${name} → ${status} ${error}`, async () => {
      const r = await run();
      // invalid_client without an Authorization header may be 400 or 401
      // (RFC 6749 §5.2); one that tried HTTP Basic must be 401 + Basic.
      const nonBasicClientError = error === 'invalid_client' && challenge !== 'basic';
      assertTokenError(r, nonBasicClientError && r.status === 400 ? 400 : status, error, name);
      assert.equal(r.res.headers.get('pragma'), 'no-cache', name);
      const header = r.res.headers.get('www-authenticate');
      if (challenge === 'basic') assert.match(header ?? '', /^Basic realm=/, name);
      else if (!nonBasicClientError) assert.equal(header, null, name);
      assert.equal(r.json.access_token, undefined);
    });
  }

  test('every 401 from /token carries a WWW-Authenticate challenge (RFC 9110 §15.5.2)', async () => {
    const failures = [];
    for (const [name, run, , error, challenge] of cases) {
      if (error !== 'invalid_client' || challenge === 'basic') continue;
      const r = await run();
      assert.equal(r.json?.error, 'invalid_client', name);
      if (r.status === 401 && !r.res.headers.get('www-authenticate')) failures.push(name);
    }
    assert.deepEqual(failures, [], '401 invalid_client answers without WWW-Authenticate');
  });

  test('an authorization request that omitted redirect_uri is redeemed without one (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3)', async () => {
    const { verifier, challenge } = pkce();
    const p = authorizationParams(pub, { challenge, state: 'no-redirect-uri' });
    delete p.redirect_uri;
    const r = await authorizeRaw(p);
    assert.equal(r.status, 302, r.text);
    const q = locationParams(r.res.headers.get('location'));
    assert.equal(withoutQuery(r.res.headers.get('location')), withoutQuery(pub.redirect_uris[0]));
    const t = await tokenRequest({ grant_type: 'authorization_code', client_id: pub.client_id, code: q.code, code_verifier: verifier, resource: RESOURCE });
    assertTokens(t);
  });

  test('a form with a charset parameter is accepted', async () => {
    const grant = await authorizeCode(pub);
    assertTokens(await tokenRequest(redeemForm(pub, grant), { contentType: 'application/x-www-form-urlencoded; charset=UTF-8' }));
  });

  test('a code is single use: the replay fails and revokes the tokens of the first redemption', async () => {
    const grant = await authorizeCode(pub);
    const first = assertTokens(await tokenRequest(redeemForm(pub, grant)));
    await assertTokenWorks(first.access_token, { label: 'first redemption' });
    const replay = await tokenRequest(redeemForm(pub, grant));
    assertTokenError(replay, 400, 'invalid_grant', 'replayed code');
    await assertTokenRejected(first.access_token, { label: 'access token after replay' });
    assertTokenError(await refreshRequest(pub, first.refresh_token), 400, 'invalid_grant', 'refresh token after replay');
  });

  test('refresh: rotation, scope narrowing limits, resource checks', async () => {
    const { client, tokens } = await issueTokens();
    assertTokenError(await refreshRequest(client, tokens.refresh_token, { extra: { scope: 'mcp admin' } }), 400, 'invalid_scope', 'wider scope');
    assertTokenError(await refreshRequest(client, tokens.refresh_token, { extra: { resource: 'https://other.example/internal' } }), 400, 'invalid_target', 'other resource');
    assertTokenError(await refreshRequest(other, tokens.refresh_token), 400, 'invalid_grant', 'another client');
    // None of those consumed the refresh token.
    const next = assertTokens(await refreshRequest(client, tokens.refresh_token, { extra: { scope: 'mcp', resource: RESOURCE } }));
    assert.notEqual(next.refresh_token, tokens.refresh_token);
    await assertTokenWorks(next.access_token);
    // The earlier access token stays valid until it expires: rotation is of the refresh token.
    await assertTokenWorks(tokens.access_token);
  });

  test('GET /token → 405', async () => {
    const r = await send(`${BASE}/token`);
    assert.equal(r.status, 405);
    assert.equal(r.res.headers.get('allow'), 'POST, OPTIONS');
  });
});

describe('/revoke (RFC 7009)', () => {
  test('an unknown token → 200', async () => {
    const c = await registerClient();
    for (const token of ['pmcp_rt_unknown', 'pmcp_at_unknown', 'something-else']) {
      const r = await revokeRequest(c, token);
      assert.equal(r.status, 200, `${token}: ${r.text}`);
      assert.equal(r.text, '');
      assert.equal(r.res.headers.get('cache-control'), 'no-store');
    }
  });

  test('another client\'s tokens → 200, yet they keep working for their owner', async () => {
    const { client: owner, tokens } = await issueTokens();
    const intruder = await registerClient();
    for (const token of [tokens.refresh_token, tokens.access_token]) {
      const r = await revokeRequest(intruder, token);
      assert.equal(r.status, 200, r.text);
    }
    await assertTokenWorks(tokens.access_token, { label: 'owner access token' });
    const next = assertTokens(await refreshRequest(owner, tokens.refresh_token));
    await assertTokenWorks(next.access_token, { label: 'owner refreshed' });
  });

  test('the owner revoking its access token ends that token only; revoking the refresh token ends the grant', async () => {
    const { client, tokens } = await issueTokens();
    assert.equal((await revokeRequest(client, tokens.access_token)).status, 200);
    await assertTokenRejected(tokens.access_token, { label: 'revoked access token' });
    const next = assertTokens(await refreshRequest(client, tokens.refresh_token));
    await assertTokenWorks(next.access_token);
    assert.equal((await revokeRequest(client, next.refresh_token)).status, 200);
    await assertTokenRejected(next.access_token, { label: 'access token of the revoked grant' });
    assertTokenError(await refreshRequest(client, next.refresh_token), 400, 'invalid_grant', 'revoked refresh token');
  });

  test('client authentication is required: unknown client → 401 invalid_client; no token → 400 invalid_request', async () => {
    const r = await revokeRequest({ client_id: 'pmcp_client_doesnotexist' }, 'pmcp_rt_x');
    assertTokenError(r, 401, 'invalid_client', 'unknown client');
    const c = await registerClient();
    const missing = await send(`${BASE}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: c.client_id }).toString(),
    });
    assertTokenError(missing, 400, 'invalid_request', 'no token');
  });
});

