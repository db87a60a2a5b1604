// Benchmark: how fast /internal admits a request with an access token
// (one KV read), next to /mcp (no storage) and /health (no work). Prints
// latency percentiles and throughput; asserts nothing. `npm run bench`.
// wrangler's dev proxy caps near 1k req/s, so absolute figures are
// bounded by it; compare the routes against each other.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { startStack } from '../devstack/stack.mjs';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-bench-'));
// The test build: the token comes from the X-Test-Identity hook.
const stack = await startStack({ persistTo, bundle: 'build-test', vars: { TEST_IDENTITY_HOOK: 'enabled' } });
const B = stack.workerUrl;

async function accessToken() {
  const reg = await (await fetch(`${B}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' }) })).json();
  const verifier = crypto.randomBytes(32).toString('base64url');
  const u = new URL(`${B}/authorize`);
  const q = { response_type: 'code', client_id: reg.client_id, redirect_uri: 'http://127.0.0.1:9/cb', code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256' };
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  const code = new URL((await fetch(u, { redirect: 'manual', headers: { 'x-test-identity': 'bench@example.com' } })).headers.get('location')).searchParams.get('code');
  const tok = await (await fetch(`${B}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:9/cb', code_verifier: verifier, client_id: reg.client_id }) })).json();
  return tok.access_token;
}

const listTools = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

async function run(name, makeRequest) {
  const latencies = [];
  let next = 0;
  const started = performance.now();
  async function worker() {
    while (next < REQUESTS) {
      next += 1;
      const t0 = performance.now();
      const res = await makeRequest();
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${name}: status ${res.status}`);
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(2);
  console.log(`${name.padEnd(34)} ${String(Math.round(latencies.length / seconds)).padStart(6)} req/s   p50 ${pct(50)} ms   p95 ${pct(95)} ms   p99 ${pct(99)} ms`);
}

try {
  const token = await accessToken();
  console.log(`${REQUESTS} requests per route, ${CONCURRENCY} in flight, through wrangler dev on ${B}`);
  await run('GET /health', () => fetch(`${B}/health`));
  await run('POST /mcp tools/list (own key)', () => fetch(`${B}/mcp`, { method: 'POST', headers: { ...mcpHeaders, authorization: 'Bearer plausible-test-key' }, body: listTools }));
  await run('POST /internal tools/list (token)', () => fetch(`${B}/internal`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${token}` }, body: listTools }));
} finally {
  await stack.stop();
  rmSync(persistTo, { recursive: true, force: true });
}
