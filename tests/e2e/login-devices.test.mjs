// Issue 9 through the real sign-in (/authorize → provider → /callback →
// consent → code), against a stack of its own whose worker signs in at
// the rogue OpenID provider (support/rogue-idp.mjs, which answers at once
// without a login form):
//
// - two devices of one user with one client keep separate grants: both
//   token sets work, refreshing or revoking one leaves the other alive;
// - /authorize stores nothing: many starts leave no Durable Object in the
//   persisted dev storage (a callback, the control, creates one);
// - the largest request /authorize accepts (a client id metadata URL and a
//   redirect URI of 2048 characters, a state of 1024) travels sealed in the
//   login cookie (split over parts) and ends in working tokens;
// - a user's directory and a client's index list the pairs signed in, and
//   a revoke-all (of a user, of a client) fans out from one marker to every
//   grant, read and started through the loopback-only test probe
//   (/__test/listings, on with TEST_IDENTITY_HOOK; the control issue adds
//   the real pages).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, isWranglerRestart, redeemForm, registerClient, refreshRequest,
  revokeRequest, tokenRequest,
} from './oauth-helpers.mjs';
import {
  CookieJar, LOGIN_COOKIE_PREFIX, WranglerRestart, approveConsent, beginLogin, call, pageText, redeemBack, retrying,
} from './login-helpers.mjs';
import { startRogueStack, throughRogueProvider } from './support/rogue-stack.mjs';

const UPSTREAM_CLIENT_ID = 'plausible-mcp-devices-test';
const UPSTREAM_CLIENT_SECRET = 'devices-test-secret';

let own;
let rogue;
let persistTo;
let BASE;
let docs;
/** CIMD documents served by path. */
const documents = new Map();

before(async () => {
  docs = http.createServer((req, res) => {
    const doc = documents.get(req.url);
    res.setHeader('content-type', 'application/json');
    res.statusCode = doc ? 200 : 404;
    res.end(doc ? JSON.stringify(doc) : '{}');
  });
  await new Promise((resolve) => docs.listen(0, '127.0.0.1', resolve));
  own = await startRogueStack({
    name: 'login-devices',
    clientId: UPSTREAM_CLIENT_ID,
    clientSecret: UPSTREAM_CLIENT_SECRET,
    // For the listings probe only (no test here sends the identity header).
    vars: { TEST_IDENTITY_HOOK: 'enabled' },
  });
  ({ rogue, persistTo } = own);
  BASE = own.stack.workerUrl;
});

after(async () => {
  await own?.stop();
  docs?.close();
});

const freshEmail = (label) => `${label}-${randomBytes(4).toString('hex')}@example.com`;

/** One device signing in: through the provider, consent if asked; the tokens. */
async function signIn(client, email, { jar = new CookieJar(), redirectUri, expectConsent } = {}) {
  const login = await beginLogin(BASE, client, { jar, upstreamIssuer: rogue.issuer, redirectUri });
  let r = await throughRogueProvider(login, { jar, email });
  if (r.status === 200) {
    assert.notEqual(expectConsent, false, 'no consent page expected');
    r = await approveConsent(BASE, jar, r.text);
  } else {
    assert.notEqual(expectConsent, true, `a consent page expected: ${r.status} ${pageText(r.text).slice(0, 200)}`);
  }
  assert.equal(r.status, 302, pageText(r.text).slice(0, 300));
  const redeemed = await redeemBack(BASE, login, r);
  return { tokens: assertTokens(redeemed, BASE), login, jar };
}

