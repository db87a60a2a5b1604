// Host and Origin abuse (MCP Streamable HTTP "Security Warning": validate
// Origin against DNS rebinding; the MCP_ALLOWED_HOSTNAMES allowlist),
// malformed and oversized bodies (RFC 6749 §3.2 form bodies, RFC 7591
// §3.2.2, JSON-RPC 2.0 §5.1 parse and request errors), and header
// injection (RFC 9110 §5.5: no CR/LF reaches a header the worker sends).
// Nothing is stored, nothing reaches Plausible.
import { before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../e2e/support/http.mjs';
import { upload } from '../e2e/support/upload.mjs';
import {
  IDENTITY, MCP_VERSION, assertTokens, authorizationParams, authorizeCode, issueTokens, pkce, redeemForm, register, registerClient, tokenRequest,
} from '../e2e/oauth-helpers.mjs';
import {
  BASE, assertOAuthError, assertPage, assertRpcError, assertUnchanged, attack, rawRequest, request, snapshot,
} from './support/attack.mjs';

const RPC = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } } };
const mcpHeaders = (extra = {}) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': MCP_VERSION, ...extra });
let access;
before(async () => {
  ({ tokens: { access_token: access } } = await issueTokens());
});

/** A 1 MiB registration, on a socket of its own (support/upload.mjs). */
function registerHuge(metadata) {
  return upload(`${BASE}/register`, JSON.stringify({ ...metadata, padding: 'x'.repeat(1024 * 1024) }));
}

