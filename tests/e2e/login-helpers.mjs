// Shared helpers for the upstream login and consent end-to-end tests
// (login-*.test.mjs). Not a test file: run.mjs only picks up *.test.mjs.
//
// Nothing here sends the test-only X-Test-Identity header: every sign-in
// goes through /authorize → the upstream provider → /callback → /consent.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { authorizationParams, pkce, randomState, redeemForm, tokenRequest } from './oauth-helpers.mjs';
import { WranglerRestart, isWranglerRestart, pageErrorCode, retrying, send } from './support/http.mjs';

export { WranglerRestart, pageErrorCode, retrying };

/** Each login has its own browser-binding cookie with this prefix. */
export const LOGIN_COOKIE_PREFIX = '__Host-pmcp_login_';

/** The pages' messages (src/oauth/flow/login.rs and error.rs). */
export const MESSAGES = {
  badState: 'This sign-in link is invalid or has expired.',
  otherBrowser: 'This sign-in was started in a different browser.',
  replayed: 'This sign-in link was already used.',
  upstreamDenied: 'Sign-in was cancelled or refused at the identity provider.',
  upstreamError: 'The identity provider reported an error.',
  missingCode: 'The identity provider did not return an authorization code.',
  provider: 'The identity provider could not be reached or gave an unexpected answer.',
  token: 'Your sign-in could not be verified.',
  domain: 'Your account is not allowed to use this server',
  unverified: 'Your email address is not verified with the identity provider.',
  noEmail: 'The identity provider did not share an email address.',
  ticket: 'This approval form is invalid or has expired.',
  consentOtherBrowser: 'This approval form belongs to a sign-in in another browser.',
  csrf: 'missing or invalid CSRF token',
  noDecision: 'The form carried no decision.',
  ticketUsed: 'This approval form was already used.',
  otherOrigin: "This form must be submitted from this server's own page.",
};

