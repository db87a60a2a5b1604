// Issue 12: the worker checks RS256 signatures with the runtime's
// WebCrypto (crypto.subtle) instead of an RSA crate; its known-answer
// vectors (src/oidc/kat.rs, RFC 7515 A.2, RFC 7517 A.1 and a fixture ID
// token) run here inside workerd, through the same port the login uses,
// and must answer exactly as the native `cargo test` run does.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const BASE = process.env.WORKER_URL;

const EXPECTED = {
  'rfc7515-a2: valid signature': 'Err(Audience)',
  'rfc7515-a2: tampered signature (one bit)': 'Err(Signature)',
  'rfc7515-a2: signature one byte short': 'Err(Signature)',
  'rfc7515-a2: wrong key (rfc7517-a1)': 'Err(Signature)',
  'rfc7515-a2: wrong alg RS512': 'Err(Algorithm("RS512"))',
  'rfc7515-a2: wrong alg HS256': 'Err(Algorithm("HS256"))',
  'fixture ID token: verifies end to end': 'Ok("kat-user")',
  'fixture ID token: tampered signature': 'Err(Signature)',
  'fixture ID token: another key under its kid': 'Err(Signature)',
};

test('the RS256 known-answer vectors pass inside workerd through WebCrypto', async () => {
  const res = await fetch(`${BASE}/__test/kat`);
  assert.equal(res.status, 200);
  const report = await res.json();
  assert.equal(report.algorithm, 'RS256');
  const got = Object.fromEntries(report.cases.map((c) => [c.name, c.got]));
  assert.deepEqual(got, EXPECTED);
  assert.ok(report.cases.every((c) => c.passed), JSON.stringify(report.cases));
  assert.equal(report.passed, true);
  assert.equal(report.repeated, 0);
});

test('a key imported once per isolate keeps verifying (repeated verification of the fixture token)', async () => {
  for (const n of [1, 25]) {
    const res = await fetch(`${BASE}/__test/kat?repeat=${n}`);
    assert.equal(res.status, 200);
    const report = await res.json();
    assert.equal(report.passed, true);
    assert.equal(report.repeated, n, `all ${n} verifications pass`);
  }
});
