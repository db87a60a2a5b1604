// Races on the token endpoint. Each grant's transitions run one at a time
// in its ledger (a Durable Object, see src/oauth/ledger/), so of N
// simultaneous redemptions of one code exactly one succeeds; the losers
// present a redeemed code, which the ledger treats as leaked: the whole
// grant, winner's tokens included, is revoked (RFC 6749 §4.1.2 / §10.5).
//
// Refreshes changed with issue 11. Before, the losers of a refresh race
// presented a rotated-out token and revoked the grant (OAuth 2.1 §4.3.1,
// RFC 9700 §4.14.2): a client that merely retried a refresh whose response
// it lost (a timeout, a dropped connection) was logged out. Now a
// rotated-out token presented again by the same client within 30 s of its
// rotation, while the token issued for it has not been presented, gets the
// very pair the rotation issued (kept sealed by the grant object; nothing
// new is minted). So every success of a race carries the identical pair
// and exactly one chain lives on; the old token outside that window still
// revokes the grant (oauth-revocation.test.mjs).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, authorizeCode, isWranglerRestart, issueTokens, redeemForm,
  refreshRequest, registerClient, tokenRequest,
} from './oauth-helpers.mjs';

const N = 10;
const ROUNDS = 4;

/**
 * Fires `N` copies of a request at once and sorts the answers. A round in
 * which wrangler's dev proxy answered any of them itself (a reload while
 * src/ is rebuilt) says nothing about the worker: it is reported as null
 * and the caller runs another round.
 */
async function race(makeRequest) {
  const answers = await Promise.all(Array.from({ length: N }, () => makeRequest()));
  if (answers.some((r) => isWranglerRestart(r.status, r.text))) return null;
  const winners = answers.filter((r) => r.status === 200);
  const losers = answers.filter((r) => r.status !== 200);
  return { answers, winners, losers };
}

/** Runs `round` until ROUNDS rounds were not disturbed by a reload (at most twice as many tries). */
async function rounds(round) {
  let done = 0;
  for (let tries = 0; done < ROUNDS; tries++) {
    assert.ok(tries < ROUNDS * 2, 'too many rounds disturbed by wrangler reloads');
    if (await round(done)) done++;
  }
}

function assertOneWinner(result, label) {
  const summary = result.answers.map((r) => `${r.status} ${r.json?.error ?? ''}`.trim());
  assert.equal(result.winners.length, 1, `${label}: exactly one success among ${JSON.stringify(summary)}`);
  for (const r of result.losers) {
    assert.equal(r.status, 400, `${label}: ${r.text}`);
    assert.equal(r.json.error, 'invalid_grant', `${label}: ${r.text}`);
    assert.equal(r.json.access_token, undefined);
  }
  return assertTokens(result.winners[0]);
}

describe('token endpoint races', () => {
  test(`${N} concurrent redemptions of one code: exactly one succeeds, and the replays revoke its grant`, async () => {
    const client = await registerClient();
    await rounds(async (i) => {
      const grant = await authorizeCode(client);
      const result = await race(() => tokenRequest(redeemForm(client, grant)));
      if (!result) return false;
      const tokens = assertOneWinner(result, `round ${i}`);
      // Every loser presented an already-redeemed code after the winner.
      await assertTokenRejected(tokens.access_token, { label: `round ${i}: winner's access token` });
      const again = await refreshRequest(client, tokens.refresh_token);
      assert.equal(again.status, 400, again.text);
      assert.equal(again.json.error, 'invalid_grant');
      return true;
    });
  });

  test(`${N} concurrent refreshes with one refresh token: every success carries the same pair, and exactly one chain lives on`, async () => {
    await rounds(async (i) => {
      // A client of its own per round: its grant's refresh allowance
      // (LIMIT_REFRESHES, per (client, user) pair) holds one round's race
      // and follow-up, not four.
      const { client, tokens: original } = await issueTokens();
      await assertTokenWorks(original.access_token, { label: `round ${i}: before the race` });
      const result = await race(() => refreshRequest(client, original.refresh_token));
      if (!result) return false;
      const summary = result.answers.map((r) => `${r.status} ${r.json?.error ?? ''}`.trim());
      // The object serialises them: the first rotates, the others fall
      // within the retry window and get its pair again. None may fail.
      assert.equal(result.winners.length, N, `round ${i}: all succeed: ${JSON.stringify(summary)}`);
      const pairs = new Set(result.winners.map((r) => {
        const t = assertTokens(r);
        return `${t.access_token} ${t.refresh_token}`;
      }));
      assert.equal(pairs.size, 1, `round ${i}: one pair for all`);
      const winner = assertTokens(result.winners[0]);
      assert.notEqual(winner.refresh_token, original.refresh_token);
      await assertTokenWorks(winner.access_token, { label: `round ${i}: the pair's access token` });
      // The chain continues from the one new refresh token...
      const next = assertTokens(await refreshRequest(client, winner.refresh_token));
      await assertTokenWorks(next.access_token, { label: `round ${i}: the chain's next access token` });
      // ...and once it was presented, the original is a reuse: the grant ends.
      const reuse = await refreshRequest(client, original.refresh_token);
      assert.equal(reuse.status, 400, reuse.text);
      assert.equal(reuse.json.error, 'invalid_grant');
      await assertTokenRejected(next.access_token, { label: `round ${i}: after the reuse` });
      return true;
    });
  });

  test('races on one client do not disturb its other grants', async () => {
    const { client, tokens: bystander } = await issueTokens();
    const { tokens: raced } = await issueTokens({ client });
    const result = await race(() => refreshRequest(client, raced.refresh_token));
    assert.ok(result, 'a wrangler reload disturbed the race; rerun');
    assert.equal(result.winners.length, N, 'every refresh of the race gets the one pair');
    // The raced grant ends by a reuse of its first token (after its new
    // one was presented); the bystander must not notice.
    const next = assertTokens(await refreshRequest(client, assertTokens(result.winners[0]).refresh_token));
    const reuse = await refreshRequest(client, raced.refresh_token);
    assert.equal(reuse.status, 400, reuse.text);
    await assertTokenRejected(next.access_token, { label: 'raced grant after the reuse' });
    await assertTokenWorks(bystander.access_token, { label: 'other grant of the same client' });
    assertTokens(await refreshRequest(client, bystander.refresh_token));
  });

  test('concurrent redemptions of different codes of one client all succeed', async () => {
    const client = await registerClient();
    const grants = await Promise.all(Array.from({ length: N }, () => authorizeCode(client)));
    const answers = await Promise.all(grants.map((g) => tokenRequest(redeemForm(client, g))));
    assert.ok(!answers.some((r) => isWranglerRestart(r.status, r.text)), 'a wrangler reload disturbed the race; rerun');
    const tokens = answers.map((r) => assertTokens(r));
    assert.equal(new Set(tokens.map((t) => t.access_token)).size, N);
    for (const t of tokens) await assertTokenWorks(t.access_token);
  });
});
