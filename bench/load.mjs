// The load test of issue 10 ("Proof"; not part of `npm test`):
// `npm run bench:load` runs the test build (build-test/) in workerd through
// Miniflare directly, as the benchmark does (bench/targets.mjs: wrangler.toml's
// bindings, KV and Durable Objects, but the production rate limits; the test
// identity hook on; the local IdP and the Plausible stand-in of devstack/),
// with no `wrangler dev` and no proxy of its own in front. Then it runs FLOWS
// (default 200) OAuth flows at once, each a client machine of its own (its
// sockets bound to its own loopback address in 127.100.0.0/16, so the
// per-address tiers count 200 machines; no request names an address in a
// header).
//
// Which socket: a direct socket (`unsafeDirectSockets`, the benchmark's)
// hands the worker the request as workerd read it, with no
// CF-Connecting-IP at all, so every flow would share the `unknown` bucket
// of the per-address tiers (src/limits.rs) and the test would measure a
// deployment nobody has. Miniflare's own entry socket, inside the same
// workerd, sets CF-Connecting-IP from the TCP peer's address, as
// Cloudflare's edge sets it from the visitor's; the flows use that
// socket. The test checks that the worker saw one address per machine
// (from its audit lines, with AUDIT_IP_FULL on) rather than trusting it.
//
//   DCR → /authorize (test identity hook) → /token → REFRESHES refreshes
//   (each chained on the last) → CALLS tool calls at /internal against
//   the Plausible stand-in, with the last access token.
//
// Beside them one abusive client registers from a single address, twice
// the registration tier's limit, as fast as it can. Asserted:
//   - no 5xx anywhere;
//   - every flow completed, its refresh chain intact (each refresh 200 with
//     a new pair, each tool call 200 with a result);
//   - the 200 flows never saw a 429; the abuser got exactly the
//     registration limit of 201s (or, if its run straddled a window of the
//     binding, at most twice that) and 429s with Retry-After after;
//   - the store (a dump of the files Miniflare persists) holds one client
//     per successful registration and one grant per flow.
// Prints a table of figures and exits non-zero when an assertion failed.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, buildConnector } from 'undici';
import { Miniflare } from 'miniflare';
import { ROOT, freePort } from '../devstack/stack.mjs';
import { startPlausibleStub } from '../devstack/plausible.mjs';
import { startIdp } from '../devstack/idp.mjs';
import { dumpState } from '../tests/attack/support/state.mjs';
import { ourWorker } from './targets.mjs';

const FLOWS = Number(process.env.LOAD_FLOWS ?? 200);
const REFRESHES = Number(process.env.LOAD_REFRESHES ?? 3);
const CALLS = Number(process.env.LOAD_CALLS ?? 3);
const REDIRECT = 'http://127.0.0.1:9/cb';

const LIMITS = Object.fromEntries([...readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8')
  .matchAll(/name = "(LIMIT_\w+)"[\s\S]*?simple = \{ limit = (\d+), period = (\d+) \}/g)]
  .map((m) => [m[1], { limit: Number(m[2]), period: Number(m[3]) }]));

/** Flow i's machine, and the abuser's: loopback addresses of their own. */
const address = (i) => `127.100.${Math.floor(i / 250)}.${1 + (i % 250)}`;
const ABUSER = '127.100.250.1';

/** Every request: route label, status, latency in ms, who sent it. */
const log = [];
const failures = [];

function machine(address) {
  const connect = buildConnector({});
  const agent = new Agent({
    connections: 4,
    connect(opts, cb) { return connect({ ...opts, localAddress: address }, cb); },
  });
  return {
    agent,
    async send(who, label, url, init = {}) {
      const started = performance.now();
      let res;
      let text;
      try {
        res = await fetch(url, { ...init, redirect: 'manual', dispatcher: agent });
        text = await res.text();
      } catch (err) {
        const ms = performance.now() - started;
        log.push({ who, label, status: 0, ms, at: performance.now() });
        // undici's "fetch failed" names the socket's error in its cause.
        const cause = err.cause ? ` (${err.cause.code ?? ''} ${err.cause.message ?? err.cause})` : '';
        throw new Error(`${label}: ${err.message}${cause} after ${Math.round(ms / 100) / 10} s`);
      }
      log.push({ who, label, status: res.status, ms: performance.now() - started });
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: res.status, headers: res.headers, text, json };
    },
  };
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