describe('two devices of one user with one client', () => {
  test('keep separate grants: refreshing or revoking one leaves the other alive', retrying(async () => {
    const client = await registerClient({ client_name: 'devices', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const email = freshEmail('two-devices');
    const laptop = await signIn(client, email, { expectConsent: true });
    // The phone: another browser, same person; consent is on record.
    const phone = await signIn(client, email, { expectConsent: false });
    assert.notEqual(laptop.tokens.refresh_token, phone.tokens.refresh_token);
    await assertTokenWorks(laptop.tokens.access_token, { base: BASE, label: 'laptop after the phone signed in' });
    await assertTokenWorks(phone.tokens.access_token, { base: BASE, label: 'phone' });
    // The laptop refreshes: its new tokens work, the phone's still do.
    const refreshed = assertTokens(await refreshRequest(client, laptop.tokens.refresh_token, { base: BASE }), BASE);
    await assertTokenWorks(refreshed.access_token, { base: BASE, label: 'laptop refreshed' });
    await assertTokenWorks(phone.tokens.access_token, { base: BASE, label: 'phone after the laptop refreshed' });
    // The phone refreshes too: each chain rotates on its own.
    const phone2 = assertTokens(await refreshRequest(client, phone.tokens.refresh_token, { base: BASE }), BASE);
    // The laptop signs out (revokes its refresh token, ending its grant).
    const revoked = await revokeRequest(client, refreshed.refresh_token, { base: BASE });
    assert.equal(revoked.status, 200, revoked.text);
    await assertTokenRejected(refreshed.access_token, { base: BASE, label: 'laptop after revocation' });
    const again = await refreshRequest(client, refreshed.refresh_token, { base: BASE });
    assert.equal(again.status, 400, again.text);
    await assertTokenWorks(phone2.access_token, { base: BASE, label: 'phone after the laptop signed out' });
    assertTokens(await refreshRequest(client, phone2.refresh_token, { base: BASE }), BASE);
  }));
});

/**
 * Durable Object storage files in the persisted dev storage (databases and
 * their write-ahead logs), each with its size and modification time: any
 * object created or written shows.
 */
function objectFiles() {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (p.includes(`${path.sep}do${path.sep}`) && /\.sqlite(-wal)?$/.test(name)) out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(persistTo);
  return out.sort();
}

describe('/authorize stores nothing', () => {
  test('40 sign-in starts, the first with an unseen metadata document, create or write no Durable Object; a callback writes its used-state shard', retrying(async () => {
    // A client metadata document this worker has never fetched: the first
    // start fetches it (and the provider's discovery document, if this
    // isolate has not yet) and keeps both in memory and the edge cache,
    // not in storage.
    const docPath = `/client/no-writes-${randomBytes(4).toString('hex')}.json`;
    const clientId = `http://127.0.0.1:${docs.address().port}${docPath}`;
    documents.set(docPath, { client_id: clientId, client_name: 'No writes', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' });
    const client = { client_id: clientId, redirect_uris: ['http://127.0.0.1:9/cb'] };
    const before = objectFiles();
    const logins = [];
    for (let i = 0; i < 40; i++) logins.push(await beginLogin(BASE, client, { jar: new CookieJar(), upstreamIssuer: rogue.issuer }));
    assert.deepEqual(objectFiles(), before, 'no Durable Object was created or written by /authorize');
    // Control: the probe sees objects appear. Finishing one login spends
    // its state in a used-state shard.
    const { login } = { login: logins[0] };
    const u = new URL(login.upstream);
    u.searchParams.set('scenario', 'upstream-error:access_denied');
    const up = await call(u);
    const jar = new CookieJar();
    jar.set(login.cookieName, login.cookie);
    const r = await call(up.location, { jar });
    assert.equal(r.status, 403, pageText(r.text).slice(0, 200));
    // (Its shard may exist already from an earlier test: created or
    // written, a UsedStates file shows the change.)
    const after = objectFiles();
    const changed = after.filter((f) => !before.includes(f));
    assert.ok(changed.some((f) => f.includes('UsedStates')), `changed: ${changed.join('\n')}`);
  }));
});

describe('the largest request /authorize accepts', () => {
  test('a 2048-character metadata URL and redirect URI and a 1024-character state sign in through parted cookies', retrying(async () => {
    const origin = `http://127.0.0.1:${docs.address().port}`;
    const docPath = `/client/${'c'.repeat(2048 - origin.length - '/client/'.length - 5)}.json`;
    const clientId = `${origin}${docPath}`;
    assert.equal(clientId.length, 2048);
    const redirectUri = `http://127.0.0.1:9/cb/${'r'.repeat(2048 - 'http://127.0.0.1:9/cb/'.length)}`;
    assert.equal(redirectUri.length, 2048);
    documents.set(docPath, { client_id: clientId, client_name: 'Largest', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' });
    const client = { client_id: clientId, redirect_uris: [redirectUri] };
    const jar = new CookieJar();
    // beginLogin uses a short state; send the largest by hand.
    const { pkce, authorizationParams } = await import('./oauth-helpers.mjs');
    const { verifier, challenge } = pkce();
    const state = `${'"'.repeat(24)}${randomBytes(750).toString('base64url')}`.slice(0, 1024);
    assert.equal(state.length, 1024);
    const params = new URLSearchParams(authorizationParams(client, { redirectUri, challenge, state, base: BASE }));
    const start = await call(`${BASE}/authorize?${params}`, { jar });
    assert.equal(start.status, 302, pageText(start.text).slice(0, 300));
    const parts = start.res.headers.getSetCookie().filter((c) => c.startsWith(LOGIN_COOKIE_PREFIX));
    assert.ok(parts.length >= 2 && parts.length <= 3, `cookie parts: ${parts.length}`);
    for (const p of parts) assert.ok(p.split(';')[0].length <= 4096, `a part of ${p.split(';')[0].length} bytes`);
    const u = new URL(start.location);
    u.searchParams.set('scenario', 'good');
    u.searchParams.set('email', freshEmail('largest'));
    const up = await call(u);
    let r = await call(up.location, { jar });
    assert.equal(r.status, 200, pageText(r.text).slice(0, 300));
    r = await approveConsent(BASE, jar, r.text);
    assert.equal(r.status, 302, pageText(r.text).slice(0, 300));
    // Every part of the login cookie is cleared.
    const cleared = r.res.headers.getSetCookie().filter((c) => c.startsWith(LOGIN_COOKIE_PREFIX) && /Max-Age=0/i.test(c));
    assert.ok(cleared.length >= parts.length, cleared.join('\n'));
    const back = new URL(r.location);
    assert.equal(back.searchParams.get('state'), state);
    const code = back.searchParams.get('code');
    const redeemed = await tokenRequest(redeemForm(client, { code, verifier, redirectUri }, BASE), { base: BASE });
    if (isWranglerRestart(redeemed.status, redeemed.text)) throw new WranglerRestart('/token');
    await assertTokenWorks(assertTokens(redeemed, BASE).access_token, { base: BASE, label: 'largest request' });
  }));
});

/** The listings probe: GET a directory or an index, POST a revoke-all. */
async function probe(query, method = 'GET') {
  const r = await call(`${BASE}/__test/listings?${new URLSearchParams(query)}`, { method });
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

/** Waits (bounded) until the object's alarm has fanned the revocation out. */
async function fannedOut(query) {
  for (let i = 0; i < 200; i++) {
    const listed = await probe(query);
    if (listed.revoking === null) return listed;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the revocation of ${JSON.stringify(query)} did not finish`);
}

describe("a user's directory, a client's index, and revoke-all", () => {
  test('list the pairs signed in; one marker ends every grant of a user, then of a client', retrying(async () => {
    const register = (name) => registerClient({ client_name: name, redirect_uris: ['http://127.0.0.1:9/cb'] }, { base: BASE });
    const [a, b] = [await register('listed-a'), await register('listed-b')];
    const alice = freshEmail('listed-alice');
    const bob = freshEmail('listed-bob');
    const laptop = await signIn(a, alice, { expectConsent: true });
    const phone = await signIn(a, alice, { expectConsent: false });
    const other = await signIn(b, alice, { expectConsent: true });
    const bobs = await signIn(a, bob, { expectConsent: true });
    // The directory: Alice's two clients, once each (two devices, one pair).
    const dir = await probe({ email: alice });
    assert.deepEqual(dir.pairs.map((p) => p.client_id).sort(), [a.client_id, b.client_id].sort());
    assert.equal(dir.revoking, null);
    // The index of A: Alice's pair and Bob's, the same routing ids.
    const index = await probe({ client_id: a.client_id });
    assert.equal(index.pairs.length, 2);
    const alicesA = dir.pairs.find((p) => p.client_id === a.client_id);
    assert.ok(index.pairs.some((p) => p.routing === alicesA.routing), JSON.stringify(index));
    // A refresh lists nothing new.
    const laptop2 = assertTokens(await refreshRequest(a, laptop.tokens.refresh_token, { base: BASE }), BASE);
    assert.deepEqual((await probe({ email: alice })).pairs, dir.pairs);

    // Revoke all of Alice's grants: one marker, fanned out by the alarm.
    const marked = await probe({ email: alice }, 'POST');
    assert.equal(typeof marked.marked_at, 'number');
    await fannedOut({ email: alice });
    for (const [label, token] of [['laptop', laptop2.access_token], ['phone', phone.tokens.access_token], ['client B', other.tokens.access_token]]) {
      await assertTokenRejected(token, { base: BASE, label: `Alice's ${label} after revoke-all` });
    }
    for (const [client, refresh] of [[a, laptop2.refresh_token], [a, phone.tokens.refresh_token], [b, other.tokens.refresh_token]]) {
      const r = await refreshRequest(client, refresh, { base: BASE });
      assert.equal(r.status, 400, r.text);
    }
    await assertTokenWorks(bobs.tokens.access_token, { base: BASE, label: "Bob's grant with the same client" });
    // Alice reconnects: asked to consent again (her consent went with her
    // grants), and the new grant is not caught by the finished marker.
    const back = await signIn(a, alice, { expectConsent: true });
    await assertTokenWorks(back.tokens.access_token, { base: BASE, label: 'Alice reconnected' });

    // Revoke all of client A's grants: Bob's and Alice's new one end;
    // Alice's grants with B were ended already and B is untouched.
    const bobsB = await signIn(b, bob, { expectConsent: true });
    await probe({ client_id: a.client_id }, 'POST');
    await fannedOut({ client_id: a.client_id });
    await assertTokenRejected(bobs.tokens.access_token, { base: BASE, label: "Bob's grant with A" });
    await assertTokenRejected(back.tokens.access_token, { base: BASE, label: "Alice's new grant with A" });
    await assertTokenWorks(bobsB.tokens.access_token, { base: BASE, label: "Bob's grant with B" });
  }));

});