describe('Host and Origin abuse on the MCP endpoints (DNS rebinding)', () => {
  const body = JSON.stringify(RPC);
  for (const [id, path, host] of [
    ['HO-01', '/internal', 'evil.example'],
    ['HO-02', '/internal', 'localhost.evil.example'],
    ['HO-03', '/mcp', 'evil.example'],
    ['HO-04', '/internal', '127.0.0.1.nip.io'],
  ]) {
    attack(id, `Host ${host} on ${path} → 403 -32600, nothing forwarded`, async () => {
      const auth = path === '/mcp' ? 'Bearer plausible-test-key' : `Bearer ${access}`;
      const snap = await snapshot();
      const r = await rawRequest(path, { headers: { ...mcpHeaders({ authorization: auth }), host, 'content-length': Buffer.byteLength(body) }, body });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json?.error?.code, -32600, r.text);
      await assertUnchanged(snap);
    });
  }

  for (const [id, origin] of [
    ['HO-05', 'https://evil.example'],
    ['HO-06', 'null'],
    ['HO-07', 'http://127.0.0.1.evil.example'],
    ['HO-08', 'https://claude.ai.evil.example'],
    ['HO-09', 'file:///etc/passwd'],
  ]) {
    attack(id, `Origin ${origin} on /internal (a rebinding page riding a token) → 403 -32600`, async () => {
      const snap = await snapshot();
      const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}`, origin }), body: JSON.stringify(RPC) });
      assertRpcError(r, 403, -32600, origin);
      await assertUnchanged(snap);
    });
  }
});

// Issue 10: every route answers only on MCP_ALLOWED_HOSTNAMES. The
// issuer and endpoints are derived from the request's origin (RFC 8414
// §3), so a foreign Host used to be reflected into the metadata.
describe('Host abuse on the OAuth routes (issue 10)', () => {
  attack('HO-10', '/.well-known/oauth-authorization-server (and the resource metadata) with Host evil.example → 403 forbidden_host, never reflected', async () => {
    const snap = await snapshot();
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/.well-known/oauth-protected-resource/internal']) {
      const r = await rawRequest(path, { method: 'GET', headers: { host: 'evil.example' } });
      assert.equal(r.status, 403, `${path}: ${r.text}`);
      assert.equal(r.json?.error, 'forbidden_host', path);
      assert.ok(!r.text.includes('evil.example'), `${path}: reflected ${r.text}`);
    }
    await assertUnchanged(snap);
  });

  attack('HO-11', '/authorize, /register, /token and /revoke with a foreign Host → 403 forbidden_host; a valid code sent there is not consumed', async () => {
    const client = await registerClient({ client_name: 'attack: foreign host' });
    const grant = await authorizeCode(client);
    const form = new URLSearchParams(redeemForm(client, grant)).toString();
    const snap = await snapshot();
    const attempts = [
      ['GET', `/authorize?${new URLSearchParams(authorizationParams(client, { challenge: pkce().challenge, state: 's' }))}`, ''],
      ['POST', '/register', JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' })],
      ['POST', '/token', form],
      ['POST', '/revoke', `token=${grant.code}&client_id=${client.client_id}`],
    ];
    for (const host of ['evil.example', `evil.example:${new URL(BASE).port}`, '127.0.0.1.nip.io']) {
      for (const [method, path, body] of attempts) {
        const contentType = path === '/register' ? 'application/json' : 'application/x-www-form-urlencoded';
        const r = await rawRequest(path, { method, headers: { host, 'x-test-identity': IDENTITY, 'content-type': contentType, 'content-length': Buffer.byteLength(body) }, body });
        assert.equal(r.status, 403, `${host} ${path}: ${r.text}`);
        assert.equal(r.json?.error, 'forbidden_host', `${host} ${path}`);
        assert.equal(r.headers.location, undefined, `${host} ${path}: no redirect`);
      }
    }
    await assertUnchanged(snap);
    // The code was never looked at: its owner still redeems it.
    assertTokens(await tokenRequest(redeemForm(client, grant)));
  });
});

describe('malformed and oversized bodies', () => {
  attack('BD-01', '/internal: invalid JSON → 400 -32700, nothing forwarded', async () => {
    const snap = await snapshot();
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}` }), body: '{"jsonrpc":"2.0",' });
    assertRpcError(r, 400, -32700);
    await assertUnchanged(snap);
  });

  attack('BD-02', '/internal: invalid UTF-8 → 400 -32700', async () => {
    const snap = await snapshot();
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}` }), body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    assertRpcError(r, 400, -32700);
    await assertUnchanged(snap);
  });

  attack('BD-03', '/internal: a JSON value that is not a request → 400 -32600', async () => {
    const snap = await snapshot();
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}` }), body: '"tools/call"' });
    assertRpcError(r, 400, -32600);
    await assertUnchanged(snap);
  });

  attack('BD-04', '/internal: deeply nested JSON (10 000 levels) → 400, no crash', async () => {
    const snap = await snapshot();
    const deep = `${'['.repeat(10000)}${']'.repeat(10000)}`;
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}` }), body: deep });
    assertRpcError(r, 400, -32700);
    await assertUnchanged(snap);
  });

  attack('BD-05', '/register: a deeply nested document → 400 invalid_client_metadata, no client', async () => {
    const snap = await snapshot();
    const r = await register(`{"redirect_uris":["https://app.example/cb"],"x":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    assertOAuthError(r, 400, 'invalid_client_metadata');
    await assertUnchanged(snap);
  });

  attack('BD-06', '/register: a 1 MiB body → 413 invalid_request before it is read, no client', async () => {
    const snap = await snapshot();
    const r = await registerHuge({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    assert.equal(r.status, 413, r.text.slice(0, 300));
    assertOAuthError(r, 413, 'invalid_request');
    await assertUnchanged(snap);
  });

  attack('BD-07', '/token: a JSON body → 400 invalid_request, nothing issued', async () => {
    const snap = await snapshot();
    // Sent again only on wrangler dev's own "restarted mid-request" 503,
    // which its proxy sometimes gives the request after BD-06's refused
    // 1 MiB upload; the request changes nothing, so a replay is harmless.
    const r = await send(`${BASE}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'authorization_code', code: 'pmcp_ac_x' }),
    }, { replayable: true });
    assertOAuthError(r, 400, 'invalid_request');
    await assertUnchanged(snap);
  });

  attack('BD-08', '/token: a form with invalid percent-encoding and no client → 401 invalid_client', async () => {
    const snap = await snapshot();
    const r = await tokenRequest(null, { body: 'grant_type=authorization_code&code=%ZZ%&client_id=%E0%A4%A' });
    assertOAuthError(r, 401, 'invalid_client');
    await assertUnchanged(snap);
  });

  attack('BD-09', '/revoke: no token → 400 invalid_request', async () => {
    const client = await registerClient({ client_name: 'attack: revoke' });
    const snap = await snapshot();
    const r = await request(`${BASE}/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `client_id=${client.client_id}` });
    assertOAuthError(r, 400, 'invalid_request');
    await assertUnchanged(snap);
  });
});

