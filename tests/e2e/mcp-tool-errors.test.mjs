// Tool failures reach the model as results (isError: true) with a
// specific message, never as protocol errors, and never echo the key or
// what Plausible sent. Upstream faults come from the stand-in's fault
// sites (devstack/plausible.mjs).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MESSAGES } from '../../devstack/plausible.mjs';
import { KEY, callTool, post, resultText, rpc } from './mcp-helpers.mjs';

const UPSTREAM_BODY_MARKER = 'STUB-UPSTREAM-BODY';

/** Asserts a failed tool result and returns its text. */
function failureText(result, { key = KEY } = {}) {
  assert.equal(result.isError, true, JSON.stringify(result));
  assert.equal(result.structuredContent, undefined);
  const text = resultText(result);
  assert.ok(text.startsWith('Error: '), text);
  assert.ok(!text.includes(key), 'the key never appears in a tool error');
  for (const upstream of Object.values(MESSAGES)) assert.ok(!text.includes(upstream), `no upstream message: ${upstream}`);
  assert.ok(!text.includes(UPSTREAM_BODY_MARKER) && !/<html|<!DOCTYPE/i.test(text), 'no upstream body');
  return text;
}

describe('invalid arguments', () => {
  test('an unknown breakdown dimension names the field and the bad value', async () => {
    const text = failureText(await callTool('get_breakdown',
      { site_id: 'example.com', date_range: '7d', dimension: 'visit:chanel' }));
    assert.match(text, /^Error: Invalid argument `dimension`: "visit:chanel" is not a dimension/);
  });

  test('an unknown filter property names the entry', async () => {
    const text = failureText(await callTool('get_timeseries', {
      site_id: 'example.com', date_range: '7d', property_filters: [{ property: 'visit:chanel', values: ['Direct'] }],
    }));
    assert.match(text, /Invalid argument `property_filters\[0\]\.property`: "visit:chanel"/);
  });

  test('a misspelt argument is refused by name, listing the real ones', async () => {
    const text = failureText(await callTool('get_timeseries', { site_id: 'example.com', date_range: '7d', dimensions: 'x' }));
    assert.match(text, /Invalid argument `dimensions`: is not an argument of this tool \(expected one of: .*date_range/);
  });

  test('an impossible date names the field', async () => {
    const text = failureText(await callTool('compare_periods',
      { site_id: 'example.com', period_a: '2023-02-29,2023-03-01', period_b: '7d' }));
    assert.match(text, /`period_a`: .*2023-02-29 is not a real calendar date/);
  });

  test('page together with an event:page filter is refused before querying', async () => {
    // On ratelimited.example any request that reached the stand-in would
    // come back as a 429; the overlap message proves none was made.
    // mcp-upstream.test.mjs counts the stand-in's requests directly.
    for (const site of ['example.com', 'ratelimited.example']) {
      const text = failureText(await callTool('get_timeseries', {
        site_id: site, date_range: '7d', page: '/pricing', property_filters: [{ property: 'event:page', values: ['/docs'] }],
      }));
      assert.match(text, /Invalid argument `property_filters`: the "page" argument and a property_filters entry both target event:page/);
      assert.match(text, /Drop "page"/);
      assert.doesNotMatch(text, /429/);
    }
  });
});

describe('upstream failures', () => {
  test("an unknown key: 401, and the message points at the key and the site, without echoing the key", async () => {
    const key = 'wrong-key-123';
    const text = failureText(await callTool('get_breakdown',
      { site_id: 'example.com', date_range: '7d', dimension: 'visit:source' }, { auth: `Bearer ${key}` }), { key });
    assert.match(text, /\(401\)/);
    assert.match(text, /API key/);
    assert.match(text, /site "example\.com"/);
  });

  test('a site the key cannot see is reported the same way', async () => {
    const text = failureText(await callTool('get_timeseries', { site_id: 'unauthorized.example', date_range: '7d' }));
    assert.match(text, /\(401\).*site "unauthorized\.example"/s);
  });

  test('rate limited (429): says so and when to retry', async () => {
    const text = failureText(await callTool('get_timeseries', { site_id: 'ratelimited.example', date_range: '7d' }));
    assert.match(text, /rate limit/i);
    assert.match(text, /\(429\)/);
    // No Retry-After from Plausible: the next full hour.
    const m = /Retry in about (\d+) (seconds|minutes) \(after (\d+) s\)/.exec(text);
    assert.ok(m, text);
    const secs = Number(m[3]);
    assert.ok(secs >= 1 && secs <= 3600, `retry after ${secs} s`);
    const expected = 3600 - (Math.floor(Date.now() / 1000) % 3600);
    assert.ok(Math.abs(secs - expected) <= 5 || Math.abs(secs - expected) >= 3595, `${secs} vs ${expected}`);
  });

  test('compare_periods reports an upstream failure once, as a result', async () => {
    const text = failureText(await callTool('compare_periods',
      { site_id: 'ratelimited.example', period_a: '2024-03-01,2024-03-07', period_b: '2024-03-08,2024-03-14' }));
    assert.match(text, /\(429\)/);
  });

  test('a 500 with an HTML body: unavailable, and none of the body is shown', async () => {
    const text = failureText(await callTool('get_conversions', { site_id: 'broken.example', date_range: '30d' }));
    assert.match(text, /unavailable/i);
    assert.match(text, /HTTP 500/);
    assert.doesNotMatch(text, /STUB-UPSTREAM-BODY|Bad Gateway|Oops/);
  });

  test('no answer within the worker timeout (10 s): a timeout message', { timeout: 30_000 }, async () => {
    const req = rpc('tools/call', { name: 'get_timeseries', arguments: { site_id: 'slow.example', date_range: '7d' } });
    const { res, json, ms } = await post(req, { version: '2025-11-25' });
    assert.equal(res.status, 200);
    const text = failureText(json.result);
    assert.match(text, /did not answer within 10 seconds/);
    // The worker gave up on its own (the stand-in would answer after 15 s).
    assert.ok(ms >= 9_000 && ms < 14_500, `took ${ms} ms`);
  });
});

describe('protocol-level tool mistakes stay JSON-RPC errors', () => {
  test('an unknown tool name is -32602 listing the tools', async () => {
    const req = rpc('tools/call', { name: 'get_pageviews', arguments: {} });
    const { res, json } = await post(req, { version: '2025-11-25' });
    assert.equal(res.status, 200);
    assert.equal(json.error.code, -32602);
    assert.match(json.error.message, /Unknown tool: get_pageviews\. Available tools: get_timeseries, get_breakdown, get_conversions, compare_periods/);
  });

  test('arguments that are not an object are -32602', async () => {
    const { json } = await post(rpc('tools/call', { name: 'get_timeseries', arguments: ['7d'] }), { version: '2025-11-25' });
    assert.equal(json.error.code, -32602);
  });
});
