// The benchmark of issue 12 (`npm run bench`, through bench/run.sh).
//
// Every target runs in the same workerd (one Miniflare), each on its own
// direct socket, and is measured one at a time with wrk: a warm-up, then
// c=16 and c=64, three repetitions (interleaved, so drift of the machine
// spreads over all targets), medians with min–max. Only answers with the
// expected status and exact body length count. Then: workerd's CPU time per
// request, full sign-in flows and refreshes per second, cold starts, sizes,
// and workerd's resident memory. Prints tables; asserts only that every
// measured answer was the expected one.
//
// Knobs (environment): BENCH_SECONDS (10), BENCH_REPS (3),
// BENCH_CONNECTIONS ("16,64"), BENCH_WARMUP_SECONDS (2), BENCH_FLOWS (40),
// BENCH_REFRESHES (400), BENCH_COLD_STARTS (3), BENCH_ONLY (a regexp on
// scenario names), BENCH_JSON (a path for the raw figures).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { ROOT, freePort } from '../devstack/stack.mjs';
import { startPlausibleStub } from '../devstack/plausible.mjs';
import { startIdp } from '../devstack/idp.mjs';
import { ourFlow, peerFlow, refresh, rate } from './oauth.mjs';
import { bundle, cpuMs, limitWorker, memoryKiB, ourWorker, peerWorker, workerdPids } from './targets.mjs';
import { runWrk } from './wrk.mjs';

const num = (name, dflt) => Number(process.env[name] ?? dflt);
const SECONDS = num('BENCH_SECONDS', 10);
const REPS = num('BENCH_REPS', 3);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const FLOWS = num('BENCH_FLOWS', 40);
const REFRESHES = num('BENCH_REFRESHES', 400);
const COLD_STARTS = num('BENCH_COLD_STARTS', 3);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;

const log = (...a) => console.error('bench:', ...a);
// GNU gzip, as the test command's size line uses (zlib's level 9 differs).
const gzip9 = (buf) => execFileSync('gzip', ['-9c'], { input: buf, maxBuffer: 64 << 20 }).length;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Busy and total jiffies of all CPUs, from /proc/stat. */
function cpuTotals() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const started = performance.now();
const upstream = { clientId: 'plausible-mcp-bench', clientSecret: 'bench-upstream-client-secret' };
const ports = { us: await freePort(), cached: await freePort(), peer: await freePort(), limit: await freePort() };
// The stand-in enforces Plausible's 600 requests per key and hour; the
// bench's stand-in allows any number (its own configuration, like the
// rate limits of the worker's bindings).
const plausible = await startPlausibleStub({ apiKeys: ['plausible-test-key', 'plausible-shared-key'], hourlyLimit: Number.MAX_SAFE_INTEGER });
const idp = await startIdp({ ...upstream, redirectUris: () => [`http://127.0.0.1:${ports.us}/callback`, `http://127.0.0.1:${ports.cached}/callback`] });
const base = Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, `http://127.0.0.1:${p}`]));
// Two instances of our worker: `us` with the upstream cache and the token
// memory off, so every tools/call reaches the Plausible stand-in (the path
// the 2 ms CPU target is about) and every /internal request reads its
// token record, and `us+cache` as deployed by default (PLAUSIBLE_CACHE_TTL
// and TOKEN_CACHE_SECONDS unset: 60 s each), whose repeated tools/call are
// cache hits and whose token records come from the isolate's memory.
const ours = (port = ports.us) => ourWorker({ port, plausibleUrl: plausible.url, idp, upstream, vars: { PLAUSIBLE_CACHE_TTL: '0', TOKEN_CACHE_SECONDS: '0' } });
const oursCached = (port = ports.cached) => ourWorker({ name: 'us-cache', port, plausibleUrl: plausible.url, idp, upstream });
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
const toolsList = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const breakdown = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'tools/call',
  params: { name: 'get_breakdown', arguments: { site_id: 'example.com', date_range: '30d', dimension: 'event:page' } },
});

