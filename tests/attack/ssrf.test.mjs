// SSRF through client metadata document URLs (draft-ietf-oauth-client-id-
// metadata-document, "Server Side Request Forgery (SSRF) Attacks"; RFC
// 6890 special-purpose addresses; RFC 6761 special-use names): a
// `client_id` that is a URL the worker would fetch. Special-use targets
// are refused as written (private, IPv4-mapped IPv6, decimal, octal and
// hex encodings); a loopback document server here (allowed under the
// development policy the stack runs) tries redirects to private
// addresses, huge, chunked, slow and non-JSON answers. Every refusal is a
// 400 page (never a redirect) and stores nothing.
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { authorizationParams, pkce, randomState } from '../e2e/oauth-helpers.mjs';
import { BASE, assertPage, assertUnchanged, attack, request, snapshot } from './support/attack.mjs';

const REDIRECT = 'http://127.0.0.1:9/cb';
let server;
let origin;
const hits = [];
/** Whether the worker cut the stalled chunked answer short (SS-28). */
let cutNoted;
const stalled = { cut: new Promise((resolve) => { cutNoted = resolve; }) };

before(async () => {
  server = http.createServer((req, res) => {
    hits.push(req.url);
    const self = `${origin}${req.url}`;
    const doc = JSON.stringify({ client_id: self, client_name: 'attack doc', redirect_uris: [REDIRECT] });
    switch (req.url) {
      case '/redirect-private.json':
        res.writeHead(302, { location: 'http://10.0.0.1/client.json' }); return res.end();
      case '/redirect-metadata.json':
        res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' }); return res.end();
      case '/huge-declared.json': {
        const body = JSON.stringify({ client_id: self, client_name: 'x'.repeat(20 * 1024), redirect_uris: [REDIRECT] });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        return res.end(body);
      }
      case '/huge-chunked.json': {
        // No Content-Length: 1 MiB in 64 KiB chunks.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"client_id":${JSON.stringify(self)},"client_name":"`);
        const chunk = 'x'.repeat(64 * 1024);
        for (let i = 0; i < 16; i++) res.write(chunk);
        return res.end('"}');
      }
      case '/stalled-chunked.json': {
        // No Content-Length: 16 KiB (past the 10 KiB cap), then nothing,
        // ever. A reader that buffers the whole body waits for an end
        // that never comes (until its 5 s deadline); a reader that counts
        // as it reads refuses at the cap and drops the connection.
        res.writeHead(200, { 'content-type': 'application/json' });
        const head = `{"client_id":${JSON.stringify(self)},"client_name":"`;
        res.write(head);
        res.write('x'.repeat(16 * 1024 - head.length));
        req.socket.on('close', () => cutNoted(!res.writableEnded));
        return undefined;
      }
      case '/slow.json':
        // Headers never come; the worker's fetch timeout (5 s) must end it.
        setTimeout(() => { if (!res.writableEnded) { res.writeHead(200, { 'content-type': 'application/json' }); res.end(doc); } }, 8000);
        return undefined;
      case '/html.json':
        res.writeHead(200, { 'content-type': 'text/html' }); return res.end('<html><body>not a document</body></html>');
      case '/array.json':
        res.writeHead(200, { 'content-type': 'application/json' }); return res.end(JSON.stringify([JSON.parse(doc)]));
      case '/impostor.json':
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ client_id: 'https://claude.ai/oauth/client.json', client_name: 'Claude', redirect_uris: [REDIRECT] }));
      case '/plain.json':
        // A valid document, served as text/plain.
        res.writeHead(200, { 'content-type': 'text/plain' }); return res.end(doc);
      case '/generic-500.json':
        res.writeHead(500, { 'content-type': 'text/plain' }); return res.end('internal detail the page must not show');
      case '/generic-302.json':
        res.writeHead(302, { location: 'https://example.com/client.json' }); return res.end();
      case '/generic-html.json':
        res.writeHead(200, { 'content-type': 'text/html' }); return res.end(doc);
      case '/generic-huge.json':
        res.writeHead(200, { 'content-type': 'application/json' }); return res.end(`{"client_id":${JSON.stringify(self)},"x":"${'x'.repeat(64 * 1024)}"}`);
      default:
        res.writeHead(404); return res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));

function authorizeAs(clientId) {
  const params = authorizationParams({ client_id: clientId, redirect_uris: [REDIRECT] }, { challenge: pkce().challenge, state: randomState() });
  return request(`${BASE}/authorize?${new URLSearchParams(params)}`, { headers: { 'x-test-identity': 'tester@example.com' } });
}

