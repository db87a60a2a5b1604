// End-to-end harness: starts the stack once, runs every *.test.mjs here
// against it with node's test runner, stops the stack, and exits with the
// runner's status.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../../devstack/stack.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-'));
const stack = await startStack({ persistTo, vars: { TEST_IDENTITY_HOOK: 'enabled' } });

const files = readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(here, f));
const only = process.argv.slice(2);
const runner = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', ...(only.length ? only : files)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    WORKER_URL: stack.workerUrl,
    PLAUSIBLE_STUB_URL: stack.plausible.url,
  },
});
const code = await new Promise((r) => runner.on('exit', (c) => r(c ?? 1)));
await stack.stop();
rmSync(persistTo, { recursive: true, force: true });
process.exit(code);
