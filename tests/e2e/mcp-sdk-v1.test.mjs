// The official v1 TypeScript SDK (@modelcontextprotocol/sdk 1.32) against
// the real worker: handshake, tool listing, one call per tool, and the
// SDK's own output-schema validation of structuredContent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import {
  KEY, MCP_URL, SAMPLE_CALLS, TOOL_NAMES, SAMPLE_TOOL_NAMES, assertSampleResult, assertToolDefinitions, recordingFetch,
} from './mcp-helpers.mjs';

/** A connected v1 client whose HTTP traffic is recorded; `rewrite` may alter tools/call answers. */
async function connectV1() {
  const rec = recordingFetch();
  const state = { rewrite: null };
  const fetchFn = async (url, init) => {
    const res = await rec.fetch(url, init);
    const isCall = typeof init?.body === 'string' && JSON.parse(init.body).method === 'tools/call';
    if (!state.rewrite || !isCall || res.status !== 200) return res;
    const json = await res.json();
    state.rewrite(json.result);
    return new Response(JSON.stringify(json), { status: res.status, headers: res.headers });
  };
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
    fetch: fetchFn,
  });
  const client = new Client({ name: 'e2e-sdk-v1', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport, log: rec.log, state };
}

describe('official SDK v1 client', () => {
  let ctx;
  let tools;
  before(async () => {
    ctx = await connectV1();
  });
  after(async () => {
    await ctx?.client.close();
  });

  test('initialize negotiates the newest handshake revision and identifies the server', () => {
    const { client, transport, log } = ctx;
    assert.equal(LATEST_PROTOCOL_VERSION, '2025-11-25');
    assert.equal(transport.protocolVersion, '2025-11-25');
    const info = client.getServerVersion();
    assert.equal(info.name, 'plausible-mcp');
    assert.match(info.version, /^\d+\.\d+\.\d+\+\S+$/);
    assert.deepEqual(client.getServerCapabilities(), { tools: { listChanged: false } });
    const instructions = client.getInstructions();
    assert.match(instructions, /date_range/);
    assert.match(instructions, /compare_periods/);
    // Stateless: no session id was handed out.
    assert.equal(transport.sessionId, undefined);
    const init = log.find((e) => e.body?.method === 'initialize');
    assert.equal(init.status, 200);
    assert.equal(init.responseHeaders.get('mcp-session-id'), null);
    // After the handshake the SDK sends the negotiated version on every request.
    const initialized = log.find((e) => e.body?.method === 'notifications/initialized');
    assert.equal(initialized.status, 202);
    assert.equal(initialized.headers['mcp-protocol-version'], '2025-11-25');
  });

  test('listTools returns exactly the four tools with schemas and annotations', async () => {
    ({ tools } = await ctx.client.listTools());
    assertToolDefinitions(tools);
    const req = ctx.log.findLast((e) => e.body?.method === 'tools/list');
    assert.equal(req.headers['mcp-protocol-version'], '2025-11-25');
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    // After initialized the SDK opens a GET for a server stream (in the
    // background); the stateless worker refuses it with 405, which the SDK
    // tolerates: the connection kept working above.
    const get = ctx.log.find((e) => e.method === 'GET');
    assert.ok(get, 'the SDK tried the GET stream');
    await get.done;
    assert.equal(get.status, 405);
    assert.equal(get.headers['mcp-protocol-version'], '2025-11-25');
  });

  for (const name of SAMPLE_TOOL_NAMES) {
    test(`callTool ${name} on example.com returns structuredContent and a text table`, async () => {
      if (!tools) ({ tools } = await ctx.client.listTools());
      const result = await ctx.client.callTool({ name, arguments: SAMPLE_CALLS[name] });
      assertSampleResult(name, result);
      // Independently of the SDK: the structured content satisfies the advertised outputSchema.
      const schema = tools.find((t) => t.name === name).outputSchema;
      const check = new AjvJsonSchemaValidator().getValidator(schema)(result.structuredContent);
      assert.equal(check.valid, true, check.errorMessage);
    });
  }

  test('the SDK validates structuredContent against outputSchema (a mismatch throws)', async () => {
    const { client, state } = ctx;
    await client.listTools(); // caches the output validators
    const call = () => client.callTool({ name: 'get_breakdown', arguments: SAMPLE_CALLS.get_breakdown });
    try {
      state.rewrite = (result) => { result.structuredContent.results = 'not-an-array'; };
      await assert.rejects(call, /Structured content does not match the tool's output schema/);
      state.rewrite = (result) => { delete result.structuredContent; };
      await assert.rejects(call, /has an output schema but did not return structured content/);
    } finally {
      state.rewrite = null;
    }
    // Untouched, the real answer passes the same validation.
    assertSampleResult('get_breakdown', await call());
  });

  test('a tool error comes back as a result, not a thrown error', async () => {
    const result = await ctx.client.callTool({
      name: 'get_breakdown',
      arguments: { site_id: 'example.com', date_range: '7d', dimension: 'visit:chanel' },
    });
    assert.equal(result.isError, true);
    assert.equal(result.structuredContent, undefined);
    assert.match(result.content[0].text, /`dimension`/);
  });

  test('close() ends the client cleanly; later requests fail locally', async () => {
    const mine = await connectV1();
    let closed = false;
    mine.transport.onclose = ((prev) => () => { closed = true; prev?.(); })(mine.transport.onclose);
    await mine.client.listTools();
    const sent = mine.log.length;
    await mine.client.close();
    assert.equal(closed, true);
    // No session, so nothing to DELETE.
    assert.equal(mine.log.some((e) => e.method === 'DELETE'), false);
    await assert.rejects(() => mine.client.listTools(), /Not connected/);
    assert.equal(mine.log.length, sent);
  });
});
