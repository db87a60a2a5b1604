// Races on the token endpoint. Each client's grant transitions run one at
// a time in its ledger (a Durable Object, see src/oauth/ledger.rs), so of
// N simultaneous redemptions of one code, or N simultaneous refreshes with
// one refresh token, exactly one may succeed. The losers then present a
// redeemed code or a rotated-out refresh token, which the ledger treats as
// leaked: the whole grant, winner's tokens included, is revoked (RFC 6749
// §4.1.2 / §10.5, OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).
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

  test(`${N} concurrent refreshes with one refresh token: exactly one succeeds, and the reuse revokes the grant`, async () => {
    await rounds(async (i) => {
      // A client of its own per round: its grant's refresh allowance
      // (LIMIT_REFRESHES, per (client, user) pair) holds one round's race
      // and follow-up, not four.
      const { client, tokens: original } = await issueTokens();
      await assertTokenWorks(original.access_token, { label: `round ${i}: before the race` });
      const result = await race(() => refreshRequest(client, original.refresh_token));
      if (!result) return false;
      const winner = assertOneWinner(result, `round ${i}`);
      assert.notEqual(winner.refresh_token, original.refresh_token);
      // The losers presented a rotated-out refresh token: the grant ended,
      // taking the winner's fresh tokens and the original access token with it.
      await assertTokenRejected(winner.access_token, { label: `round ${i}: winner's access token` });
      await assertTokenRejected(original.access_token, { label: `round ${i}: original access token` });
      const again = await refreshRequest(client, winner.refresh_token);
      assert.equal(again.status, 400, again.text);
      assert.equal(again.json.error, 'invalid_grant');
      return true;
    });
  });

  test('races on one client do not disturb its other grants', async () => {
    const { client, tokens: bystander } = await issueTokens();
    const { tokens: raced } = await issueTokens({ client });
    const result = await race(() => refreshRequest(client, raced.refresh_token));
    assert.ok(result, 'a wrangler reload disturbed the race; rerun');
    assertOneWinner(result, 'raced grant');
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