// 1. Our tools/list body, as /internal sends it, for the peer and the limit
//    worker to answer byte for byte. Taken from a workerd of our worker
//    alone, with a token from a real sign-in.
log('capturing our /internal tools/list body');
let ourBody;
{
  const mf = new Miniflare({ workers: [ours()] });
  await mf.ready;
  const grant = await ourFlow(base.us);
  const res = await fetch(`${base.us}/internal`, { method: 'POST', headers: { ...mcpHeaders, authorization: `Bearer ${grant.accessToken}` }, body: toolsList });
  ourBody = await res.text();
  if (res.status !== 200) throw new Error(`our tools/list answered ${res.status}: ${ourBody.slice(0, 200)}`);
  await mf.dispose();
}

// 2. One workerd with every target (our worker twice: cache off and on).
const scripts = { peer: bundle('index'), limit: bundle('limit') };
const mf = new Miniflare({
  workers: [
    ours(),
    oursCached(),
    peerWorker({ port: ports.peer, script: scripts.peer, toolsListBody: ourBody }),
    limitWorker({ port: ports.limit, script: scripts.limit, toolsListBody: ourBody }),
  ],
});
await mf.ready;
const [workerd] = workerdPids();
if (!workerd) throw new Error('workerd process not found');
log(`workerd pid ${workerd}; us ${base.us}, us+cache ${base.cached}, peer ${base.peer}, limit ${base.limit}`);

const usGrant = await ourFlow(base.us);
const cachedGrant = await ourFlow(base.cached);
const peerGrant = await peerFlow(base.peer);
const bearer = (t) => ({ authorization: `Bearer ${t}` });

