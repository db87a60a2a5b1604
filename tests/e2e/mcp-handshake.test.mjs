// Each protocol revision over raw fetch: the three handshake revisions
// (initialize, then requests with MCP-Protocol-Version where the revision
// has it), JSON-RPC batches (2025-03-26 only), and the stateless
// 2026-07-28 wire format.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HANDSHAKE_VERSIONS, META_SERVER_INFO, MODERN, SAMPLE_CALLS, SUPPORTED_VERSIONS, TOOL_NAMES, SAMPLE_TOOL_NAMES,
  assertBaselineHeaders, assertSampleResult, assertToolDefinitions, post, postModern, rpc,
} from './mcp-helpers.mjs';

/** The same capabilities from initialize and server/discover. */
const CAPABILITIES = {
  tools: { listChanged: false },
  prompts: { listChanged: false },
  resources: { subscribe: false, listChanged: false },
  completions: {},
};

const initialize = (protocolVersion) => rpc('initialize', {
  protocolVersion,
  capabilities: {},
  clientInfo: { name: 'e2e-raw', version: '1.0.0' },
});

for (const version of HANDSHAKE_VERSIONS) {
  // 2025-03-26 has no version header; later revisions send it after initialize.
  const header = version === '2025-03-26' ? undefined : version;

  describe(`handshake revision ${version}`, () => {
    test('initialize negotiates this revision', async () => {
      const req = initialize(version);
      const { res, json } = await post(req);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^application\/json/);
      assertBaselineHeaders(res);
      assert.equal(res.headers.get('mcp-session-id'), null, 'stateless: no session');
      assert.equal(json.jsonrpc, '2.0');
      assert.equal(json.id, req.id);
      assert.equal(json.result.protocolVersion, version);
      assert.equal(json.result.serverInfo.name, 'plausible-mcp');
      assert.deepEqual(json.result.capabilities, CAPABILITIES);
      assert.match(json.result.instructions, /date_range/);
      // Handshake-era results carry none of the 2026-07-28 additions.
      assert.equal(json.result.resultType, undefined);
      assert.equal(json.result._meta, undefined);

      const ack = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { version: header });
      assert.equal(ack.res.status, 202);
      assert.equal(ack.text, '');
      assertBaselineHeaders(ack.res);
    });

    test(`tools/list ${header ? 'with' : 'without'} MCP-Protocol-Version`, async () => {
      const req = rpc('tools/list');
      const { res, json } = await post(req, { version: header });
      assert.equal(res.status, 200);
      assert.equal(json.id, req.id);
      assertToolDefinitions(json.result.tools);
      assert.equal(json.result.ttlMs, undefined);
      assert.equal(json.result.resultType, undefined);
    });

    test(`tools/call ${header ? 'with' : 'without'} MCP-Protocol-Version`, async () => {
      const req = rpc('tools/call', { name: 'get_breakdown', arguments: SAMPLE_CALLS.get_breakdown });
      const { res, json } = await post(req, { version: header });
      assert.equal(res.status, 200);
      assert.equal(json.id, req.id);
      assertSampleResult('get_breakdown', json.result);
      assert.equal(json.result.resultType, undefined);
    });

    test('ping answers an empty result', async () => {
      const req = rpc('ping');
      const { res, json } = await post(req, { version: header });
      assert.equal(res.status, 200);
      assert.deepEqual(json, { jsonrpc: '2.0', id: req.id, result: {} });
    });
  });
}

describe('initialize version negotiation', () => {
  for (const asked of ['2024-11-05', '2099-01-01', MODERN]) {
    test(`a client asking for ${asked} is offered 2025-11-25`, async () => {
      const { res, json } = await post(initialize(asked));
      assert.equal(res.status, 200);
      assert.equal(json.result.protocolVersion, '2025-11-25');
    });
  }
});

