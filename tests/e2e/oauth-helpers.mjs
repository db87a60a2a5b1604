// Shared helpers for the OAuth end-to-end tests (not a test file itself:
// run.mjs only picks up *.test.mjs). Everything here talks plain HTTP to
// the worker and never follows redirects: a redirect is an answer to check.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { isWranglerRestart, send as sendOnce } from './support/http.mjs';
import { TestOAuthProvider } from './support/oauth-provider.mjs';

export { isWranglerRestart };

export const BASE = process.env.WORKER_URL;
/** The identity the test-only hook signs in (an allowed domain). */
export const IDENTITY = 'tester@example.com';
export const PRM_PATH = '/.well-known/oauth-protected-resource/internal';
/** The MCP-Protocol-Version sent on raw /internal calls (the worker is stateless: no initialize needed). */
export const MCP_VERSION = '2025-11-25';

export const resourceOf = (base = BASE) => `${base}/internal`;
export const metadataUrlOf = (base = BASE) => `${base}${PRM_PATH}`;

/** A fresh PKCE pair (RFC 7636 §4.1, §4.2). */
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: s256(verifier) };
}

export const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');
export const randomState = () => randomBytes(12).toString('base64url');

/**
 * One request, redirects never followed. Returns { res, status, text, json }.
 * Requests that change nothing (GET/HEAD/OPTIONS) are sent again after a
 * wrangler reload 503; others are not: the caller sees the 503 and the
 * assertion names it (support/http.mjs has the policy).
 */
export function send(url, init = {}) {
  return sendOnce(url, init);
}

/** POST /register with a JSON body (or a raw string / custom content type). */
export async function register(metadata, { base = BASE, contentType = 'application/json', headers = {} } = {}) {
  const init = {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body: typeof metadata === 'string' ? metadata : JSON.stringify(metadata),
  };
  // A registration interrupted by a wrangler reload may be sent again: an
  // extra client nobody uses is harmless.
  return sendOnce(`${base}/register`, init, { replayable: true });
}

/** Registers a client and returns its registration response (asserting 201). */
export async function registerClient(metadata = {}, opts = {}) {
  const body = {
    client_name: 'e2e oauth client',
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
    ...metadata,
  };
  const r = await register(body, opts);
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.client_id, /^pmcp_client_/);
  return r.json;
}

/** The query parameters of a Location header, as a plain object. */
export function locationParams(location) {
  return Object.fromEntries(new URL(location).searchParams);
}

/** The part of a URL before its query. */
export const withoutQuery = (url) => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
};

/**
 * GET /authorize. `params` are sent as given (no defaults); `identity`
 * (null: none) sets the test identity header. `rawQuery` replaces the
 * query entirely (for repeated parameters).
 */
export async function authorizeRaw(params, { base = BASE, identity = IDENTITY, rawQuery } = {}) {
  const query = rawQuery ?? new URLSearchParams(params).toString();
  const headers = identity === null ? {} : { 'x-test-identity': identity };
  return send(`${base}/authorize?${query}`, { headers });
}

/** The parameters of a well-formed authorization request for `client`. */
export function authorizationParams(client, { redirectUri = client.redirect_uris[0], challenge, state, base = BASE, scope = 'mcp' } = {}) {
  return {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    scope,
    resource: resourceOf(base),
  };
}

/**
 * Runs an authorization through the test identity hook and returns the
 * code with everything needed to redeem it.
 */
export async function authorizeCode(client, { redirectUri = client.redirect_uris[0], base = BASE, identity = IDENTITY, scope } = {}) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  const r = await authorizeRaw(authorizationParams(client, { redirectUri, challenge, state, base, scope }), { base, identity });
  assert.equal(r.status, 302, r.text);
  const location = r.res.headers.get('location');
  assert.equal(withoutQuery(location), withoutQuery(redirectUri));
  const q = locationParams(location);
  assert.equal(q.state, state);
  assert.equal(q.iss, base);
  assert.match(q.code, /^pmcp_ac_/);
  return { code: q.code, verifier, redirectUri, state };
}

/**
 * POST /token with a form body. `auth` is an optional Authorization value;
 * `contentType` overrides the form media type.
 */
export async function tokenRequest(form, { base = BASE, auth, contentType = 'application/x-www-form-urlencoded', body } = {}) {
  const headers = { 'content-type': contentType };
  if (auth) headers.authorization = auth;
  return send(`${base}/token`, {
    method: 'POST',
    headers,
    body: body ?? new URLSearchParams(form).toString(),
  });
}

