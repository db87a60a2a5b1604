// A stack of a test file's own whose worker signs in at the rogue OpenID
// provider (rogue-idp.mjs: it answers at once and mints whatever ID token
// a case asks for), persisting to a temporary folder of its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack } from '../../../devstack/stack.mjs';
import { call } from '../login-helpers.mjs';
import { startRogueIdp } from './rogue-idp.mjs';

/**
 * Starts the provider for `clientId`/`clientSecret`, then the stack (its
 * folder named after `name`) with the ACCESS_* vars pointing at it and
 * `vars` besides. Resolves to `{ rogue, stack, persistTo, stop }`; `stop()`
 * ends the stack and the provider and removes the folder (done here as
 * well when the stack fails to start).
 */
export async function startRogueStack({ name, clientId, clientSecret, vars = {} }) {
  const rogue = await startRogueIdp({ clientId, clientSecret });
  const own = {
    rogue,
    stack: undefined,
    persistTo: mkdtempSync(path.join(tmpdir(), `plausible-mcp-e2e-${name}-`)),
    async stop() {
      await own.stack?.stop();
      if (rogue.listening) await rogue.close();
      rmSync(own.persistTo, { recursive: true, force: true });
    },
  };
  try {
    own.stack = await startStack({
      persistTo: own.persistTo,
      vars: { ACCESS_ISSUER: rogue.issuer, ACCESS_CLIENT_ID: clientId, ACCESS_CLIENT_SECRET: clientSecret, ...vars },
    });
  } catch (e) {
    await own.stop();
    throw e;
  }
  return own;
}

/**
 * The person's leg at the rogue provider for `login` (beginLogin's): signs
 * in as `email` (scenario "good", and `params` besides), asserts the
 * provider redirects back, and follows that redirect to the worker's
 * /callback with the login's `jar` (and `headers`): the worker's answer.
 */
export async function throughRogueProvider(login, { jar, email, params = {}, headers }) {
  const u = new URL(login.upstream);
  u.searchParams.set('scenario', 'good');
  u.searchParams.set('email', email);
  for (const [name, value] of Object.entries(params)) u.searchParams.set(name, value);
  const up = await call(u);
  assert.equal(up.status, 302, up.text);
  return call(up.location, headers ? { jar, headers } : { jar });
}