describe('header injection', () => {
  attack('HD-01', 'CR/LF in state at /authorize never reaches a response header', async () => {
    const client = await registerClient({ client_name: 'attack: crlf' });
    const params = authorizationParams(client, { challenge: pkce().challenge, state: 'x\r\nSet-Cookie: pwned=1' });
    const r = await request(`${BASE}/authorize?${new URLSearchParams(params)}`, { headers: { 'x-test-identity': IDENTITY } });
    assert.equal(r.status, 302, r.text);
    assert.ok(!r.res.headers.getSetCookie().some((c) => c.startsWith('pwned')), 'no injected cookie');
    assert.ok(!/[\r\n]/.test(r.location), r.location);
    assert.equal(new URL(r.location).searchParams.get('state'), 'x\r\nSet-Cookie: pwned=1', 'the state comes back intact, encoded');
  });

  attack('HD-02', 'CR/LF in a bearer token on /internal → 401 invalid_token, not a split header', async () => {
    const snap = await snapshot();
    const r = await rawRequest('/internal', { headers: { ...mcpHeaders(), authorization: `Bearer ${access}%0d%0aX-Injected: 1`, 'content-length': Buffer.byteLength(JSON.stringify(RPC)) }, body: JSON.stringify(RPC) });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json?.error, 'invalid_token', r.text);
    assert.equal(r.headers['x-injected'], undefined);
    await assertUnchanged(snap);
  });

  attack('HD-03', 'an overlong client_name (300 characters) → 400 invalid_client_metadata, no client', async () => {
    const snap = await snapshot();
    const r = await register({ client_name: 'x'.repeat(300), redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
    assertOAuthError(r, 400, 'invalid_client_metadata');
    await assertUnchanged(snap);
  });

  attack('HD-04', 'a duplicated Authorization scheme ("Bearer Bearer …") on /internal → 401 invalid_token', async () => {
    const snap = await snapshot();
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer Bearer ${access}` }), body: JSON.stringify(RPC) });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json?.error, 'invalid_token');
    await assertUnchanged(snap);
  });

  attack('HD-05', 'Basic credentials on /internal → 401, no grant looked up by them', async () => {
    const snap = await snapshot();
    const r = await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Basic ${Buffer.from(`x:${access}`).toString('base64')}` }), body: JSON.stringify(RPC) });
    assert.equal(r.status, 401, r.text);
    await assertUnchanged(snap);
  });

  attack('HD-06', 'a redirect_uri of a page error is never reflected unescaped', async () => {
    const client = await registerClient({ client_name: 'attack: reflect' });
    const evil = 'https://evil.example/"><script>alert(1)</script>';
    const params = authorizationParams(client, { redirectUri: evil, challenge: pkce().challenge, state: 's' });
    const snap = await snapshot();
    const r = await request(`${BASE}/authorize?${new URLSearchParams(params)}`, { headers: { 'x-test-identity': IDENTITY } });
    assertPage(r, 400, 'unregistered_redirect_uri');
    assert.ok(!r.text.includes('<script>alert(1)</script>'), 'no markup reflected');
    await assertUnchanged(snap);
  });
});

// Issue 10: OAuth and MCP endpoints are not for search engines.
describe('crawlers (issue 10)', () => {
  attack('HD-07', 'X-Robots-Tag: noindex on OAuth and MCP answers, errors included; nothing stored', async () => {
    const snap = await snapshot();
    const answers = [
      ['discovery', await request(`${BASE}/.well-known/oauth-authorization-server`)],
      ['resource metadata', await request(`${BASE}/.well-known/oauth-protected-resource/internal`)],
      ['authorize error page', await request(`${BASE}/authorize?client_id=pmcp_client_nope`)],
      ['token error', await request(`${BASE}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=x' })],
      ['register error', await request(`${BASE}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })],
      ['revoke error', await request(`${BASE}/revoke`, { method: 'POST' })],
      ['callback error page', await request(`${BASE}/callback?state=x&code=y`)],
      ['consent error page', await request(`${BASE}/consent`, { method: 'POST', headers: { origin: BASE, 'content-type': 'application/x-www-form-urlencoded' }, body: 'ticket=x' })],
      ['/mcp without a key', await request(`${BASE}/mcp`, { method: 'POST', headers: mcpHeaders(), body: JSON.stringify(RPC) })],
      ['/internal without a token', await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders(), body: JSON.stringify(RPC) })],
      ['/internal with a token', await request(`${BASE}/internal`, { method: 'POST', headers: mcpHeaders({ authorization: `Bearer ${access}` }), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })],
    ];
    for (const [name, r] of answers) {
      assert.ok(r.status < 500, `${name}: ${r.status}`);
      assert.match(r.res.headers.get('x-robots-tag') ?? '', /\bnoindex\b/, `${name} (${r.status})`);
    }
    await assertUnchanged(snap);
  });

  attack('HD-08', '/robots.txt disallows every path (OAuth and MCP included)', async () => {
    const r = await request(`${BASE}/robots.txt`);
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(r.text, 'User-agent: *\nDisallow: /\n');
  });
});
