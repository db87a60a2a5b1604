// Issue 11, "Revocation that always wins", when Workers KV fails: a
// grant revoked while the deletes of its access records fail stays
// revoked, and the grant object's alarm deletes the records later.
//
// Miniflare's KV never fails on its own, so this stack is the test build
// with `TEST_KV_FAIL_DELETES=at: 1` (read only by the test build, absent
// from the release build): the first delete of every access record
// (`at:<sha256 of the token>`) fails. The revocation's own deletes are
// those first attempts; the alarm's retry, RETRY_DELETES_SECS (30 s)
// later, is the second. What KV holds is read from the files Miniflare
// persists (the attack suite's observer, tests/attack/support/state.mjs),
// not through the worker. The alarm is waited for by polling that state
// against a deadline, never by a sleep.
//
// Until the alarm runs, an access token whose record is still in KV is
// admitted at /internal (the documented bound: a failing delete can delay
// the end of an access token, never undo the revocation); this test
// shows the refresh side refused at once and the access tokens refused
// once the records are gone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack } from '../../devstack/stack.mjs';
import { dumpState } from '../attack/support/state.mjs';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, issueTokens, refreshRequest, revokeRequest,
} from './oauth-helpers.mjs';

/** The alarm retries 30 s after the revocation; the rest is slack for a loaded machine. */
const ALARM_DEADLINE_MS = 120_000;

let stack;
let persistTo;
let base;

before(async () => {
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-revocation-faults-'));
  stack = await startStack({ persistTo, vars: { TEST_IDENTITY_HOOK: 'enabled', TEST_KV_FAIL_DELETES: 'at: 1' } });
  base = stack.workerUrl;
});

after(async () => {
  await stack?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

const recordKey = (token) => `kv:at:${createHash('sha256').update(token).digest('hex')}`;
/** Names of the grant objects' deferred deletes (`retired:<grant id>` entries). */
const retiredEntries = (state) => [...state.keys()].filter((k) => /^do:GrantLedger\/[^/]+\/[^/]+\/retired:/.test(k));

describe('revocation while KV deletes fail', () => {
  test('the grant stays revoked at once; the alarm deletes its access records later', async () => {
    const { client, tokens: first } = await issueTokens({ base });
    const second = assertTokens(await refreshRequest(client, first.refresh_token, { base }), base);
    const access = [first.access_token, second.access_token];
    for (const [i, token] of access.entries()) await assertTokenWorks(token, { base, label: `access token ${i + 1} before` });
    const before = dumpState(persistTo);
    for (const token of access) assert.ok(before.has(recordKey(token)), 'the access record is in KV (the observer sees it)');

    const revoked = await revokeRequest(client, second.refresh_token, { base });
    assert.equal(revoked.status, 200, revoked.text);

    // At once: the revocation holds although every delete failed.
    const during = dumpState(persistTo);
    for (const token of access) assert.ok(during.has(recordKey(token)), 'the delete failed: the record is still in KV');
    assert.equal(retiredEntries(during).length, 1, `the failed deletes are kept for the alarm: ${retiredEntries(during)}`);
    for (const token of [second.refresh_token, first.refresh_token]) {
      const r = await refreshRequest(client, token, { base });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error, 'invalid_grant');
    }

    // Later: the alarm's retry deletes the records.
    const deadline = Date.now() + ALARM_DEADLINE_MS;
    let state = during;
    while (access.some((t) => state.has(recordKey(t))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      state = dumpState(persistTo);
    }
    for (const token of access) assert.ok(!state.has(recordKey(token)), `the alarm deleted the record within ${ALARM_DEADLINE_MS} ms`);
    assert.deepEqual(retiredEntries(state), [], 'nothing left for the alarm');
    for (const [i, token] of access.entries()) await assertTokenRejected(token, { base, label: `access token ${i + 1} after the alarm` });
    const again = await refreshRequest(client, second.refresh_token, { base });
    assert.equal(again.status, 400, 'still revoked');
    assert.equal(again.json.error, 'invalid_grant');
  });
});
