// Shared helpers for the MCP end-to-end tests (not a test file itself:
// run.mjs only picks up *.test.mjs).
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { send } from './support/http.mjs';
import { SOURCE_ADDRESS } from './support/source-address.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BASE = process.env.WORKER_URL;
export const MCP_URL = `${BASE}/mcp`;
/** A key the Plausible stand-in accepts. */
export const KEY = 'plausible-test-key';

export const TOOL_NAMES = ['get_timeseries', 'get_breakdown', 'get_conversions', 'compare_periods',
  'list_sites', 'get_realtime_visitors', 'list_goals', 'query_stats', 'find_anomalies', 'measure_change'];
export const HANDSHAKE_VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25'];
export const MODERN = '2026-07-28';
export const SUPPORTED_VERSIONS = ['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26'];

export const META_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

/**
 * One successful call per tool on the stand-in's data site. Absolute date
 * ranges keep the synthetic data (and so the row counts) fixed.
 */
export const SAMPLE_CALLS = {
  get_timeseries: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' },
  get_breakdown: { site_id: 'example.com', date_range: '2024-03-01,2024-03-31', dimension: 'visit:source', limit: 3 },
  get_conversions: { site_id: 'example.com', date_range: '2024-03-01,2024-03-31' },
  compare_periods: { site_id: 'example.com', period_a: '2024-03-01,2024-03-07', period_b: '2024-03-08,2024-03-14' },
};

/** The tools with a sample call above (the established four). */
export const SAMPLE_TOOL_NAMES = Object.keys(SAMPLE_CALLS);

/** Headers every worker response carries, whatever produced it. */
export function assertBaselineHeaders(res, label = '') {
  const get = (name) => (typeof res.headers.get === 'function' ? res.headers.get(name) : res.headers[name]);
  assert.equal(get('x-content-type-options'), 'nosniff', `nosniff ${label}`);
  assert.equal(get('cache-control'), 'no-store', `no-store ${label}`);
}

/**
 * POSTs one JSON-RPC body (object, array or raw string) to /mcp.
 * `version` sets MCP-Protocol-Version; `auth: null` drops Authorization;
 * `url` targets another worker than the harness's.
 * Returns the response, its parsed JSON body (null when empty), and how
 * long the (last) exchange took in ms.
 */
export async function post(body, { version, auth = `Bearer ${KEY}`, headers = {}, url = MCP_URL } = {}) {
  const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
  if (auth !== null) h.authorization = auth;
  if (version) h['mcp-protocol-version'] = version;
  // An undefined header value means "leave this header out".
  for (const k of Object.keys(h)) if (h[k] === undefined || h[k] === null) delete h[k];
  const init = { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body) };
  // MCP calls here read only: wrangler's reload answer may be sent again
  // (support/http.mjs has the policy).
  const { res, text, ms } = await send(url, init, { replayable: true });
  let json = null;
  if (text !== '') json = JSON.parse(text);
  return { res, json, text, ms };
}

let nextId = 1;
export const rpc = (method, params) => ({ jsonrpc: '2.0', id: nextId++, method, ...(params ? { params } : {}) });

/** The per-request `_meta` envelope of a 2026-07-28 request. */
export function modernMeta(version = MODERN) {
  return {
    [META_VERSION]: version,
    [META_CLIENT_INFO]: { name: 'e2e-raw', version: '1.0.0' },
    [META_CAPABILITIES]: {},
  };
}

/**
 * A 2026-07-28 request over raw fetch: `_meta` in the params, and the
 * MCP-Protocol-Version, Mcp-Method and (for tools/call) Mcp-Name headers
 * mirroring the body. `headers` overrides any of them.
 */
export function postModern(method, params = {}, { headers = {}, meta = modernMeta(), ...opts } = {}) {
  const mirrored = { 'mcp-method': method };
  if (method === 'tools/call' && typeof params.name === 'string') mirrored['mcp-name'] = params.name;
  return post(rpc(method, { ...params, _meta: meta }), { version: MODERN, ...opts, headers: { ...mirrored, ...headers } });
}

/** tools/call under a handshake revision (2025-11-25 unless told). */
export async function callTool(name, args, { version = '2025-11-25', auth } = {}) {
  const opts = { version };
  if (auth !== undefined) opts.auth = auth;
  const { res, json } = await post(rpc('tools/call', { name, arguments: args }), opts);
  assert.equal(res.status, 200);
  assert.equal(json.error, undefined, JSON.stringify(json.error));
  return json.result;
}

/** The text of a tool result's single text block. */
export function resultText(result) {
  assert.equal(result.content.length, 1);
  assert.equal(result.content[0].type, 'text');
  return result.content[0].text;
}

/**
 * A raw request with node:http, for headers fetch will not let us set
 * (Host). Resolves to { status, headers, body, json }.
 */
