// CPU per request of two builds of our worker side by side, for work on a
// machine that others are using (`npm run bench` wants a quiet one).
//
//   cp -r build build-base          # the build to compare against
//   ... change the code, bash scripts/build.sh ...
//   node bench/ab.mjs               # build/ against build-base/
//
// Both builds run in ONE workerd (one Miniflare), each on its own direct
// socket, with the token memory and the upstream cache off (as `us` in
// bench/run.mjs), beside the peer and the no-auth limit worker. Each
// scenario is run for AB_SECONDS (5) with wrk at c=16, AB_REPS (5) times,
// the targets interleaved within every repetition (so a burst of load from
// elsewhere falls on all of them alike). The figure is workerd's own CPU
// time (utime+stime from /proc/<pid>/stat) over the run, divided by the
// requests wrk completed: CPU time only advances while workerd is on a
// core, so other processes lower the request rate but barely the CPU per
// request (what remains is cache and frequency interference, which hits
// both builds alike because they are interleaved). Throughput is printed
// too, but on a busy machine it says little.
//
// Prints a markdown table: median (min–max) ms per request per target.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { ROOT, freePort } from '../devstack/stack.mjs';
import { startPlausibleStub } from '../devstack/plausible.mjs';
import { startIdp } from '../devstack/idp.mjs';
import { bundle, limitWorker, ourWorker, peerWorker, workerdPids } from './targets.mjs';
import { ourFlow, peerFlow } from './oauth.mjs';
import { runWrk } from './wrk.mjs';

const SECONDS = Number(process.env.AB_SECONDS ?? 5);
const REPS = Number(process.env.AB_REPS ?? 5);
const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 16);
const BASE = process.env.AB_BASE ?? 'build-base';
const ONLY = process.env.AB_ONLY ? new RegExp(process.env.AB_ONLY) : null;
const log = (...a) => console.error('ab:', ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
if (!existsSync(path.join(ROOT, BASE, 'index.js'))) throw new Error(`no ${BASE}/index.js: copy a build there first`);

const upstream = { clientId: 'plausible-mcp-bench', clientSecret: 'bench-upstream-client-secret' };
const ports = { new: await freePort(), base: await freePort(), peer: await freePort(), limit: await freePort() };
const base = Object.fromEntries(Object.entries(ports).map(([k, p]) => [k, `http://127.0.0.1:${p}`]));
const plausible = await startPlausibleStub({ apiKeys: ['plausible-test-key', 'plausible-shared-key'], hourlyLimit: Number.MAX_SAFE_INTEGER });
const idp = await startIdp({ ...upstream, redirectUris: () => [`${base.new}/callback`, `${base.base}/callback`] });
const off = { PLAUSIBLE_CACHE_TTL: '0', TOKEN_CACHE_SECONDS: '0' };
const ours = (name, port, bundleDir) => ourWorker({ name, port, bundleDir, plausibleUrl: plausible.url, idp, upstream, vars: off });

const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
const toolsList = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const bearer = (t) => ({ authorization: `Bearer ${t}` });

// The tools/list bytes of the base build, for the peer and the limit worker.
let ourBody;
{
  const mf = new Miniflare({ workers: [ours('base', ports.base, BASE)] });
  await mf.ready;
  const grant = await ourFlow(base.base);
  const res = await fetch(`${base.base}/internal`, { method: 'POST', headers: { ...mcpHeaders, ...bearer(grant.accessToken) }, body: toolsList });
  ourBody = await res.text();
  await mf.dispose();
}
const scripts = { peer: bundle('index'), limit: bundle('limit') };
const mf = new Miniflare({
  workers: [
    ours('new', ports.new, 'build'),
    ours('base', ports.base, BASE),
    peerWorker({ port: ports.peer, script: scripts.peer, toolsListBody: ourBody }),
    limitWorker({ port: ports.limit, script: scripts.limit, toolsListBody: ourBody }),
  ],
});
await mf.ready;
const [workerd] = workerdPids();
const grants = { new: await ourFlow(base.new), base: await ourFlow(base.base) };
const peerGrant = await peerFlow(base.peer);

const scenarios = [];
for (const t of ['base', 'new']) {
  scenarios.push(
    { target: t, name: '/internal malformed token → 401', url: `${base[t]}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer('not-a-token') }, body: toolsList, status: 401 },
    { target: t, name: 'POST /mcp tools/list (own key)', url: `${base[t]}/mcp`, method: 'POST', headers: { ...mcpHeaders, ...bearer('plausible-test-key') }, body: toolsList, status: 200 },
    { target: t, name: 'POST /internal tools/list (no token memory)', url: `${base[t]}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(grants[t].accessToken) }, body: toolsList, status: 200 },
    { target: t, name: 'GET /health', url: `${base[t]}/health`, method: 'GET', headers: {}, status: 200 },
  );
}
scenarios.push(
  { target: 'peer', name: '/internal malformed token → 401', url: `${base.peer}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer('not-a-token') }, body: toolsList, status: 401 },
  { target: 'peer', name: 'POST /internal tools/list (no token memory)', url: `${base.peer}/internal`, method: 'POST', headers: { ...mcpHeaders, ...bearer(peerGrant.accessToken) }, body: toolsList, status: 200 },
  { target: 'limit', name: 'POST tools/list (no auth)', url: `${base.limit}/internal`, method: 'POST', headers: mcpHeaders, body: toolsList, status: 200 },
);
const chosen = scenarios.filter((s) => !ONLY || ONLY.test(`${s.target} ${s.name}`));
for (const s of chosen) {
  const res = await fetch(s.url, { method: s.method, headers: s.headers, body: s.body });
  const text = await res.text();
  if (res.status !== s.status) throw new Error(`${s.target} ${s.name}: expected ${s.status}, got ${res.status}: ${text.slice(0, 200)}`);
  s.expectStatus = s.status;
  s.expectLength = Buffer.byteLength(text);
  s.cpu = [];
  s.rps = [];
  s.bad = 0;
  await runWrk(s, { connections: CONNECTIONS, seconds: 1, workerdPid: workerd }); // warm-up
}

const loadavg = [];
for (let rep = 1; rep <= REPS; rep++) {
  for (const s of chosen) {
    const r = await runWrk(s, { connections: CONNECTIONS, seconds: SECONDS, workerdPid: workerd });
    s.cpu.push(r.cpuPerRequestMs);
    s.rps.push(r.rps);
    s.bad += r.unexpected + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
    loadavg.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
    log(`rep ${rep} ${s.target.padEnd(5)} ${s.name.padEnd(44)} cpu ${r.cpuPerRequestMs.toFixed(3)} ms/req  ${r.rps.toFixed(0)} req/s  bad ${s.bad}`);
  }
}
await mf.dispose();
await plausible.close();
await idp.close();

const f3 = (x) => x.toFixed(3);
console.log(`c=${CONNECTIONS}, ${SECONDS} s × ${REPS} interleaved; 1-min load average during the runs: median ${median(loadavg).toFixed(2)}, max ${Math.max(...loadavg).toFixed(2)} (2 cores)\n`);
console.log('| target | request | workerd CPU ms/req, median (min–max) | req/s median | unexpected |');
console.log('|---|---|---|---|---|');
for (const s of chosen) {
  console.log(`| ${s.target} | ${s.name} | ${f3(median(s.cpu))} (${f3(Math.min(...s.cpu))}–${f3(Math.max(...s.cpu))}) | ${median(s.rps).toFixed(0)} | ${s.bad} |`);
}
