// A POST whose body the worker may refuse before reading it all (413 by
// Content-Length), through node:http so the socket is ours: it is
// destroyed once the answer arrived. A connection whose upload was cut
// short is never reused, and wrangler dev's proxy is not left pumping the
// rest of an upload the worker will never read (left open, that stalled
// the next request through the proxy in local runs).
import http from 'node:http';
import { isWranglerRestart } from './http.mjs';
import { SOURCE_ADDRESS } from './source-address.mjs';

/**
 * Sends `body` to `url` (Content-Length declared); resolves with
 * { status, text, json }. Only wrangler's own "restarted" 503, or an
 * answer whose body the reset lost, is sent again (at most three times in
 * all); a refused upload changes nothing, so a replay is harmless.
 */
export async function upload(url, body, contentType = 'application/json') {
  let r;
  for (let attempt = 1; attempt <= 3; attempt++) {
    r = await uploadOnce(new URL(url), Buffer.from(body), contentType);
    if (!isWranglerRestart(r.status, r.text) && r.text !== '') return r;
  }
  return r;
}

function uploadOnce(url, body, contentType) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, localAddress: SOURCE_ADDRESS, method: 'POST', path: url.pathname,
      headers: { 'content-type': contentType, 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
        req.destroy();
      });
    });
    // The worker may close its end before the body is all written.
    req.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
    // A connection closed before a whole answer arrived (the reset above,
    // seen under load) resolves as "no answer", which `upload` sends
    // again; left unresolved, the test hung until node:test gave up on a
    // pending promise and failed every test after it in the file. After
    // an answer, resolve has already settled and this does nothing.
    req.on('close', () => resolve({ status: 0, headers: {}, text: '', json: null }));
    req.end(body);
  });
}
