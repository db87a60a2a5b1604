// What reaches Plausible. The stand-in keeps a log of the requests it got
// (`requests`), but only in the process that started it: it has no HTTP
// endpoint for it, so the harness's shared stand-in cannot be inspected
// from here. This file therefore starts a stack of its own (stand-in +
// worker in workerd, as run.mjs does) and counts on its log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startStack } from '../../devstack/stack.mjs';
import { KEY, SAMPLE_CALLS, post, rpc } from './mcp-helpers.mjs';

let stack;
let persistTo;

before(async () => {
  persistTo = mkdtempSync(path.join(tmpdir(), 'plausible-mcp-e2e-upstream-'));
  stack = await startStack({ persistTo });
});
after(async () => {
  await stack?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

/** Calls a tool on this file's worker; returns the result and the stand-in requests it caused. */
async function callCounting(name, args, { auth } = {}) {
  const before = stack.plausible.requests.length;
  const opts = { version: '2025-11-25', url: `${stack.workerUrl}/mcp` };
  if (auth !== undefined) opts.auth = auth;
  const { res, json } = await post(rpc('tools/call', { name, arguments: args }), opts);
  return { res, json, upstream: stack.plausible.requests.slice(before) };
}

describe('requests the worker sends to Plausible', () => {
  test('a breakdown is one authorised JSON POST with the caller\'s key and the built query', async () => {
    const { json, upstream } = await callCounting('get_breakdown', SAMPLE_CALLS.get_breakdown);
    assert.equal(json.result.isError, false);
    assert.equal(upstream.length, 1);
    const [req] = upstream;
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    assert.match(req.headers['content-type'], /^application\/json/);
    assert.deepEqual(req.body, {
      site_id: 'example.com',
      metrics: ['visitors', 'pageviews', 'bounce_rate'],
      date_range: ['2024-03-01', '2024-03-31'],
      dimensions: ['visit:source'],
      pagination: { limit: 3 },
    });
  });

  test('the second accepted key is passed through unchanged', async () => {
    const { json, upstream } = await callCounting('get_timeseries', SAMPLE_CALLS.get_timeseries, { auth: 'Bearer plausible-shared-key' });
    assert.equal(json.result.isError, false);
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].headers.authorization, 'Bearer plausible-shared-key');
  });

  test('compare_periods sends exactly two queries, one per period', async () => {
    const { json, upstream } = await callCounting('compare_periods', { ...SAMPLE_CALLS.compare_periods, page: '/pricing' });
    assert.equal(json.result.isError, false);
    assert.equal(upstream.length, 2);
    assert.deepEqual(upstream.map((r) => r.body.date_range).sort(),
      [['2024-03-01', '2024-03-07'], ['2024-03-08', '2024-03-14']]);
    for (const r of upstream) assert.deepEqual(r.body.filters, [['is', 'event:page', ['/pricing']]]);
  });

  test('page + an event:page filter is refused with no request to Plausible', async () => {
    const { json, upstream } = await callCounting('get_timeseries', {
      site_id: 'example.com', date_range: '7d', page: '/pricing', property_filters: [{ property: 'event:page', values: ['/docs'] }],
    });
    assert.equal(json.result.isError, true);
    assert.match(json.result.content[0].text, /Drop "page"/);
    assert.equal(upstream.length, 0);
  });

  test('goal + an event:goal filter is refused with no request to Plausible', async () => {
    const { json, upstream } = await callCounting('get_conversions', {
      site_id: 'example.com', date_range: '7d', goal: 'Signup', property_filters: [{ property: 'event:goal', values: ['Purchase'] }],
    });
    assert.equal(json.result.isError, true);
    assert.match(json.result.content[0].text, /Drop "goal"/);
    assert.equal(upstream.length, 0);
  });

  test('invalid arguments, unknown tools and missing keys never reach Plausible', async () => {
    const calls = [
      await callCounting('get_breakdown', { site_id: 'example.com', date_range: '7d', dimension: 'visit:chanel' }),
      await callCounting('compare_periods', { site_id: 'example.com', period_a: '7d' }),
      await callCounting('get_pageviews', {}),
      await callCounting('get_timeseries', SAMPLE_CALLS.get_timeseries, { auth: null }),
      await callCounting('get_timeseries', SAMPLE_CALLS.get_timeseries, { auth: 'Bearer short' }),
    ];
    for (const c of calls) assert.equal(c.upstream.length, 0, JSON.stringify(c.json));
    assert.equal(calls[3].res.status, 401);
    assert.equal(calls[4].res.status, 401);
  });

  test('a 500 is not retried; a 429 is not retried', async () => {
    for (const site of ['broken.example', 'ratelimited.example']) {
      const { json, upstream } = await callCounting('get_timeseries', { site_id: site, date_range: '7d' });
      assert.equal(json.result.isError, true, site);
      assert.equal(upstream.length, 1, site);
    }
  });
});
