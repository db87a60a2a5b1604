// Issue 9's migration promise, end to end: tokens, grants, codes and
// consents written by the last release keep working after the upgrade.
//
// The last release (commit e2a8235) runs from its committed bundle
// (tests/fixtures/release-e2a8235, built once by its own scripts/build.sh;
// its README says how) under its own wrangler configuration (only the v1
// ClientLedger class). It writes state through real flows: dynamic client
// registration, the sign-in at an OpenID provider, the consent page, the
// code exchange, a refresh; and a client ID metadata document client.
// Then it is stopped and today's worker (the test build) starts on the SAME
// persisted storage (KV and Durable Objects; its configuration adds the
// v2 classes), as `wrangler deploy` upgrades a worker in place. After the
// upgrade the old access tokens call /internal, the old refresh tokens
// refresh and rotate, an old code redeems, the old consents spare the
// consent page, revocation works, and replaying a refresh token rotated
// out before the upgrade revokes its grant.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ROOT, freePort, startStack } from '../../devstack/stack.mjs';
import {
  assertTokenError, assertTokenRejected, assertTokenWorks, assertTokens, redeemForm, registerClient,
  refreshRequest, revokeRequest, tokenRequest,
} from './oauth-helpers.mjs';
import { CookieJar, approveConsent, beginLogin, call, pageText } from './login-helpers.mjs';
import { throughRogueProvider } from './support/rogue-stack.mjs';
import { startRogueIdp } from './support/rogue-idp.mjs';

const RELEASE = path.join(ROOT, 'tests/fixtures/release-e2a8235');
const UPSTREAM = { clientId: 'plausible-mcp-migration-test', clientSecret: 'migration-test-secret' };
/** Tokens of the previous release: a prefix and 43 base64url characters. */
const LEGACY_TOKEN = /^pmcp_(at|rt|ac)_[A-Za-z0-9_-]{43}$/;

let rogue;
let docs;
let persistTo;
let releaseDir;
let stack;
let base;
/** One origin before and after: tokens are bound to the resource `<origin>/internal`. */
let port;
/** Whether a stack ran on `port` already (then the port is fixed). */
let started = false;

/** The release bundle, unpacked and checked against its recorded hashes. */
function unpackRelease() {
  const dir = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-release-e2a8235-'));
  const wasm = gunzipSync(readFileSync(path.join(RELEASE, 'index_bg.wasm.gz')));
  writeFileSync(path.join(dir, 'index_bg.wasm'), wasm);
  copyFileSync(path.join(RELEASE, 'index.js'), path.join(dir, 'index.js'));
  copyFileSync(path.join(RELEASE, 'wrangler.toml'), path.join(dir, 'wrangler.toml'));
  for (const line of readFileSync(path.join(RELEASE, 'SHA256SUMS'), 'utf8').trim().split('\n')) {
    const [sum, name] = line.split(/\s+/);
    const actual = createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex');
    assert.equal(actual, sum, `${name} of the release bundle`);
  }
  return dir;
}

async function start(config, bundle) {
  const options = () => ({
    port,
    persistTo,
    config,
    bundle,
    vars: { ACCESS_ISSUER: rogue.issuer, ACCESS_CLIENT_ID: UPSTREAM.clientId, ACCESS_CLIENT_SECRET: UPSTREAM.clientSecret },
  });
  // The port found free can be taken by another process before wrangler
  // binds it. Only the first start may move to another port: tokens are
  // bound to the origin, so the upgrade must come up where the release ran.
  for (let attempt = 1; ; attempt += 1) {
    try {
      stack = await startStack(options());
      started = true;
      break;
    } catch (err) {
      if (started || attempt >= 3 || !/EADDRINUSE|Address already in use/.test(err.message)) throw err;
      port = await freePort();
    }
  }
  base = stack.workerUrl;
}

