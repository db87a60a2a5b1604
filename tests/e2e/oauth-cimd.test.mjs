// Client ID Metadata Documents (CIMD, MCP 2025-11-25 authorization): the
// client_id is the URL of a JSON document the worker fetches.
//
// How the SDK does it: SDK 1.32 uses a URL client_id when the provider has
// `clientMetadataUrl` and the AS metadata says
// `client_id_metadata_document_supported: true` (auth.js, SEP-991); it
// then skips /register and saves { client_id: <url>, issuer }. It insists
// on an https URL (`isHttpsUrl`), so for the SDK flow the document is
// served over https on 127.0.0.1 with a throwaway CA generated here, which
// the worker (workerd under wrangler dev) is told to trust through
// NODE_EXTRA_CA_CERTS (miniflare reads it into its trusted certificates).
// That needs a worker started with that variable, so this file runs its own
// stack (as mcp-upstream.test.mjs does), which also lets it see what
// reached the Plausible stand-in. The dev policy's plain-http loopback
// documents (DEV_ALLOW_LOOPBACK) are exercised with raw requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidClientMetadataError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { startStack } from '../../devstack/stack.mjs';
import { SAMPLE_CALLS, assertSampleResult } from './mcp-helpers.mjs';
import {
  HeadlessOAuthProvider, assertTokens, authorizationParams, authorizeRaw, locationParams, pkce, randomState,
  recordingFetch, redeemForm, resourceOf, tokenRequest,
} from './oauth-helpers.mjs';
import { pageErrorCode } from './support/http.mjs';
import { KeyFlowOAuthProvider } from './support/key-flow.mjs';

const REDIRECT_URL = 'http://127.0.0.1:8977/callback';

let stack;
let base;
let workDir;
let persistTo;
let httpsServer;
let httpServer;
/** Requests each document server received: { path, headers }. */
const httpsHits = [];
const httpHits = [];

/** A CA and a 127.0.0.1 server certificate it signed, made with openssl. */
function makeCertificates(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=plausible-mcp e2e CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem',
    '-days', '2', '-extfile', 'leaf.ext');
  return {
    ca: path.join(dir, 'ca.pem'),
    key: readFileSync(path.join(dir, 'leaf.key')),
    cert: readFileSync(path.join(dir, 'leaf.pem')),
  };
}

/**
 * Serves client metadata documents: /client.json, /second.json and
 * /nostore.json (Cache-Control: no-store) are good (each names itself),
 * /mismatch.json names /client.json instead, /moved.json redirects to
 * /target.json, and anything else is a 404.
 */
