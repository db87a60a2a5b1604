// Starts the whole local stack: the Plausible stand-in and the real worker
// in workerd (through `wrangler dev`), on 127.0.0.1 only. Used by
// `npm run dev` (devstack/start.mjs) and by the end-to-end tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startPlausibleStub } from './plausible.mjs';
import { startIdp } from './idp.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A wrangler configuration that runs the bundle already built in
 * `bundleDir` (e.g. build-test/, the test build): today's wrangler.toml
 * with `main` pointing there and no build command. It is written into a
 * directory of its own, so each wrangler has its own `.wrangler/` and no
 * file another one watches changes. Returns its path, for
 * `startStack({ config })`; the caller may remove its directory after.
 */
export function bundleConfig(bundleDir) {
  const dir = path.resolve(ROOT, bundleDir);
  const toml = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8')
    .replace(/^\[build\]\n(?:(?!\[).*\n)*/m, '')
    .replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(dir, 'index.js'))}`);
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'plausible-mcp-config-')), 'wrangler.toml');
  writeFileSync(config, toml);
  return config;
}

async function waitForHealth(url, child, deadlineMs) {
  const started = Date.now();
  let lastError;
  while (Date.now() - started < deadlineMs) {
    if (child.exitCode !== null) {
      throw new Error(`wrangler exited with ${child.exitCode} before the worker was ready`);
    }
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
      lastError = new Error(`health answered ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`worker not ready after ${deadlineMs} ms: ${lastError?.message}`);
}

/**
 * @param {object} opts
 * @param {number} [opts.port] worker port (0 = pick one)
 * @param {string} opts.persistTo directory for local KV / Durable Objects
 * @param {Record<string,string>} [opts.vars] extra worker vars
 * @param {boolean} [opts.build] let wrangler run the build command
 * @param {string} [opts.config] a wrangler configuration other than the
 *   repository's (e.g. from `bundleConfig`, or an earlier release's)
 * @param {string} [opts.bundle] a built bundle directory to run (through
 *   `bundleConfig`); default: $PLAUSIBLE_MCP_BUNDLE, which the
 *   end-to-end harness sets to build-test for every stack it starts
 * @param {'inherit'|'pipe'} [opts.stdio]
 * @param {string} [opts.logLevel] wrangler's --log-level; default `warn`
 *   when piped. The worker's `console.log` (the audit trail) shows only
 *   at `log` or `debug`: a test reading audit lines asks for `log`.
 */
export async function startStack(options = {}) {
  // A port found free can be taken by another process before wrangler
  // binds it; with chosen-by-us ports, try again on fresh ones. Wrangler
  // also picks loopback ports of its own for the runtime; when one of
  // those races, all it reports is "The Workers runtime failed to start"
  // (seen once in a full run, and the same bundle started at once by
  // hand), so that is retried too, said on stderr, and a third failure
  // still fails the test.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startStackOnce(options);
    } catch (err) {
      const portRace = /EADDRINUSE|Address already in use/.test(err.message);
      const runtimeStart = /The Workers runtime failed to start/.test(err.message);
      if (!(portRace || runtimeStart) || options.port || attempt >= 3) throw err;
      process.stderr.write(`startStack: attempt ${attempt} failed (${portRace ? 'port taken' : 'runtime did not start'}); trying fresh ports\n`);
    }
  }
}

async function startStackOnce({
  port = 0, persistTo, vars = {}, build = false, stdio = 'pipe', logLevel,
  config, bundle = config ? undefined : process.env.PLAUSIBLE_MCP_BUNDLE || undefined,
} = {}) {
  const ownConfig = bundle ? bundleConfig(bundle) : undefined;
  config = ownConfig ?? config;
  const plausible = await startPlausibleStub({
    port: Number(process.env.PLAUSIBLE_STUB_PORT ?? 0),
    apiKeys: ['plausible-test-key', 'plausible-shared-key'],
  });
  const workerPort = port || (await freePort());
  const inspectorPort = await freePort();
  const workerUrl = `http://127.0.0.1:${workerPort}`;
  // The upstream OpenID provider, standing in for Cloudflare Access.
  const upstream = { clientId: 'plausible-mcp-local', clientSecret: 'local-upstream-client-secret' };
  const idp = await startIdp({
    ...upstream,
    redirectUris: () => [`${workerUrl}/callback`, `http://localhost:${workerPort}/callback`],
  });
  const allVars = {
    PLAUSIBLE_BASE_URL: plausible.url,
    MCP_ALLOWED_HOSTNAMES: 'localhost,127.0.0.1',
    MCP_ALLOWED_ORIGIN_HOSTNAMES: 'localhost,127.0.0.1',
    // The shared key /internal queries with (the stand-in accepts it).
    PLAUSIBLE_API_KEY: 'plausible-shared-key',
    // What list_sites shows on /internal: the shared key cannot use the Sites API.
    PLAUSIBLE_SITES: 'example.com:Etc/UTC,shop.example.com:Europe/Berlin,trends.example.com',
    ALLOWED_EMAIL_DOMAIN: 'example.com',
    // Local development only: a fixed, public, throwaway value.
    COOKIE_SECRET: 'local-development-cookie-secret-not-for-production',
    USER_KEY_SECRET: 'local-development-user-key-secret-not-for-production',
    // Client metadata documents may be served from 127.0.0.1 locally.
    DEV_ALLOW_LOOPBACK: 'true',
    ACCESS_ISSUER: idp.issuer,
    ACCESS_CLIENT_ID: upstream.clientId,
    ACCESS_CLIENT_SECRET: upstream.clientSecret,
    ...vars,
  };
  const args = [
    path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
    'dev',
    '--ip', '127.0.0.1',
    '--port', String(workerPort),
    '--inspector-port', String(inspectorPort),
    '--persist-to', persistTo,
    ...(config ? ['--config', config] : []),
    '--show-interactive-dev-session=false',
    '--log-level', logLevel ?? (stdio === 'inherit' ? 'info' : 'warn'),
  ];
  for (const [k, v] of Object.entries(allVars)) args.push('--var', `${k}:${v}`);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', stdio, stdio],
    detached: true,
    env: {
      ...process.env,
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
      PLAUSIBLE_MCP_SKIP_BUILD: build ? '' : '1',
    },
  });
  let output = '';
  if (stdio === 'pipe') {
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
  }
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
      await exited;
      clearTimeout(timer);
    }
    await plausible.close();
    await idp.close();
    if (ownConfig) rmSync(path.dirname(ownConfig), { recursive: true, force: true });
  };
  try {
    await waitForHealth(workerUrl, child, build ? 600_000 : 60_000);
  } catch (err) {
    await stop();
    err.message += `\n--- wrangler output ---\n${output}`;
    throw err;
  }
  return { workerUrl, plausible, idp, upstream, stop, output: () => output };
}
