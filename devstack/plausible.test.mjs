// Tests for the Plausible Stats API v2 stand-in: node --test devstack/plausible.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPlausibleStub, resolveDateRange } from './plausible.mjs';

const KEY = 'plausible-test-key';
const MISSING_KEY = 'Missing API key. Please use a valid Plausible API key as a Bearer Token.';
const INVALID_KEY =
  "Invalid API key or site ID. Please make sure you're using a valid API key with access to the site you've requested.";
const RATE_LIMITED = 'Too many API requests. The limit is 600 per hour. Please contact us to request more capacity.';

let stub;
before(async () => { stub = await startPlausibleStub({ port: 0 }); });
after(async () => { await stub.close(); });

async function post(body, { key = KEY, headers = {}, raw, base = stub.url, path = '/api/v2/query' } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (key !== null) h.authorization = `Bearer ${key}`;
  const res = await fetch(base + path, { method: 'POST', headers: h, body: raw ?? JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, text, json };
}
const query = (extra) => post({ site_id: 'example.com', metrics: ['visitors'], date_range: '7d', ...extra });
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

test('listens on an ephemeral port and exposes url/port', () => {
  assert.ok(stub.port > 0);
  assert.equal(stub.url, `http://127.0.0.1:${stub.port}`);
});

test('auth: missing, malformed and unknown keys get Plausible 401 bodies', async () => {
  let r = await post({ site_id: 'example.com', metrics: ['visitors'], date_range: '7d' }, { key: null });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { error: MISSING_KEY });
  r = await post({ site_id: 'example.com', metrics: ['visitors'], date_range: '7d' }, { key: null, headers: { authorization: `Basic ${KEY}` } });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { error: MISSING_KEY });
  r = await post({ site_id: 'example.com', metrics: ['visitors'], date_range: '7d' }, { key: 'wrong-key' });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { error: INVALID_KEY });
});

test('custom apiKeys replace the default key', async () => {
  const other = await startPlausibleStub({ apiKeys: ['k1', 'k2'] });
  try {
    const body = { site_id: 'example.com', metrics: ['visitors'], date_range: 'day' };
    assert.equal((await post(body, { base: other.url, key: 'k2' })).status, 200);
    assert.equal((await post(body, { base: other.url, key: KEY })).status, 401);
  } finally {
    await other.close();
  }
});

test('unknown site is a 401 like a bad key; missing site_id is a 400', async () => {
  let r = await post({ site_id: 'not-mine.example.org', metrics: ['visitors'], date_range: '7d' });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { error: INVALID_KEY });
  r = await post({ metrics: ['visitors'], date_range: '7d' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { error: 'Missing site ID. Please provide the required site_id parameter with your request.' });
});

test('only POST /api/v2/query exists', async () => {
  let res = await fetch(`${stub.url}/api/v2/query`);
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: 'Not found' });
  const r = await post({ site_id: 'example.com' }, { path: '/api/v1/stats/aggregate' });
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { error: 'Not found' });
});

