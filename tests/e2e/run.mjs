// End-to-end harness: starts the stack once, runs every *.test.mjs here
// against it with node's test runner, stops the stack, and exits with the
// runner's status. Everything runs the test build (build-test/, cargo
// feature `test-hooks`), built first when it is missing; the stacks test
// files start themselves use it too (PLAUSIBLE_MCP_BUNDLE).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, startStack } from '../../devstack/stack.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(ROOT, 'build-test/index.js'))) {
  execFileSync('bash', [path.join(ROOT, 'scripts/build.sh'), '--test'], { cwd: ROOT, stdio: 'inherit' });
}
process.env.PLAUSIBLE_MCP_BUNDLE = 'build-test';
const persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-'));
// ADMIN_EMAILS in another case than the sign-in: the match ignores case.
const stack = await startStack({ persistTo, vars: { TEST_IDENTITY_HOOK: 'enabled', ADMIN_EMAILS: 'Connections.Admin@Example.com' } });

const files = readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, f));
const only = process.argv.slice(2);
// spec for people, TAP to a file for the closing count.
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
  },
});
const code = await new Promise((r) => runner.on('exit', (c) => r(c ?? 1)));
await stack.stop();
const summary = readFileSync(tap, 'utf8');
const count = (name) => Number(summary.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
console.log(`e2e: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`);
rmSync(persistTo, { recursive: true, force: true });
process.exit(code);