/** Every measured request; `expect` is filled in from a first answer. */
const scenarios = [
  { target: 'us', name: 'POST /internal tools/list', url: `${base.us}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(usGrant.accessToken) }, body: toolsList, status: 200, same: true },
  { target: 'us+cache', name: 'POST /internal tools/list', url: `${base.cached}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(cachedGrant.accessToken) }, body: toolsList, status: 200, same: true },
  { target: 'us', name: 'POST /internal tools/call get_breakdown', url: `${base.us}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(usGrant.accessToken) }, body: breakdown, status: 200 },
  { target: 'us+cache', name: 'POST /internal tools/call get_breakdown', url: `${base.cached}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(cachedGrant.accessToken) }, body: breakdown, status: 200, lengthSlack: 4 },
  { target: 'us', name: 'POST /mcp tools/list (own key)', url: `${base.us}/mcp`, method: 'POST', headers: { ...mcpHeaders, ...bearer('plausible-test-key') }, body: toolsList, status: 200 },
  { target: 'us', name: 'POST /mcp tools/call get_breakdown', url: `${base.us}/mcp`, method: 'POST', headers: { ...mcpHeaders, ...bearer('plausible-test-key') }, body: breakdown, status: 200 },
  { target: 'us+cache', name: 'POST /mcp tools/call get_breakdown', url: `${base.cached}/mcp`, method: 'POST', headers: { ...mcpHeaders, ...bearer('plausible-test-key') }, body: breakdown, status: 200, lengthSlack: 4 },
  { target: 'us', name: '/internal malformed token → 401', url: `${base.us}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer('not-a-token') }, body: toolsList, status: 401 },
  { target: 'us', name: '/internal unknown token → 401', url: `${base.us}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(`pmcp_at_${randomBytes(32).toString('base64url')}`) }, body: toolsList, status: 401 },
  { target: 'us', name: 'GET /health', url: `${base.us}/health`, method: 'GET', headers: {}, status: 200 },
  { target: 'peer', name: 'POST /internal tools/list', url: `${base.peer}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(peerGrant.accessToken) }, body: toolsList, status: 200, same: true },
  { target: 'peer', name: '/internal malformed token → 401', url: `${base.peer}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer('not-a-token') }, body: toolsList, status: 401 },
  { target: 'peer', name: '/internal unknown token → 401', url: `${base.peer}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(`bench-user:${randomBytes(12).toString('base64url')}:${randomBytes(32).toString('base64url')}`) }, body: toolsList, status: 401 },
  { target: 'limit', name: 'POST tools/list (no auth)', url: `${base.limit}/internal`, method: 'POST', headers: mcpHeaders, body: toolsList, status: 200, same: true },
].filter((s) => !ONLY || ONLY.test(`${s.target} ${s.name}`));

for (const s of scenarios) {
  const res = await fetch(s.url, { method: s.method, headers: s.headers, body: s.body });
  const text = await res.text();
  if (res.status !== s.status) throw new Error(`${s.target} ${s.name}: expected ${s.status}, got ${res.status}: ${text.slice(0, 200)}`);
  if (s.same && text !== ourBody) throw new Error(`${s.target} ${s.name}: the tools/list body differs from ours`);
  // A JSON-RPC answer must be a result, and a tool call no tool error:
  // those come with status 200 too, and would count as successes.
  if (s.status === 200 && s.method === 'POST') {
    const message = JSON.parse(text);
    if (!message.result || message.result.isError) throw new Error(`${s.target} ${s.name}: not a successful result: ${text.slice(0, 300)}`);
  }
  s.expectStatus = s.status;
  if (s.method === 'POST' && s.status === 200) s.reject = '"isError":true';
  s.expectLength = Buffer.byteLength(text);
  s.runs = Object.fromEntries(CONNECTIONS.map((c) => [c, []]));
}

// 3. Throughput, latency and CPU per request.
const foreign = [];
for (let rep = 1; rep <= REPS; rep++) {
  for (const s of scenarios) {
    for (const c of CONNECTIONS) {
      if (rep === 1 && WARMUP > 0) {
        // Not measured, but not hidden either: a warm-up's socket errors or
        // unexpected answers are the same symptom as a measured run's.
        const w = await runWrk(s, { connections: c, seconds: WARMUP, workerdPid: workerd });
        const bad = w.unexpected + w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout;
        if (bad) log(`warm-up ${s.target} ${s.name} c=${c}: ${bad} unexpected (${JSON.stringify({ ...w.errors, by_status: w.by_status })})`);
      }
      plausible.requests.length = 0; // the stand-in keeps every request
      const before = cpuTotals();
      const selfBefore = process.cpuUsage();
      const r = await runWrk(s, { connections: c, seconds: SECONDS, workerdPid: workerd });
      const self = process.cpuUsage(selfBefore);
      const after = cpuTotals();
      // CPU used by neither workerd, wrk nor this process (which serves the
      // Plausible stand-in), in cores: other work on the machine.
      const wall = r.duration_us / 1e6;
      const busyMs = ((after.busy - before.busy) * 1000) / 100;
      const selfMs = (self.user + self.system) / 1000;
      r.benchProcessCores = selfMs / 1000 / wall;
      const others = (busyMs - r.workerdCpuMs - selfMs) / 1000 / wall - r.wrkCpuShare;
      foreign.push(others);
      r.othersCores = others;
      s.runs[c].push(r);
      log(`rep ${rep} ${s.target.padEnd(5)} ${s.name.padEnd(40)} c=${String(c).padEnd(3)} ${r.rps.toFixed(0).padStart(6)} req/s`
        + `  p99 ${(r.latency_us.p99 / 1000).toFixed(1)} ms  cpu ${r.cpuPerRequestMs.toFixed(3)} ms/req`
        + `  wrk ${(r.wrkCpuShare * 100).toFixed(0)}%  others ${others.toFixed(2)} cores  unexpected ${r.unexpected + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout}`);
    }
  }
}

// 4. Full sign-in flows and refreshes per second.
log('flows and refreshes');
const grants = [];
const flowRate = await rate(FLOWS, 4, async () => grants.push(await ourFlow(base.us)));
const peerGrants = [];
const peerFlowRate = await rate(FLOWS, 4, async () => peerGrants.push(await peerFlow(base.peer)));
const lanes = 8;
const usLanes = grants.slice(0, lanes);
const refreshRate = await rate(REFRESHES, usLanes.length, async (lane) => { usLanes[lane] = await refresh(base.us, usLanes[lane]); });
const peerLanes = peerGrants.slice(0, lanes);
const peerRefreshRate = await rate(REFRESHES, peerLanes.length, async (lane) => { peerLanes[lane] = await refresh(base.peer, peerLanes[lane]); });
// The refreshed tokens work (a refresh that answered 200 with a dead token would be no refresh).
for (const [b, g] of [[base.us, usLanes[0]], [base.peer, peerLanes[0]]]) {
  const res = await fetch(`${b}/internal`, { method: 'POST', headers: { ...mcpHeaders, ...bearer(g.accessToken) }, body: toolsList });
  if (res.status !== 200 || (await res.text()) !== ourBody) throw new Error(`a refreshed token of ${b} does not work (${res.status})`);
}

const memory = memoryKiB(workerd);
const workerdCpuTotal = cpuMs(workerd);
await mf.dispose();

// 5. Cold starts: a fresh workerd with one target, time to its first answer.
log('cold starts');
async function coldStart(make, probe) {
  const times = [];
  for (let i = 0; i < COLD_STARTS; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const cold = new Miniflare({ workers: [make(port)] });
    await cold.ready;
    const ready = performance.now() - t0;
    const res = await probe(`http://127.0.0.1:${port}`);
    await res.arrayBuffer();
    if (res.status >= 500) throw new Error(`cold start probe answered ${res.status}`);
    const firstAnswer = performance.now() - t0;
    // workerd with this target alone, right after its first answer.
    const [pid] = workerdPids();
    times.push({ ready, firstAnswer, rssKiB: pid ? memoryKiB(pid).rss : NaN });
    await cold.dispose();
  }
  return {
    ready: median(times.map((t) => t.ready)),
    firstAnswer: median(times.map((t) => t.firstAnswer)),
    rssKiB: median(times.map((t) => t.rssKiB)),
    all: times,
  };
}
const cold = {
  us: await coldStart((port) => ours(port), (b) => fetch(`${b}/health`)),
  peer: await coldStart((port) => peerWorker({ port, script: scripts.peer, toolsListBody: ourBody }), (b) => fetch(`${b}/.well-known/oauth-authorization-server`)),
  limit: await coldStart((port) => limitWorker({ port, script: scripts.limit, toolsListBody: ourBody }), (b) => fetch(`${b}/`, { method: 'POST', headers: mcpHeaders, body: toolsList })),
};

