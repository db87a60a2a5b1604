// Proof of scale (issue 9): 50 users signing in and refreshing at once
// through ONE client ID metadata document, against one user alone, with
// the per-(client, user) layout and with the previous per-client layout.
// `npm run bench:scale`. Prints figures and checks the single-success
// rules; asserts no timing (the figures go to BENCHMARKS-SCALE.md).
//
// Locally, Durable Object and KV operations take microseconds, which hides
// any queue behind one object. The test build (cargo feature `test-hooks`)
// therefore delays every KV operation and every Durable Object storage
// operation by TEST_STORAGE_LATENCY_MS (20 ms, about an edge KV write),
// and TEST_GRANT_LAYOUT=per-client routes every (client, user) pair of a
// client to one grant object: the previous release's layout, the same
// code otherwise.
//
// Each layout runs twice, at the latency and at 0 ms. Here (2 shared
// cores) 50 concurrent flows are CPU-bound: at 0 ms they take seconds in
// either layout, more than one user's whole storage wait. So the figure
// that isolates queueing is the time the latency ADDS: (50 users at
// 20 ms − at 0 ms) / (one user at 20 ms − at 0 ms). Objects that do not
// queue overlap their waits (about 1×); one shared object serialises
// them (about the number of users). The plain wall-time ratios are
// printed too.
//
// One user's flow: /authorize → the OpenID provider (support/rogue-idp.mjs,
// which answers at once) → /callback → the consent page → approve → the
// code → /token → REFRESHES refreshes, each with the token just issued.
//
// Environment: SCALE_USERS (50), SCALE_REFRESHES (3), SCALE_ROUNDS (3),
// SCALE_LATENCY_MS (20), SCALE_OUT (a file to write the Markdown table to),
// SCALE_STDIO (inherit: wrangler's own output, for a failing run).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStack } from '../devstack/stack.mjs';
import { internalCall, redeemForm, refreshRequest, tokenRequest } from '../tests/e2e/oauth-helpers.mjs';
import { CookieJar, beginLogin, call, consentForm } from '../tests/e2e/login-helpers.mjs';
import { startRogueIdp } from '../tests/e2e/support/rogue-idp.mjs';

const USERS = Number(process.env.SCALE_USERS ?? 50);
const REFRESHES = Number(process.env.SCALE_REFRESHES ?? 3);
const ROUNDS = Number(process.env.SCALE_ROUNDS ?? 3);
const LATENCY_MS = Number(process.env.SCALE_LATENCY_MS ?? 20);
const UPSTREAM = { clientId: 'plausible-mcp-scale-bench', clientSecret: 'scale-bench-secret' };
const REDIRECT = 'http://127.0.0.1:9/cb';

const rogue = await startRogueIdp(UPSTREAM);
const docs = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
    client_id: `http://127.0.0.1:${docs.address().port}${req.url}`,
    client_name: 'scale bench (one metadata document for everyone)',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  }));
});
await new Promise((resolve) => docs.listen(0, '127.0.0.1', resolve));

/** A failed step: which user, where, what came back. */
class StepFailed extends Error {}
const expect = (ok, what, r) => {
  if (!ok) throw new StepFailed(`${what}: ${r?.status} ${String(r?.text ?? '').slice(0, 200)}`);
};

/**
 * One user's whole flow. Returns what the checks need: the code, every
 * refresh token in order, and the last access token.
 */