async function flow(base, i) {
  const who = 'flow';
  const m = machine(address(i));
  try {
    const reg = await m.send(who, 'POST /register', `${base}/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: `load ${i}`, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    expect(reg.status === 201, `register: ${reg.status} ${reg.text.slice(0, 200)}`);
    const clientId = reg.json.client_id;
    const { verifier, challenge } = pkce();
    const state = randomBytes(9).toString('base64url');
    const q = new URLSearchParams({
      response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256',
      state, scope: 'mcp', resource: `${base}/internal`,
    });
    const auth = await m.send(who, 'GET /authorize', `${base}/authorize?${q}`, { headers: { 'x-test-identity': `load-${i}@example.com` } });
    expect(auth.status === 302, `authorize: ${auth.status} ${auth.text.slice(0, 200)}`);
    const back = new URL(auth.headers.get('location'));
    expect(back.searchParams.get('state') === state, 'authorize: state');
    const code = back.searchParams.get('code');
    const form = (fields) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
    const tok = await m.send(who, 'POST /token (code)', `${base}/token`, form({
      grant_type: 'authorization_code', code, client_id: clientId, redirect_uri: REDIRECT, code_verifier: verifier, resource: `${base}/internal`,
    }));
    expect(tok.status === 200, `token: ${tok.status} ${tok.text.slice(0, 200)}`);
    let { access_token: access, refresh_token: refresh } = tok.json;
    const seen = new Set([access, refresh]);
    for (let r = 0; r < REFRESHES; r++) {
      const got = await m.send(who, 'POST /token (refresh)', `${base}/token`, form({ grant_type: 'refresh_token', refresh_token: refresh, client_id: clientId }));
      expect(got.status === 200, `refresh ${r + 1}: ${got.status} ${got.text.slice(0, 200)}`);
      expect(!seen.has(got.json.access_token) && !seen.has(got.json.refresh_token), `refresh ${r + 1}: a pair seen before`);
      ({ access_token: access, refresh_token: refresh } = got.json);
      seen.add(access).add(refresh);
    }
    for (let c = 0; c < CALLS; c++) {
      const body = JSON.stringify({
        jsonrpc: '2.0', id: c + 1, method: 'tools/call',
        params: { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: `2024-0${1 + (c % 9)}-01,2024-0${1 + (c % 9)}-28` } },
      });
      const got = await m.send(who, 'POST /internal (tools/call)', `${base}/internal`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${access}` },
        body,
      });
      expect(got.status === 200 && got.json?.result && got.json.result.isError !== true, `tool call ${c + 1}: ${got.status} ${got.text.slice(0, 200)}`);
    }
    return { i, clientId, ok: true };
  } catch (err) {
    failures.push(`flow ${i}: ${err.message}`);
    return { i, ok: false };
  } finally {
    await m.agent.close();
  }
}

/** One address registering as fast as it can, twice its tier's limit. */
async function abuser(base) {
  const m = machine(ABUSER);
  const { limit, period } = LIMITS.LIMIT_REGISTRATIONS;
  const window = Math.floor(Date.now() / (period * 1000));
  const out = { created: 0, limited: 0, other: 0, retryAfter: new Set(), firstLimitedAt: null };
  const n = 2 * limit + 20;
  await Promise.all(Array.from({ length: 4 }, async (_, lane) => {
    for (let k = lane; k < n; k += 4) {
      let r;
      try {
        r = await m.send('abuser', 'POST /register (abuser)', `${base}/register`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: `abuse ${k}`, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
        });
      } catch (err) {
        // A dropped connection: logged as status 0 (a failure), and on.
        failures.push(`abuser: ${err.message}`);
        out.other++;
        continue;
      }
      if (r.status === 201) out.created++;
      else if (r.status === 429) { out.limited++; out.retryAfter.add(r.headers.get('retry-after')); }
      else out.other++;
    }
  }));
  out.sameWindow = Math.floor(Date.now() / (period * 1000)) === window;
  await m.agent.close();
  return out;
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : 0);