// The wasm's compile and instantiate time in V8 (Node's, a separate
// process per mode; workerd does not let a worker compile wasm at run
// time). V8 compiles wasm lazily by default (function bodies on first
// call), so the eager figure is the upper bound of what a cold isolate pays.
function v8Times(flags) {
  const script = `
    const bytes = require('fs').readFileSync(${JSON.stringify(path.join(ROOT, 'build/index_bg.wasm'))});
    const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const compile = [], instantiate = [];
    for (let i = 0; i < 5; i++) {
      let t0 = performance.now();
      const module = new WebAssembly.Module(bytes);
      compile.push(performance.now() - t0);
      const imports = {};
      for (const imp of WebAssembly.Module.imports(module)) {
        imports[imp.module] ??= {};
        imports[imp.module][imp.name] = imp.name === '__wbindgen_jstag' ? WebAssembly.JSTag
          : imp.kind === 'tag' ? new WebAssembly.Tag({ parameters: ['externref'] }) : () => {};
      }
      t0 = performance.now();
      new WebAssembly.Instance(module, imports);
      instantiate.push(performance.now() - t0);
    }
    console.log(JSON.stringify({ compile: median(compile), instantiate: median(instantiate) }));`;
  try {
    return JSON.parse(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
  } catch (err) {
    return { error: err.message.split('\n')[0] };
  }
}
// V8 caches compiled modules by their bytes: off, or every compile after
// the first would be a cache hit.
const v8 = {
  lazy: v8Times(['--no-wasm-native-module-cache-enabled']),
  eager: v8Times(['--no-wasm-native-module-cache-enabled', '--no-wasm-lazy-compilation']),
};

// 6. Sizes.
const file = (p) => readFileSync(path.join(ROOT, p));
const sizes = {
  wasm: { raw: file('build/index_bg.wasm').length, gzip: gzip9(file('build/index_bg.wasm')) },
  shim: { raw: file('build/index.js').length, gzip: gzip9(file('build/index.js')) },
  peer: { raw: Buffer.byteLength(scripts.peer), gzip: gzip9(Buffer.from(scripts.peer)) },
  limit: { raw: Buffer.byteLength(scripts.limit), gzip: gzip9(Buffer.from(scripts.limit)) },
};

await plausible.close();
await idp.close();

// 7. The report.
const version = (cmd, args) => {
  try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]; } catch { return 'unknown'; }
};
// `wrk --version` prints its banner and exits 1.
const wrkVersion = () => {
  try { execFileSync('wrk', ['--version'], { encoding: 'utf8' }); } catch (err) { return String(err.stdout).split(' ').slice(0, 2).join(' '); }
  return 'wrk';
};
const pkg = (name) => JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
const cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
const othersMedian = median(foreign);
const othersMax = Math.max(...foreign);
const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const rangeOf = (runs, pick, d = 0) => {
  const xs = runs.map(pick);
  return `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}–${fmt(Math.max(...xs), d)})`;
};

