// The attack suite's harness (issue 10, "Proof"): starts one stack of the
// test build whose worker signs in at the rogue OpenID provider
// (tests/e2e/support/rogue-idp.mjs, which mints whatever ID token a case
// asks for and logs every request it receives) with a COOKIE_SECRET
// chosen here (so cases can craft expired or cross-user values), runs
// every tests/attack/*.test.mjs against it one file at a time, and exits
// with the runner's status. Cases observe the stored state through
// support/state.mjs (a dump of the files Miniflare persists), so the
// files must run one at a time: a case's "nothing was created" is about
// the whole store.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startStack } from '../../devstack/stack.mjs';
import { startRogueIdp } from '../e2e/support/rogue-idp.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(ROOT, 'build-test/index.js'))) {
  execFileSync('bash', [path.join(ROOT, 'scripts/build.sh'), '--test'], { cwd: ROOT, stdio: 'inherit' });
}
process.env.PLAUSIBLE_MCP_BUNDLE = 'build-test';
const started = Date.now();
const persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-attack-'));
const COOKIE_SECRET = `attack-${randomBytes(24).toString('hex')}`;
const upstream = { clientId: 'plausible-mcp-attack', clientSecret: `attack-upstream-${randomBytes(8).toString('hex')}` };
const rogue = await startRogueIdp(upstream);
const stack = await startStack({
  persistTo,
  vars: {
    TEST_IDENTITY_HOOK: 'enabled',
    ACCESS_ISSUER: rogue.issuer,
    ACCESS_CLIENT_ID: upstream.clientId,
    ACCESS_CLIENT_SECRET: upstream.clientSecret,
    COOKIE_SECRET,
  },
});

const files = readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, f));
const only = process.argv.slice(2);
const tap = path.join(persistTo, 'results.tap');
// Each file sends from a loopback address of its own (see
// tests/e2e/support/source-address.mjs): a client of its own to the
// per-address rate limits, which run at their production settings.
const runner = spawn(process.execPath, [
  '--import', path.join(ROOT, 'tests/e2e/support/source-address.mjs'),
  '--test', '--test-concurrency=1',
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...(only.length ? only : files),
], {
  stdio: 'inherit',
  env: {
    ...process.env,
    WORKER_URL: stack.workerUrl,
    PLAUSIBLE_STUB_URL: stack.plausible.url,
    ATTACK_PERSIST_DIR: persistTo,
    ATTACK_UPSTREAM_URL: rogue.issuer,
    ATTACK_COOKIE_SECRET: COOKIE_SECRET,
  },
});
const code = await new Promise((r) => runner.on('exit', (c) => r(c ?? 1)));
await stack.stop();
await rogue.close();
const summary = readFileSync(tap, 'utf8');
const count = (name) => Number(summary.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
console.log(`attack: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped') + count('todo')} skipped or todo, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
rmSync(persistTo, { recursive: true, force: true });
process.exit(code);
