// The attack suite's case API. A case is one attack against the running
// worker, named by an id (e.g. RU-03) that tests/attack/CASES.md maps to
// the rule it defends. Each case:
//   1. sets up what the attack needs (a client, a code, a login …);
//   2. takes a snapshot: the dump of every stored entry (support/state.mjs),
//      the upstream provider's request log and the Plausible stand-in's;
//   3. attacks, and asserts the exact status and error code;
//   4. asserts what the store holds now against the snapshot: nothing
//      added, removed or changed (`unchanged`), or only the entries the
//      defence itself writes (`only`, e.g. the login state marked used),
//      and that the worker made no call to the upstream provider or to
//      Plausible it should not have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeDiff, diffState, dumpState } from './state.mjs';
import { send } from '../../e2e/support/http.mjs';
import { backLink, pageErrorCode } from '../../e2e/support/http.mjs';

export const BASE = process.env.WORKER_URL;
export const UPSTREAM = process.env.ATTACK_UPSTREAM_URL;
export const PLAUSIBLE = process.env.PLAUSIBLE_STUB_URL;
export const COOKIE_SECRET = process.env.ATTACK_COOKIE_SECRET;
const PERSIST = process.env.ATTACK_PERSIST_DIR;
if (!BASE || !PERSIST || !UPSTREAM) {
  throw new Error('run the attack suite through tests/attack/run.mjs (it starts the stack and sets WORKER_URL, ATTACK_PERSIST_DIR, ATTACK_UPSTREAM_URL)');
}

/** Every case id defined in this process, to catch a duplicate. */
const ids = new Set();

/** Defines one attack case. `body` gets the node:test context. */
export function attack(id, title, body) {
  assert.match(id, /^[A-Z]{2}-\d{2}$/, `case id ${id}`);
  assert.ok(!ids.has(id), `case id ${id} is used twice`);
  ids.add(id);
  return test(`${id} ${title}`, body);
}

async function upstreamRequests() {
  const r = await fetch(`${UPSTREAM}/__log`);
  return (await r.json()).requests;
}

async function plausibleRequests() {
  const r = await fetch(`${PLAUSIBLE}/__stand-in/requests`);
  return (await r.json()).requests;
}

/** What an attack is measured against. */
export async function snapshot() {
  return {
    state: dumpState(PERSIST),
    upstream: (await upstreamRequests()).length,
    plausible: (await plausibleRequests()).length,
  };
}

/** The upstream provider's and Plausible's requests since `snap`. */
export async function callsSince(snap) {
  return {
    upstream: (await upstreamRequests()).slice(snap.upstream),
    plausible: (await plausibleRequests()).slice(snap.plausible),
  };
}

/** The state diff since `snap`. */
export const changesSince = (snap) => diffState(snap.state, dumpState(PERSIST));

/**
 * Asserts that since `snap` nothing was stored, changed or removed, and
 * that the worker sent nothing to the upstream provider's token endpoint
 * or to Plausible (unless `upstream`/`plausible` say how many calls of
 * any kind are expected).
 */
export async function assertUnchanged(snap, label = '', { upstream = 'no-token', plausible = 0 } = {}) {
  const diff = changesSince(snap);
  assert.deepEqual(diff, { added: [], removed: [], changed: [] }, `${label}: the store changed: ${describeDiff(diff)}`);
  await assertCalls(snap, label, { upstream, plausible });
}

/**
 * Asserts that since `snap` every stored change is one `allowed` names
 * (an array of RegExps over the entry names of support/state.mjs), and
 * that no entry of a code, token, grant or consent appeared.
 */
export async function assertOnly(snap, allowed, label = '', calls = {}) {
  const diff = changesSince(snap);
  const all = [...diff.added, ...diff.removed, ...diff.changed];
  const stray = all.filter((k) => !allowed.some((re) => re.test(k)));
  assert.deepEqual(stray, [], `${label}: unexpected store changes: ${describeDiff(diff)}`);
  assertNothingIssued(diff, label);
  await assertCalls(snap, label, { upstream: 'no-token', plausible: 0, ...calls });
  return diff;
}