describe('special-use targets written into the client_id: refused before any fetch', () => {
  const targets = [
    ['SS-01', 'a private IPv4 address (10/8)', 'https://10.0.0.1/client.json'],
    ['SS-02', 'a private IPv4 address (192.168/16)', 'https://192.168.1.1/client.json'],
    ['SS-03', 'a private IPv4 address (172.16/12)', 'https://172.16.0.1/client.json'],
    ['SS-04', 'the cloud metadata address (169.254.169.254)', 'https://169.254.169.254/latest/meta-data/'],
    ['SS-05', 'a shared-address-space address (100.64/10)', 'https://100.64.0.1/client.json'],
    ['SS-06', 'the unspecified address 0.0.0.0', 'https://0.0.0.0/client.json'],
    ['SS-07', 'an IPv4-mapped IPv6 private address', 'https://[::ffff:10.0.0.1]/client.json'],
    ['SS-08', 'an IPv4-mapped IPv6 metadata address', 'https://[::ffff:a9fe:a9fe]/client.json'],
    ['SS-09', 'a unique-local IPv6 address (fd00::/8)', 'https://[fd00::1]/client.json'],
    ['SS-10', 'a link-local IPv6 address (fe80::/10)', 'https://[fe80::1]/client.json'],
    ['SS-11', 'a private address written in decimal', 'https://167772161/client.json'],
    ['SS-12', 'a private address written in octal', 'https://012.0.0.1/client.json'],
    ['SS-13', 'the metadata address written in hex', 'https://0xa9.0xfe.0xa9.0xfe/client.json'],
    ['SS-14', 'an mDNS name (.local)', 'https://printer.local/client.json'],
    ['SS-15', 'a private-use name (.internal)', 'https://metadata.internal/client.json'],
    ['SS-16', 'a home-network name (.home.arpa)', 'https://router.home.arpa/client.json'],
    ['SS-17', 'plain http to a public host', 'http://client.example.com/client.json'],
    ['SS-18', 'userinfo in the URL', 'https://client.example.com@10.0.0.1/client.json'],
    ['SS-19', 'a file: URL (not a URL client id at all: no such client)', 'file:///etc/passwd', 'unknown_client'],
  ];
  for (const [id, name, url, code = 'invalid_client_metadata'] of targets) {
    attack(id, `${name} → 400 ${code}`, async () => {
      const snap = await snapshot();
      assertPage(await authorizeAs(url), 400, code, name);
      await assertUnchanged(snap, name);
    });
  }
});

describe('a document server that misbehaves: refused, nothing stored, redirects not followed', () => {
  const served = [
    ['SS-20', 'a redirect to a private address', '/redirect-private.json'],
    ['SS-21', 'a redirect to the metadata address', '/redirect-metadata.json'],
    ['SS-22', 'a 20 KiB document with Content-Length', '/huge-declared.json'],
    ['SS-23', 'a 1 MiB chunked document without Content-Length', '/huge-chunked.json'],
    ['SS-24', 'a server that never answers (fetch timeout)', '/slow.json'],
    ['SS-25', 'an HTML page', '/html.json'],
    ['SS-26', 'a JSON array', '/array.json'],
    ['SS-27', 'a document naming another client_id (impersonation)', '/impostor.json'],
  ];
  for (const [id, name, path] of served) {
    attack(id, `${name} → 400 invalid_client_metadata`, async () => {
      const before = hits.length;
      const snap = await snapshot();
      assertPage(await authorizeAs(`${origin}${path}`), 400, 'invalid_client_metadata', name);
      await assertUnchanged(snap, name);
      assert.deepEqual(hits.slice(before), [path], `${name}: one fetch of the document, no redirect followed`);
    });
  }
});