const out = [];
const p = (s = '') => out.push(s);
p(`## Benchmark run ${new Date().toISOString()}`);
p();
p(`Machine: ${os.cpus().length} × ${cpuModel}, ${fmt(os.totalmem() / 2 ** 30, 0)} GiB; ${version('uname', ['-sr'])}.`);
p(`Versions: ${version(path.join(ROOT, 'node_modules/.bin/workerd'), ['--version'])} (miniflare ${pkg('miniflare')}), `
  + `@cloudflare/workers-oauth-provider ${pkg('@cloudflare/workers-oauth-provider')}, ${wrkVersion()}, node ${process.version}, `
  + `our commit ${version('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'])}${version('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ? ' (with local changes)' : ''}.`);
p(`Method: wrk -t1, ${SECONDS} s per run after a ${WARMUP} s warm-up, ${REPS} repetitions interleaved; median (min–max). `
  + `Only answers with the expected status and body length count.`);
p(`Load from other processes during the runs: median ${othersMedian.toFixed(2)}, max ${othersMax.toFixed(2)} cores of ${os.cpus().length}`
  + `${othersMax > 0.25 ? ' — CONTENDED: these figures are not official.' : ' (quiet).'}`);
p();
const head = ['target', 'request', ...CONNECTIONS.map((c) => `req/s c=${c}`), ...CONNECTIONS.map((c) => `p50 / p99 ms c=${c}`), `workerd CPU ms/req (c=${CONNECTIONS[0]})`, 'unexpected answers'];
p(`| ${head.join(' | ')} |`);
p(`|${head.map(() => '---').join('|')}|`);
for (const s of scenarios) {
  const first = s.runs[CONNECTIONS[0]];
  const all = CONNECTIONS.flatMap((c) => s.runs[c]);
  const unexpected = all.reduce((n, r) => n + r.unexpected + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout, 0);
  const statuses = {};
  for (const r of all) {
    for (const [k, v] of Object.entries(r.by_status)) statuses[k] = (statuses[k] ?? 0) + v;
    for (const k of ['connect', 'read', 'write', 'timeout']) if (r.errors[k]) statuses[`socket ${k} error`] = (statuses[`socket ${k} error`] ?? 0) + r.errors[k];
  }
  const detail = Object.keys(statuses).length ? ` (${Object.entries(statuses).map(([k, v]) => `${k}: ${v}`).join(', ')})` : '';
  p(`| ${s.target} | ${s.name} | ${CONNECTIONS.map((c) => rangeOf(s.runs[c], (r) => r.rps)).join(' | ')} | `
    + `${CONNECTIONS.map((c) => `${fmt(median(s.runs[c].map((r) => r.latency_us.p50)) / 1000, 2)} / ${fmt(median(s.runs[c].map((r) => r.latency_us.p99)) / 1000, 2)}`).join(' | ')} | `
    + `${fmt(median(first.map((r) => r.cpuPerRequestMs)), 3)} | ${unexpected}${detail} |`);
}
p();
const find = (target, name) => scenarios.find((s) => s.target === target && s.name.startsWith(name));
const ratio = (a, b, c) => (a && b ? `${(median(a.runs[c].map((r) => r.rps)) / median(b.runs[c].map((r) => r.rps))).toFixed(2)}×` : 'n/a');
for (const c of CONNECTIONS) {
  p(`Ratios at c=${c}: /internal tools/list us ÷ peer ${ratio(find('us', 'POST /internal tools/list'), find('peer', 'POST /internal tools/list'), c)} `
    + `(with the token memory ${ratio(find('us+cache', 'POST /internal tools/list'), find('peer', 'POST /internal tools/list'), c)}); `
    + `malformed token us ÷ peer ${ratio(find('us', '/internal malformed'), find('peer', '/internal malformed'), c)}; `
    + `unknown token us ÷ peer ${ratio(find('us', '/internal unknown'), find('peer', '/internal unknown'), c)}; `
    + `/mcp tools/list us ÷ limit ${ratio(find('us', 'POST /mcp tools/list'), find('limit', 'POST tools/list'), c)}.`);
}
const wrkMax = Math.max(...scenarios.flatMap((s) => CONNECTIONS.flatMap((c) => s.runs[c].map((r) => r.wrkCpuShare))));
p(`wrk itself used at most ${(wrkMax * 100).toFixed(0)}% of one core in any run.`);
p();
p('| flow | count | per second |');
p('|---|---|---|');
p(`| us: DCR → /authorize → OpenID provider login → /callback → consent → /token (4 at a time) | ${flowRate.count} | ${fmt(flowRate.perSecond, 1)} |`);
p(`| peer: DCR → /authorize (approves at once) → /token (4 at a time; no sign-in, not comparable) | ${peerFlowRate.count} | ${fmt(peerFlowRate.perSecond, 1)} |`);
p(`| us: refresh_token grant, rotating (${usLanes.length} grants at a time) | ${refreshRate.count} | ${fmt(refreshRate.perSecond, 1)} |`);
p(`| peer: refresh_token grant, rotating (${peerLanes.length} grants at a time) | ${peerRefreshRate.count} | ${fmt(peerRefreshRate.perSecond, 1)} |`);
p();
p('| cold start (median of ' + COLD_STARTS + ') | fresh workerd ready | first answer | workerd resident after it |');
p('|---|---|---|---|');
for (const [k, v] of Object.entries(cold)) p(`| ${k} | ${fmt(v.ready)} ms | ${fmt(v.firstAnswer)} ms | ${fmt(v.rssKiB / 1024, 1)} MiB |`);
const v8line = (t) => (t.error ? t.error : `compile ${fmt(t.compile, 1)} ms, instantiate ${fmt(t.instantiate, 1)} ms`);
p(`The wasm in Node ${process.version}'s V8 (median of 5): lazy (V8's default) ${v8line(v8.lazy)}; eager ${v8line(v8.eager)}.`);
p();
p('| bytes | raw | gzip -9 |');
p('|---|---|---|');
p(`| our wasm (after wasm-opt) | ${fmt(sizes.wasm.raw)} | ${fmt(sizes.wasm.gzip)} |`);
p(`| our JS shim | ${fmt(sizes.shim.raw)} | ${fmt(sizes.shim.gzip)} |`);
p(`| our total (budget 261,192 gzip) | ${fmt(sizes.wasm.raw + sizes.shim.raw)} | ${fmt(sizes.wasm.gzip + sizes.shim.gzip)} |`);
p(`| peer bundle (esbuild --minify) | ${fmt(sizes.peer.raw)} | ${fmt(sizes.peer.gzip)} |`);
p();
p(`workerd after the run: resident ${fmt(memory.rss / 1024, 1)} MiB, peak ${fmt(memory.peak / 1024, 1)} MiB `
  + `(every target and Miniflare's KV/DO simulators in one process; ${fmt(workerdCpuTotal / 1000, 1)} s CPU in all). `
  + `Local workerd's resident memory grows with the number of requests served, by the no-auth limit worker too, so this `
  + `says more about the local runtime than about a target; the cold-start table has each target alone.`);
p(`The bench took ${fmt((performance.now() - started) / 1000)} s.`);
console.log(out.join('\n'));

if (process.env.BENCH_JSON) {
  writeFileSync(process.env.BENCH_JSON, JSON.stringify({ scenarios, flowRate, peerFlowRate, refreshRate, peerRefreshRate, cold, v8, sizes, memory, foreign }, null, 1));
}
const bad = scenarios.filter((s) => CONNECTIONS.some((c) => s.runs[c].some((r) => r.unexpected + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout > 0)));
if (bad.length) {
  console.error(`bench: unexpected answers in ${bad.map((s) => `${s.target} ${s.name}`).join('; ')}`);
  process.exitCode = 1;
}