before(async () => {
  rogue = await startRogueIdp(UPSTREAM);
  docs = http.createServer((req, res) => {
    const self = `http://127.0.0.1:${docs.address().port}${req.url}`;
    if (req.url !== '/client.json') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      client_id: self,
      client_name: 'migration CIMD client',
      redirect_uris: ['http://127.0.0.1:9/cimd-cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }));
  });
  await new Promise((resolve) => docs.listen(0, '127.0.0.1', resolve));
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-migration-'));
  port = await freePort();
  releaseDir = unpackRelease();
});

after(async () => {
  await stack?.stop();
  if (rogue?.listening) await rogue.close();
  docs?.close();
  for (const dir of [persistTo, releaseDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * One sign-in through the provider: consent when asked (and asserted
 * either way), then the code. Returns the code and what redeems it.
 */
async function signInCode(client, email, { expectConsent }) {
  const jar = new CookieJar();
  const login = await beginLogin(base, client, { jar, upstreamIssuer: rogue.issuer });
  let r = await throughRogueProvider(login, { jar, email });
  if (expectConsent) {
    assert.equal(r.status, 200, `a consent page expected: ${r.status} ${pageText(r.text).slice(0, 200)}`);
    r = await approveConsent(base, jar, r.text);
  }
  assert.equal(r.status, 302, `${expectConsent ? 'after consent' : 'no consent page expected'}: ${r.status} ${pageText(r.text).slice(0, 300)}`);
  const back = new URL(r.location);
  assert.equal(back.searchParams.get('state'), login.state);
  const code = back.searchParams.get('code');
  assert.match(code ?? '', /^pmcp_ac_/);
  return { code, verifier: login.verifier, redirectUri: login.redirectUri };
}

async function signIn(client, email, options) {
  const grant = await signInCode(client, email, options);
  return assertTokens(await tokenRequest(redeemForm(client, grant, base), { base }), base);
}

const email = (label) => `${label}-${randomBytes(4).toString('hex')}@example.com`;

describe('upgrading from the last release (e2a8235) in place', () => {
  const alice = email('alice');
  const bob = email('bob');
  /** What the release wrote, filled in by the first test. */
  const old = {};

  test('the release writes grants, codes and consents through real flows', async () => {
    await start(path.join(releaseDir, 'wrangler.toml'));
    const health = await fetch(`${base}/health`).then((r) => r.json());
    assert.equal(health.commit, 'e2a8235e87ef', 'the release bundle is what runs');

    old.client = await registerClient({ client_name: 'migration DCR', redirect_uris: ['http://127.0.0.1:9/cb'] }, { base });
    old.cimd = { client_id: `http://127.0.0.1:${docs.address().port}/client.json`, redirect_uris: ['http://127.0.0.1:9/cimd-cb'] };

    // Alice: sign-in with consent, then a refresh (her first refresh
    // token is rotated out).
    const a1 = await signIn(old.client, alice, { expectConsent: true });
    old.alice = assertTokens(await refreshRequest(old.client, a1.refresh_token, { base }), base);
    // Bob: the same, and his rotated-out token is kept for a replay.
    const b1 = await signIn(old.client, bob, { expectConsent: true });
    old.bob = assertTokens(await refreshRequest(old.client, b1.refresh_token, { base }), base);
    old.bobRotatedOut = b1.refresh_token;
    // Alice again, with the metadata-document client.
    old.cimdTokens = await signIn(old.cimd, alice, { expectConsent: true });
    // A code issued and not yet redeemed when the upgrade lands (second
    // device: the consent is on record, so no page).
    old.pendingCode = await signInCode(old.client, alice, { expectConsent: false });

    for (const t of [old.alice, old.bob, old.cimdTokens]) {
      assert.match(t.access_token, LEGACY_TOKEN);
      assert.match(t.refresh_token, LEGACY_TOKEN);
      await assertTokenWorks(t.access_token, { base, label: 'before the upgrade' });
    }
    await stack.stop();
    stack = undefined;
  });

  test('today\'s worker starts on the same storage', async () => {
    assert.ok(old.alice, 'the release wrote its state');
    await start(undefined, 'build-test');
    const health = await fetch(`${base}/health`).then((r) => r.json());
    assert.equal(health.status, 'ok');
    assert.notEqual(health.commit, 'e2a8235e87ef', 'today\'s worker runs');
  });

  test('old access tokens call /internal', async () => {
    await assertTokenWorks(old.alice.access_token, { base, label: 'alice' });
    await assertTokenWorks(old.bob.access_token, { base, label: 'bob' });
    await assertTokenWorks(old.cimdTokens.access_token, { base, label: 'alice (CIMD)' });
  });

  test('old refresh tokens refresh and rotate, still in their client\'s ledger', async () => {
    const a2 = assertTokens(await refreshRequest(old.client, old.alice.refresh_token, { base }), base);
    assert.notEqual(a2.refresh_token, old.alice.refresh_token);
    // A legacy grant keeps the legacy format until it ends, so its tokens
    // keep routing to the previous release's object.
    assert.match(a2.refresh_token, LEGACY_TOKEN);
    await assertTokenWorks(a2.access_token, { base, label: 'alice refreshed' });
    const a3 = assertTokens(await refreshRequest(old.client, a2.refresh_token, { base }), base);
    await assertTokenWorks(a3.access_token, { base, label: 'alice refreshed twice' });
    old.aliceNow = a3;
    const c2 = assertTokens(await refreshRequest(old.cimd, old.cimdTokens.refresh_token, { base }), base);
    await assertTokenWorks(c2.access_token, { base, label: 'alice (CIMD) refreshed' });
    old.cimdNow = c2;
  });

  test('a code the release issued redeems once', async () => {
    const t = assertTokens(await tokenRequest(redeemForm(old.client, old.pendingCode, base), { base }), base);
    await assertTokenWorks(t.access_token, { base, label: 'tokens from the old code' });
    const again = await tokenRequest(redeemForm(old.client, old.pendingCode, base), { base });
    assertTokenError(again, 400, 'invalid_grant', 'the old code redeemed twice');
    // RFC 6749 §4.1.2: a code used twice revokes what it issued.
    await assertTokenRejected(t.access_token, { base, label: 'tokens of a replayed code' });
  });

  test('old consents are honoured: a new sign-in shows no consent page, and gets the new token format', async () => {
    const fresh = await signIn(old.client, alice, { expectConsent: false });
    assert.doesNotMatch(fresh.refresh_token, LEGACY_TOKEN, 'a new grant is routed to its pair\'s object');
    await assertTokenWorks(fresh.access_token, { base, label: 'alice signed in again' });
    const cimdFresh = await signIn(old.cimd, alice, { expectConsent: false });
    await assertTokenWorks(cimdFresh.access_token, { base, label: 'alice (CIMD) signed in again' });
    // The other device's legacy grant is untouched by the new one.
    await assertTokenWorks(old.aliceNow.access_token, { base, label: 'alice\'s legacy grant after a new sign-in' });
    // A user who never consented is still asked.
    await signIn(old.client, email('carol'), { expectConsent: true });
  });

  test('revoking an old grant ends it', async () => {
    const r = await revokeRequest(old.client, old.aliceNow.refresh_token, { base });
    assert.equal(r.status, 200, r.text);
    await assertTokenRejected(old.aliceNow.access_token, { base, label: 'alice after revocation' });
    assertTokenError(await refreshRequest(old.client, old.aliceNow.refresh_token, { base }), 400, 'invalid_grant', 'revoked refresh token');
    // An access token alone (RFC 7009 §2.1).
    const a = await revokeRequest(old.cimd, old.cimdNow.access_token, { base });
    assert.equal(a.status, 200, a.text);
    await assertTokenRejected(old.cimdNow.access_token, { base, label: 'CIMD access token after revocation' });
  });

  test('replaying a refresh token rotated out before the upgrade revokes its grant', async () => {
    await assertTokenWorks(old.bob.access_token, { base, label: 'bob before the replay' });
    const replay = await refreshRequest(old.client, old.bobRotatedOut, { base });
    assertTokenError(replay, 400, 'invalid_grant', 'replayed refresh token');
    await assertTokenRejected(old.bob.access_token, { base, label: 'bob after the replay' });
    assertTokenError(await refreshRequest(old.client, old.bob.refresh_token, { base }), 400, 'invalid_grant', 'bob\'s current refresh token after the replay');
  });
});