/** HTTP Basic credentials as RFC 6749 §2.3.1 spells them. */
export function basic(id, secret) {
  const enc = (s) => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

/** The form of a code redemption by a public client. */
export function redeemForm(client, { code, verifier, redirectUri }, base = BASE) {
  return {
    grant_type: 'authorization_code',
    client_id: client.client_id,
    code,
    code_verifier: verifier,
    redirect_uri: redirectUri,
    resource: resourceOf(base),
  };
}

/** Checks a successful token response (granting `scope`) and returns its body. */
export function assertTokens(r, base = BASE, scope = 'mcp') {
  assert.equal(r.status, 200, r.text);
  assert.equal(r.res.headers.get('cache-control'), 'no-store');
  assert.equal(r.res.headers.get('pragma'), 'no-cache');
  const t = r.json;
  assert.match(t.access_token, /^pmcp_at_/);
  assert.match(t.refresh_token, /^pmcp_rt_/);
  assert.equal(t.token_type, 'Bearer');
  assert.equal(t.scope, scope);
  assert.equal(t.resource, resourceOf(base));
  assert.ok(Number.isInteger(t.expires_in) && t.expires_in > 0 && t.expires_in <= 3600, String(t.expires_in));
  return t;
}

/** Checks an RFC 6749 §5.2 error answer from /token or /revoke. */
export function assertTokenError(r, status, error, label = '') {
  assert.equal(r.status, status, `${label}: ${r.text}`);
  assert.equal(r.json?.error, error, `${label}: ${r.text}`);
  assert.equal(typeof r.json.error_description, 'string', label);
  assert.equal(r.res.headers.get('cache-control'), 'no-store', label);
}

/** Registers a public client, authorizes (for `scope`), redeems: a full grant. */
export async function issueTokens({ base = BASE, client, scope = 'mcp' } = {}) {
  const c = client ?? (await registerClient({}, { base }));
  const grant = await authorizeCode(c, { base, scope });
  const r = await tokenRequest(redeemForm(c, grant, base), { base });
  return { client: c, grant, tokens: assertTokens(r, base, scope) };
}

/** A refresh by a public client. */
export function refreshRequest(client, refreshToken, { base = BASE, extra = {} } = {}) {
  return tokenRequest({ grant_type: 'refresh_token', client_id: client.client_id, refresh_token: refreshToken, ...extra }, { base });
}

/** POST /revoke by a public client. */
export function revokeRequest(client, token, { base = BASE } = {}) {
  return send(`${base}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.client_id, token }).toString(),
  });
}

let rpcId = 1;

/**
 * POSTs one JSON-RPC request to /internal with `token` as the bearer
 * (null: no Authorization header).
 */
export async function internalCall(token, { base = BASE, method = 'tools/call', params } = {}) {
  const body = {
    jsonrpc: '2.0',
    id: rpcId++,
    method,
    params: params ?? { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } },
  };
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MCP_VERSION,
  };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  // A read-only tools call: safe to send again after a wrangler reload.
  return sendOnce(`${base}/internal`, { method: 'POST', headers, body: JSON.stringify(body) }, { replayable: true });
}

/** Asserts that `token` is accepted at /internal and the tool returns rows. */
export async function assertTokenWorks(token, { base = BASE, label = '' } = {}) {
  const r = await internalCall(token, { base });
  assert.equal(r.status, 200, `${label}: ${r.text}`);
  assert.equal(r.json.error, undefined, `${label}: ${r.text}`);
  assert.equal(r.json.result.isError, false, `${label}: ${r.text}`);
  assert.equal(r.json.result.structuredContent.results.length, 7, label);
}

/** Parses the auth-params of a WWW-Authenticate challenge into an object. */
export function challengeParams(header) {
  const out = {};
  for (const m of header.matchAll(/([a-z_]+)="([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}

/** Asserts the 401 /internal answers for a token it no longer accepts. */
export async function assertTokenRejected(token, { base = BASE, label = '' } = {}) {
  const r = await internalCall(token, { base });
  assert.equal(r.status, 401, `${label}: ${r.text}`);
  const header = r.res.headers.get('www-authenticate');
  assert.ok(header?.startsWith('Bearer '), `${label}: ${header}`);
  const p = challengeParams(header);
  assert.equal(p.error, 'invalid_token', `${label}: ${header}`);
  assert.equal(p.resource_metadata, metadataUrlOf(base), `${label}: ${header}`);
  assert.equal(r.json.error, 'invalid_token', label);
}

/**
 * A fetch that records every exchange it carries: url, method, request
 * headers, parsed body (JSON or form), status and response headers.
 */
export function recordingFetch() {
  const log = [];
  const fetchFn = async (url, init = {}) => {
    let body = init.body ?? null;
    if (body instanceof URLSearchParams) body = Object.fromEntries(body);
    else if (typeof body === 'string') {
      try { body = JSON.parse(body); } catch { /* keep the string */ }
    }
    const entry = { url: new URL(String(url)), method: init.method ?? 'GET', headers: Object.fromEntries(new Headers(init.headers)), body };
    log.push(entry);
    const res = await fetch(url, init);
    entry.status = res.status;
    entry.responseHeaders = res.headers;
    return res;
  };
  return { fetch: fetchFn, log };
}

/**
 * An OAuthClientProvider for a client that has no browser:
 * `redirectToAuthorization` fetches the authorization URL itself with the
 * test identity header, as a signed-in user agent would, and keeps the
 * code from the redirect for `transport.finishAuth`.
 */
export class HeadlessOAuthProvider extends TestOAuthProvider {
  constructor({ identity = IDENTITY, ...options }) {
    super(options);
    this.identity = identity;
    this.authorizations = [];
    this.code = undefined;
  }

  async redirectToAuthorization(url) {
    const res = await fetch(url, { redirect: 'manual', headers: { 'x-test-identity': this.identity } });
    const text = await res.text();
    const location = res.headers.get('location');
    const entry = { url: new URL(url), status: res.status, location, body: text };
    this.authorizations.push(entry);
    if (res.status !== 302 || !location) {
      throw new Error(`authorization answered ${res.status} without a redirect: ${text.slice(0, 300)}`);
    }
    const q = new URL(location).searchParams;
    if (!q.get('code')) throw new Error(`authorization redirected without a code: ${location}`);
    entry.code = q.get('code');
    this.code = entry.code;
  }
}
