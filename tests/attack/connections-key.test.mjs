// The connections page's Plausible key form (issue 15): a key entered
// again on /connections opens a view of what that key connected on /mcp.
// Attacks on it: login CSRF (a page elsewhere posting its own key into
// the victim's browser, or replaying another browser's form), a post from
// another origin, and a person's session cookie passed off as a key's.
// Each leaves the store as it was, asks Plausible nothing, and sets no
// key session cookie.
import { describe } from 'node:test';
import assert from 'node:assert/strict';
import { CookieJar, call, deriveKeys } from '../e2e/login-helpers.mjs';
import { formFor } from '../e2e/support/key-flow.mjs';
import { BASE, COOKIE_SECRET, assertPage, assertUnchanged, attack, snapshot } from './support/attack.mjs';

const KEY_SESSION = '__Host-pmcp_connections_key';
const keys = deriveKeys(COOKIE_SECRET);
const A_KEY = 'attack-key-0123456789';

/** A fresh browser at the signed-out page: its jar and the key form's token. */
async function signedOut() {
  const jar = new CookieJar();
  const page = await call(`${BASE}/connections`, { jar });
  assert.equal(page.status, 200);
  const form = formFor(page.text, '/connections/key');
  assert.ok(form, 'the key form');
  return { jar, csrf: form.fields.find((f) => f.name === 'csrf').value };
}

/** POST /connections/key as a form, from `jar` (null: no cookies). */
function enter(jar, fields, { origin = BASE } = {}) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (origin) headers.origin = origin;
  return call(`${BASE}/connections/key`, { jar: jar ?? undefined, method: 'POST', headers, body: new URLSearchParams(fields).toString() });
}

const setsKeySession = (r) => r.res.headers.getSetCookie().some((c) => c.startsWith(`${KEY_SESSION}=`) && !c.startsWith(`${KEY_SESSION}=;`));

describe('the connections page\'s key form', () => {
  attack('CK-01', 'a key posted with a form token but without its browser\'s cookie (login CSRF from another site) → 403 csrf, no key session', async () => {
    const { csrf } = await signedOut();
    const snap = await snapshot();
    const r = await enter(null, { csrf, api_key: A_KEY });
    assertPage(r, 403, 'csrf', 'no cookie');
    assert.ok(!setsKeySession(r));
    await assertUnchanged(snap, 'no cookie', { plausible: 0 });
  });

  attack('CK-02', 'another browser\'s form token with this browser\'s cookie → 403 csrf, no key session', async () => {
    const mine = await signedOut();
    const theirs = await signedOut();
    const snap = await snapshot();
    const r = await enter(mine.jar, { csrf: theirs.csrf, api_key: A_KEY });
    assertPage(r, 403, 'csrf', 'crossed token');
    assert.ok(!setsKeySession(r));
    assert.equal(mine.jar.get(KEY_SESSION), undefined);
    await assertUnchanged(snap, 'crossed token', { plausible: 0 });
  });

  attack('CK-03', 'the key form posted from another origin → 403 foreign_origin, no key session', async () => {
    const { jar, csrf } = await signedOut();
    const snap = await snapshot();
    const r = await enter(jar, { csrf, api_key: A_KEY }, { origin: 'https://evil.example' });
    assertPage(r, 403, 'foreign_origin', 'foreign origin');
    assert.ok(!setsKeySession(r));
    await assertUnchanged(snap, 'foreign origin', { plausible: 0 });
  });

  attack('CK-04', 'a person\'s session sealed under its own purpose, presented as a key session → signed out (the page and its actions)', async () => {
    // What /callback seals for a person's connections session (right
    // COOKIE_SECRET, right shape), moved into the key session cookie.
    const user = 'a'.repeat(64);
    const value = keys.seal(JSON.stringify({ s: 's_x', m: 'victim@example.com', u: user, e: Math.floor(Date.now() / 1000) + 600 }), 'connections-session');
    const cookie = `${KEY_SESSION}=${value}`;
    const snap = await snapshot();
    const page = await call(`${BASE}/connections`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.ok(formFor(page.text, '/connections/key'), 'the signed-out page');
    assert.ok(!page.text.includes('fingerprint'), 'no key view');
    const post = await call(`${BASE}/connections`, {
      method: 'POST',
      headers: { cookie, origin: BASE, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'sign_out' }).toString(),
    });
    assertPage(post, 401, 'signed_out', 'a post with it');
    await assertUnchanged(snap, 'person as key', { plausible: 0 });
  });
});