async function userFlow(base, client, email) {
  const jar = new CookieJar();
  const login = await beginLogin(base, client, { jar, upstreamIssuer: rogue.issuer });
  const u = new URL(login.upstream);
  u.searchParams.set('scenario', 'good');
  u.searchParams.set('email', email);
  const up = await call(u);
  expect(up.status === 302, 'provider', up);
  let r = await call(up.location, { jar });
  expect(r.status === 200, 'consent page', r);
  const body = new URLSearchParams({ ...consentForm(r.text), decision: 'approve' }).toString();
  r = await call(`${base}/consent`, {
    jar, method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
  });
  expect(r.status === 302, 'consent', r);
  const code = new URL(r.location).searchParams.get('code');
  const grant = { code, verifier: login.verifier, redirectUri: login.redirectUri };
  let t = await tokenRequest(redeemForm(client, grant, base), { base });
  expect(t.status === 200, 'redeem', t);
  const chain = [t.json.refresh_token];
  let access = t.json.access_token;
  for (let i = 0; i < REFRESHES; i++) {
    t = await refreshRequest(client, chain.at(-1), { base });
    expect(t.status === 200, `refresh ${i + 1}`, t);
    chain.push(t.json.refresh_token);
    access = t.json.access_token;
  }
  return { email, grant, chain, access };
}

/** n users at once; the wall time and each user's outcome. */
async function wave(base, client, n, label) {
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => userFlow(base, client, `${label}-${i}-${randomBytes(3).toString('hex')}@example.com`)),
  );
  const ms = performance.now() - started;
  const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason.message);
  if (failed.length) throw new Error(`${label}: ${failed.length} of ${n} flows failed, first: ${failed[0]}`);
  return { ms, flows: outcomes.map((o) => o.value) };
}

/**
 * The single-success rules, checked on a wave's flows after it was timed:
 * every chain intact (distinct tokens; the last access token works), the
 * code redeems no second time, two concurrent refreshes with one token
 * succeed once, and a replayed rotated-out refresh token is refused.
 */