/** The entry kinds that make up a grant: none may appear in an attack's wake. */
export const ISSUED = /(^kv:(at|client):)|\/_cf_KV\/(code|at|rt|grant|consent|pair)[:_]/;

export function assertNothingIssued(diff, label = '') {
  const issued = diff.added.filter((k) => ISSUED.test(k));
  assert.deepEqual(issued, [], `${label}: created ${issued.join(', ')}`);
}

async function assertCalls(snap, label, { upstream, plausible }) {
  const calls = await callsSince(snap);
  if (upstream === 'no-token') {
    const tokenCalls = calls.upstream.filter((r) => r.path === '/token');
    assert.deepEqual(tokenCalls.map((r) => r.path), [], `${label}: the worker redeemed a code at the upstream provider`);
  } else if (upstream !== 'any') {
    assert.equal(calls.upstream.length, upstream, `${label}: upstream calls ${JSON.stringify(calls.upstream.map((r) => r.path))}`);
  }
  if (plausible !== 'any') {
    assert.equal(calls.plausible.length, plausible, `${label}: Plausible calls ${JSON.stringify(calls.plausible.map((r) => r.path))}`);
  }
}

/** One request, never following redirects: { res, status, text, json, location }. */
export async function request(url, init = {}) {
  const r = await send(url, init, { replayable: false });
  return { ...r, location: r.res.headers.get('location') };
}

/** An error page: exact status, its `<meta name="error">` code, no redirect, no code. */
export function assertPage(r, status, code, label = '') {
  assert.equal(r.status, status, `${label}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.res.headers.get('location'), null, `${label}: no redirect, got ${r.res.headers.get('location')}`);
  assert.match(r.res.headers.get('content-type') ?? '', /^text\/html/, label);
  assert.equal(pageErrorCode(r.text), code, `${label}: page error code`);
  assert.ok(!r.text.includes('pmcp_ac_'), `${label}: no authorization code in the page`);
}

/** An OAuth JSON error (RFC 6749 §5.2 / RFC 7591 §3.2.2): exact status and `error`. */
export function assertOAuthError(r, status, error, label = '') {
  assert.equal(r.status, status, `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json?.error, error, `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.access_token, undefined, label);
  assert.equal(r.json.refresh_token, undefined, label);
}

/**
 * An /authorize error after the redirect URI matched (issue 10, "Open
 * redirector", RFC 9700 §4.11.2): not a 302 to a URI anyone can register,
 * but a 400 page with a plain link back carrying `error`, `state` and
 * `iss` (RFC 6749 §4.1.2.1, RFC 9207) and no code; no meta refresh, no
 * script.
 */
export function assertAuthorizeRedirectError(r, redirectUri, error, label = '') {
  assert.equal(r.status, 400, `${label}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.res.headers.get('location'), null, `${label}: no redirect`);
  assert.equal(pageErrorCode(r.text), error, `${label}: page error code`);
  assert.ok(!/<script|http-equiv/i.test(r.text), `${label}: no script, no meta refresh`);
  const link = backLink(r.text);
  assert.ok(link, `${label}: a link back`);
  const location = new URL(link);
  assert.equal(`${location.origin}${location.pathname}`, new URL(redirectUri).href.replace(/\?.*$/, ''), label);
  assert.equal(location.searchParams.get('error'), error, `${label}: ${location}`);
  assert.equal(location.searchParams.get('code'), null, `${label}: no code`);
  assert.equal(location.searchParams.get('iss'), BASE, label);
}

/** A JSON-RPC error answer: exact HTTP status and JSON-RPC code. */
export function assertRpcError(r, status, code, label = '') {
  assert.equal(r.status, status, `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json?.jsonrpc, '2.0', `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json?.error?.code, code, `${label}: ${r.text.slice(0, 300)}`);
  assert.equal(r.json.result, undefined, label);
}

/**
 * A request through node:http, for what fetch will not send: a Host of
 * our choosing, raw bytes. Returns { status, headers, text, json }.
 */
export async function rawRequest(path, { method = 'POST', headers = {}, body = '' } = {}) {
  const { request: httpRequest } = await import('node:http');
  const url = new URL(path, BASE);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method, headers, setHost: !('host' in headers) }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
