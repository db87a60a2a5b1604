// Transport- and protocol-level refusals of /mcp over real HTTP: wrong
// methods and media types, bad JSON, versions and mirrored headers,
// missing credentials, Host / Origin guards, and CORS preflight.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KEY, MCP_URL, MODERN, SUPPORTED_VERSIONS, assertBaselineHeaders, post, postModern, rawHttp, rpc,
} from './mcp-helpers.mjs';

/** A JSON-RPC error response without a result. */
function assertRpcError(json, code, id = null) {
  assert.equal(json.jsonrpc, '2.0');
  assert.equal(json.id, id);
  assert.equal(json.result, undefined);
  assert.equal(json.error.code, code);
  assert.equal(typeof json.error.message, 'string');
}

/** CORS headers on every /mcp response, refusals included. */
function assertCors(headers) {
  const get = (n) => (typeof headers.get === 'function' ? headers.get(n) : headers[n]);
  assert.equal(get('access-control-allow-origin'), '*');
  assert.equal(get('access-control-allow-methods'), 'POST, OPTIONS');
  assert.match(get('access-control-expose-headers'), /WWW-Authenticate/i);
}

const auth = { authorization: `Bearer ${KEY}` };

describe('HTTP methods', () => {
  for (const method of ['GET', 'DELETE']) {
    test(`${method} is 405 with a JSON-RPC error and Allow`, async () => {
      const res = await fetch(MCP_URL, {
        method,
        headers: { ...auth, accept: 'text/event-stream, application/json', 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': 'x' },
      });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
      assert.match(res.headers.get('content-type'), /^application\/json/);
      assertBaselineHeaders(res);
      assertCors(res.headers);
      const json = await res.json();
      assertRpcError(json, -32600);
      assert.match(json.error.message, /POST only/);
    });
  }

  test('OPTIONS preflight is 204 with CORS headers, without credentials', async () => {
    const res = await fetch(MCP_URL, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:6274',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, mcp-protocol-version, mcp-method, mcp-name',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assertBaselineHeaders(res);
    assertCors(res.headers);
    const allowed = res.headers.get('access-control-allow-headers').split(',').map((h) => h.trim().toLowerCase());
    for (const h of ['authorization', 'content-type', 'accept', 'mcp-protocol-version', 'mcp-method', 'mcp-name']) {
      assert.ok(allowed.includes(h), h);
    }
    assert.ok(Number(res.headers.get('access-control-max-age')) > 0);
  });
});

describe('media types and body', () => {
  for (const [label, contentType] of [['text/plain', 'text/plain'], ['form', 'application/x-www-form-urlencoded'], ['missing', null]]) {
    test(`Content-Type ${label} is 415`, async () => {
      const headers = { ...auth };
      if (contentType) headers['content-type'] = contentType;
      // A byte body, so fetch does not add a text/plain Content-Type of its own.
      const res = await fetch(MCP_URL, { method: 'POST', headers, body: new TextEncoder().encode(JSON.stringify(rpc('ping'))) });
      assert.equal(res.status, 415);
      assertBaselineHeaders(res);
      assertRpcError(await res.json(), -32600);
    });
  }

  test('Content-Type with parameters is still JSON', async () => {
    const req = rpc('ping');
    const { res, json } = await post(req, { headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
    assert.equal(res.status, 200);
    assert.deepEqual(json.result, {});
  });

  for (const accept of ['text/event-stream', 'text/html']) {
    test(`Accept: ${accept} (no JSON) is 406`, async () => {
      const { res, json } = await post(rpc('ping'), { headers: { accept } });
      assert.equal(res.status, 406);
      assertBaselineHeaders(res);
      assertRpcError(json, -32600);
      assert.match(json.error.message, /Accept/);
    });
  }

  for (const accept of ['application/json', '*/*', 'application/*']) {
    test(`Accept: ${accept} is served`, async () => {
      const { res } = await post(rpc('ping'), { headers: { accept } });
      assert.equal(res.status, 200);
    });
  }

  test('invalid JSON is 400 / -32700 with a null id', async () => {
    const { res, json } = await post('{"jsonrpc": "2.0", "id": 1, "method": "ping"');
    assert.equal(res.status, 400);
    assertBaselineHeaders(res);
    assertRpcError(json, -32700);
  });

  test('a JSON value that is not a JSON-RPC message is 400 / -32600', async () => {
    const { res, json } = await post({ jsonrpc: '2.0', id: 9 });
    assert.equal(res.status, 400);
    assertRpcError(json, -32600, 9);
  });
});

describe('protocol versions and mirrored headers', () => {
  test('unsupported MCP-Protocol-Version is 400 / -32022 naming the supported ones', async () => {
    const req = rpc('tools/list');
    const { res, json } = await post(req, { version: '2099-01-01' });
    assert.equal(res.status, 400);
    assertBaselineHeaders(res);
    assertRpcError(json, -32022, req.id);
    assert.deepEqual(json.error.data.supported, SUPPORTED_VERSIONS);
    assert.equal(json.error.data.requested, '2099-01-01');
  });

  test('2026-07-28 request with a mismatched Mcp-Name is 400 / -32020', async () => {
    const { res, json } = await postModern('tools/call', { name: 'get_breakdown', arguments: {} },
      { headers: { 'mcp-name': 'get_timeseries' } });
    assert.equal(res.status, 400);
    assertBaselineHeaders(res);
    assertRpcError(json, -32020, json.id);
    assert.equal(typeof json.id, 'number');
    assert.match(json.error.message, /Mcp-Name header value 'get_timeseries' does not match body value 'get_breakdown'/);
  });

  test('2026-07-28 tools/call without Mcp-Name is 400 / -32020', async () => {
    const { res, json } = await postModern('tools/call', { name: 'get_breakdown', arguments: {} },
      { headers: { 'mcp-name': undefined } });
    assert.equal(res.status, 400);
    assertRpcError(json, -32020, json.id);
    assert.match(json.error.message, /Mcp-Name header is required/);
  });

  test('2026-07-28 request with a mismatched or missing Mcp-Method is 400 / -32020', async () => {
    for (const method of ['tools/call', undefined]) {
      const { res, json } = await postModern('tools/list', {}, { headers: { 'mcp-method': method } });
      assert.equal(res.status, 400, String(method));
      assertRpcError(json, -32020, json.id);
      assert.match(json.error.message, /Mcp-Method/);
    }
  });

  test('_meta claiming 2026-07-28 under a 2025 header is 400 / -32020', async () => {
    const { res, json } = await postModern('tools/list', {}, { version: '2025-06-18' });
    assert.equal(res.status, 400);
    assertRpcError(json, -32020, json.id);
  });

  test('2026-07-28 header without the _meta envelope is 400 / -32602', async () => {
    const req = rpc('tools/list');
    const { res, json } = await post(req, { version: MODERN, headers: { 'mcp-method': 'tools/list' } });
    assert.equal(res.status, 400);
    assertRpcError(json, -32602, req.id);
  });

  test('unknown 2026-07-28 method is 404 / -32601', async () => {
    // Resources are served, subscriptions are not.
    const { res, json } = await postModern('resources/subscribe');
    assert.equal(res.status, 404);
    assertBaselineHeaders(res);
    assertRpcError(json, -32601, json.id);
    assert.match(json.error.message, /resources\/subscribe/);
  });

  test('unknown handshake-era method is 200 with -32601', async () => {
    const req = rpc('resources/subscribe');
    const { res, json } = await post(req, { version: '2025-11-25' });
    assert.equal(res.status, 200);
    assertRpcError(json, -32601, req.id);
  });
});

describe('credentials', () => {
  // Issue 15: without credentials (none, another scheme, an empty
  // Bearer) /mcp challenges toward its protected resource metadata with no
  // error code (RFC 6750 §3.1, RFC 9728 §5.1), so OAuth clients find the
  // key form; a bad bearer value is still invalid_token, with the same
  // resource_metadata.
  const cases = [
    ['missing Authorization', null, null],
    ['a non-Bearer scheme', 'Basic dXNlcjpwYXNz', null],
    ['"Bearer" with no key', 'Bearer', null],
    ['a too-short bearer value', 'Bearer abc', 'invalid_token'],
  ];
  const refuse = (auth) => post(rpc('tools/list'), { version: '2025-11-25', auth });

  for (const [label, value, code] of cases) {
    test(`${label} is 401 with a Bearer challenge and a JSON explanation`, async () => {
      const { res, json } = await refuse(value);
      assert.equal(res.status, 401);
      assertBaselineHeaders(res);
      assertCors(res.headers);
      const challenge = res.headers.get('www-authenticate');
      assert.match(challenge, /^Bearer\b/);
      // RFC 9728 §5.1: every 401 of /mcp names its metadata.
      assert.match(challenge, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
      if (code) {
        assert.match(challenge, new RegExp(`error="${code}"`));
        assert.equal(json.error, code);
      } else {
        assert.doesNotMatch(challenge, /error=/);
        assert.equal(json.error, undefined);
      }
      assert.ok(json.error_description.length > 20, json.error_description);
    });
  }

  test('a too-short bearer value is explained as such', async () => {
    const { json } = await refuse('Bearer abc');
    assert.match(json.error_description, /8 to 512 visible ASCII characters/);
  });

  // Every refusal should tell the caller the expected form, `Bearer <key>`.
  for (const [label, value] of cases) {
    test(`the 401 for ${label} says how to pass the key (\`Bearer <key>\`)`, async () => {
      const { json } = await refuse(value);
      assert.ok(json.error_description.includes('Bearer <key>'), json.error_description);
    });
  }
});

describe('Host and Origin guards', () => {
  const body = JSON.stringify(rpc('ping'));
  const headers = { ...auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };

  test('a Host this worker does not serve is 403', async () => {
    const res = await rawHttp({ headers: { ...headers, host: 'evil.example' }, body });
    assert.equal(res.status, 403);
    assertBaselineHeaders(res);
    assertRpcError(res.json, -32600);
    assert.match(res.json.error.message, /evil\.example/);
  });

  test('a look-alike Host is 403 too', async () => {
    const res = await rawHttp({ headers: { ...headers, host: 'localhost.evil.example' }, body });
    assert.equal(res.status, 403);
  });

  test('an allowed Host (localhost) sent the same way is served', async () => {
    const port = new URL(MCP_URL).port;
    const res = await rawHttp({ headers: { ...headers, host: `localhost:${port}` }, body });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.result, {});
  });

  for (const origin of ['null', 'file:///etc/passwd']) {
    test(`Origin: ${origin} is 403`, async () => {
      const { res, json } = await post(rpc('ping'), { headers: { origin } });
      assert.equal(res.status, 403);
      assertBaselineHeaders(res);
      assertRpcError(json, -32600);
      assert.match(json.error.message, /Origin/);
    });
  }

  test('a well-formed Origin is allowed on /mcp', async () => {
    const { res } = await post(rpc('ping'), { headers: { origin: 'https://app.example' } });
    assert.equal(res.status, 200);
  });
});
