// The MCP Inspector CLI (@modelcontextprotocol/inspector-cli 1.0.3) as a
// child process against the worker: `--cli <url> --transport http
// --header "Authorization: Bearer …" --method …`, JSON on stdout.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { KEY, MCP_URL, ROOT, TOOL_NAMES, assertToolDefinitions } from './mcp-helpers.mjs';

const BIN = path.join(ROOT, 'node_modules/.bin/mcp-inspector-cli');
// inspector-cli 1.0.3 reads its own package.json through a path it checks
// relative to the working directory ("../package.json") but imports
// relative to its module: run it from its build/ directory so both agree.
const CWD = path.join(ROOT, 'node_modules/@modelcontextprotocol/inspector-cli/build');

/** Runs the inspector CLI; resolves { code, stdout, stderr } (never rejects on exit code). */
function inspector(args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, '--cli', MCP_URL, '--transport', 'http', ...args], {
      cwd: CWD,
      timeout: 60_000,
      // The launcher re-spawns `node`: make that this same Node.
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` },
    }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const bearer = ['--header', `Authorization: Bearer ${KEY}`];

describe('MCP Inspector CLI', () => {
  test('tools/list prints the four tools as JSON', async () => {
    const { code, stdout, stderr } = await inspector([...bearer, '--method', 'tools/list']);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout);
    assertToolDefinitions(out.tools);
    assert.deepEqual(out.tools.map((t) => t.name), TOOL_NAMES);
  });

  test('tools/call get_breakdown with --tool-arg prints the result as JSON', async () => {
    const { code, stdout, stderr } = await inspector([
      ...bearer, '--method', 'tools/call', '--tool-name', 'get_breakdown',
      '--tool-arg', 'site_id=example.com', 'date_range=2024-03-01,2024-03-31', 'dimension=visit:device', 'limit=2',
    ]);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout);
    assert.equal(out.isError, false);
    assert.deepEqual(out.structuredContent.dimensions, ['visit:device']);
    assert.equal(out.structuredContent.results.length, 2, 'limit=2 arrived as a number');
    assert.equal(out.structuredContent.date_range, '2024-03-01,2024-03-31');
    assert.match(out.content[0].text, /^Get Breakdown for example\.com over 2024-03-01,2024-03-31 \(2 rows\)/);
    assert.equal(out.structuredContent.results[0].dimensions[0], 'Desktop');
  });

  test('a failing tool call is printed as a result with isError', async () => {
    const { code, stdout, stderr } = await inspector([
      ...bearer, '--method', 'tools/call', '--tool-name', 'get_timeseries',
      '--tool-arg', 'site_id=example.com', 'date_range=30d', 'granularity=hour',
    ]);
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout);
    assert.equal(out.isError, true);
    assert.match(out.content[0].text, /Invalid argument `granularity`/);
  });

  test("without the bearer header the CLI fails and shows the worker's 401 message", async () => {
    const { code, stdout, stderr } = await inspector(['--method', 'tools/list']);
    assert.notEqual(code, 0);
    assert.equal(stdout.trim(), '');
    assert.match(stderr, /Failed to connect/);
    assert.match(stderr, /Authorization required/);
    assert.match(stderr, /Authorization: Bearer <key>/);
  });
});
