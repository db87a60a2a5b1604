// Controls for the attack suite's observer: the same snapshot and
// assertions the cases use do see what a legitimate flow stores and
// calls, so "nothing changed" in a case is a measurement, not a blind
// spot.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertTokens, authorizeCode, redeemForm, registerClient, tokenRequest } from '../e2e/oauth-helpers.mjs';
import { ISSUED, assertUnchanged, changesSince, snapshot } from './support/attack.mjs';

describe('the observer sees what a legitimate flow stores', () => {
  test('a registration, a code, and a redemption each show up in the dump', async () => {
    let snap = await snapshot();
    const client = await registerClient({ client_name: 'observer control' });
    let diff = changesSince(snap);
    assert.equal(diff.added.filter((k) => k.startsWith('kv:client:')).length, 1, JSON.stringify(diff));
    await assert.rejects(assertUnchanged(snap, 'control'), /the store changed/);

    snap = await snapshot();
    const grant = await authorizeCode(client);
    diff = changesSince(snap);
    assert.equal(diff.added.filter((k) => /\/_cf_KV\/code:/.test(k)).length, 1, JSON.stringify(diff));

    snap = await snapshot();
    assertTokens(await tokenRequest(redeemForm(client, grant)));
    diff = changesSince(snap);
    for (const kind of [/^kv:at:/, /\/_cf_KV\/at:/, /\/_cf_KV\/rt:/, /\/_cf_KV\/grant:/]) {
      assert.equal(diff.added.filter((k) => kind.test(k)).length, 1, `${kind}: ${JSON.stringify(diff)}`);
    }
    assert.ok(diff.added.every((k) => ISSUED.test(k)), 'every entry a redemption adds is one ISSUED names');
  });
});
