// Issue 11, "Revocation that always wins", against a stack of its own:
//
// - a grant refreshed 1,000 times is still revoked in one step when an old
//   refresh token comes back: every access token it ever had is refused at
//   /internal, and nothing answers 5xx. (Before issue 11 every refresh
//   added a live access token to the grant and revoking deleted them one
//   by one, so on the platform's limits, 1,000 KV operations per
//   invocation, such a grant could not be revoked; Miniflare enforces no
//   such limit, so the native test in src/oauth/ledger/grants.rs counts
//   the storage operations. Here the whole flow runs for real.)
// - a lost refresh response's retry gets the identical pair, and the
//   chain continues from it; once the new refresh token was presented,
//   the old one revokes the grant.
//
// The stack is the test build with one rate-limit tier off
// (`TEST_RATE_LIMITS_OFF=refreshes`, read only by the test build): 1,000
// refreshes of one grant in a minute is exactly what the production
// refresh tier (30 a minute per grant) exists to stop, and this test is
// about revocation, not that tier (rate-limits.test.mjs trips it). Every
// other tier stays at its production number.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack } from '../../devstack/stack.mjs';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, internalCall, issueTokens as issueAt, refreshRequest as refreshAt,
} from './oauth-helpers.mjs';

let stack;
let persistTo;
let base;

before(async () => {
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-revocation-'));
  stack = await startStack({ persistTo, vars: { TEST_IDENTITY_HOOK: 'enabled', TEST_RATE_LIMITS_OFF: 'refreshes' } });
  base = stack.workerUrl;
});

after(async () => {
  await stack?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const issueTokens = () => issueAt({ base });
const refreshRequest = (client, token) => refreshAt(client, token, { base });

const REFRESHES = 1000;

/** tools/list at /internal: the status only. */
async function internalStatus(token) {
  const r = await internalCall(token, { base, method: 'tools/list', params: {} });
  return r.status;
}

describe('revocation always wins', () => {
  test(`${REFRESHES} refreshes of one grant, then an old refresh token: the grant ends, every access token is refused, nothing 5xx`, async () => {
    const started = Date.now();
    const { client, tokens: first } = await issueTokens();
    const access = [first.access_token];
    const statuses = [];
    let current = first;
    for (let i = 0; i < REFRESHES; i++) {
      const r = await refreshRequest(client, current.refresh_token);
      statuses.push(r.status);
      current = assertTokens(r, base);
      access.push(current.access_token);
    }
    const refreshSecs = (Date.now() - started) / 1000;
    // Only the two newest access tokens live (the grant's bound).
    await assertTokenWorks(access.at(-1), { base, label: 'newest access token' });
    assert.equal(await internalStatus(access.at(-2)), 200, 'the one before it still works');
    assert.equal(await internalStatus(access[0]), 401, 'the first was retired long ago');
    // The first refresh token, rotated out 1,000 rotations ago.
    const reuse = await refreshRequest(client, first.refresh_token);
    statuses.push(reuse.status);
    assert.equal(reuse.status, 400, reuse.text);
    assert.equal(reuse.json.error, 'invalid_grant');
    const after = await refreshRequest(client, current.refresh_token);
    statuses.push(after.status);
    assert.equal(after.status, 400, `the newest refresh token after the reuse: ${after.text}`);
    await assertTokenRejected(access.at(-1), { base, label: 'newest access token after the reuse' });
    // Every access token the grant ever had, 20 at a time.
    for (let i = 0; i < access.length; i += 20) {
      const batch = await Promise.all(access.slice(i, i + 20).map(internalStatus));
      statuses.push(...batch);
      batch.forEach((s, j) => assert.equal(s, 401, `access token ${i + j} after the reuse`));
    }
    assert.deepEqual(statuses.filter((s) => s >= 500), [], 'no 5xx anywhere');
    console.log(`# ${REFRESHES} refreshes took ${refreshSecs.toFixed(1)} s; the whole test ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  test('a lost refresh response: the retry gets the identical pair, the chain continues from it', async () => {
    const { client, tokens } = await issueTokens();
    const sent = assertTokens(await refreshRequest(client, tokens.refresh_token), base);
    // The client never saw `sent` and tries again with the same token.
    const retried = assertTokens(await refreshRequest(client, tokens.refresh_token), base);
    assert.equal(retried.access_token, sent.access_token);
    assert.equal(retried.refresh_token, sent.refresh_token);
    await assertTokenWorks(retried.access_token, { base, label: 'the retried pair' });
    const next = assertTokens(await refreshRequest(client, retried.refresh_token), base);
    // The new refresh token was presented: the old one is a reuse now.
    const reuse = await refreshRequest(client, tokens.refresh_token);
    assert.equal(reuse.status, 400, reuse.text);
    assert.equal(reuse.json.error, 'invalid_grant');
    await assertTokenRejected(next.access_token, { base, label: 'after the reuse' });
  });
});