async function checkRules(base, client, flows) {
  const tally = { intact: 0, codeReplaysRefused: 0, racesWonOnce: 0, oldRefreshRefused: 0 };
  await Promise.all(flows.map(async (f) => {
    assert.equal(new Set(f.chain).size, f.chain.length, `${f.email}: a refresh token was issued twice`);
    const works = await internalCall(f.access, { base });
    assert.equal(works.status, 200, `${f.email}: last access token: ${works.text.slice(0, 200)}`);
    tally.intact += 1;
    const replay = await tokenRequest(redeemForm(client, f.grant, base), { base });
    assert.equal(replay.json?.error, 'invalid_grant', `${f.email}: code redeemed twice: ${replay.text.slice(0, 200)}`);
    tally.codeReplaysRefused += 1;
    // The replay revoked the grant (RFC 6749 §4.1.2); the race below runs
    // on a fresh sign-in so it meets a live token.
  }));
  // A race per user on a fresh grant: two refreshes with one token.
  const fresh = await wave(base, client, flows.length, 'race');
  await Promise.all(fresh.flows.map(async (f) => {
    const last = f.chain.at(-1);
    const [a, b] = await Promise.all([refreshRequest(client, last, { base }), refreshRequest(client, last, { base })]);
    const wins = [a, b].filter((r) => r.status === 200).length;
    assert.equal(wins, 1, `${f.email}: ${wins} of 2 concurrent refreshes succeeded: ${a.status} ${b.status}`);
    tally.racesWonOnce += 1;
    const old = await refreshRequest(client, f.chain.at(-2), { base });
    assert.equal(old.json?.error, 'invalid_grant', `${f.email}: rotated-out token accepted: ${old.text.slice(0, 200)}`);
    tally.oldRefreshRefused += 1;
  }));
  return tally;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(layout, latencyMs) {
  const persistTo = mkdtempSync(path.join(os.tmpdir(), `plausible-mcp-scale-${layout}-`));
  const stack = await startStack({
    persistTo,
    bundle: 'build-test',
    // SCALE_STDIO=inherit shows wrangler's and workerd's own output.
    stdio: process.env.SCALE_STDIO === 'inherit' ? 'inherit' : 'pipe',
    vars: {
      ACCESS_ISSUER: rogue.issuer,
      ACCESS_CLIENT_ID: UPSTREAM.clientId,
      ACCESS_CLIENT_SECRET: UPSTREAM.clientSecret,
      TEST_STORAGE_LATENCY_MS: String(latencyMs),
      TEST_GRANT_LAYOUT: layout,
    },
  });
  const base = stack.workerUrl;
  try {
    // One metadata document for every user, as Claude.ai's connector.
    const client = { client_id: `http://127.0.0.1:${docs.address().port}/${layout}.json`, redirect_uris: [REDIRECT] };
    await wave(base, client, 2, 'warm-up'); // compile, JWKS and document caches
    const one = [];
    const many = [];
    let last;
    for (let round = 0; round < ROUNDS; round++) {
      one.push((await wave(base, client, 1, `one-${round}`)).ms);
      last = await wave(base, client, USERS, `many-${round}`);
      many.push(last.ms);
    }
    const rules = latencyMs ? await checkRules(base, client, last.flows) : undefined;
    return { layout, latencyMs, one, many, rules };
  } finally {
    await stack.stop();
    rmSync(persistTo, { recursive: true, force: true });
  }
}

const results = [];
try {
  for (const layout of ['per-pair', 'per-client']) {
    for (const latencyMs of [LATENCY_MS, 0]) {
      process.stderr.write(`measuring the ${layout} layout, ${latencyMs} ms per storage operation...\n`);
      results.push(await measure(layout, latencyMs));
    }
  }
} finally {
  await rogue.close();
  docs.close();
}

const s = (ms) => (ms / 1000).toFixed(2);
const name = (layout) => (layout === 'per-pair' ? 'per (client, user) (new)' : 'per client (previous)');
const lines = [
  `${USERS} users at once vs one user alone, each signing in (provider, consent, code) and refreshing ${REFRESHES}×, `
    + `through one client metadata document; median of ${ROUNDS} rounds.`,
  '',
  `| layout | storage latency | one user (s) | ${USERS} users at once (s) | ratio | rounds, ${USERS} users (s) |`,
  '|---|---|---|---|---|---|',
];
for (const r of results) {
  lines.push(`| ${name(r.layout)} | ${r.latencyMs} ms | ${s(median(r.one))} | ${s(median(r.many))} | `
    + `${(median(r.many) / median(r.one)).toFixed(2)}× | ${r.many.map(s).join(', ')} |`);
}
lines.push(
  '',
  'The time the storage latency adds (the run at 0 ms subtracted from the run at '
    + `${LATENCY_MS} ms): how much of one user's storage waiting ${USERS} users at once cost.`,
  '',
  `| layout | one user (s) | ${USERS} users at once (s) | ratio | issue 9's target |`,
  '|---|---|---|---|---|',
);
for (const layout of ['per-pair', 'per-client']) {
  const [slow, fast] = [LATENCY_MS, 0].map((l) => results.find((r) => r.layout === layout && r.latencyMs === l));
  const one = median(slow.one) - median(fast.one);
  const many = median(slow.many) - median(fast.many);
  const ratio = many / one;
  const target = layout === 'per-pair' ? (ratio <= 1.5 ? '≤ 1.5×: met' : '≤ 1.5×: NOT met') : (ratio >= 5 ? '≥ 5×: met' : '≥ 5×: NOT met');
  lines.push(`| ${name(layout)} | ${s(one)} | ${s(many)} | ${ratio.toFixed(2)}× | ${target} |`);
}
lines.push('');
for (const r of results.filter((x) => x.rules)) {
  lines.push(`Single-success rules, ${name(r.layout)}: ${r.rules.intact}/${USERS} chains intact (distinct refresh tokens, last access token works), `
    + `${r.rules.codeReplaysRefused}/${USERS} code replays refused, ${r.rules.racesWonOnce}/${USERS} concurrent refresh pairs won exactly once, `
    + `${r.rules.oldRefreshRefused}/${USERS} rotated-out refresh tokens refused.`);
}
lines.push('', `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end; node ${process.version}.`);
const table = lines.join('\n');
console.log(table);
if (process.env.SCALE_OUT) writeFileSync(process.env.SCALE_OUT, `${table}\n`);