function documentHandler(hits, origin) {
  return (req, res) => {
    hits.push({ path: req.url, method: req.method, headers: req.headers });
    const self = `${origin()}${req.url}`;
    const docs = {
      '/client.json': { client_id: self, client_name: 'e2e CIMD client' },
      '/second.json': { client_id: self, client_name: 'e2e CIMD client 2' },
      '/mcp-client.json': { client_id: self, client_name: 'e2e CIMD client on /mcp' },
      '/mismatch.json': { client_id: `${origin()}/client.json`, client_name: 'e2e impostor' },
    };
    if (req.url === '/moved.json') {
      res.writeHead(302, { location: `${origin()}/target.json` }).end();
      return;
    }
    const doc = docs[req.url] ?? (['/nostore.json', '/as-html.json', '/loopback-uri.json'].includes(req.url) ? { client_id: self } : undefined);
    if (req.url === '/loopback-uri.json') doc.client_uri = `${origin()}/`;
    if (!doc) {
      res.writeHead(404).end();
      return;
    }
    const headers = { 'content-type': req.url === '/as-html.json' ? 'text/html' : 'application/json' };
    if (req.url === '/nostore.json') headers['cache-control'] = 'no-store';
    res.writeHead(200, headers);
    res.end(JSON.stringify({
      ...doc,
      redirect_uris: [REDIRECT_URL, 'http://127.0.0.1/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }));
  };
}

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = (server, scheme) => `${scheme}://127.0.0.1:${server.address().port}`;
const hitsFor = (hits, p) => hits.filter((h) => h.path === p).length;

before(async () => {
  workDir = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-cimd-'));
  persistTo = path.join(workDir, 'state');
  const certs = makeCertificates(workDir);
  httpsServer = https.createServer({ key: certs.key, cert: certs.cert }, documentHandler(httpsHits, () => origin(httpsServer, 'https')));
  httpServer = http.createServer(documentHandler(httpHits, () => origin(httpServer, 'http')));
  await Promise.all([listen(httpsServer), listen(httpServer)]);
  const saved = process.env.NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = certs.ca;
  try {
    stack = await startStack({ persistTo, vars: { TEST_IDENTITY_HOOK: 'enabled' } });
  } finally {
    if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = saved;
  }
  base = stack.workerUrl;
});

after(async () => {
  await stack?.stop();
  await Promise.all([httpsServer, httpServer].filter(Boolean).map((s) => new Promise((r) => s.close(r))));
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const find = (log, method, p) => log.filter((e) => e.method === method && e.url.pathname === p);

/** The SDK's first-time flow against this file's worker (`/internal` unless `path`); returns the connected client. */
async function connectWithOAuth(provider, rec, path = '/internal') {
  const url = new URL(`${base}${path}`);
  const first = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: rec.fetch });
  await assert.rejects(new Client({ name: 'e2e-oauth-cimd', version: '1.0.0' }).connect(first), UnauthorizedError);
  assert.match(provider.code ?? '', /^pmcp_ac_/, 'the provider captured a code');
  await first.finishAuth(provider.code);
  await first.close();
  const client = new Client({ name: 'e2e-oauth-cimd', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: rec.fetch }));
  return client;
}

describe('Client ID Metadata Documents', () => {
  test('the worker advertises CIMD support in its AS metadata', async () => {
    const res = await fetch(`${base}/.well-known/oauth-authorization-server`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).client_id_metadata_document_supported, true);
  });

  test('SDK 1.32 refuses a plain-http clientMetadataUrl before any request (why the SDK flow uses https)', async () => {
    const rec = recordingFetch();
    const httpUrl = `${origin(httpServer, 'http')}/client.json`;
    const provider = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL, clientMetadataUrl: httpUrl });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/internal`), { authProvider: provider, fetch: rec.fetch });
    await assert.rejects(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport), InvalidClientMetadataError);
    assert.equal(find(rec.log, 'POST', '/register').length, 0);
    assert.equal(provider.authorizations.length, 0);
    assert.equal(hitsFor(httpHits, '/client.json'), 0);
    await transport.close();
  });

  test('SDK flow with clientMetadataUrl: no registration, the worker fetches the document once, tools work', async () => {
    const docUrl = `${origin(httpsServer, 'https')}/client.json`;
    const rec = recordingFetch();
    const provider = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL, clientMetadataUrl: docUrl });
    const client = await connectWithOAuth(provider, rec);

    // The SDK took the URL as its client id (the AS metadata allowed it)
    // and never registered. The issuer stamp is the PRM's authorization
    // server, so discovery went through the PRM.
    assert.deepEqual(provider.savedClients, [{ client_id: docUrl, issuer: base }]);
    assert.equal(find(rec.log, 'POST', '/register').length, 0);
    assert.ok(find(rec.log, 'GET', '/.well-known/oauth-protected-resource/internal').length >= 1);
    assert.ok(find(rec.log, 'GET', '/.well-known/oauth-authorization-server').length >= 1);

    const az = provider.authorizations[0];
    assert.equal(az.url.searchParams.get('client_id'), docUrl);
    assert.equal(az.url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(az.url.searchParams.get('resource'), resourceOf(base));
    assert.equal(az.status, 302);
    assert.equal(locationParams(az.location).iss, base);

    const [redeem] = find(rec.log, 'POST', '/token');
    assert.equal(redeem.status, 200);
    assert.equal(redeem.body.client_id, docUrl);
    assert.equal(redeem.body.resource, resourceOf(base));
    assert.match(provider.tokens().access_token, /^pmcp_at_/);

    // One fetch of the document, a plain GET asking for JSON; the token
    // endpoint's client lookup used the cached copy.
    assert.equal(hitsFor(httpsHits, '/client.json'), 1);
    const hit = httpsHits.find((h) => h.path === '/client.json');
    assert.equal(hit.method, 'GET');
    assert.match(hit.headers.accept, /application\/json/);

    const upstreamBefore = stack.plausible.requests.length;
    assertSampleResult('get_timeseries', await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }));
    const upstream = stack.plausible.requests.slice(upstreamBefore);
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].headers.authorization, 'Bearer plausible-shared-key', '/internal queries with the shared key');
    await client.close();
  });

  test('SDK flow on /mcp with clientMetadataUrl: no registration, the key page, tools with the person\'s own key', async () => {
    const docUrl = `${origin(httpsServer, 'https')}/mcp-client.json`;
    const key = `e2e-cimd-mcp-${randomState()}`;
    const taught = await fetch(`${stack.plausible.url}/__stand-in/keys`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, sites: ['example.com'] }),
    });
    assert.equal(taught.status, 200);
    const rec = recordingFetch();
    const provider = new KeyFlowOAuthProvider({ base, key, sites: ['example.com'], redirectUrl: REDIRECT_URL, clientMetadataUrl: docUrl });
    const client = await connectWithOAuth(provider, rec, '/mcp');

    // The URL is the client id; discovery went through /mcp's PRM.
    assert.deepEqual(provider.savedClients, [{ client_id: docUrl, issuer: base }]);
    assert.equal(find(rec.log, 'POST', '/register').length, 0);
    assert.ok(find(rec.log, 'GET', '/.well-known/oauth-protected-resource/mcp').length >= 1);
    const az = provider.authorizations[0];
    assert.equal(az.url.searchParams.get('client_id'), docUrl);
    assert.equal(az.url.searchParams.get('resource'), `${base}/mcp`);
    // The person's part: the key page, the consent page (naming the document's client), back with a code.
    assert.deepEqual(az.browser.steps.map((x) => `${x.step} ${x.status}`), ['authorize 200', 'key 200', 'consent 302']);
    assert.ok(az.browser.steps[1].text.includes('e2e CIMD client on /mcp'), 'the consent page names the client from its document');
    assert.equal(locationParams(az.location).iss, base);
    const [redeem] = find(rec.log, 'POST', '/token');
    assert.equal(redeem.status, 200);
    assert.equal(redeem.body.client_id, docUrl);
    assert.equal(redeem.body.resource, `${base}/mcp`);
    assert.equal(hitsFor(httpsHits, '/mcp-client.json'), 1, 'one fetch of the document');

    const upstreamBefore = stack.plausible.requests.length;
    assertSampleResult('get_timeseries', await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }));
    const upstream = stack.plausible.requests.slice(upstreamBefore);
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].headers.authorization, `Bearer ${key}`, '/mcp queries with the person\'s key');
    await client.close();
  });

  test('a second authorization with the same client id uses the cached document (no second fetch)', async () => {
    const docUrl = `${origin(httpsServer, 'https')}/client.json`;
    assert.equal(hitsFor(httpsHits, '/client.json'), 1, 'fetched once by the previous flow');
    const rec = recordingFetch();
    const provider = new HeadlessOAuthProvider({ redirectUrl: REDIRECT_URL, clientMetadataUrl: docUrl });
    const client = await connectWithOAuth(provider, rec);
    assert.equal(provider.authorizations.length, 1);
    assert.equal(provider.authorizations[0].status, 302);
    assertSampleResult('get_timeseries', await client.callTool({ name: 'get_timeseries', arguments: SAMPLE_CALLS.get_timeseries }));
    assert.equal(hitsFor(httpsHits, '/client.json'), 1, 'served from the cache');
    await client.close();
  });

  test('a document whose client_id is not its own URL gets a 400 error page, never a redirect, and is not cached', async () => {
    const docUrl = `${origin(httpsServer, 'https')}/mismatch.json`;
    for (let i = 1; i <= 2; i++) {
      const { challenge } = pkce();
      const r = await authorizeRaw(
        authorizationParams({ client_id: docUrl, redirect_uris: [REDIRECT_URL] }, { challenge, state: randomState(), base }),
        { base },
      );
      assert.equal(r.status, 400, r.text);
      assert.equal(r.res.headers.get('location'), null);
      assert.match(r.res.headers.get('content-type'), /^text\/html/);
      assert.match(r.res.headers.get('content-security-policy'), /default-src 'none'/);
      assert.equal(pageErrorCode(r.text), 'invalid_client_metadata');
      assert.match(r.text, /does not match the URL/);
      // The impostor's own fetch happened, each time: invalid documents are not cached.
      assert.equal(hitsFor(httpsHits, '/mismatch.json'), i);
    }
  });

  test('under the development policy a plain-http loopback document works too (raw flow, fetched once)', async () => {
    const docUrl = `${origin(httpServer, 'http')}/second.json`;
    const client = { client_id: docUrl, redirect_uris: ['http://127.0.0.1:40123/cb'] };
    const { verifier, challenge } = pkce();
    const state = randomState();
    const r = await authorizeRaw(authorizationParams(client, { challenge, state, base }), { base });
    assert.equal(r.status, 302, r.text);
    const q = locationParams(r.res.headers.get('location'));
    assert.equal(q.state, state);
    assert.equal(q.iss, base);
    const t = await tokenRequest(redeemForm(client, { code: q.code, verifier, redirectUri: client.redirect_uris[0] }, base), { base });
    assertTokens(t, base);
    assert.equal(hitsFor(httpHits, '/second.json'), 1);
  });
  test('a document served with Cache-Control: no-store is fetched again for every lookup', async () => {
    const docUrl = `${origin(httpServer, 'http')}/nostore.json`;
    const client = { client_id: docUrl, redirect_uris: ['http://127.0.0.1:40124/cb'] };
    const { verifier, challenge } = pkce();
    const r = await authorizeRaw(authorizationParams(client, { challenge, state: randomState(), base }), { base });
    assert.equal(r.status, 302, r.text);
    assert.equal(hitsFor(httpHits, '/nostore.json'), 1);
    const { code } = locationParams(r.res.headers.get('location'));
    assertTokens(await tokenRequest(redeemForm(client, { code, verifier, redirectUri: client.redirect_uris[0] }, base), { base }), base);
    assert.equal(hitsFor(httpHits, '/nostore.json'), 2, 'the token endpoint fetched it again');
  });

  // Changed by issue 10: the page used to name the status ("HTTP 404",
  // "redirect (HTTP 302)"), which tells a stranger about hosts this
  // server can reach. Every fetch failure now shows one sentence (the
  // detail goes to the log), a failed URL is not fetched again for a
  // minute (isolate memory, never KV), and a document must be served as
  // JSON.
  test('a document URL that redirects, is missing or is not JSON gets one generic 400 page; the redirect is not followed; no refetch within a minute', async () => {
    const generic = /could not be fetched \(it must answer 200 with application\/json/;
    for (const p of ['/moved.json', '/missing.json', '/as-html.json']) {
      const docUrl = `${origin(httpServer, 'http')}${p}`;
      for (let i = 1; i <= 2; i++) {
        const r = await authorizeRaw(
          authorizationParams({ client_id: docUrl, redirect_uris: [REDIRECT_URL] }, { challenge: pkce().challenge, state: randomState(), base }),
          { base },
        );
        assert.equal(r.status, 400, `${p}: ${r.text}`);
        assert.equal(r.res.headers.get('location'), null, p);
        assert.match(r.res.headers.get('content-type'), /^text\/html/, p);
        assert.equal(pageErrorCode(r.text), 'invalid_client_metadata', p);
        assert.match(r.text, generic, p);
        assert.ok(!/HTTP [0-9]{3}|redirect \(|text\/html/.test(r.text.replace(/<[^>]*>/g, ' ')), `${p}: no detail shown`);
        assert.equal(hitsFor(httpHits, p), 1, `${p}: attempt ${i} fetched once in all`);
      }
    }
    assert.equal(hitsFor(httpHits, '/target.json'), 0, 'the redirect target was never fetched');
  });

  test('under the development policy a loopback document may name a loopback client_uri (issue 10)', async () => {
    const docUrl = `${origin(httpServer, 'http')}/loopback-uri.json`;
    const client = { client_id: docUrl, redirect_uris: ['http://127.0.0.1:40125/cb'] };
    const r = await authorizeRaw(authorizationParams(client, { challenge: pkce().challenge, state: randomState(), base }), { base });
    assert.equal(r.status, 302, r.text);
    assert.ok(locationParams(r.res.headers.get('location')).code);
  });
});
