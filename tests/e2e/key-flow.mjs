// The /mcp key flow over plain HTTP, done the way a person's browser does
// it (issue 15): open the authorization URL, get the key form and its
// cookie, post the key and sites, approve on the consent page, follow to
// the client's redirect with the code. Shared by the key-flow tests and
// the SDK and conformance runs against /mcp (not a test file itself).
import assert from 'node:assert/strict';
import { BASE, pkce, randomState, registerClient, send, tokenRequest } from './oauth-helpers.mjs';
import { unescapeHtml } from './login-helpers.mjs';
import { pageErrorCode } from './support/http.mjs';

export const MCP_PRM_PATH = '/.well-known/oauth-protected-resource/mcp';
export const mcpResourceOf = (base = BASE) => `${base}/mcp`;
export const mcpMetadataUrlOf = (base = BASE) => `${base}${MCP_PRM_PATH}`;
export const STAND_IN = process.env.PLAUSIBLE_STUB_URL;

/** Teaches the Plausible stand-in a key that reads only `sites`. */
export async function addStandInKey(key, sites) {
  const res = await fetch(`${STAND_IN}/__stand-in/keys`, { method: 'POST', body: JSON.stringify({ key, sites }) });
  assert.equal(res.status, 200, await res.text());
}

/** Revokes a key at the stand-in, as a person deleting it in Plausible. */
export async function revokeStandInKey(key) {
  const res = await fetch(`${STAND_IN}/__stand-in/keys`, { method: 'DELETE', body: JSON.stringify({ key }) });
  assert.deepEqual(await res.json(), { deleted: true });
}

/** Every request the stand-in has seen: { method, path, headers, body }. */
export async function standInRequests() {
  return (await (await fetch(`${STAND_IN}/__stand-in/requests`)).json()).requests;
}

/** The key (bearer value) a stand-in request carried. */
export const keyOf = (request) => request.headers.authorization?.replace(/^Bearer /, '');

/** The value of a hidden field on one of our pages (maud output). */
export function hiddenField(html, name) {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  return m ? unescapeHtml(m[1]) : null;
}

/** `name=value` of the cookie a response sets (the key form sets one). */
export function cookieOf(res) {
  const set = res.headers.get('set-cookie');
  return set ? set.split(';')[0] : null;
}

/** GET an authorization URL for /mcp: the key form, its fields and cookie. */
export async function openKeyForm(authorizeUrl) {
  const r = await send(authorizeUrl);
  return { ...r, ticket: hiddenField(r.text, 'ticket'), csrf: hiddenField(r.text, 'csrf'), cookie: cookieOf(r.res), code: pageErrorCode(r.text) };
}

/** POST /authorize/key as the form does (fields as given; null leaves one out). */
export async function postKeyForm(form, { apiKey, sites, base = BASE, origin = base, cookie = form.cookie, csrf = form.csrf, ticket = form.ticket } = {}) {
  const fields = { ticket, csrf, api_key: apiKey, sites };
  const body = new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== null && v !== undefined)).toString();
  const headers = { 'content-type': 'application/x-www-form-urlencoded', origin };
  if (cookie) headers.cookie = cookie;
  const r = await send(`${base}/authorize/key`, { method: 'POST', headers, body });
  return { ...r, code: pageErrorCode(r.text) };
}

/** The site boxes a consent page shows ticked (a key grant's: every site the key form checked). */
export function tickedSites(html) {
  return [...html.matchAll(/<input type="checkbox" name="site" value="([^"]*)" checked>/g)].map((m) => unescapeHtml(m[1]));
}

/**
 * Approves (or denies) on the consent page `html`, from the browser
 * holding `cookie`, with the site boxes as the page ticked them (or
 * `sites` ticked instead), as a browser posts the form.
 */
export async function decide(html, cookie, { decision = 'approve', base = BASE, sites = tickedSites(html) } = {}) {
  const fields = [['ticket', hiddenField(html, 'ticket')], ['csrf', hiddenField(html, 'csrf')], ['decision', decision]];
  const all = hiddenField(html, 'all_sites');
  if (all !== null) fields.push(['all_sites', all]);
  for (const site of sites) fields.push(['site', site]);
  const body = new URLSearchParams(fields).toString();
  return send(`${base}/consent`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, cookie },
    body,
  });
}

/**
 * The whole key step for an authorization URL the client built: the form,
 * the key and sites, the consent. Returns the client's redirect (with the
 * code) and the pages on the way, asserting each step succeeded.
 */
export async function completeKeyFlow(authorizeUrl, { apiKey, sites, chosen, base = new URL(authorizeUrl).origin } = {}) {
  const form = await openKeyForm(authorizeUrl);
  assert.equal(form.status, 200, form.text);
  assert.ok(form.ticket && form.csrf && form.cookie, 'the key form has its ticket, token and cookie');
  const consent = await postKeyForm(form, { apiKey, sites: Array.isArray(sites) ? sites.join('\n') : sites, base });
  assert.equal(consent.status, 200, consent.text);
  assert.match(consent.text, /name="decision" value="approve"/);
  const approved = await decide(consent.text, form.cookie, { base, ...(chosen ? { sites: chosen } : {}) });
  assert.equal(approved.status, 302, approved.text);
  const location = approved.res.headers.get('location');
  return { location, params: Object.fromEntries(new URL(location).searchParams), form, consent };
}

/** The authorization URL of a /mcp authorization for `client`. */
export function mcpAuthorizeUrl(client, { challenge, state = randomState(), base = BASE, redirectUri = client.redirect_uris[0], scope = 'mcp' } = {}) {
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri,
    code_challenge: challenge, code_challenge_method: 'S256', state, scope, resource: mcpResourceOf(base),
  });
  return `${base}/authorize?${q}`;
}

/** Registers a client (unless given), runs the key flow, redeems: tokens for /mcp. */
export async function keyGrant({ apiKey, sites, client, base = BASE } = {}) {
  const c = client ?? (await registerClient({ client_name: 'e2e key client' }, { base }));
  const { verifier, challenge } = pkce();
  const state = randomState();
  const flow = await completeKeyFlow(mcpAuthorizeUrl(c, { challenge, state, base }), { apiKey, sites, base });
  assert.equal(flow.params.state, state);
  assert.equal(flow.params.iss, base);
  const r = await tokenRequest({
    grant_type: 'authorization_code', client_id: c.client_id, code: flow.params.code,
    code_verifier: verifier, redirect_uri: c.redirect_uris[0], resource: mcpResourceOf(base),
  }, { base });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.resource, mcpResourceOf(base));
  return { client: c, tokens: r.json, flow };
}

let rpcId = 1;

/** One JSON-RPC call to /mcp with `bearer` (null: no Authorization header). */
export function mcpCall(bearer, { base = BASE, method = 'tools/call', params } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  const body = {
    jsonrpc: '2.0', id: rpcId++, method,
    params: params ?? { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } },
  };
  return send(`${base}/mcp`, { method: 'POST', headers, body: JSON.stringify(body) }, { replayable: true });
}
