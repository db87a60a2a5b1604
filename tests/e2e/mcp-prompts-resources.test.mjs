// Prompts, resources and completions end to end, through the official SDK
// clients: v1 (@modelcontextprotocol/sdk) under each handshake revision,
// v2 (@modelcontextprotocol/client) under each handshake revision and
// pinned to the stateless 2026-07-28.
//
// Both SDKs ask for their newest handshake revision in `initialize`. An
// older client is played by rewriting that one field on the way out (the
// request is otherwise the SDK's own); the server's answer then decides
// the revision, and the SDK carries on under it, as it would with a
// server that only speaks that revision.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { HANDSHAKE_VERSIONS, KEY, MCP_URL, MODERN, TOOL_NAMES } from './mcp-helpers.mjs';

const STUB = process.env.PLAUSIBLE_STUB_URL;
const PROMPTS = ['weekly_report', 'traffic_drop_check', 'launch_impact'];
const RESOURCES = ['plausible://sites', 'plausible://vocabulary', 'ui://plausible/chart'];
const TEMPLATE = 'plausible://sites/{site_id}/goals';
/** A valid call of each prompt: a launch long enough ago for a significance test. */
const PROMPT_ARGS = {
  weekly_report: { site: 'example.com' },
  traffic_drop_check: { site: 'example.com', window: '14d' },
  launch_impact: { site: 'example.com', moment: new Date(Date.now() - 20 * 86400_000).toISOString().slice(0, 10), page: '/pricing' },
};

async function upstreamCount() {
  const res = await fetch(`${STUB}/__stand-in/requests`);
  return (await res.json()).requests.length;
}
async function addKey(o) {
  const res = await fetch(`${STUB}/__stand-in/keys`, { method: 'POST', body: JSON.stringify(o) });
  assert.equal(res.status, 200);
}

/**
 * fetch that records each exchange's revision header and, for
 * `initialize`, asks for `version` instead of the SDK's newest.
 */
function fetchAs(version) {
  const seen = [];
  const f = async (url, init = {}) => {
    let body = init.body;
    if (version && typeof body === 'string') {
      const msg = JSON.parse(body);
      if (msg.method === 'initialize') {
        msg.params.protocolVersion = version;
        body = JSON.stringify(msg);
      }
    }
    const headers = new Headers(init.headers);
    const res = await fetch(url, { ...init, body });
    const method = typeof body === 'string' ? JSON.parse(body).method : undefined;
    const json = await res.clone().json().catch(() => null);
    seen.push({ method, version: headers.get('mcp-protocol-version'), status: res.status, json });
    return res;
  };
  return { fetch: f, seen };
}

async function connect(sdk, revision, key = KEY) {
  const requestInit = { headers: { Authorization: `Bearer ${key}` } };
  const modern = revision === MODERN;
  const rec = fetchAs(modern ? undefined : revision);
  let client;
  if (sdk === 'v1') {
    client = new ClientV1({ name: 'e2e-prompts-v1', version: '1.0.0' });
    await client.connect(new TransportV1(new URL(MCP_URL), { requestInit, fetch: rec.fetch }));
  } else {
    client = new ClientV2({ name: 'e2e-prompts-v2', version: '2.0.0' },
      { versionNegotiation: { mode: modern ? { pin: MODERN } : 'legacy' } });
    await client.connect(new TransportV2(new URL(MCP_URL), { requestInit, fetch: rec.fetch }));
  }
  return { client, seen: rec.seen };
}

/** The JSON-RPC code of a rejected SDK call. */
async function errorCode(promise) {
  try {
    await promise;
  } catch (err) {
    return err.code;
  }
  assert.fail('expected the call to be refused');
}

const COMBINATIONS = [
  ...HANDSHAKE_VERSIONS.map((r) => ['v1', r]),
  ...HANDSHAKE_VERSIONS.map((r) => ['v2', r]),
  ['v2', MODERN],
];

