// The three targets of the benchmark, as Miniflare worker options: our
// release build as wrangler.toml configures it, the TypeScript peer on
// `@cloudflare/workers-oauth-provider`, and the no-auth limit worker. Each
// gets its own direct socket (`unsafeDirectSockets`), so requests reach the
// worker without Miniflare's entry worker or wrangler's dev proxy.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { ROOT } from '../devstack/stack.mjs';

/**
 * The bench configuration of rate limits. Every `[[ratelimits]]` binding
 * that wrangler.toml declares is given to the bench's workerd with this
 * limit instead of the deployment's, so the bench's single credential is
 * never throttled. This lives only here, in the bench's own Miniflare
 * options: nothing in the worker reads a "bench mode", and no variable or
 * flag a deployment could leave on raises a limit. (Issue 10 adds the
 * bindings; this picks them up by name without further change.)
 */
export const BENCH_RATE_LIMIT = { limit: 1_000_000_000, period: 60 };

/**
 * The worker's vars for the bench: those of devstack/stack.mjs, without
 * TEST_IDENTITY_HOOK (tokens come from real sign-ins).
 */
function ourVars({ plausibleUrl, idp, upstream }) {
  return {
    PLAUSIBLE_BASE_URL: plausibleUrl,
    MCP_ALLOWED_HOSTNAMES: 'localhost,127.0.0.1',
    MCP_ALLOWED_ORIGIN_HOSTNAMES: 'localhost,127.0.0.1',
    PLAUSIBLE_API_KEY: 'plausible-shared-key',
    PLAUSIBLE_SITES: 'example.com:Etc/UTC,shop.example.com:Europe/Berlin,trends.example.com',
    ALLOWED_EMAIL_DOMAIN: 'example.com',
    COOKIE_SECRET: 'bench-cookie-secret-not-for-production-0123456789',
    // Without it nobody can sign in (issue 9's user keys, routing ids, tags).
    USER_KEY_SECRET: 'bench-user-key-secret-not-for-production-0123456789',
    // The local OpenID provider and Plausible stand-in speak plain http on
    // 127.0.0.1; this var (not a build flag) allows loopback http.
    DEV_ALLOW_LOOPBACK: 'true',
    ACCESS_ISSUER: idp.issuer,
    ACCESS_CLIENT_ID: upstream.clientId,
    ACCESS_CLIENT_SECRET: upstream.clientSecret,
  };
}

/**
 * Our worker, configured from wrangler.toml: the release build (build/) by
 * default, or another bundle directory (the load test runs the test build,
 * build-test/). `rateLimits: 'bench'` (the default) gives every binding
 * BENCH_RATE_LIMIT; `'production'` keeps wrangler.toml's own limits.
 * `directSocket: false` leaves the worker on Miniflare's entry socket only.
 */
export function ourWorker({
  name = 'us', port, plausibleUrl, idp, upstream, vars = {},
  bundleDir = 'build', rateLimits = 'bench', directSocket = true,
}) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, 'wrangler.toml'));
  const ratelimits = rateLimits === 'production'
    ? workerOptions.ratelimits
    : Object.fromEntries(
      Object.keys(workerOptions.ratelimits ?? {}).map((binding) => [binding, { simple: { ...BENCH_RATE_LIMIT } }]),
    );
  return {
    ...workerOptions,
    name,
    modules: true,
    scriptPath: path.join(ROOT, bundleDir, 'index.js'),
    modulesRoot: path.join(ROOT, bundleDir),
    bindings: { ...workerOptions.bindings, ...ourVars({ plausibleUrl, idp, upstream }), ...vars },
    ratelimits,
    ...(directSocket ? { unsafeDirectSockets: [{ host: '127.0.0.1', port }] } : {}),
  };
}

/**
 * Bundles bench/peer/<entry>.ts with the esbuild that wrangler brings,
 * minified like a deployment. Returns the bundle's text.
 */
export function bundle(entry) {
  return execFileSync(path.join(ROOT, 'node_modules/.bin/esbuild'), [
    path.join(ROOT, 'bench/peer', `${entry}.ts`),
    '--bundle', '--format=esm', '--platform=neutral', '--main-fields=module,main',
    '--conditions=workerd,worker,browser', '--target=es2022', '--minify',
    '--external:cloudflare:workers', '--log-level=warning',
  ], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** A JS worker from a bundle, with our compatibility date and flags. */
function jsWorker({ name, script, port, bindings, kv }) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, 'wrangler.toml'));
  return {
    name,
    modules: [{ type: 'ESModule', path: path.join(ROOT, 'bench/peer', `${name}.mjs`), contents: script }],
    compatibilityDate: workerOptions.compatibilityDate,
    compatibilityFlags: workerOptions.compatibilityFlags,
    bindings,
    ...(kv ? { kvNamespaces: { OAUTH_KV: { id: `bench-${name}` } } } : {}),
    unsafeDirectSockets: [{ host: '127.0.0.1', port }],
  };
}

export function peerWorker({ port, script, toolsListBody }) {
  return jsWorker({
    name: 'peer', script, port, kv: true,
    bindings: { ORIGIN: `http://127.0.0.1:${port}`, TOOLS_LIST_BODY: toolsListBody },
  });
}

export function limitWorker({ port, script, toolsListBody }) {
  return jsWorker({ name: 'limit', script, port, bindings: { TOOLS_LIST_BODY: toolsListBody } });
}

/** The pids of workerd processes that this process started (Miniflare does not expose them). */
export function workerdPids() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'workerd' && ppid === process.pid) pids.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

const CLK_TCK = 100; // USER_HZ on Linux
/** utime + stime of a process (all its threads), in milliseconds. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Resident and peak resident memory of a process, in KiB. */
export function memoryKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
