// Where one route's CPU goes inside workerd (a development aid, not part
// of `npm run bench`): our build alone in a Miniflare with the inspector
// on, wrk at c=16 on P_PATH (/internal) with bearer P_TOKEN (a malformed
// one by default), and V8's sampling profiler (50 µs) over 5 s; prints
// self time per function in µs per request. The wasm-bindgen imports
// (`__wbg_*`) are the JS crossings; "Headers", "Response", "arrayBuffer"
// are workerd's own API objects. Only the isolate's thread is sampled:
// workerd's HTTP and event loop are not in it (`P_PERF=/tmp/x.data` runs
// `perf record -e cpu-clock` on the whole process instead).
//   P_DIR=build-base node bench/profile.mjs
import { Miniflare } from 'miniflare';
import WebSocket from 'ws';
import { freePort } from '../devstack/stack.mjs';
import { startPlausibleStub } from '../devstack/plausible.mjs';
import { startIdp } from '../devstack/idp.mjs';
import { ourWorker } from './targets.mjs';
import { runWrk } from './wrk.mjs';
import { workerdPids } from './targets.mjs';
const DIR = process.env.P_DIR ?? 'build';
const PATH = process.env.P_PATH ?? '/internal';
const TOKEN = process.env.P_TOKEN ?? 'not-a-token';
const upstream = { clientId: 'x', clientSecret: 'y' };
const port = await freePort(); const ip = await freePort();
const plausible = await startPlausibleStub({ apiKeys: ['plausible-test-key', 'plausible-shared-key'], hourlyLimit: 1e12 });
const idp = await startIdp({ ...upstream, redirectUris: () => [] });
const w = ourWorker({ name: 'us', port, bundleDir: DIR, plausibleUrl: plausible.url, idp, upstream, vars: { TOKEN_CACHE_SECONDS: '0' } });
const mf = new Miniflare({ inspectorPort: ip, workers: [{ ...w, unsafeInspectorProxy: true }] });
await mf.ready;
const list = await (await fetch(`http://127.0.0.1:${ip}/json`)).json();
const ws = new WebSocket(list[0].webSocketDebuggerUrl);
await new Promise((r) => ws.on('open', r));
let id = 0; const pending = new Map();
ws.on('message', (m) => { const d = JSON.parse(m); if (d.id && pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${TOKEN}` };
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
const s = { url: `http://127.0.0.1:${port}${PATH}`, method: 'POST', headers: mcpHeaders, body, expectStatus: PATH === '/mcp' ? 200 : 401 };
const [pid] = workerdPids();
await runWrk(s, { connections: 16, seconds: 2, workerdPid: pid });
if (process.env.P_PERF) {
  const { spawn } = await import('node:child_process');
  const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '4000', '-p', String(pid), '-o', process.env.P_PERF, '--', 'sleep', '4'], { stdio: 'inherit' });
  const r = await runWrk(s, { connections: 16, seconds: 5, workerdPid: pid });
  await new Promise((res) => perf.on('exit', res));
  console.log(`requests ${r.requests}, cpu/req ${r.cpuPerRequestMs.toFixed(3)}`);
  ws.close(); await mf.dispose(); await plausible.close(); await idp.close();
  process.exit(0);
}
await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 50 });
await send('Profiler.start');
const r = await runWrk(s, { connections: 16, seconds: 5, workerdPid: pid });
const { result } = await send('Profiler.stop');
const p = result.profile;
const self = new Map(); const byId = new Map(p.nodes.map((n) => [n.id, n]));
const counts = new Map(); for (const sid of p.samples) counts.set(sid, (counts.get(sid) ?? 0) + 1);
let total = 0;
for (const [nid, c] of counts) { const n = byId.get(nid); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`; self.set(k, (self.get(k) ?? 0) + c); total += c; }
console.log(`requests ${r.requests}, cpu/req ${r.cpuPerRequestMs.toFixed(3)}, samples ${total}, samples/req ${(total / r.requests).toFixed(2)}`);
for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(`${(100 * c / total).toFixed(1).padStart(5)}% ${(c*0.05*1000/r.requests).toFixed(1).padStart(6)}us/req ${k}`);
ws.close(); await mf.dispose(); await plausible.close(); await idp.close();
