// Running the official MCP conformance suite (@modelcontextprotocol/conformance)
// against the worker's MCP endpoints.
//
// The suite's server scenarios send no credentials, and both endpoints
// need one (/mcp a Plausible key, /internal one of our access tokens). So
// the suite talks to a small forwarding proxy on 127.0.0.1 that adds
// `Authorization` to each request, as a client's own auth layer would,
// and passes everything else (Origin, every MCP header, the body) through
// untouched, so the worker judges what the suite sent. The one rewrite:
// a Host naming the proxy itself becomes the worker's, because /internal
// binds its tokens to the worker's own URL (RFC 8707); any other Host
// (the suite's DNS-rebinding probe) reaches the worker as sent.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export const CONFORMANCE_CLI = (root) => path.join(root, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

/**
 * A proxy on 127.0.0.1 forwarding every request to `target` (an origin,
 * e.g. http://127.0.0.1:8787) with `authorization` added when the
 * request carries none. Resolves to { url, requests, close }.
 */
export function startAuthProxy(target, authorization) {
  const upstream = new URL(target);
  let requests = 0;
  let self = '';
  const server = http.createServer((req, res) => {
    requests += 1;
    const headers = { ...req.headers };
    if (headers.host === self || headers.host === self.replace('127.0.0.1', 'localhost')) headers.host = upstream.host;
    if (!headers.authorization) headers.authorization = authorization;
    const out = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(out);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      self = `127.0.0.1:${port}`;
      resolve({
        url: `http://127.0.0.1:${port}`,
        get requests() { return requests; },
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

/** Runs the suite's CLI under this process's node (it needs Node 22). */
export function runConformance(root, args, { timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONFORMANCE_CLI(root), ...args], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** Every checks.json the suite wrote under `dir`. */
export function checkFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) found.push(...checkFiles(p));
    else if (name === 'checks.json') found.push(p);
  }
  return found;
}

/**
 * The checks of each scenario run under `dir`, keyed by the scenario's
 * directory name (the suite writes `<scenario>-<timestamp>/checks.json`).
 */
export function scenarioChecks(dir) {
  const out = {};
  for (const file of checkFiles(dir)) {
    const scenario = path.basename(path.dirname(file)).replace(/-\d{4}-\d{2}-\d{2}T.*$/, '');
    out[scenario] = JSON.parse(readFileSync(file, 'utf8'));
  }
  return out;
}

/** The server scenarios this suite version offers (`list`), by name. */
export async function serverScenarios(root) {
  const { output } = await runConformance(root, ['list'], { timeoutMs: 60_000 });
  const server = output.split(/Client scenarios/)[0];
  return [...server.matchAll(/^\s+- ([\w.-]+) \[([^\]]*)\]/gm)].map((m) => ({ name: m[1], versions: m[2].split(',') }));
}

/**
 * The suite's authorization server scenarios (all of them, in its order:
 * `authorization-code-grant` reads the metadata the first scenario
 * fetched, so it cannot run alone), with this process as the person at
 * the browser. The suite starts its callback server on
 * 127.0.0.1:`port`, prints the authorization URL and waits for the
 * redirect; `visit(url)` plays the person (signs in, or fills the key
 * page, and approves) and returns the Location the worker sent back,
 * which is then opened like a browser would, reaching the suite's
 * callback server. The suite then redeems the code itself and judges
 * the token response. Resolves to { code, signal, output, authorizationUrl,
 * location, callbackStatus }.
 */
export function runAuthorizationScenarios(root, { issuer, clientId, resource, port, outDir, visit, timeoutMs = 120_000 }) {
  const args = ['authorization', '--url', issuer, '--client-id', clientId,
    '--port', String(port), '-o', outDir];
  if (resource) args.push('--resource', resource);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CONFORMANCE_CLI(root), ...args], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' },
    });
    const result = { output: '' };
    let visiting;
    const prefix = `${issuer}/authorize?`;
    const onData = (d) => {
      result.output += d;
      if (visiting) return;
      const line = result.output.split('\n').find((l) => l.trim().startsWith(prefix));
      if (!line) return;
      result.authorizationUrl = line.trim();
      visiting = (async () => {
        result.location = await visit(result.authorizationUrl);
        // The browser lands on the suite's callback server.
        const back = await fetch(result.location, { redirect: 'manual' });
        result.callbackStatus = back.status;
        await back.text();
      })().catch((err) => {
        result.visitError = err;
        child.kill('SIGKILL');
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      await visiting;
      resolve({ ...result, code, signal });
    });
  });
}