/** Decodes the entities an HTML page may carry. */
export function unescapeHtml(s) {
  return s
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
    .replace(/&#x27;/g, "'").replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** The text of a page with tags removed and entities decoded. */
export const pageText = (html) => unescapeHtml(html.replace(/<(style|title)[^>]*>[\s\S]*?<\/\1>/g, ' ').replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();

/**
 * The machine-readable code each page carries in `<meta name="error">`
 * (src/oauth/flow/error.rs), by the same names as MESSAGES.
 */
export const CODES = {
  badState: 'bad_state',
  otherBrowser: 'other_browser',
  replayed: 'login_replayed',
  upstreamDenied: 'upstream_denied',
  upstreamError: 'upstream_error',
  missingCode: 'missing_code',
  provider: 'provider_unavailable',
  token: 'id_token_rejected',
  domain: 'domain_not_allowed',
  unverified: 'email_unverified',
  noEmail: 'no_email',
  ticket: 'bad_ticket',
  consentOtherBrowser: 'ticket_other_browser',
  csrf: 'bad_csrf',
  noDecision: 'no_decision',
  ticketUsed: 'ticket_used',
  otherOrigin: 'foreign_origin',
};

/** The code of the page whose message is `message`. */
export function codeOf(message) {
  const name = Object.keys(MESSAGES).find((k) => MESSAGES[k] === message);
  assert.ok(name && CODES[name], `no code for the message "${message}"`);
  return CODES[name];
}

/** Codes whose page text has been checked once in this run. */
const textChecked = new Set();

/**
 * A user agent's cookie store for one host, enough for the worker's one
 * cookie: keeps what Set-Cookie sets, drops what Max-Age=0 clears.
 */
export class CookieJar {
  constructor() { this.cookies = new Map(); }
  absorb(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const maxAge = attrs.map((a) => a.trim().toLowerCase()).find((a) => a.startsWith('max-age='));
      if (maxAge && Number(maxAge.slice(8)) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get(name) { return this.cookies.get(name); }
  /** The most recently set login cookie, as { name, value }. */
  loginCookie() {
    const found = [...this.cookies].filter(([n]) => n.startsWith(LOGIN_COOKIE_PREFIX)).pop();
    return found ? { name: found[0], value: found[1] } : undefined;
  }
  set(name, value) { this.cookies.set(name, value); }
  header() {
    return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
  }
}

/**
 * One request, redirects never followed, cookies from `jar` sent and its
 * Set-Cookie kept. A wrangler reload answer throws WranglerRestart.
 * Returns { res, status, text, location }.
 */
export async function call(url, { jar, headers = {}, ...init } = {}) {
  const h = { ...headers };
  if (jar && jar.header() && h.cookie === undefined) h.cookie = jar.header();
  for (const k of Object.keys(h)) if (h[k] === null) delete h[k];
  // A browser step is never replayed alone: the whole scenario is.
  const { res, status, text } = await send(url, { ...init, headers: h }, { replayable: false, onRestart: 'throw' });
  if (jar) jar.absorb(res);
  return { res, status, text, location: res.headers.get('location') };
}

/**
 * Asserts a refusal page: `status`, an HTML page whose
 * `<meta name="error">` is the code of `message` (and, the first time a
 * code is met, whose text carries `message`), and nothing handed to the
 * client: no Location (so no redirect, no code), no code anywhere in the
 * body.
 */
export function assertRefused(r, status, message, label = '') {
  const where = `${label} (${r.status}): ${pageText(r.text).slice(0, 300)}`;
  assert.equal(r.status, status, where);
  assert.equal(r.location, null, `${label}: no redirect may be sent, got Location ${r.location}`);
  assert.match(r.res.headers.get('content-type') ?? '', /^text\/html/, where);
  assert.ok(!r.text.includes('pmcp_ac_'), `${label}: no authorization code in the page`);
  if (message) {
    const code = codeOf(message);
    assert.equal(pageErrorCode(r.text), code, `${label}: error code of ${where}`);
    if (!textChecked.has(code)) {
      assert.ok(pageText(r.text).includes(message), `${label}: expected "${message}" in ${where}`);
      textChecked.add(code);
    }
  }
  const csp = r.res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/, `${label}: CSP ${csp}`);
}

/** The hidden fields of a consent page. */
export function consentForm(html) {
  const field = (name) => {
    const m = html.match(new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`));
    assert.ok(m, `consent page has a ${name} field`);
    return unescapeHtml(m[1]);
  };
  return { ticket: field('ticket'), csrf: field('csrf') };
}

/**
 * GET /authorize for `client` (no test identity), in `jar`. Asserts the
 * redirect to the upstream provider and the login cookie, and returns
 * what the rest of the flow needs.
 */
export async function beginLogin(base, client, { jar, upstreamIssuer, redirectUri = client.redirect_uris[0], scope, headers } = {}) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  const params = new URLSearchParams(authorizationParams(client, { redirectUri, challenge, state, base, scope }));
  const r = await call(`${base}/authorize?${params}`, { jar, headers });
  assert.equal(r.status, 302, `authorize: ${r.status} ${pageText(r.text).slice(0, 300)}`);
  const upstream = new URL(r.location);
  if (upstreamIssuer) assert.equal(upstream.origin, new URL(upstreamIssuer).origin, 'authorize redirects to the upstream provider');
  const q = Object.fromEntries(upstream.searchParams);
  assert.equal(q.redirect_uri, `${base}/callback`);
  assert.match(q.state ?? '', /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){1,2}$/, 'signed state (body, key id, signature)');
  const setCookie = r.res.headers.getSetCookie().find((c) => c.startsWith(LOGIN_COOKIE_PREFIX));
  assert.ok(setCookie, 'the login cookie is set');
  const pair = setCookie.split(';')[0];
  const cookieName = pair.slice(0, pair.indexOf('='));
  const cookie = pair.slice(pair.indexOf('=') + 1);
  return { upstream, upstreamState: q.state, cookie, cookieName, verifier, challenge, state, redirectUri, client };
}

/** Approves the consent page `html` in `jar`, as its form posts it (with `Origin`); the worker's answer. */
export function approveConsent(base, jar, html) {
  const body = new URLSearchParams({ ...consentForm(html), decision: 'approve' }).toString();
  return call(`${base}/consent`, {
    jar, method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
  });
}

/**
 * The redirect `r` back to the client that ends `login`: asserts it
 * carries the login's state and a code, and redeems the code at `base`;
 * the token response (a wrangler restart at /token throws WranglerRestart,
 * for `retrying`).
 */
export async function redeemBack(base, login, r) {
  const back = new URL(r.location);
  assert.equal(back.searchParams.get('state'), login.state);
  const code = back.searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  const redeemed = await tokenRequest(redeemForm(login.client, { code, verifier: login.verifier, redirectUri: login.redirectUri }, base), { base });
  if (isWranglerRestart(redeemed.status, redeemed.text)) throw new WranglerRestart('/token');
  return redeemed;
}

/** The /callback URL for a login, with the given (raw) query parameters. */
export function callbackUrl(base, params) {
  return `${base}/callback?${new URLSearchParams(params)}`;
}

// ---------------------------------------------------------------------
// The worker's keys, for crafting values only the server should be able
// to make. This works only against a stack whose COOKIE_SECRET the test
// chose: it is how expiry is tested end to end without waiting 10 minutes.
// The derivation mirrors src/crypto.rs (HKDF-SHA256, salt
// "plausible-mcp/v1"); a control case in each test proves the copy right.
// ---------------------------------------------------------------------

export function deriveKeys(secret) {
  const hk = (info, len) => Buffer.from(hkdfSync('sha256', Buffer.from(secret), Buffer.from('plausible-mcp/v1'), Buffer.from(info), len));
  const seal = hk('seal: user properties at rest', 32);
  const signKey = hk('sign: state and cookies', 64);
  // The key id (src/crypto.rs Keys::derive): a short hash of the derived keys.
  const kid = createHash('sha256').update(Buffer.concat([Buffer.from('kid\0'), seal, signKey])).digest('hex').slice(0, 8);
  const sign = (purpose, data) => `${kid}.${createHmac('sha256', signKey).update(Buffer.concat([Buffer.from(purpose), Buffer.from([0]), Buffer.from(data)])).digest('base64url')}`;
  return {
    kid,
    sign,
    /** `<kid>.` base64url(nonce ‖ AES-256-GCM(ciphertext ‖ tag)) under `aad`. */
    seal(plaintext, aad) {
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', seal, nonce);
      c.setAAD(Buffer.from(aad));
      const body = Buffer.concat([c.update(Buffer.from(plaintext)), c.final(), c.getAuthTag()]);
      return `${kid}.${Buffer.concat([nonce, body]).toString('base64url')}`;
    },
    open(sealed, aad) {
      const bytes = Buffer.from(sealed.slice(sealed.indexOf('.') + 1), 'base64url');
      const d = createDecipheriv('aes-256-gcm', seal, bytes.subarray(0, 12));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([d.update(bytes.subarray(12, bytes.length - 16)), d.final()]).toString('utf8');
    },
  };
}

/** A `state` split at its first dot: the payload, and the `<kid>.<signature>` after it. */
export const splitState = (state) => {
  const i = state.indexOf('.');
  return i < 0 ? [state] : [state.slice(0, i), state.slice(i + 1)];
};

/** The payload of a `state` (base64url JSON before the first dot). */
export const statePayload = (state) => JSON.parse(Buffer.from(splitState(state)[0], 'base64url').toString('utf8'));

/** A state signed like src/oidc/login.rs sign_state. */
export function signState(keys, payload) {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${keys.sign('login-state', body)}`;
}

/** The consent CSRF token, like src/oauth/consent.rs csrf_token. */
export const csrfToken = (keys, ticket, cookie) => keys.sign('consent-csrf', `${ticket}\n${cookie}`);

export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