test('invalid JSON is a 400 with an {"error"} body; non-JSON content is not parsed', async () => {
  let r = await post(null, { raw: '{"site_id": "example.com",' });
  assert.equal(r.status, 400);
  assert.equal(typeof r.json.error, 'string');
  assert.deepEqual(Object.keys(r.json), ['error']);
  r = await post(null, { raw: JSON.stringify({ site_id: 'example.com', metrics: ['visitors'], date_range: '7d' }),
    headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 400);
  assert.match(r.json.error, /^Missing site ID\./);
});

test('requests log records parsed bodies and lowercase headers', async () => {
  const before = stub.requests.length;
  await post({ site_id: 'example.com', metrics: ['pageviews'], date_range: 'day' }, { headers: { 'X-Trace-Id': 'abc' } });
  assert.equal(stub.requests.length, before + 1);
  const last = stub.requests.at(-1);
  assert.deepEqual(last.body, { site_id: 'example.com', metrics: ['pageviews'], date_range: 'day' });
  assert.equal(last.headers['x-trace-id'], 'abc');
  assert.equal(last.headers.authorization, `Bearer ${KEY}`);
});

test('fault site ratelimited.example: 429 with Plausible body, whatever the key', async () => {
  for (const key of [KEY, 'wrong', null]) {
    const r = await post({ site_id: 'ratelimited.example', metrics: ['visitors'], date_range: '7d' }, { key });
    assert.equal(r.status, 429);
    assert.deepEqual(r.json, { error: RATE_LIMITED });
    assert.equal(r.headers.get('retry-after'), null);
  }
});

test('fault site broken.example: 500 with a non-JSON upstream body', async () => {
  const r = await post({ site_id: 'broken.example', metrics: ['visitors'], date_range: '7d' });
  assert.equal(r.status, 500);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.ok(r.text.includes('STUB-UPSTREAM-BODY'));
  assert.equal(r.json, null);
});

test('fault site unauthorized.example: 401 even with a valid key', async () => {
  const r = await post({ site_id: 'unauthorized.example', metrics: ['visitors'], date_range: '7d' });
  assert.equal(r.status, 401);
  assert.deepEqual(r.json, { error: INVALID_KEY });
});

test('fault site slow.example: no answer within 300 ms, close() is immediate', { timeout: 5000 }, async () => {
  const slow = await startPlausibleStub();
  const pending = post({ site_id: 'slow.example', metrics: ['visitors'], date_range: '7d' }, { base: slow.url })
    .then((r) => ({ answered: r.status }), (err) => ({ failed: err }));
  let closeMs;
  try {
    const early = await Promise.race([pending, new Promise((r) => setTimeout(() => r('still waiting'), 300))]);
    assert.equal(early, 'still waiting');
    assert.equal(slow.requests.length, 1);
  } finally {
    const t0 = Date.now();
    await slow.close();
    closeMs = Date.now() - t0;
  }
  assert.ok(closeMs < 1000, `close() should not wait for the 15 s delay (took ${closeMs} ms)`);
  const outcome = await pending;
  assert.ok(outcome.failed, 'the pending request is cut off, not answered');
});

test('schema validation errors use Plausible messages', async () => {
  const cases = [
    [{ metrics: ['visitors', 'bogus'] }, '#/metrics/1: Invalid metric "bogus"'],
    [{ metrics: [] }, '#/metrics: Expected a minimum of 1 items but got 0.'],
    [{ metrics: ['visitors', 'visitors'] }, '#/metrics: Expected items to be unique but they were not.'],
    [{ dimensions: ['time:minute'] }, '#/dimensions/0: Invalid dimension "time:minute"'],
    [{ dimensions: ['event:props:'] }, '#/dimensions/0: Invalid dimension "event:props:"'],
    [{ date: '2024-01-01' }, '#/date: Schema does not allow additional properties.'],
    [{ date_range: '-1d' }, '#/date_range: Invalid date range "-1d"'],
    [{ date_range: ['2021-02-03T00:00:00Z', '2021-02-04'] }, '#/date_range: Invalid date range ["2021-02-03T00:00:00Z", "2021-02-04"]'],
    [{ filters: [['is_not', 'event:goal', ['Signup']]] }, '#/filters/0: Invalid filter ["is_not", "event:goal", ["Signup"]]'],
    [{ filters: [['and', []]] }, '#/filters/0: Invalid filter ["and", []]'],
    [{ filters: 'nope' }, '#/filters: Type mismatch. Expected Array but got String.'],
    [{ include: { comparisons: { mode: 'previous_period' } } }, '#/include/comparisons: Schema does not allow additional properties.'],
    [{ pagination: { limit: 10001 } }, '#/pagination/limit: Expected the value to be <= 10000'],
    [{ pagination: { offset: -1 } }, '#/pagination/offset: Expected the value to be >= 0'],
    [{ order_by: [['visssss', 'desc']] }, '#/order_by/0/0: Invalid value in order_by "visssss"'],
  ];
  for (const [extra, message] of cases) {
    const r = await query(extra);
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.deepEqual(r.json, { error: message });
  }
  const r = await post({ site_id: 'example.com', dimensions: [] });
  assert.deepEqual(r.json, { error: '#: Required properties metrics, date_range were not present.' });
});

test('parser and query-builder validation errors use Plausible messages', async () => {
  const cases = [
    [{ date_range: '999999999mo' }, 'Invalid date_range "999999999mo"'],
    [{ date_range: ['2024-02-30', '2024-03-01'] }, `Invalid date_range '["2024-02-30", "2024-03-01"]'.`],
    [{ date_range: ['2021-02-03T00:00:00', '2021-02-03T23:59:59'] },
      `Invalid date_range '["2021-02-03T00:00:00", "2021-02-03T23:59:59"]'.`],
    [{ filters: [['is', 'visit:os_version', [123]]] }, `Invalid filter '["is", "visit:os_version", [123]]'.`],
    [{ filters: [['is', 'visit:country', ['Germany']]] },
      'Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.'],
    [{ metrics: ['visitors'], order_by: [['events', 'desc']] },
      "Invalid order_by entry '{:events, :desc}'. Entry is not a queried metric or dimension."],
    [{ filters: [['or', [['is', 'event:hostname', ['example.com']]]]] },
      'Invalid filters. Dimension `event:hostname` can only be filtered at the top level.'],
    [{ filters: [['is', 'event:goal', ['Newsletter']]] },
      'Invalid filters. The goal `Newsletter` is not configured for this site. Find out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals'],
    [{ metrics: ['conversion_rate'] }, 'Metric `conversion_rate` can only be queried with event:goal filters or dimensions.'],
    [{ metrics: ['scroll_depth'] }, 'Metric `scroll_depth` can only be queried with event:page filters or dimensions.'],
    [{ metrics: ['time_on_page'], dimensions: ['visit:source'] },
      'Metric `time_on_page` can only be queried with event:page filters or dimensions.'],
    [{ metrics: ['views_per_visit'], filters: [['is', 'event:page', ['/']]] },
      'Metric `views_per_visit` cannot be queried with a filter on `event:page`.'],
    [{ metrics: ['views_per_visit'], dimensions: ['visit:source'] }, 'Metric `views_per_visit` cannot be queried with `dimensions`.'],
    [{ metrics: ['visitors', 'bounce_rate'], dimensions: ['event:props:plan'] },
      'Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:props:plan`'],
    [{ metrics: ['events'], dimensions: ['visit:exit_page'] },
      'Event metric(s) `events` cannot be queried along with session dimension(s) `visit:exit_page`'],
    [{ include: { time_labels: true } }, 'Invalid include.time_labels: requires a time dimension.'],
  ];
  for (const [extra, message] of cases) {
    const r = await query(extra);
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.deepEqual(r.json, { error: message });
  }
});

test('valid edge forms are accepted', async () => {
  for (const date_range of ['day', '7d', '28d', '91d', '30d', 'month', '3mo', '6mo', '12mo', 'year', 'all', '24h']) {
    assert.equal((await query({ date_range })).status, 200, date_range);
  }
  const ok = [
    { metrics: ['visitors', 'bounce_rate'], dimensions: ['event:page'] },
    { metrics: ['visitors', 'bounce_rate'], filters: [['is', 'event:props:plan', ['pro']]] },
    { metrics: ['scroll_depth', 'time_on_page'], filters: [['is', 'event:page', ['/pricing']]] },
    { metrics: ['visitors'], filters: [['has_done', ['is', 'event:goal', ['Signup']]]] },
    { metrics: ['visitors'], filters: [['matches', 'event:page', ['^/blog']]], pagination: { limit: 1, offset: 5 } },
  ];
  for (const extra of ok) assert.equal((await query(extra)).status, 200, JSON.stringify(extra));
});

test('aggregate: Plausible response shape, value types and query echo', async () => {
  const r = await query({ metrics: ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration', 'views_per_visit', 'events'] });
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json), ['results', 'meta', 'query']);
  assert.equal(r.json.results.length, 1);
  const [row] = r.json.results;
  assert.deepEqual(row.dimensions, []);
  const [visitors, visits, pageviews, bounce, duration, vpv, events] = row.metrics;
  for (const v of [visitors, visits, pageviews, bounce, duration, events]) assert.ok(Number.isInteger(v));
  assert.ok(visitors > 0 && visitors <= visits && visits <= pageviews && pageviews <= events);
  assert.ok(bounce >= 0 && bounce <= 100);
  assert.equal(vpv, Math.round(vpv * 100) / 100);
  assert.ok(vpv >= 1);
  const [start, end] = resolveDateRange('7d', new Date());
  assert.deepEqual(r.json.query, {
    site_id: 'example.com', metrics: ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration', 'views_per_visit', 'events'],
    date_range: [`${start}T00:00:00Z`, `${end}T23:59:59Z`], filters: [], dimensions: [],
    order_by: [['visitors', 'desc']], include: {}, pagination: { limit: 10000, offset: 0 },
  });
  assert.deepEqual(r.json.meta, {});
});

test('timeseries: one row per day of 7d, ascending, consistent with the aggregate', async () => {
  const ts = await query({ metrics: ['visits', 'pageviews'], dimensions: ['time:day'], include: { time_labels: true } });
  const agg = await query({ metrics: ['visits', 'pageviews'] });
  assert.equal(ts.status, 200);
  const days = ts.json.results.map((r) => r.dimensions[0]);
  const [start, end] = resolveDateRange('7d', new Date());
  assert.equal(days.length, 7);
  assert.equal(days[0], start);
  assert.equal(days[6], end);
  assert.deepEqual(days, [...days].sort());
  assert.deepEqual(ts.json.meta.time_labels, days);
  assert.deepEqual(ts.json.query.order_by, [['time:day', 'asc'], ['visits', 'desc']]);
  assert.equal(sum(ts.json.results.map((r) => r.metrics[0])), agg.json.results[0].metrics[0]);
  assert.equal(sum(ts.json.results.map((r) => r.metrics[1])), agg.json.results[0].metrics[1]);
  assert.ok(new Set(ts.json.results.map((r) => r.metrics[1])).size > 1, 'days differ');
});

test('"time" resolves by range length and weeks start on Monday but not before the range', async () => {
  // Today has data only up to now, so the hour labels are checked on time_labels.
  let r = await query({ date_range: 'day', dimensions: ['time'], include: { time_labels: true } });
  assert.deepEqual(r.json.query.dimensions, ['time:hour']);
  assert.equal(r.json.meta.time_labels.length, 24);
  for (const label of r.json.meta.time_labels) assert.match(label, /^\d{4}-\d\d-\d\d \d\d:00:00$/);
  for (const row of r.json.results) assert.ok(r.json.meta.time_labels.includes(row.dimensions[0]));
  r = await query({ date_range: '12mo', dimensions: ['time'], include: { time_labels: true } });
  assert.deepEqual(r.json.query.dimensions, ['time:month']);
  assert.equal(r.json.meta.time_labels.length, 12);
  r = await query({ date_range: ['2024-01-03', '2024-01-20'], dimensions: ['time:week'] });
  assert.deepEqual(r.json.results.map((x) => x.dimensions[0]), ['2024-01-03', '2024-01-08', '2024-01-15']);
});

test('breakdown with filters, ordering and pagination', async () => {
  const all = await query({ metrics: ['visitors', 'pageviews'], date_range: '30d', dimensions: ['event:page'],
    include: { total_rows: true } });
  assert.deepEqual(all.json.results.map((r) => r.dimensions[0]).sort(),
    ['/', '/blog', '/blog/launch', '/docs', '/pricing', '/signup']);
  const visitors = all.json.results.map((r) => r.metrics[0]);
  assert.deepEqual(visitors, [...visitors].sort((a, b) => b - a));
  assert.equal(all.json.meta.total_rows, 6);

  const blog = await query({ metrics: ['visitors', 'pageviews'], date_range: '30d', dimensions: ['event:page'],
    filters: [['contains', 'event:page', ['blog']]], pagination: { limit: 1 }, include: { total_rows: true } });
  assert.equal(blog.status, 200);
  assert.equal(blog.json.results.length, 1);
  assert.equal(blog.json.meta.total_rows, 2);
  assert.ok(blog.json.results[0].dimensions[0].includes('blog'));
  const top = all.json.results.filter((r) => r.dimensions[0].includes('blog'))[0];
  assert.deepEqual(blog.json.results[0], top);

  const second = await query({ metrics: ['visitors', 'pageviews'], date_range: '30d', dimensions: ['event:page'],
    filters: [['contains', 'event:page', ['blog']]], pagination: { limit: 1, offset: 1 } });
  assert.deepEqual(second.json.results, [all.json.results.filter((r) => r.dimensions[0].includes('blog'))[1]]);

  const unfiltered = await query({ metrics: ['visitors', 'pageviews'], date_range: '30d' });
  const pricing = await query({ metrics: ['visitors', 'pageviews'], date_range: '30d', filters: [['is', 'event:page', ['/pricing']]] });
  assert.ok(pricing.json.results[0].metrics[0] < unfiltered.json.results[0].metrics[0]);
  assert.deepEqual(pricing.json.results[0].metrics, all.json.results.find((r) => r.dimensions[0] === '/pricing').metrics);

  const notPricing = await query({ metrics: ['pageviews'], date_range: '30d', filters: [['not', ['is', 'event:page', ['/pricing']]]] });
  assert.equal(notPricing.json.results[0].metrics[0] + pricing.json.results[0].metrics[1], unfiltered.json.results[0].metrics[1]);

  const asc = await query({ metrics: ['visitors'], date_range: '30d', dimensions: ['visit:channel'], order_by: [['visitors', 'asc']] });
  const channels = asc.json.results.map((r) => r.dimensions[0]).sort();
  assert.deepEqual(channels, ['Direct', 'Organic Search', 'Paid Search', 'Referral']);
  const ascVisitors = asc.json.results.map((r) => r.metrics[0]);
  assert.deepEqual(ascVisitors, [...ascVisitors].sort((a, b) => a - b));
});

test('goals, custom properties and conversion rates', async () => {
  const r = await query({ metrics: ['visitors', 'events', 'conversion_rate'], date_range: '30d', dimensions: ['event:goal'] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.results.map((x) => x.dimensions[0]).sort(), ['Purchase', 'Signup']);
  for (const { metrics: [, , cr] } of r.json.results) {
    assert.ok(cr > 0 && cr < 100);
    assert.equal(cr, Math.round(cr * 10) / 10);
  }
  const plan = await query({ metrics: ['visitors'], date_range: '30d', dimensions: ['event:props:plan'],
    filters: [['is', 'event:goal', ['Signup']]] });
  assert.deepEqual(plan.json.results.map((x) => x.dimensions[0]).sort(), ['free', 'pro']);
  const geo = await query({ metrics: ['visitors', 'percentage'], date_range: '30d', dimensions: ['visit:country', 'visit:country_name'] });
  assert.deepEqual(geo.json.results.map((x) => x.dimensions.join('/')).sort(), ['DE/Germany', 'FR/France', 'US/United States']);
});

test('absolute date range as a two-element array', async () => {
  const r = await query({ metrics: ['visitors', 'pageviews'], date_range: ['2024-01-01', '2024-01-10'], dimensions: ['time:day'] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.query.date_range, ['2024-01-01T00:00:00Z', '2024-01-10T23:59:59Z']);
  assert.equal(r.json.results.length, 10);
  assert.equal(r.json.results[0].dimensions[0], '2024-01-01');
  assert.equal(r.json.results[9].dimensions[0], '2024-01-10');
  const reversed = await query({ date_range: ['2024-01-10', '2024-01-01'], dimensions: ['time:day'] });
  assert.equal(reversed.status, 200);
  assert.deepEqual(reversed.json.results, []);
  const empty = await query({ metrics: ['visitors', 'bounce_rate', 'visit_duration'], date_range: ['2019-01-01', '2019-01-31'] });
  assert.deepEqual(empty.json.results, [{ metrics: [0, 0, null], dimensions: [] }]);
});

test('determinism: same query, same numbers (also across instances); other periods and sites differ', async () => {
  const body = { site_id: 'shop.example.com', metrics: ['visitors', 'pageviews', 'bounce_rate'], date_range: ['2025-03-01', '2025-03-31'],
    dimensions: ['visit:source'] };
  const a = await post(body);
  const b = await post(body);
  const other = await startPlausibleStub();
  const c = await post(body, { base: other.url });
  await other.close();
  assert.deepEqual(a.json, b.json);
  assert.deepEqual(a.json, c.json);
  const april = await post({ ...body, date_range: ['2025-04-01', '2025-04-30'] });
  assert.notDeepEqual(april.json.results, a.json.results);
  const main = await post({ ...body, site_id: 'example.com' });
  assert.notDeepEqual(main.json.results, a.json.results);
});

test('resolveDateRange follows Plausible semantics', () => {
  assert.deepEqual(resolveDateRange('day', '2024-03-10'), ['2024-03-10', '2024-03-10']);
  assert.deepEqual(resolveDateRange('7d', '2024-03-10'), ['2024-03-03', '2024-03-09']);
  assert.deepEqual(resolveDateRange('30d', '2024-03-10'), ['2024-02-09', '2024-03-09']);
  assert.deepEqual(resolveDateRange('month', '2024-02-10'), ['2024-02-01', '2024-02-29']);
  assert.deepEqual(resolveDateRange('6mo', '2024-03-10'), ['2023-09-01', '2024-02-29']);
  assert.deepEqual(resolveDateRange('12mo', '2024-03-10'), ['2023-03-01', '2024-02-29']);
  assert.deepEqual(resolveDateRange('year', '2024-03-10'), ['2024-01-01', '2024-12-31']);
  assert.deepEqual(resolveDateRange('24h', new Date('2024-03-10T10:11:12.500Z')), ['2024-03-09T10:11:12Z', '2024-03-10T10:11:12Z']);
  assert.deepEqual(resolveDateRange(['2024-01-01', '2024-01-31'], '2024-03-10'), ['2024-01-01', '2024-01-31']);
});

// ---------------------------------------------------------------- Sites API, quota, control, data set
import { loadDataSet } from './plausible.mjs';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

async function get(p, key, base = stub.url) {
  const res = await fetch(base + p, { headers: key === null ? {} : { authorization: `Bearer ${key}` } });
  return { status: res.status, json: await res.json() };
}
async function addKey(o, base = stub.url) {
  const res = await fetch(`${base}/__stand-in/keys`, { method: 'POST', body: JSON.stringify(o) });
  assert.equal(res.status, 200);
}

test('Sites API: only keys with Sites API access list sites and goals, with cursor pagination', async () => {
  let r = await get('/api/v1/sites', KEY);
  assert.equal(r.status, 401);
  assert.match(r.json.error, /^Invalid API key\. .*access to the resource/);
  await addKey({ key: 'sites-key', sitesApi: true });
  r = await get('/api/v1/sites', 'sites-key');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.sites.map((s) => s.domain), ['example.com', 'shop.example.com', 'trends.example.com']);
  assert.deepEqual(r.json.sites[1], { domain: 'shop.example.com', timezone: 'Europe/Berlin' });
  assert.deepEqual(r.json.meta, { after: null, before: null, limit: 100 });
  const first = await get('/api/v1/sites?limit=2', 'sites-key');
  assert.equal(first.json.sites.length, 2);
  const second = await get(`/api/v1/sites?limit=2&after=${first.json.meta.after}`, 'sites-key');
  assert.deepEqual(second.json.sites.map((s) => s.domain), ['trends.example.com']);
  assert.equal(second.json.meta.after, null);
  r = await get('/api/v1/sites/goals?site_id=trends.example.com', 'sites-key');
  assert.deepEqual(r.json.goals.map((g) => [g.display_name, g.goal_type]),
    [['Signup', 'event'], ['Purchase', 'event'], ['Visit /pricing', 'page']]);
  assert.equal((await get('/api/v1/sites/goals', 'sites-key')).status, 400);
  assert.equal((await get('/api/v1/sites/goals?site_id=nope.example', 'sites-key')).status, 404);
  assert.equal((await get('/api/v1/sites', null)).status, 401);
  // Nothing that writes exists here.
  const del = await fetch(`${stub.url}/api/v1/sites/example.com`, { method: 'DELETE', headers: { authorization: 'Bearer sites-key' } });
  assert.equal(del.status, 404);
});

test('hourly quota per key: 429 with Plausible\'s message once spent, other keys unaffected', async () => {
  await addKey({ key: 'tiny-quota-key', hourlyLimit: 2 });
  const body = { site_id: 'example.com', metrics: ['visitors'], date_range: '7d' };
  assert.equal((await post(body, { key: 'tiny-quota-key' })).status, 200);
  assert.equal((await post(body, { key: 'tiny-quota-key' })).status, 200);
  const spent = await post(body, { key: 'tiny-quota-key' });
  assert.equal(spent.status, 429);
  assert.equal(spent.json.error, 'Too many API requests. Your API key is limited to 2 requests per hour. Please contact us to request more capacity.');
  assert.equal((await post(body)).status, 200);
});

test('request log over HTTP names method, path and body', async () => {
  await post({ site_id: 'example.com', metrics: ['visits'], date_range: 'day' });
  const res = await fetch(`${stub.url}/__stand-in/requests`);
  const { requests } = await res.json();
  const last = requests.at(-1);
  assert.equal(last.method, 'POST');
  assert.equal(last.path, '/api/v2/query');
  assert.deepEqual(last.body, { site_id: 'example.com', metrics: ['visits'], date_range: 'day' });
});

test('Stats API additions: time:hour, entry/exit hostnames, behavioural and case-insensitive filters, imports, total_rows', async () => {
  const day = ['2024-03-05', '2024-03-05'];
  const hourly = await query({ date_range: day, dimensions: ['time:hour'] });
  assert.ok(hourly.json.results.length > 12);
  assert.match(hourly.json.results[0].dimensions[0], /^2024-03-05 \d\d:00:00$/);
  const hosts = await query({ date_range: day, dimensions: ['visit:entry_page_hostname', 'visit:exit_page_hostname'] });
  assert.deepEqual(hosts.json.results.map((r) => r.dimensions.join(' ')).sort(), ['example.com example.com', 'www.example.com www.example.com']);
  const all = await query({ date_range: '30d' });
  const insensitive = await query({ date_range: '30d', filters: [['contains', 'event:page', ['BLOG'], { case_sensitive: false }]] });
  const sensitive = await query({ date_range: '30d', filters: [['contains', 'event:page', ['BLOG']]] });
  assert.ok(insensitive.json.results[0].metrics[0] > 0);
  assert.equal(sensitive.json.results[0].metrics[0], 0);
  const done = await query({ date_range: '30d', filters: [['has_done', ['is', 'event:goal', ['Signup']]]] });
  const notDone = await query({ date_range: '30d', filters: [['has_not_done', ['is', 'event:goal', ['Signup']]]] });
  assert.ok(done.json.results[0].metrics[0] > 0 && notDone.json.results[0].metrics[0] > 0);
  assert.ok(done.json.results[0].metrics[0] + notDone.json.results[0].metrics[0] >= all.json.results[0].metrics[0]);
  const nested = await query({ filters: [['has_done', ['has_done', ['is', 'event:page', ['/']]]]] });
  assert.equal(nested.json.error, 'Invalid filters. Behavioral filters (has_done, has_not_done) cannot be nested.');
  const imports = await query({ include: { imports: true } });
  assert.deepEqual(imports.json.meta, { imports_included: false, imports_skip_reason: 'no_imported_data' });
});

test('default data set: seasonal and overdispersed, with the planted drop, spike and conversion-rate rise', async () => {
  const daily = async (extra) => {
    const r = await post({ site_id: 'trends.example.com', metrics: ['visitors'], date_range: ['2024-03-04', '2024-06-30'],
      dimensions: ['time:day'], ...extra });
    return new Map(r.json.results.map((x) => [x.dimensions[0], x.metrics[0]]));
  };
  const visitors = await daily({});
  const dow = (d) => new Date(`${d}T00:00:00Z`).getUTCDay();
  const on = (pred) => [...visitors].filter(([d]) => pred(d) && !['2024-04-17', '2024-04-24'].includes(d)).map(([, v]) => v);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const weekdays = on((d) => dow(d) >= 1 && dow(d) <= 4);
  const saturdays = on((d) => dow(d) === 6);
  assert.ok(mean(saturdays) < 0.75 * mean(weekdays), 'weekends are quieter');
  // Overdispersed: the spread of weekday values is well above Poisson's sqrt(mean).
  const sd = Math.sqrt(mean(weekdays.map((v) => (v - mean(weekdays)) ** 2)));
  assert.ok(sd > 1.5 * Math.sqrt(mean(weekdays)), `sd ${sd}`);
  const wednesdays = on((d) => dow(d) === 3);
  assert.ok(visitors.get('2024-04-17') < 0.65 * mean(wednesdays), 'drop');
  const hn = await daily({ filters: [['is', 'visit:source', ['news.ycombinator.com']]] });
  assert.ok(hn.get('2024-04-24') > 5 * hn.get('2024-04-17'), 'source spike');
  const rate = async (range) => {
    const r = await post({ site_id: 'trends.example.com', metrics: ['visitors', 'conversion_rate'], date_range: range,
      filters: [['is', 'event:goal', ['Signup']]] });
    return r.json.results[0].metrics[1];
  };
  assert.ok(await rate(['2024-05-16', '2024-06-12']) > 1.3 * await rate(['2024-04-17', '2024-05-14']), 'conversion rise');
});

test('a data set can be loaded from a file', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stand-in-data-'));
  const file = path.join(dir, 'data.json');
  const data = { seed: 7, stats_start: '2024-01-01', sites: { 'tiny.example': { base: 10, dispersion: 0.1,
    hostnames: ['tiny.example'], goals: [{ display_name: 'Signup', event_name: 'Signup' }], signup: 0, purchase: 0 } } };
  writeFileSync(file, JSON.stringify(data));
  assert.deepEqual(Object.keys(loadDataSet(file).sites), ['tiny.example']);
  const other = await startPlausibleStub({ dataFile: file, sitesApiKeys: ['k'] });
  try {
    const r = await get('/api/v1/sites', 'k', other.url);
    assert.deepEqual(r.json.sites, [{ domain: 'tiny.example', timezone: 'Etc/UTC' }]);
  } finally {
    await other.close();
    // The data set is module-wide: put the default back for the tests that follow.
    await (await startPlausibleStub({ dataFile: (await import('./plausible.mjs')).DEFAULT_DATA_FILE })).close();
  }
  writeFileSync(file, JSON.stringify({ seed: 'x', sites: {} }));
  assert.throws(() => loadDataSet(file), /integer seed/);
});

test('an hourly plant relative to now lands in its whole hour, from one source', async () => {
  const res = await fetch(`${stub.url}/__stand-in/plants`);
  const plant = (await res.json()).plants['trends.example.com'].find((p) => p.hours_ago !== undefined);
  assert.equal(plant.source, 'github.com');
  const start = Date.parse(`${plant.date}T${String(plant.hour).padStart(2, '0')}:00:00Z`);
  // Pinned when the data set was loaded (this process, moments ago): hours_ago whole hours back.
  const nowHour = Math.floor(Date.now() / 3600_000) * 3600_000;
  assert.ok(nowHour - start >= plant.hours_ago * 3600_000 && nowHour - start <= (plant.hours_ago + 1) * 3600_000);
  assert.equal(plant.period, `${plant.date} ${String(plant.hour).padStart(2, '0')}:00:00`);
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const r = await post({ site_id: 'trends.example.com', metrics: ['visitors'], date_range: [iso(start - 3 * 3600_000), iso(start + 3 * 3600_000 - 1000)],
    dimensions: ['time:hour'], filters: [['is', 'visit:source', ['github.com']]] });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const byHour = new Map(r.json.results.map((x) => [x.dimensions[0], x.metrics[0]]));
  assert.ok(byHour.get(plant.period) >= plant.extra, JSON.stringify([...byHour]));
  // Its visits end within the hour: the hours around it keep their usual handful.
  for (const [hour, v] of byHour) if (hour !== plant.period) assert.ok(v < 20, `${hour}: ${v}`);
});

test('keys limited to sites, revoked keys, and the key each request carried (issue 15)', async () => {
  await addKey({ key: 'one-site-key', sites: ['shop.example.com'], sitesApi: true });
  const on = (site_id, key) => post({ site_id, metrics: ['visitors'], date_range: 'day' }, { key });
  assert.equal((await on('shop.example.com', 'one-site-key')).status, 200);
  // Another site answers as Plausible answers an unknown key: one 401 for both.
  const other = await on('example.com', 'one-site-key');
  assert.equal(other.status, 401);
  assert.deepEqual(other.json, (await on('example.com', 'no-such-key')).json);
  const listed = await get('/api/v1/sites', 'one-site-key');
  assert.deepEqual(listed.json.sites.map((s) => s.domain), ['shop.example.com']);
  const bad = await fetch(`${stub.url}/__stand-in/keys`, { method: 'POST', body: JSON.stringify({ key: 'k', sites: 'x' }) });
  assert.equal(bad.status, 400);
  // The request log names the key every request carried.
  const log = (await (await fetch(`${stub.url}/__stand-in/requests`)).json()).requests;
  assert.equal(log.at(-1).headers.authorization, 'Bearer one-site-key');
  const revoked = await fetch(`${stub.url}/__stand-in/keys`, { method: 'DELETE', body: JSON.stringify({ key: 'one-site-key' }) });
  assert.deepEqual(await revoked.json(), { deleted: true });
  assert.equal((await on('shop.example.com', 'one-site-key')).status, 401);
});