for (const [sdk, revision] of COMBINATIONS) {
  describe(`${sdk} client under ${revision}`, () => {
    let ctx;
    before(async () => {
      ctx = await connect(sdk, revision);
    });
    after(async () => {
      await ctx?.client.close();
    });

    test('the revision is the one asked for, and the capabilities are declared', () => {
      const { client, seen } = ctx;
      const caps = client.getServerCapabilities();
      assert.deepEqual(caps.prompts, { listChanged: false });
      assert.deepEqual(caps.resources, { subscribe: false, listChanged: false });
      assert.deepEqual(caps.completions, {});
      assert.ok(caps.tools);
      if (revision === MODERN) {
        assert.deepEqual(seen.map((s) => s.method), ['server/discover']);
      } else {
        assert.equal(seen[0].method, 'initialize');
      }
      // Every request after the handshake names the revision.
      for (const s of seen.filter((x) => x.method !== 'initialize')) assert.equal(s.version, revision, s.method);
    });

    test('prompts/list: the three prompts with their arguments', async () => {
      const { prompts } = await ctx.client.listPrompts();
      assert.deepEqual(prompts.map((p) => p.name), PROMPTS);
      for (const p of prompts) {
        assert.ok(p.description.length > 20, p.name);
        assert.equal(p.arguments[0].name, 'site');
        assert.equal(p.arguments[0].required, true);
      }
      const launch = prompts.find((p) => p.name === 'launch_impact');
      assert.deepEqual(launch.arguments.map((a) => [a.name, a.required]),
        [['site', true], ['moment', true], ['page', false], ['goal', false]]);
      assert.equal(ctx.seen.at(-1).version, revision);
    });

    test('prompts/get: each prompt leads through real tools; a bad argument is -32602', async () => {
      for (const name of PROMPTS) {
        const r = await ctx.client.getPrompt({ name, arguments: PROMPT_ARGS[name] });
        assert.equal(r.messages.length, 1, name);
        assert.equal(r.messages[0].role, 'user');
        const text = r.messages[0].content.text;
        assert.match(text, /example\.com/, name);
        const named = TOOL_NAMES.filter((t) => text.includes(`${t} {`));
        assert.ok(named.length >= 2, `${name} names tool calls: ${named}`);
      }
      assert.match((await ctx.client.getPrompt({ name: 'launch_impact', arguments: PROMPT_ARGS.launch_impact }))
        .messages[0].content.text, /measure_change \{/);
      assert.equal(await errorCode(ctx.client.getPrompt({ name: 'launch_impact', arguments: { site: 'example.com' } })), -32602);
      assert.equal(await errorCode(ctx.client.getPrompt({ name: 'no_such_prompt' })), -32602);
    });

    test('resources/list and resources/read: sites as JSON, the vocabulary as Markdown', async () => {
      const { resources } = await ctx.client.listResources();
      assert.deepEqual(resources.map((r) => r.uri), RESOURCES);
      const sites = await ctx.client.readResource({ uri: 'plausible://sites' });
      assert.equal(sites.contents[0].mimeType, 'application/json');
      const listed = JSON.parse(sites.contents[0].text);
      // The shared test key is a Stats API key: list_sites says so, and the resource says the same.
      assert.equal(listed.source, 'none');
      assert.match(listed.message, /Sites API|cannot list sites/);
      const vocab = await ctx.client.readResource({ uri: 'plausible://vocabulary' });
      assert.equal(vocab.contents[0].mimeType, 'text/markdown');
      assert.match(vocab.contents[0].text, /^# Plausible vocabulary/);
      assert.match(vocab.contents[0].text, /\| `visitors` \|/);
      if (revision === MODERN) {
        assert.equal(sites.cacheScope, 'private');
        assert.equal(vocab.cacheScope, 'public');
        assert.ok(Number.isInteger(vocab.ttlMs) && vocab.ttlMs > 0);
      }
    });

    test('the goals template lists and reads; an unknown URI is the revision\'s not-found code', async () => {
      const { resourceTemplates } = await ctx.client.listResourceTemplates();
      assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), [TEMPLATE]);
      const goals = await ctx.client.readResource({ uri: 'plausible://sites/example.com/goals' });
      const body = JSON.parse(goals.contents[0].text);
      assert.equal(body.site_id, 'example.com');
      assert.ok(Array.isArray(body.goals), goals.contents[0].text);
      const missing = 'plausible://nothing-here';
      const code = await errorCode(ctx.client.readResource({ uri: missing }));
      // On the wire: -32002 up to 2025-11-25, -32602 under 2026-07-28, the URI in data.
      const wire = ctx.seen.at(-1).json.error;
      assert.equal(wire.code, revision === MODERN ? -32602 : -32002);
      assert.deepEqual(wire.data, { uri: missing });
      // v1 hands the code over as sent; v2 reads both as its ResourceNotFoundError (-32602).
      assert.equal(code, sdk === 'v1' ? wire.code : -32602);
    });

    test('completion/complete offers windows and sites', async () => {
      const windows = await ctx.client.complete({
        ref: { type: 'ref/prompt', name: 'traffic_drop_check' }, argument: { name: 'window', value: '2' },
      });
      assert.deepEqual(windows.completion.values, ['28d', '24h']);
      const template = await ctx.client.complete({
        ref: { type: 'ref/resource', uri: TEMPLATE }, argument: { name: 'site_id', value: 'ex' },
      });
      assert.ok(Array.isArray(template.completion.values));
    });
  });
}

describe('site completions reuse one cached site list', () => {
  test('a Sites API key: twelve keystrokes, one upstream request, the key\'s own sites', async () => {
    const key = `sites-complete-${Date.now()}`;
    await addKey({ key, sitesApi: true });
    const { client } = await connect('v2', MODERN, key);
    try {
      const before = await upstreamCount();
      let last;
      for (const value of ['', 's', 'sh', 'sho', 'shop', 'shop.', 'shop.e', 'shop.ex', 'e', 'ex', 'exa', 'example.com']) {
        last = await client.complete({ ref: { type: 'ref/prompt', name: 'weekly_report' }, argument: { name: 'site', value } });
      }
      assert.equal((await upstreamCount()) - before, 1);
      assert.equal(last.completion.values[0], 'example.com');
      const shop = await client.complete({ ref: { type: 'ref/prompt', name: 'launch_impact' }, argument: { name: 'site', value: 'shop' } });
      assert.deepEqual(shop.completion.values, ['shop.example.com']);
      assert.equal((await upstreamCount()) - before, 1);
    } finally {
      await client.close();
    }
  });

  test('a Stats API key: one refusal, then nothing more', async () => {
    const key = `stats-complete-${Date.now()}`;
    await addKey({ key });
    const { client } = await connect('v1', '2025-11-25', key);
    try {
      const before = await upstreamCount();
      for (const value of ['', 'e', 'ex', 'exa', 'exam', 'examp', 'exampl', 'example']) {
        const r = await client.complete({ ref: { type: 'ref/prompt', name: 'weekly_report' }, argument: { name: 'site', value } });
        assert.deepEqual(r.completion.values, []);
      }
      assert.equal((await upstreamCount()) - before, 1);
    } finally {
      await client.close();
    }
  });
});
