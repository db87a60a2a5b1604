// The analytics tools end to end, through the official SDK clients (v1 on
// 2025-11-25, v2 pinned to 2026-07-28), against the stand-in's planted data
// set (devstack/plausible-data.json, trends.example.com). Upstream requests
// are counted on the stand-in's own log (/__stand-in/requests).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { KEY, MCP_URL, MODERN } from './mcp-helpers.mjs';
import { internalCall, issueTokens } from './oauth-helpers.mjs';

const STUB = process.env.PLAUSIBLE_STUB_URL;
const SITE = 'trends.example.com';

async function upstreamCount() {
  const res = await fetch(`${STUB}/__stand-in/requests`);
  return (await res.json()).requests.length;
}
async function addKey(o) {
  const res = await fetch(`${STUB}/__stand-in/keys`, { method: 'POST', body: JSON.stringify(o) });
  assert.equal(res.status, 200);
}
/**
 * A connected SDK client that has listed the tools: both SDKs then check
 * every structuredContent against the tool's outputSchema, as Claude does.
 */
async function connect(version, key = KEY) {
  const headers = { Authorization: `Bearer ${key}` };
  let client;
  if (version === 1) {
    client = new ClientV1({ name: 'e2e-analytics-v1', version: '1.0.0' });
    await client.connect(new TransportV1(new URL(MCP_URL), { requestInit: { headers } }));
  } else {
    client = new ClientV2({ name: 'e2e-analytics-v2', version: '2.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await client.connect(new TransportV2(new URL(MCP_URL), { requestInit: { headers } }));
  }
  const { tools } = await client.listTools();
  assert.ok(tools.every((t) => t.outputSchema), 'every tool has an outputSchema');
  return client;
}
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** One query straight to the stand-in (not through the worker). */
async function standIn(body) {
  const res = await fetch(`${STUB}/api/v2/query`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res.json();
}
/** Calls a tool; returns the result and the upstream requests the stand-in saw for it. */
async function counted(client, name, args) {
  const before = await upstreamCount();
  const result = await client.callTool({ name, arguments: args });
  return { result, upstream: (await upstreamCount()) - before };
}

let v1;
let v2;
before(async () => {
  v1 = await connect(1);
  v2 = await connect(2);
});
after(async () => {
  await v1?.close();
  await v2?.close();
});

describe('find_anomalies', () => {
  const args = { site_id: SITE, window: '2024-04-08,2024-05-05' };
  test('finds exactly the planted drop and source spike, and names the spike\'s source (v2, 2026-07-28)', async () => {
    const { result, upstream } = await counted(v2, 'find_anomalies', args);
    assert.equal(result.isError, false, result.content[0].text);
    const s = result.structuredContent;
    // Exactly the two planted days of the 28: not 2024-04-22, the ordinary
    // Monday whose six-value MAD band alone was too narrow.
    assert.deepEqual(s.anomalies.map((a) => a.period), ['2024-04-17', '2024-04-24'], result.content[0].text);
    const [drop, spike] = s.anomalies;
    assert.ok(drop.actual < drop.low && drop.deviation < 0, JSON.stringify(drop));
    assert.ok(drop.deviation_percent < -40, JSON.stringify(drop));
    assert.ok(spike.actual > spike.high && spike.deviation > 0, JSON.stringify(spike));
    // The spike's drivers: its source first, and most of the extra visits.
    const sources = spike.drivers.filter((d) => d.dimension === 'visit:source');
    assert.equal(sources[0].value, 'news.ycombinator.com');
    assert.ok(sources[0].change >= 200 && sources[0].share_percent >= 80, JSON.stringify(sources[0]));
    assert.ok(drop.drivers.length > 0 && drop.drivers.every((d) => d.change < 0), JSON.stringify(drop.drivers));
    assert.equal(s.periods_checked, 28);
    assert.equal(s.granularity, 'day');
    assert.ok(s.dispersion > 1, 'the series is overdispersed');
    // README: 1 request, plus 3 when something is flagged.
    assert.equal(upstream, 4);
    assert.equal(s.upstream.requests, 4);
    assert.match(result.content[0].text, /2 of 28 days unusual/);
    assert.match(result.content[0].text, /2024-04-24: visit:source news\.ycombinator\.com/);
  });

  test('a repeated identical call costs no upstream request; another credential costs its own', async () => {
    const again = await counted(v2, 'find_anomalies', args);
    assert.equal(again.upstream, 0);
    assert.equal(again.result.structuredContent.upstream.requests, 0);
    assert.equal(again.result.structuredContent.upstream.from_cache, 4);
    assert.ok(again.result.structuredContent.upstream.cache_age_seconds <= 60);
    assert.match(again.result.content[0].text, /edge cache/);
    await addKey({ key: 'analytics-second-key' });
    const other = await connect(1, 'analytics-second-key');
    try {
      const fresh = await counted(other, 'find_anomalies', args);
      assert.equal(fresh.result.isError, false);
      assert.equal(fresh.upstream, 4);
      assert.deepEqual(fresh.result.structuredContent.anomalies, again.result.structuredContent.anomalies);
    } finally {
      await other.close();
    }
  });

  for (const [name, window] of [['the four quiet weeks before', '2024-03-11,2024-04-07'], ['June, with the null change', '2024-06-01,2024-06-30']]) {
    test(`nothing unusual in ${name}, for one request (v1)`, async () => {
      const { result, upstream } = await counted(v1, 'find_anomalies', { site_id: SITE, window });
      assert.equal(result.isError, false, result.content[0].text);
      assert.deepEqual(result.structuredContent.anomalies, [], result.content[0].text);
      assert.match(result.content[0].text, /Nothing unusual: every period is within its expected range/);
      assert.equal(upstream, 1);
    });
  }

  test('hours: the hour planted relative to now is flagged against the same weekday and hour, with its source (v1)', async () => {
    const { plants } = await (await fetch(`${STUB}/__stand-in/plants`)).json();
    const plant = plants[SITE].find((p) => p.hours_ago !== undefined);
    const start = Date.parse(`${plant.period.replace(' ', 'T')}Z`);
    const hoursSince = (Math.floor(Date.now() / 3600_000) * 3600_000 - start) / 3600_000;
    // One hour of slack: the worker's clock may pass an hour boundary after ours.
    const window = `${hoursSince + 1}h`;
    const { result, upstream } = await counted(v1, 'find_anomalies', { site_id: SITE, window });
    assert.equal(result.isError, false, result.content[0].text);
    const s = result.structuredContent;
    assert.equal(s.granularity, 'hour');
    assert.equal(s.periods_checked, hoursSince + 1);
    const hit = s.anomalies.find((a) => a.period === plant.period);
    assert.ok(hit, `${plant.period} not among ${JSON.stringify(s.anomalies)}`);
    // The excess over the expected value is the plant give or take the
    // hour's own traffic, which is Poisson around the baseline: allow four
    // of its standard deviations (a flat 10% failed for a 09:00 UTC plant
    // whose ordinary traffic came in 13 under its baseline of 35).
    assert.ok(hit.actual > hit.high, JSON.stringify(hit));
    assert.ok(hit.actual - hit.expected >= plant.extra - 4 * Math.sqrt(hit.expected), JSON.stringify(hit));
    assert.equal(hit.drivers.filter((d) => d.dimension === 'visit:source')[0].value, plant.source);
    // The baseline, asked of the stand-in directly: the same hour 1 to 6 weeks before.
    const week = 7 * 86_400_000;
    const direct = await standIn({ site_id: SITE, metrics: ['visitors'], dimensions: ['time:hour'],
      date_range: [iso(start - 6 * week), iso(start - week + 3_599_000)] });
    const byHour = new Map(direct.results.map((r) => [r.dimensions[0], r.metrics[0]]));
    const label = (ms) => `${iso(ms).slice(0, 10)} ${iso(ms).slice(11, 13)}:00:00`;
    const sameHour = [1, 2, 3, 4, 5, 6].map((k) => byHour.get(label(start - k * week)) ?? 0);
    assert.equal(hit.expected, median(sameHour), JSON.stringify(sameHour));
    // Other hours of the window are not asserted: they carry ordinary noise,
    // and the days test above and the native tests cover exactness.
    assert.equal(upstream, 4);
  });
});

describe('measure_change', () => {
  test('calls the planted conversion-rate rise significant (v1)', async () => {
    const { result, upstream } = await counted(v1, 'measure_change',
      { site_id: SITE, date: '2024-05-15', metric: 'conversion_rate', goal: 'Signup', days: 14 });
    assert.equal(result.isError, false, result.content[0].text);
    const s = result.structuredContent;
    assert.equal(s.significant, true);
    assert.ok(s.interval.low > 0, JSON.stringify(s.interval));
    assert.deepEqual(s.before, { from: '2024-05-01', to: '2024-05-14' });
    assert.deepEqual(s.after, { from: '2024-05-16', to: '2024-05-29' });
    assert.match(result.content[0].text, /^Significant at α = 0.05/m);
    // README: 4 requests for a conversion rate (visitors and converted, each side).
    assert.equal(upstream, 4);
  });

  test('calls the planted null change not significant (v2)', async () => {
    const { result, upstream } = await counted(v2, 'measure_change', { site_id: SITE, date: '2024-06-12', days: 14 });
    assert.equal(result.isError, false, result.content[0].text);
    const s = result.structuredContent;
    assert.equal(s.significant, false, JSON.stringify(s));
    assert.ok(s.interval.low < 0 && s.interval.high > 0);
    assert.match(result.content[0].text, /^Not significant at α = 0.05/m);
    // README: 3 requests (daily values, and by source and by page).
    assert.equal(upstream, 3);
  });

  test('refuses windows too short to say anything', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const { result, upstream } = await counted(v1, 'measure_change', { site_id: SITE, date: today });
    assert.equal(result.isError, true);
    assert.match(result.content[0].text, /at least 7 a side/);
    assert.equal(upstream, 0);
  });
});

describe('sites, goals, realtime, raw queries and the quota', () => {
  test('list_sites on /mcp: a Stats-only key is told it cannot list sites and how to name one, and is not asked again', async () => {
    await addKey({ key: 'analytics-stats-only-key' });
    const client = await connect(1, 'analytics-stats-only-key');
    try {
      const first = await counted(client, 'list_sites', {});
      assert.equal(first.result.isError, false);
      const s = first.result.structuredContent;
      assert.equal(s.source, 'none');
      assert.deepEqual(s.sites, []);
      assert.match(s.message, /^Plausible refused to list sites for this key \(HTTP 401\): listing sites needs a Sites API key/);
      assert.match(first.result.content[0].text, /Name the site instead: site_id is the domain exactly as it appears in Plausible/);
      assert.equal(first.upstream, 1);
      const second = await counted(client, 'list_sites', {});
      assert.equal(second.upstream, 0);
      assert.match(second.result.structuredContent.message, /^This key cannot list sites \(Plausible refused it earlier; not asked again for an hour\)/);
      assert.match(second.result.content[0].text, /Name the site instead/);
    } finally {
      await client.close();
    }
  });

  test('list_sites on /internal: the shared key cannot list sites, so PLAUSIBLE_SITES is listed', async () => {
    const { tokens } = await issueTokens();
    const before = await upstreamCount();
    const call = () => internalCall(tokens.access_token, { params: { name: 'list_sites', arguments: {} } });
    const r = await call();
    assert.equal(r.status, 200, r.text);
    const { result } = r.json;
    assert.equal(result.isError, false, r.text);
    assert.equal(result.structuredContent.source, 'configured');
    // devstack/stack.mjs sets PLAUSIBLE_SITES for the local stack.
    assert.deepEqual(result.structuredContent.sites, [
      { site_id: 'example.com', timezone: 'Etc/UTC' },
      { site_id: 'shop.example.com', timezone: 'Europe/Berlin' },
      { site_id: SITE, timezone: null },
    ]);
    assert.match(result.structuredContent.message, /HTTP 401/);
    assert.match(result.content[0].text, /^3 site\(s\) configured on this server \(PLAUSIBLE_SITES\)/);
    assert.equal(await upstreamCount() - before, 1);
    // The refusal is remembered for the shared key too.
    const again = await call();
    assert.equal(again.json.result.structuredContent.source, 'configured');
    assert.equal(await upstreamCount() - before, 1);
  });

  test('list_sites and list_goals with a Sites API key', async () => {
    await addKey({ key: 'analytics-sites-key', sitesApi: true });
    const client = await connect(2, 'analytics-sites-key');
    try {
      const sites = await counted(client, 'list_sites', {});
      assert.deepEqual(sites.result.structuredContent.sites.map((s) => s.site_id), ['example.com', 'shop.example.com', SITE]);
      assert.equal(sites.upstream, 1);
      const goals = await counted(client, 'list_goals', { site_id: SITE });
      assert.equal(goals.result.structuredContent.source, 'sites_api');
      assert.deepEqual(goals.result.structuredContent.goals.map((g) => g.name), ['Signup', 'Purchase', 'Visit /pricing']);
    } finally {
      await client.close();
    }
    // A Stats-only key: the Sites API's refusal, then the 12-month breakdown;
    // once the refusal is remembered, the breakdown alone (from the cache here).
    const fallback = await counted(v1, 'list_goals', { site_id: SITE });
    assert.equal(fallback.result.structuredContent.source, 'event_breakdown');
    assert.equal(fallback.upstream, 2);
    const known = await counted(v1, 'list_goals', { site_id: 'example.com' });
    assert.equal(known.result.structuredContent.source, 'event_breakdown');
    assert.equal(known.upstream, 1);
    assert.ok(fallback.result.structuredContent.goals.some((g) => g.name === 'Signup'));
  });

  test('the established tools cost what the README says (1, 1, 1 and 2 requests; 0 when repeated)', async () => {
    const calls = [
      ['get_timeseries', { site_id: SITE, date_range: '2024-02-01,2024-02-07' }, 1],
      ['get_breakdown', { site_id: SITE, date_range: '2024-02-01,2024-02-07', dimension: 'visit:source' }, 1],
      ['get_conversions', { site_id: SITE, date_range: '2024-02-01,2024-02-07' }, 1],
      ['compare_periods', { site_id: SITE, period_a: '2024-02-01,2024-02-07', period_b: '2024-02-08,2024-02-14' }, 2],
      ['query_stats', { site_id: SITE, metrics: ['visitors'], date_range: '2024-02-01,2024-02-07' }, 1],
    ];
    for (const [name, args, cost] of calls) {
      const cold = await counted(v2, name, args);
      assert.equal(cold.result.isError, false, `${name}: ${cold.result.content[0].text}`);
      assert.equal(cold.upstream, cost, name);
      assert.equal(cold.result.structuredContent.upstream.requests, cost, name);
      const warm = await counted(v2, name, args);
      assert.equal(warm.upstream, 0, name);
    }
  });

  test('get_realtime_visitors: three requests, never from the cache', async () => {
    for (let i = 0; i < 2; i++) {
      const { result, upstream } = await counted(v2, 'get_realtime_visitors', { site_id: 'example.com', minutes: 30 });
      assert.equal(result.isError, false, result.content[0].text);
      assert.equal(typeof result.structuredContent.visitors, 'number');
      assert.equal(upstream, 3);
    }
  });

  test('query_stats: hourly rows, behavioural and case-insensitive filters; Plausible\'s errors name the field', async () => {
    const { result, upstream } = await counted(v1, 'query_stats', {
      site_id: SITE, metrics: ['visitors'], date_range: '2024-04-17,2024-04-17', dimensions: ['time:hour'],
      filters: [['contains', 'event:page', ['BLOG'], { case_sensitive: false }], ['has_done', ['is', 'event:goal', ['Signup']]]],
      include: { total_rows: true, imports: true },
    });
    assert.equal(result.isError, false, result.content[0].text);
    assert.equal(upstream, 1);
    assert.match(result.structuredContent.results[0].dimensions[0], /^2024-04-17 \d\d:00:00$/);
    assert.equal(typeof result.structuredContent.meta.total_rows, 'number');
    assert.match(result.content[0].text, /Imported data is not included: no_imported_data/);
    const bad = await counted(v1, 'query_stats', { site_id: SITE, metrics: ['visitors'], date_range: '7d',
      filters: [['is', 'event:goal', ['Newsletter']]] });
    assert.equal(bad.result.isError, true);
    assert.match(bad.result.content[0].text, /`filters`: Plausible rejected the query: Invalid filters\. The goal `Newsletter`/);
  });

  test('a spent hourly quota is a clear tool error', async () => {
    await addKey({ key: 'analytics-quota-key', hourlyLimit: 1 });
    const client = await connect(1, 'analytics-quota-key');
    try {
      const ok = await client.callTool({ name: 'get_timeseries', arguments: { site_id: SITE, date_range: '2024-04-01,2024-04-07' } });
      assert.equal(ok.isError, false);
      const spent = await client.callTool({ name: 'get_timeseries', arguments: { site_id: SITE, date_range: '2024-04-08,2024-04-14' } });
      assert.equal(spent.isError, true);
      assert.match(spent.content[0].text, /rate limit exceeded \(429\).*per hour/);
    } finally {
      await client.close();
    }
  });
});