describe('JSON-RPC batches', () => {
  const batch = () => [
    rpc('tools/list'),
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    rpc('tools/call', { name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }),
    { jsonrpc: '2.0', id: 'no-such', method: 'no/such/method' },
  ];

  for (const header of [undefined, '2025-03-26']) {
    test(`work under 2025-03-26 (${header ? 'explicit header' : 'no header'})`, async () => {
      const items = batch();
      const { res, json } = await post(items, { version: header });
      assert.equal(res.status, 200);
      assertBaselineHeaders(res);
      assert.ok(Array.isArray(json));
      // One response per request, none for the notification.
      assert.deepEqual(json.map((r) => r.id), [items[0].id, items[2].id, 'no-such']);
      assertToolDefinitions(json[0].result.tools);
      assertSampleResult('get_timeseries', json[1].result);
      assert.equal(json[2].error.code, -32601);
    });
  }

  test('hold at most 20 messages: 21 pings are refused with 400 / -32600', async () => {
    const pings = (n) => Array.from({ length: n }, () => rpc('ping'));
    const ok = await post(pings(20));
    assert.equal(ok.res.status, 200);
    assert.equal(ok.json.length, 20);
    const { res, json } = await post(pings(21));
    assert.equal(res.status, 400);
    assert.equal(json.id, null);
    assert.equal(json.error.code, -32600);
    assert.match(json.error.message, /at most 20 messages/);
  });

  test('a batch of only notifications is accepted with 202', async () => {
    const { res, text } = await post([{ jsonrpc: '2.0', method: 'notifications/initialized' }]);
    assert.equal(res.status, 202);
    assert.equal(text, '');
  });

  for (const version of ['2025-06-18', '2025-11-25', MODERN]) {
    test(`are rejected under ${version} with 400 / -32600`, async () => {
      const { res, json } = await post(batch(), { version });
      assert.equal(res.status, 400);
      assertBaselineHeaders(res);
      assert.equal(json.jsonrpc, '2.0');
      assert.equal(json.id, null);
      assert.equal(json.error.code, -32600);
      assert.match(json.error.message, new RegExp(`batches are not supported in protocol revision ${version}`));
    });
  }
});

describe('stateless 2026-07-28 over raw fetch', () => {
  function assertModernResult(json) {
    assert.equal(json.result.resultType, 'complete');
    assert.equal(json.result._meta[META_SERVER_INFO].name, 'plausible-mcp');
  }

  test('server/discover lists the revisions, capabilities, instructions and a cache hint', async () => {
    const { res, json } = await postModern('server/discover');
    assert.equal(res.status, 200);
    assertBaselineHeaders(res);
    assertModernResult(json);
    assert.deepEqual(json.result.supportedVersions, SUPPORTED_VERSIONS);
    assert.deepEqual(json.result.capabilities, CAPABILITIES);
    assert.match(json.result.instructions, /date_range/);
    assert.equal(json.result.ttlMs, 3_600_000);
    assert.equal(json.result.cacheScope, 'public');
  });

  test('tools/list without any initialize', async () => {
    const { res, json } = await postModern('tools/list');
    assert.equal(res.status, 200);
    assertModernResult(json);
    assertToolDefinitions(json.result.tools);
    assert.equal(json.result.ttlMs, 3_600_000);
    assert.equal(json.result.cacheScope, 'public');
  });

  for (const name of SAMPLE_TOOL_NAMES) {
    test(`tools/call ${name} with a matching Mcp-Name`, async () => {
      const { res, json } = await postModern('tools/call', { name, arguments: SAMPLE_CALLS[name] });
      assert.equal(res.status, 200);
      assertModernResult(json);
      assertSampleResult(name, json.result);
    });
  }

  test('Mcp-Name may use the =?base64?…?= encoding', async () => {
    const encoded = `=?base64?${Buffer.from('get_breakdown').toString('base64')}?=`;
    const { res, json } = await postModern('tools/call', { name: 'get_breakdown', arguments: SAMPLE_CALLS.get_breakdown },
      { headers: { 'mcp-name': encoded } });
    assert.equal(res.status, 200);
    assertSampleResult('get_breakdown', json.result);
  });

  test('initialize and ping do not exist in 2026-07-28 (404 / -32601)', async () => {
    for (const method of ['initialize', 'ping']) {
      const { res, json } = await postModern(method);
      assert.equal(res.status, 404, method);
      assert.equal(json.error.code, -32601, method);
    }
  });

  test('server/discover does not exist in the handshake revisions (-32601)', async () => {
    const req = rpc('server/discover');
    const { res, json } = await post(req, { version: '2025-11-25' });
    assert.equal(res.status, 200);
    assert.equal(json.id, req.id);
    assert.equal(json.error.code, -32601);
  });
});
