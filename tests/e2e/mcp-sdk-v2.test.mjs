// The v2 client package (@modelcontextprotocol/client 2.4) speaking the
// stateless 2026-07-28 revision: server/discover instead of initialize,
// the per-request _meta envelope, and the Mcp-Method / Mcp-Name headers.
//
// v2 defaults to the 2025 handshake ('legacy'); 2026-07-28 is opt-in via
// ClientOptions.versionNegotiation: { mode: { pin: '2026-07-28' } } (no
// fallback) or { mode: 'auto' } (probe with server/discover, fall back to
// initialize only on a definitive legacy answer).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import {
  KEY, MCP_URL, META_CAPABILITIES, META_VERSION, MODERN, SAMPLE_CALLS, SUPPORTED_VERSIONS, TOOL_NAMES, SAMPLE_TOOL_NAMES,
  assertSampleResult, assertToolDefinitions, recordingFetch,
} from './mcp-helpers.mjs';

async function connectV2(mode) {
  const rec = recordingFetch();
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
    fetch: rec.fetch,
  });
  const client = new Client({ name: 'e2e-client-v2', version: '2.0.0' }, { versionNegotiation: { mode } });
  await client.connect(transport);
  return { client, transport, log: rec.log };
}

/** Checks one recorded request is a well-formed 2026-07-28 request. */
function assertModernRequest(entry, method, name) {
  assert.equal(entry.headers['mcp-protocol-version'], MODERN, method);
  assert.equal(entry.headers['mcp-method'], method);
  assert.equal(entry.headers['mcp-name'], name);
  assert.equal(entry.headers.authorization, `Bearer ${KEY}`);
  assert.equal(entry.body.method, method);
  assert.equal(entry.body.params._meta[META_VERSION], MODERN);
  assert.deepEqual(typeof entry.body.params._meta[META_CAPABILITIES], 'object');
  assert.equal(entry.status, 200);
}

describe('v2 client pinned to 2026-07-28', () => {
  let ctx;
  before(async () => {
    ctx = await connectV2({ pin: MODERN });
  });
  after(async () => {
    await ctx?.client.close();
  });

  test('connect discovers instead of initializing: modern era, server identity, instructions', () => {
    const { client, log } = ctx;
    assert.equal(client.getProtocolEra(), 'modern');
    assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
    assert.equal(client.getServerVersion()?.name, 'plausible-mcp');
    assert.match(client.getInstructions() ?? '', /date_range/);
    const discover = client.getDiscoverResult();
    assert.deepEqual(discover.supportedVersions, SUPPORTED_VERSIONS);
    assert.ok(discover.capabilities.tools);
    // Exactly one exchange, server/discover; no initialize, no session, no GET stream.
    assert.deepEqual(log.map((e) => e.body?.method ?? e.method), ['server/discover']);
    assertModernRequest(log[0], 'server/discover', undefined);
    assert.equal(log[0].responseHeaders.get('mcp-session-id'), null);
  });

  test('discover() can be called again and answers the same', async () => {
    const again = await ctx.client.discover();
    assert.deepEqual(again.supportedVersions, SUPPORTED_VERSIONS);
    assert.match(again.instructions, /date_range/);
    assertModernRequest(ctx.log.at(-1), 'server/discover', undefined);
  });

  test('listTools carries _meta and Mcp-Method, and is cached for the server-given ttl', async () => {
    const { tools } = await ctx.client.listTools();
    assertToolDefinitions(tools);
    const lists = ctx.log.filter((e) => e.body?.method === 'tools/list');
    assert.equal(lists.length, 1);
    assertModernRequest(lists[0], 'tools/list', undefined);
    // ttlMs: 3600000 and cacheScope: public let the client serve the next list from cache.
    const again = await ctx.client.listTools();
    assert.deepEqual(again.tools.map((t) => t.name), TOOL_NAMES);
    assert.equal(ctx.log.filter((e) => e.body?.method === 'tools/list').length, 1);
  });

  for (const name of SAMPLE_TOOL_NAMES) {
    test(`callTool ${name} sends Mcp-Name and returns structuredContent`, async () => {
      const result = await ctx.client.callTool({ name, arguments: SAMPLE_CALLS[name] });
      assertSampleResult(name, result);
      assertModernRequest(ctx.log.at(-1), 'tools/call', name);
      assert.deepEqual(ctx.log.at(-1).body.params.arguments, SAMPLE_CALLS[name]);
    });
  }

  test('a tool error is a result with isError under 2026-07-28 too', async () => {
    const result = await ctx.client.callTool({
      name: 'get_breakdown',
      arguments: { site_id: 'example.com', date_range: '7d', dimension: 'visit:chanel' },
    });
    assert.equal(result.isError, true);
    assert.match(result.content[0].text, /Invalid argument `dimension`: "visit:chanel" is not a dimension/);
  });
});

describe('v2 client in auto mode', () => {
  test('probes with server/discover and settles on 2026-07-28', async () => {
    const { client, log } = await connectV2('auto');
    try {
      assert.equal(client.getProtocolEra(), 'modern');
      assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
      assert.equal(log.some((e) => e.body?.method === 'initialize'), false);
      const result = await client.callTool({ name: 'get_conversions', arguments: SAMPLE_CALLS.get_conversions });
      assertSampleResult('get_conversions', result);
    } finally {
      await client.close();
    }
  });
});

describe('v2 client in its default (legacy) mode', () => {
  test('falls back to the 2025-11-25 handshake and still works', async () => {
    const rec = recordingFetch();
    const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
      requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
      fetch: rec.fetch,
    });
    const client = new Client({ name: 'e2e-client-v2', version: '2.0.0' });
    await client.connect(transport);
    try {
      assert.equal(client.getProtocolEra(), 'legacy');
      assert.equal(client.getNegotiatedProtocolVersion(), '2025-11-25');
      assert.equal(rec.log[0].body.method, 'initialize');
      const { tools } = await client.listTools();
      assertToolDefinitions(tools);
    } finally {
      await client.close();
    }
  });
});