export function rawHttp({ method = 'POST', path: p = '/mcp', headers = {}, body } = {}) {
  const url = new URL(BASE);
  return new Promise((resolve, reject) => {
    // From this file's own source address, as its fetches are.
    const req = http.request({ host: url.hostname, port: url.port, localAddress: SOURCE_ADDRESS, method, path: p, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * A fetch that records each exchange (method, request headers, parsed
 * body, status) before handing the response back, so tests can see what a
 * real client put on the wire.
 */
export function recordingFetch() {
  const log = [];
  const fetchFn = async (url, init = {}) => {
    let body = null;
    if (typeof init.body === 'string') {
      try { body = JSON.parse(init.body); } catch { body = init.body; }
    }
    // Logged when sent; `done` settles once the response headers are in.
    const entry = { method: init.method ?? 'GET', headers: Object.fromEntries(new Headers(init.headers)), body, status: undefined };
    log.push(entry);
    const pending = fetch(url, init);
    entry.done = pending.then((res) => {
      entry.status = res.status;
      entry.responseHeaders = res.headers;
    }, () => {});
    const res = await pending;
    await entry.done;
    return res;
  };
  return { fetch: fetchFn, log };
}

/** Checks the four tool definitions of a tools/list result. */
export function assertToolDefinitions(tools) {
  assert.deepEqual(tools.map((t) => t.name), TOOL_NAMES);
  for (const t of tools) {
    assert.ok(t.title && t.description, t.name);
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal(t.inputSchema.additionalProperties, false, t.name);
    if (t.name !== 'list_sites') assert.ok(t.inputSchema.required.includes('site_id'), t.name);
    assert.equal(t.outputSchema.type, 'object', t.name);
    assert.ok(Array.isArray(t.outputSchema.required), t.name);
    assert.equal(t.annotations.readOnlyHint, true, t.name);
    assert.equal(t.annotations.destructiveHint, false, t.name);
    assert.equal(t.annotations.idempotentHint, t.name !== 'get_realtime_visitors', t.name);
    assert.equal(t.annotations.openWorldHint, true, t.name);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.ok(byName.get_breakdown.inputSchema.required.includes('dimension'));
  assert.deepEqual(byName.compare_periods.inputSchema.required, ['site_id', 'period_a', 'period_b']);
  assert.deepEqual(byName.compare_periods.outputSchema.required, ['period_a', 'period_b', 'deltas']);
  assert.deepEqual(byName.get_timeseries.outputSchema.required, ['metrics', 'dimensions', 'results']);
}

/**
 * Checks the successful result of SAMPLE_CALLS[name]: structured content
 * of the right shape and a text table that shows the same rows.
 */
export function assertSampleResult(name, result) {
  assert.equal(result.isError, false, JSON.stringify(result.content));
  const text = resultText(result);
  const s = result.structuredContent;
  assert.ok(s, `${name} has structuredContent`);
  assert.equal(s.site_id, 'example.com');
  if (name === 'compare_periods') {
    assert.equal(s.period_a.range, '2024-03-01,2024-03-07');
    assert.equal(s.period_b.range, '2024-03-08,2024-03-14');
    const metrics = ['visitors', 'pageviews', 'bounce_rate', 'visit_duration'];
    assert.deepEqual(Object.keys(s.period_a.metrics).sort(), [...metrics].sort());
    for (const m of metrics) {
      const a = s.period_a.metrics[m];
      const b = s.period_b.metrics[m];
      assert.equal(typeof a, 'number', m);
      assert.equal(s.deltas[m].absolute, Math.round((b - a) * 100) / 100, m);
      assert.match(text, new RegExp(`^${m}\\s+${a.toLocaleString('en-US')}\\s+${b.toLocaleString('en-US')}\\s`, 'm'), m);
    }
    assert.match(text, /^Compare Periods for example\.com\nperiod_a = 2024-03-01,2024-03-07\nperiod_b = 2024-03-08,2024-03-14\n\nmetric\s+period_a\s+period_b\s+change\s+change %$/m);
    return;
  }
  const expected = {
    get_timeseries: { dims: ['time:day'], metrics: ['visitors', 'pageviews', 'bounce_rate', 'visit_duration'], rows: 7, heading: 'Get Timeseries' },
    get_breakdown: { dims: ['visit:source'], metrics: ['visitors', 'pageviews', 'bounce_rate'], rows: 3, heading: 'Get Breakdown' },
    get_conversions: { dims: ['event:goal'], metrics: ['visitors', 'events', 'conversion_rate'], rows: 2, heading: 'Get Conversions' },
  }[name];
  assert.deepEqual(s.dimensions, expected.dims);
  assert.deepEqual(s.metrics, expected.metrics);
  assert.equal(s.results.length, expected.rows);
  for (const row of s.results) {
    assert.equal(row.dimensions.length, expected.dims.length);
    assert.equal(row.metrics.length, expected.metrics.length);
  }
  const range = SAMPLE_CALLS[name].date_range;
  assert.ok(text.startsWith(`${expected.heading} for example.com over ${range} (${expected.rows} rows)\n\n`), text);
  const lines = text.split('\n').slice(2);
  assert.deepEqual(lines[0].split(/\s{2,}/), [...expected.dims, ...expected.metrics]);
  assert.equal(lines.length, expected.rows + 1);
  // Each table row starts with the row's dimension value and shows its first metric.
  s.results.forEach((row, i) => {
    assert.ok(lines[i + 1].startsWith(String(row.dimensions[0])), lines[i + 1]);
    assert.ok(lines[i + 1].includes(Number(row.metrics[0]).toLocaleString('en-US')), lines[i + 1]);
  });
  if (name === 'get_timeseries') {
    assert.deepEqual(s.results.map((r) => r.dimensions[0]),
      ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04', '2024-03-05', '2024-03-06', '2024-03-07']);
  }
  if (name === 'get_breakdown') {
    const visitors = s.results.map((r) => r.metrics[0]);
    assert.deepEqual(visitors, [...visitors].sort((a, b) => b - a), 'ordered by visitors, most first');
  }
  if (name === 'get_conversions') {
    assert.deepEqual(s.results.map((r) => r.dimensions[0]).sort(), ['Purchase', 'Signup']);
  }
}