function table(rows, header) {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => `| ${cells.map((v, c) => String(v).padEnd(widths[c])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main() {
  if (!existsSync(path.join(ROOT, 'build-test/index.js'))) {
    execFileSync('bash', [path.join(ROOT, 'scripts/build.sh'), '--test'], { cwd: ROOT, stdio: 'inherit' });
  }
  const persistTo = mkdtempSync(path.join(os.tmpdir(), 'plausible-mcp-load-'));
  const plausible = await startPlausibleStub({ apiKeys: ['plausible-test-key', 'plausible-shared-key'] });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const upstream = { clientId: 'plausible-mcp-load', clientSecret: 'load-upstream-client-secret' };
  const idp = await startIdp({ ...upstream, redirectUris: () => [`${base}/callback`] });
  // The worker's output: its audit lines (one per request, with the client
  // address) are read after the run; LOAD_STACK_LOGS=1 also prints them.
  let stdout = '';
  let stderr = '';
  const mf = new Miniflare({
    host: '127.0.0.1',
    port,
    // As `wrangler dev --persist-to` lays the files out, for dumpState.
    defaultPersistRoot: path.join(persistTo, 'v3'),
    handleRuntimeStdio(out, err) {
      out.on('data', (d) => { stdout += d; if (process.env.LOAD_STACK_LOGS) process.stdout.write(d); });
      err.on('data', (d) => { stderr += d; if (process.env.LOAD_STACK_LOGS) process.stderr.write(d); });
    },
    workers: [ourWorker({
      // wrangler.toml's name: the Durable Objects' files are named after it.
      name: 'plausible-mcp',
      plausibleUrl: plausible.url, idp, upstream,
      bundleDir: 'build-test', rateLimits: 'production', directSocket: false,
      vars: { TEST_IDENTITY_HOOK: 'enabled', AUDIT_IP_FULL: 'true' },
    })],
  });
  await mf.ready;
  let code = 0;
  try {
    // Warm the isolate (the first request compiles the module).
    await fetch(`${base}/health`).then((r) => r.text());
    const loadBefore = os.loadavg()[0];
    const started = performance.now();
    const [results, abuse] = await Promise.all([
      Promise.all(Array.from({ length: FLOWS }, (_, i) => flow(base, i))),
      abuser(base),
    ]);
    const seconds = (performance.now() - started) / 1000;

    // The store: clients and grants as the worker wrote them.
    const state = dumpState(persistTo);
    const keys = [...state.keys()];
    const clients = keys.filter((k) => /^kv:client:/.test(k)).length;
    const grants = keys.filter((k) => /\/_cf_KV\/grant[:_]/.test(k)).length;
    // One refresh-token record per link of each chain (the first and each rotation).
    const chainLinks = keys.filter((k) => /\/_cf_KV\/rt[:_]/.test(k)).length;
    const kinds = new Map();
    for (const k of keys) {
      const kind = k.startsWith('kv:') ? `kv:${k.slice(3).split(/[:_]/)[0]}` : `do:${k.split('/')[0].slice(3)}/${(k.split('/_cf_KV/')[1] ?? '').split(/[:_]/)[0]}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }

    const okFlows = results.filter((r) => r.ok).length;
    // Every answer the store must account for, and nothing more: a
    // request that failed must have left nothing half-written.
    const ok = (label, status) => log.filter((e) => e.label === label && e.status === status).length;
    const created = ok('POST /register', 201) + ok('POST /register (abuser)', 201);
    const redeemed = ok('POST /token (code)', 200);
    const refreshed = ok('POST /token (refresh)', 200);
    const flowLog = log.filter((e) => e.who === 'flow');
    const statuses = (entries) => [...entries.reduce((m, e) => m.set(e.status, (m.get(e.status) ?? 0) + 1), new Map())]
      .sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    const labels = [...new Set(log.map((e) => e.label))];
    const rows = labels.map((label) => {
      const es = log.filter((e) => e.label === label);
      const ms = es.map((e) => e.ms).sort((a, b) => a - b);
      return [label, es.length, statuses(es), pct(ms, 50).toFixed(1), pct(ms, 99).toFixed(1), ms.at(-1).toFixed(1)];
    });
    const allMs = log.map((e) => e.ms).sort((a, b) => a - b);
    rows.push(['all', log.length, statuses(log), pct(allMs, 50).toFixed(1), pct(allMs, 99).toFixed(1), allMs.at(-1).toFixed(1)]);

    // The addresses the worker saw: every 127.100/16 address its audit
    // lines name (the flows' and the abuser's; nothing else uses that range).
    const seen = new Set(stdout.match(/127\.100\.\d+\.\d+/g) ?? []);
    const expected = new Set([...Array.from({ length: FLOWS }, (_, i) => address(i)), ABUSER]);
    const strangers = [...seen].filter((a) => !expected.has(a));
    const unseen = [...expected].filter((a) => !seen.has(a));

    console.log(`\nLoad test: ${FLOWS} concurrent OAuth flows (DCR → authorize → token → ${REFRESHES} refreshes → ${CALLS} tool calls at /internal), each from its own loopback address, + 1 abusive registrar; production limits; the test build in workerd through Miniflare (no wrangler dev).`);
    console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load average (1 min) before/after ${loadBefore.toFixed(2)} / ${os.loadavg()[0].toFixed(2)}; node ${process.version}\n`);
    console.log(table(rows, ['route', 'requests', 'statuses', 'p50 ms', 'p99 ms', 'max ms']));
    console.log('');
    console.log(table([
      ['flows completed', `${okFlows} / ${FLOWS}`],
      ['requests (all)', log.length],
      ['duration', `${seconds.toFixed(1)} s`],
      ['throughput', `${(log.length / seconds).toFixed(0)} req/s`],
      ['5xx (or a dropped connection)', log.filter((e) => e.status >= 500 || e.status === 0).length],
      ['client addresses the worker saw', `${seen.size} (machines: ${expected.size}; unseen ${unseen.length}, others ${strangers.length})`],
      ['429 seen by the flows', flowLog.filter((e) => e.status === 429).length],
      ['abuser: 201 / 429 / other', `${abuse.created} / ${abuse.limited} / ${abuse.other} (limit ${LIMITS.LIMIT_REGISTRATIONS.limit} per ${LIMITS.LIMIT_REGISTRATIONS.period} s; one window: ${abuse.sameWindow})`],
      ['stored clients', `${clients} (201 answers: ${created})`],
      ['stored grants', `${grants} (code redemptions answered 200: ${redeemed})`],
      ['stored refresh-chain links', `${chainLinks} (redemptions + refreshes answered 200: ${redeemed + refreshed})`],
      ['stored entries by kind', [...kinds].sort().map(([k, n]) => `${k} ${n}`).join(', ')],
    ], ['figure', 'value']));

    const problems = [...failures];
    if (log.some((e) => e.status >= 500 || e.status === 0)) problems.push('a 5xx or a dropped connection');
    if (okFlows !== FLOWS) problems.push(`${FLOWS - okFlows} flows failed`);
    if (unseen.length || strangers.length) problems.push(`the worker saw ${seen.size} client addresses, not the ${expected.size} machines`);
    if (flowLog.some((e) => e.status === 429)) problems.push('a flow was rate limited');
    const { limit, period } = LIMITS.LIMIT_REGISTRATIONS;
    if (abuse.sameWindow ? abuse.created !== limit : abuse.created > 2 * limit || abuse.created < limit) problems.push(`the abuser created ${abuse.created} clients`);
    if (abuse.limited === 0 || abuse.other !== 0) problems.push('the abuser was not limited cleanly');
    if ([...abuse.retryAfter].some((v) => v !== String(period))) problems.push(`Retry-After ${[...abuse.retryAfter]}`);
    if (clients !== created) problems.push(`stored clients ${clients}, 201 answers ${created}`);
    if (grants !== redeemed) problems.push(`stored grants ${grants}, redemptions ${redeemed}`);
    if (chainLinks !== redeemed + refreshed) problems.push(`stored refresh-chain links ${chainLinks}, answered ${redeemed + refreshed}`);
    if (problems.length) {
      code = 1;
      const distinct = [...new Set(problems.map((p) => p.replace(/^flow \d+: /, 'flow N: ').replace(/ after [\d.]+ s$/, '')))];
      const drops = log.filter((e) => e.status === 0).map((e) => e.ms / 1000).sort((a, b) => a - b);
      if (drops.length) {
        // When they ended, from the start of the run: one moment, or spread.
        const ends = log.filter((e) => e.status === 0).map((e) => (e.at - started) / 1000).sort((a, b) => a - b);
        console.log(`\ndropped connections: in flight for ${drops[0].toFixed(1)}–${drops.at(-1).toFixed(1)} s (median ${drops[drops.length >> 1].toFixed(1)}), ended ${ends[0].toFixed(2)}–${ends.at(-1).toFixed(2)} s into the run`);
      }
      console.log(`\nFAILED (${problems.length} problems; distinct):\n  ${distinct.slice(0, 20).join('\n  ')}`);
      if (stderr.trim()) console.log(`\nworkerd's stderr (last 2000 characters):\n${stderr.slice(-2000)}`);
    } else {
      console.log('\nOK: zero 5xx, every flow and grant accounted for, the registration tier held for the abuser and never touched the flows.');
    }
  } finally {
    await mf.dispose();
    await plausible.close();
    await idp.close();
    rmSync(persistTo, { recursive: true, force: true });
  }
  process.exit(code);
}

await main();
