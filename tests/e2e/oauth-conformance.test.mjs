// The official MCP conformance suite (@modelcontextprotocol/conformance
// 0.2.0-alpha.12) against the worker's authorization server: its two
// authorization server scenarios, `authorization-server-metadata-endpoint`
// and `authorization-code-grant`, once per protected resource.
//
// `authorization-code-grant` needs a person: the suite prints the
// authorization URL, waits on its own callback server for the browser to
// come back, then redeems the code itself and judges the answers. Here the
// test plays the person (support/conformance.mjs, runAuthorizationScenarios):
// for /internal it signs in through the test identity hook; for /mcp it
// fills the key page with a Plausible key and a site and approves on the
// consent page (support/key-flow.mjs), over HTTP, as a browser would. The
// client is registered first (RFC 7591) with the suite's callback URL.
//
// The suite needs Node 22, so it runs under this process's own node
// (process.execPath, node_modules' Node 22 under run.mjs).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../devstack/stack.mjs';
import { KEY, ROOT } from './mcp-helpers.mjs';
import { BASE, IDENTITY, registerClient } from './oauth-helpers.mjs';
import { runAuthorizationScenarios, runConformance, scenarioChecks } from './support/conformance.mjs';
import { KeyFlowBrowser } from './support/key-flow.mjs';

const outRoot = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-conformance-'));
after(() => rmSync(outRoot, { recursive: true, force: true }));

/**
 * The checks of each scenario run under `dir`, by scenario name (the
 * suite writes authorization server runs under `authorization-server-<scenario>-<time>`).
 */
const authorizationChecks = (dir) => Object.fromEntries(Object.entries(scenarioChecks(dir))
  .map(([name, checks]) => [name.replace(/^authorization-server-/, ''), checks]));

/** Every check of a run, asserting none failed and none was skipped. */
function assertAllPassed(dir, output) {
  const byScenario = authorizationChecks(dir);
  assert.deepEqual(Object.keys(byScenario).sort(), ['authorization-code-grant', 'authorization-server-metadata-endpoint'], output);
  const checks = Object.values(byScenario).flat();
  const notPassed = checks.filter((c) => c.status !== 'SUCCESS');
  assert.deepEqual(notPassed, [], JSON.stringify(notPassed, null, 2));
  return byScenario;
}

describe('MCP conformance suite: authorization server', () => {
  test('authorization-server-metadata-endpoint passes with no FAILURE', async () => {
    assert.ok(process.versions.node.startsWith('22.'), `the suite needs Node 22, running ${process.version}`);
    const outDir = path.join(outRoot, 'metadata');
    const { code, signal, output } = await runConformance(ROOT, [
      'authorization', '--url', BASE, '--scenario', 'authorization-server-metadata-endpoint', '-o', outDir,
    ], { timeoutMs: 120_000 });
    assert.equal(signal, null, output);
    assert.equal(code, 0, output);

    const checks = authorizationChecks(outDir)['authorization-server-metadata-endpoint'];
    assert.ok(Array.isArray(checks) && checks.length > 0, `the suite ran checks\n${output}`);
    const failures = checks.filter((c) => c.status === 'FAILURE');
    assert.deepEqual(failures, [], JSON.stringify(failures, null, 2));
    const ids = checks.map((c) => c.id);
    assert.ok(ids.includes('authorization-server-metadata'), ids.join(', '));
    assert.ok(ids.includes('authorization-server-metadata-cimd'), ids.join(', '));
    // It judged this worker's document, not some other.
    const meta = checks.find((c) => c.id === 'authorization-server-metadata');
    assert.equal(meta.details.body.issuer, BASE);
  });

  test('both scenarios pass for /internal, the person signing in through the test identity hook', async () => {
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/callback`;
    const client = await registerClient({ client_name: 'conformance suite', redirect_uris: [callback] });
    const outDir = path.join(outRoot, 'internal');
    const visits = [];
    const run = await runAuthorizationScenarios(ROOT, {
      issuer: BASE, clientId: client.client_id, resource: `${BASE}/internal`, port, outDir,
      async visit(url) {
        visits.push(url);
        const res = await fetch(url, { redirect: 'manual', headers: { 'x-test-identity': IDENTITY } });
        await res.text();
        assert.equal(res.status, 302, 'the signed-in authorization redirects');
        return res.headers.get('location');
      },
    });
    assert.equal(run.visitError, undefined, `${run.visitError?.stack}\n${run.output}`);
    assert.equal(run.signal, null, run.output);
    assert.equal(run.code, 0, run.output);
    // The suite asked for this resource, with PKCE S256, and got back to its callback.
    assert.equal(visits.length, 1, run.output);
    const asked = new URL(visits[0]).searchParams;
    assert.equal(asked.get('resource'), `${BASE}/internal`);
    assert.equal(asked.get('code_challenge_method'), 'S256');
    assert.equal(asked.get('client_id'), client.client_id);
    assert.equal(new URL(run.location).origin, `http://127.0.0.1:${port}`);
    assert.equal(run.callbackStatus, 200);
    const checks = assertAllPassed(outDir, run.output);
    const grant = checks['authorization-code-grant'][0];
    assert.equal(grant.id, 'authorization-code-grant');
    assert.equal(new URL(grant.details.authorizationResponseUrl).searchParams.get('iss'), BASE);
  });

  test('both scenarios pass for /mcp, the person pasting a Plausible key on the key page and approving', async () => {
    const port = await freePort();
    const callback = `http://127.0.0.1:${port}/callback`;
    const client = await registerClient({ client_name: 'conformance suite on /mcp', redirect_uris: [callback] });
    const outDir = path.join(outRoot, 'mcp');
    const browsers = [];
    const run = await runAuthorizationScenarios(ROOT, {
      issuer: BASE, clientId: client.client_id, resource: `${BASE}/mcp`, port, outDir,
      async visit(url) {
        const browser = new KeyFlowBrowser({ base: BASE, key: KEY, sites: ['example.com'] });
        browsers.push(browser);
        return (await browser.authorize(url)).location;
      },
    });
    assert.equal(run.visitError, undefined, `${run.visitError?.stack}\n${run.output}`);
    assert.equal(run.signal, null, run.output);
    assert.equal(run.code, 0, run.output);
    assert.equal(browsers.length, 1, run.output);
    // The person went through the key page and the consent page, no company sign-in.
    assert.deepEqual(browsers[0].steps.map((s) => `${s.step} ${s.status}`), ['authorize 200', 'key 200', 'consent 302']);
    const asked = new URL(run.authorizationUrl).searchParams;
    assert.equal(asked.get('resource'), `${BASE}/mcp`);
    assert.equal(asked.get('code_challenge_method'), 'S256');
    assert.equal(run.callbackStatus, 200);
    const checks = assertAllPassed(outDir, run.output);
    const grant = checks['authorization-code-grant'][0];
    assert.equal(new URL(grant.details.authorizationResponseUrl).searchParams.get('iss'), BASE);
  });
});
