// Real OAuth flows over plain HTTP, for the benchmark's tokens and its flow
// and refresh rates. No test hook: against our worker a flow is DCR →
// /authorize → the local OpenID provider's login form → /callback → our
// consent page → Approve → /token, as a browser would walk it.
import { createHash, randomBytes } from 'node:crypto';

const REDIRECT_URI = 'http://127.0.0.1:9/cb';

/** Cookies per origin, enough for our login cookie and oidc-provider's. */
class Jar {
  constructor() { this.byOrigin = new Map(); }
  absorb(url, res) {
    const origin = new URL(url).origin;
    const jar = this.byOrigin.get(origin) ?? new Map();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const gone = attrs.some((a) => /^\s*max-age=(0|-)/i.test(a)) || attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (gone) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1).trim());
    }
    this.byOrigin.set(origin, jar);
  }
  header(url) {
    const jar = this.byOrigin.get(new URL(url).origin);
    return jar ? [...jar].map(([n, v]) => `${n}=${v}`).join('; ') : '';
  }
}

/** One request, redirects not followed, cookies kept. */
async function send(url, { jar, headers = {}, ...init } = {}) {
  const h = { ...headers };
  const cookie = jar?.header(url);
  if (cookie) h.cookie = cookie;
  const res = await fetch(url, { ...init, headers: h, redirect: 'manual' });
  const text = await res.text();
  jar?.absorb(url, res);
  const location = res.headers.get('location');
  return { status: res.status, text, location: location && new URL(location, url).toString() };
}

function fail(step, r) {
  return new Error(`${step}: HTTP ${r.status} ${r.text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').slice(0, 200)}`);
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

async function register(base) {
  const r = await send(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'bench', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none' }),
  });
  if (r.status !== 201 && r.status !== 200) throw fail('register', r);
  return JSON.parse(r.text).client_id;
}

function authorizeUrl(base, clientId, challenge, state) {
  const u = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT_URI, code_challenge: challenge,
    code_challenge_method: 'S256', state, scope: 'mcp', resource: `${base}/internal`,
  })) u.searchParams.set(k, v);
  return u.toString();
}

async function redeem(base, clientId, code, verifier) {
  const r = await send(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
      client_id: clientId, resource: `${base}/internal`,
    }).toString(),
  });
  if (r.status !== 200) throw fail('token', r);
  const t = JSON.parse(r.text);
  return { clientId, accessToken: t.access_token, refreshToken: t.refresh_token };
}

function codeFrom(step, r, state) {
  if (r.status !== 302 || !r.location?.startsWith(REDIRECT_URI)) throw fail(step, r);
  const back = new URL(r.location);
  if (back.searchParams.get('state') !== state) throw new Error(`${step}: state mismatch`);
  const code = back.searchParams.get('code');
  if (!code) throw fail(step, r);
  return code;
}

/**
 * One full sign-in against our worker as a new client and a new user:
 * returns { clientId, accessToken, refreshToken }.
 */
export async function ourFlow(base, email = `bench-${randomBytes(6).toString('hex')}@example.com`) {
  const jar = new Jar();
  const clientId = await register(base);
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  let r = await send(authorizeUrl(base, clientId, challenge, state), { jar });
  if (r.status !== 302) throw fail('authorize', r);
  // At the OpenID provider: follow its redirects and fill in its login
  // form until it sends the browser back to our /callback.
  let url = r.location;
  for (let hop = 0; !url.startsWith(`${base}/callback`); hop++) {
    if (hop > 12) throw new Error('the OpenID provider did not send the browser back');
    r = await send(url, { jar });
    const form = r.status === 200 && r.text.match(/<form method="post" action="([^"]+)"/);
    if (form) {
      r = await send(new URL(form[1], url).toString(), {
        jar, method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email }).toString(),
      });
    }
    if (!r.location) throw fail('OpenID provider', r);
    url = r.location;
  }
  r = await send(url, { jar });
  // A new user and client: our consent page, then Approve.
  if (r.status !== 200) throw fail('callback', r);
  const field = (name) => {
    const m = r.text.match(new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`));
    if (!m) throw fail(`consent page (${name})`, r);
    return m[1].replace(/&#x27;|&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  };
  const consent = new URLSearchParams({ ticket: field('ticket'), csrf: field('csrf'), decision: 'approve' });
  r = await send(`${base}/consent`, {
    jar, method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: consent.toString(),
  });
  return redeem(base, clientId, codeFrom('consent', r, state), verifier);
}

/** The peer's flow: DCR → /authorize (approves at once) → /token. */
export async function peerFlow(base) {
  const clientId = await register(base);
  const { verifier, challenge } = pkce();
  const state = randomBytes(12).toString('base64url');
  const r = await send(authorizeUrl(base, clientId, challenge, state));
  return redeem(base, clientId, codeFrom('authorize', r, state), verifier);
}

/** One refresh (both servers rotate): returns the grant with new tokens. */
export async function refresh(base, grant) {
  const r = await send(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: grant.refreshToken, client_id: grant.clientId }).toString(),
  });
  if (r.status !== 200) throw fail('refresh', r);
  const t = JSON.parse(r.text);
  if (!t.access_token || !t.refresh_token) throw fail('refresh (no tokens)', r);
  return { clientId: grant.clientId, accessToken: t.access_token, refreshToken: t.refresh_token };
}

/**
 * Runs `once` from `concurrency` loops until `count` have finished; returns
 * { count, seconds, perSecond }. Any failure fails the bench.
 */
export async function rate(count, concurrency, once) {
  let started = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, lane) => {
    while (started < count) {
      started += 1;
      await once(lane);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { count, seconds, perSecond: count / seconds };
}