// Issue 10, "Client metadata documents": served as JSON only, a failed
// URL not fetched again for a minute (isolate memory, never KV), a
// client_id on this worker's own host refused before any fetch, and one
// generic sentence for every fetch failure (the status, timing or
// network detail would make the page an oracle for what this server can
// reach; the detail goes to the log).
const GENERIC = /could not be fetched \(it must answer 200 with application\/json/;

describe('client metadata documents: content type, negative cache, own host, one generic error', () => {
  attack('SS-28', 'a chunked document that passes the cap and then stalls → 400 invalid_client_metadata at the cap, before the fetch deadline; the connection is cut', async () => {
    const before = hits.length;
    const snap = await snapshot();
    const started = Date.now();
    const r = await authorizeAs(`${origin}/stalled-chunked.json`);
    const elapsed = Date.now() - started;
    assertPage(r, 400, 'invalid_client_metadata', 'ss-28');
    assert.match(r.text, GENERIC);
    // Not a speed goal: the one way to tell the streaming cap from the
    // 5 s fetch deadline (which refuses the same way) is which came first.
    assert.ok(elapsed < 5000, `answered after ${elapsed} ms: the worker waited for the body's end (its deadline), not the cap`);
    assert.deepEqual(hits.slice(before), ['/stalled-chunked.json']);
    // The worker aborted the fetch: the server sees its unfinished answer cut.
    assert.equal(await stalled.cut, true, 'the connection closed with the answer unfinished');
    await assertUnchanged(snap, 'ss-28');
  });

  attack('SS-29', 'a valid document served as text/plain → 400 invalid_client_metadata, the generic page', async () => {
    const before = hits.length;
    const snap = await snapshot();
    const r = await authorizeAs(`${origin}/plain.json`);
    assertPage(r, 400, 'invalid_client_metadata');
    assert.match(r.text, GENERIC);
    await assertUnchanged(snap);
    assert.deepEqual(hits.slice(before), ['/plain.json'], 'fetched once');
  });

  attack('SS-30', 'the same failing URL twice within a minute → one fetch (negative cache), the same page, nothing stored', async () => {
    const before = hits.length;
    const snap = await snapshot();
    const first = await authorizeAs(`${origin}/missing-twice.json`);
    assertPage(first, 400, 'invalid_client_metadata', 'first');
    const second = await authorizeAs(`${origin}/missing-twice.json`);
    assertPage(second, 400, 'invalid_client_metadata', 'second');
    assert.equal(second.text, first.text, 'the remembered failure reads like the failure');
    assert.deepEqual(hits.slice(before), ['/missing-twice.json'], 'the second attempt fetched nothing');
    // The failure is remembered in the isolate, not in KV or an object.
    await assertUnchanged(snap);
  });

  attack('SS-31', 'a client_id on this worker\'s own host → 400 invalid_client_metadata naming the rule, never fetched', async () => {
    const snap = await snapshot();
    for (const path of ['/.well-known/oauth-authorization-server', '/robots.txt', '/client.json']) {
      const r = await authorizeAs(`${BASE}${path}`);
      assertPage(r, 400, 'invalid_client_metadata', path);
      // Refused as our own host, before any fetch: not the generic fetch failure.
      assert.match(r.text, /names this server itself/, path);
      assert.doesNotMatch(r.text, GENERIC, path);
    }
    await assertUnchanged(snap);
  });

  attack('SS-33', 'a client_id on another of this worker\'s allowed hostnames (localhost beside 127.0.0.1) → 400 naming the rule, never fetched', async () => {
    const snap = await snapshot();
    const other = new URL(BASE);
    other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    for (const path of ['/.well-known/oauth-authorization-server', '/client.json']) {
      const r = await authorizeAs(`${other.origin}${path}`);
      assertPage(r, 400, 'invalid_client_metadata', path);
      assert.match(r.text, /names this server itself/, path);
      assert.doesNotMatch(r.text, GENERIC, path);
    }
    await assertUnchanged(snap);
  });

  attack('SS-32', 'every fetch failure (404, 500, redirect, HTML, oversized, remembered) shows the same page, no detail', async () => {
    const before = hits.length;
    const snap = await snapshot();
    const pages = [];
    for (const path of ['/generic-404.json', '/generic-500.json', '/generic-302.json', '/generic-html.json', '/generic-huge.json', '/generic-404.json']) {
      const r = await authorizeAs(`${origin}${path}`);
      assertPage(r, 400, 'invalid_client_metadata', path);
      pages.push([path, r.text]);
    }
    for (const [path, text] of pages) {
      assert.equal(text, pages[0][1], `${path}: the same page as ${pages[0][0]}`);
    }
    const visible = pages[0][1].replace(/<style>.*<\/style>/s, '').replace(/<[^>]*>/g, ' ');
    assert.match(visible, GENERIC);
    assert.doesNotMatch(visible, /HTTP [0-9]{3}|\b(404|500|302)\b|redirect \(|text\/html|internal detail|too large|timed? ?out/i, 'no detail shown');
    assert.deepEqual(hits.slice(before), ['/generic-404.json', '/generic-500.json', '/generic-302.json', '/generic-html.json', '/generic-huge.json'], 'each fetched once; the repeat not at all');
    await assertUnchanged(snap);
  });
});
