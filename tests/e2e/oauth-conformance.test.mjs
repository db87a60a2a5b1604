// The official MCP conformance suite (@modelcontextprotocol/conformance
// 0.2.0-alpha.12) against the worker's authorization server. It needs
// Node 22, so it runs under this process's own node (process.execPath,
// node_modules' Node 22 under run.mjs) rather than through the bin shim.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from './mcp-helpers.mjs';
import { BASE } from './oauth-helpers.mjs';

const CLI = path.join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const outDir = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-conformance-'));
after(() => rmSync(outDir, { recursive: true, force: true }));

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** Every checks.json the suite wrote under `dir`. */
function checkFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) found.push(...checkFiles(p));
    else if (name === 'checks.json') found.push(p);
  }
  return found;
}

describe('MCP conformance suite: authorization server', () => {
  test('authorization-server-metadata-endpoint passes with no FAILURE', async () => {
    assert.ok(process.versions.node.startsWith('22.'), `the suite needs Node 22, running ${process.version}`);
    const { code, signal, output } = await run([
      'authorization', '--url', BASE, '--scenario', 'authorization-server-metadata-endpoint', '-o', outDir,
    ]);
    assert.equal(signal, null, output);
    assert.equal(code, 0, output);

    const files = checkFiles(outDir);
    assert.equal(files.length, 1, `one checks.json expected under ${outDir}: ${files}\n${output}`);
    const checks = JSON.parse(readFileSync(files[0], 'utf8'));
    assert.ok(Array.isArray(checks) && checks.length > 0, 'the suite ran checks');
    const failures = checks.filter((c) => c.status === 'FAILURE');
    assert.deepEqual(failures, [], JSON.stringify(failures, null, 2));
    const ids = checks.map((c) => c.id);
    assert.ok(ids.includes('authorization-server-metadata'), ids.join(', '));
    assert.ok(ids.includes('authorization-server-metadata-cimd'), ids.join(', '));
    // It judged this worker's document, not some other.
    const meta = checks.find((c) => c.id === 'authorization-server-metadata');
    assert.equal(meta.details.body.issuer, BASE);
  });
});
