// The official MCP conformance suite (@modelcontextprotocol/conformance)
// against both MCP endpoints: /mcp with a Plausible key, /internal with
// one of our access tokens (see support/conformance.mjs for how the
// credential is added).
//
// `caching` must pass (it failed before prompts and resources existed),
// and so must every server scenario that passed before issue 14: that
// list is written out here, so a scenario that stops passing fails this
// test by name. Scenarios that test features this server does not offer
// (sampling, elicitation, logging, tasks, subscriptions, the suite's own
// test_* tools and prompts) are not in it; nor is completion-complete,
// which completes the suite's own test_prompt_with_arguments: we answer
// an unknown prompt with -32602, as MCP completion "Error Handling" says.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KEY, ROOT } from './mcp-helpers.mjs';
import { BASE, issueTokens } from './oauth-helpers.mjs';
import { runConformance, scenarioChecks, serverScenarios, startAuthProxy } from './support/conformance.mjs';

/** Passed on both endpoints before issue 14 (conformance 0.2.0-alpha.12). */
const PASSED_BEFORE = [
  'dns-rebinding-protection', 'http-header-validation',
  'input-required-result-ignore-extra-params', 'input-required-result-missing-input-response',
  'input-required-result-unsupported-methods', 'input-required-result-validate-input',
  'ping', 'sep-2164-resource-not-found',
  'sep-2640-skills-directory', 'sep-2640-skills-enumeration', 'sep-2640-skills-manifest',
  'server-initialize', 'server-session-lifecycle', 'server-sse-multiple-streams', 'server-sse-polling',
  'tasks-status-notifications', 'tools-list',
];
/** Pass since issue 14. */
const NOW_PASSING = ['caching', 'prompts-list', 'resources-list'];

const outRoot = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-conformance-server-'));
after(() => rmSync(outRoot, { recursive: true, force: true }));

/** Runs `scenarios` one by one against `url`; returns { name: checks }. */
async function runAll(url, scenarios, label) {
  const results = {};
  for (const scenario of scenarios) {
    const out = path.join(outRoot, `${label}-${scenario}`);
    const { code, signal, output } = await runConformance(ROOT,
      ['server', '--url', url, '--scenario', scenario, '-o', out], { timeoutMs: 120_000 });
    assert.equal(signal, null, `${label} ${scenario}: killed\n${output}`);
    const found = scenarioChecks(out);
    const checks = Object.values(found)[0];
    assert.ok(Array.isArray(checks) && checks.length > 0, `${label} ${scenario}: no checks written (exit ${code})\n${output}`);
    results[scenario] = checks;
  }
  return results;
}

function failures(checks) {
  return checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.id}: ${c.errorMessage ?? ''}`);
}

describe('MCP conformance suite: server scenarios', () => {
  const proxies = [];
  let endpoints;
  before(async () => {
    assert.ok(process.versions.node.startsWith('22.'), `the suite needs Node 22, running ${process.version}`);
    const { tokens } = await issueTokens();
    endpoints = [];
    for (const [route, auth] of [['/mcp', `Bearer ${KEY}`], ['/internal', `Bearer ${tokens.access_token}`]]) {
      const proxy = await startAuthProxy(BASE, auth);
      proxies.push(proxy);
      endpoints.push({ route, url: `${proxy.url}${route}`, proxy });
    }
  });
  after(async () => {
    for (const p of proxies) await p.close();
  });

  test('every listed scenario still exists in this suite version', async () => {
    const names = (await serverScenarios(ROOT)).map((s) => s.name);
    for (const s of [...PASSED_BEFORE, ...NOW_PASSING]) assert.ok(names.includes(s), `${s} not in ${names.join(', ')}`);
  });

  for (const route of ['/mcp', '/internal']) {
    test(`${route}: caching, the new prompt/resource/completion scenarios and everything that passed before`, async () => {
      const endpoint = endpoints.find((e) => e.route === route);
      const results = await runAll(endpoint.url, [...NOW_PASSING, ...PASSED_BEFORE], route.slice(1));
      const failed = Object.entries(results)
        .map(([s, checks]) => [s, failures(checks)])
        .filter(([, f]) => f.length);
      assert.deepEqual(failed, [], JSON.stringify(failed, null, 2));
      // caching judged every list and a read, each with both hints.
      const caching = Object.fromEntries(results.caching.map((c) => [c.id, c.status]));
      for (const id of ['sep-2549-tools-list-caching-hints', 'sep-2549-prompts-list-caching-hints',
        'sep-2549-resources-list-caching-hints', 'sep-2549-resources-templates-list-caching-hints',
        'sep-2549-resources-read-caching-hints', 'sep-2549-ttl-non-negative', 'sep-2549-cache-scope-valid']) {
        assert.equal(caching[id], 'SUCCESS', `${id}: ${JSON.stringify(results.caching.find((c) => c.id === id))}`);
      }
      // The suite really went through the proxy to the worker.
      assert.ok(endpoint.proxy.requests > 0);
    });
  }
});
