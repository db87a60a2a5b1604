// Acceptance: the chart as an MCP App (issue 14), in a real browser.
// The view's HTML comes from the running worker (resources/read), the tool
// results it draws from the worker's own tools on the Plausible stand-in.
// A host page built on the official host bridge (@modelcontextprotocol/
// ext-apps, `app-bridge`, bundled with esbuild) mounts it through a
// sandbox proxy on a second origin, the way a web host does, sends it
// results, and the test reads the SVG back from the view's frame.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { META_CAPABILITIES, META_SERVER_INFO, ROOT, callTool, modernMeta, post, postModern, rpc } from './mcp-helpers.mjs';
import { startHost } from './support/chart-host.mjs';
import { launchChromium } from './support/browser.mjs';

const URI = 'ui://plausible/chart';
const MIME = 'text/html;profile=mcp-app';
const EXTENSION = 'io.modelcontextprotocol/ui';
const OFFER = { extensions: { [EXTENSION]: { mimeTypes: [MIME] } } };
const CHARTED = ['get_timeseries', 'compare_periods', 'find_anomalies'];
/** Screenshots are kept here (the test output); CHART_DOCS=1 also refreshes docs/chart.png. */
const OUT = path.join(ROOT, 'target', 'e2e-output');
/** A label that would close the SVG text and run a script if it were markup. */
const EVIL = '</text><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

const CALLS = {
  get_timeseries: { site_id: 'trends.example.com', date_range: '2024-04-01,2024-05-05', metrics: ['visitors', 'pageviews'] },
  compare_periods: { site_id: 'example.com', period_a: '2024-03-01,2024-03-07', period_b: '2024-03-08,2024-03-14' },
  find_anomalies: { site_id: 'trends.example.com', window: '2024-04-08,2024-05-05' },
};

let browser;
let host;
let page;
let html;
const results = {};
const requests = [];
const cspMessages = [];
const pageErrors = [];

/** tools/call under 2026-07-28 with the given client capabilities. */
async function callModern(name, args, capabilities = {}) {
  const { res, json } = await postModern('tools/call', { name, arguments: args },
    { meta: { ...modernMeta(), [META_CAPABILITIES]: capabilities } });
  assert.equal(res.status, 200);
  assert.equal(json.error, undefined, JSON.stringify(json.error));
  return json.result;
}

/** The view's frame: the sandbox proxy's srcdoc child. */
function viewFrame() {
  const frame = page.frames().find((f) => f.url() === 'about:srcdoc');
  assert.ok(frame, 'the view frame exists');
  return frame;
}

/** What the view drew, read from its DOM. */
function readView() {
  return viewFrame().evaluate(() => ({
    title: document.getElementById('h').textContent,
    subtitle: document.getElementById('s').textContent,
    panels: document.querySelectorAll('svg').length,
    series: [...document.querySelectorAll('g[data-series]')].map((g) => ({
      name: g.getAttribute('data-series'),
      points: g.querySelectorAll('circle.pt').length,
      lines: g.querySelectorAll('path.ln').length,
      bands: g.querySelectorAll('rect.bd').length,
      tips: [...g.querySelectorAll('circle.pt > title')].map((t) => t.textContent),
    })),
    texts: [...document.querySelectorAll('svg text')].map((t) => t.textContent),
    scripts: document.querySelectorAll('script').length,
    elements: [...new Set([...document.querySelectorAll('*')].map((e) => e.localName))].sort(),
    pwned: window.__pwned,
  }));
}

/** Sends a result and waits until the view shows the title it implies. */
async function show(result, title) {
  await page.evaluate((r) => window.sendToolResult(r), result);
  await viewFrame().waitForFunction((t) => document.getElementById('h').textContent === t, title);
  return readView();
}

async function keep(name) {
  mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `chart-${name}.png`);
  await page.locator('#view iframe').screenshot({ path: file });
  return file;
}

before(async () => {
  for (const [name, args] of Object.entries(CALLS)) results[name] = await callModern(name, args, OFFER);
  host = await startHost();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 720, height: 900 } });
  page.on('request', (r) => requests.push({ url: r.url(), frame: r.frame()?.url() }));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) cspMessages.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  await host?.close();
});

describe('the worker offers the chart', () => {
  test('resources/read returns the view as text/html;profile=mcp-app', async () => {
    const { res, json } = await postModern('resources/read', { uri: URI }, { headers: { 'mcp-name': URI } });
    assert.equal(res.status, 200);
    const [content] = json.result.contents;
    assert.equal(content.uri, URI);
    assert.equal(content.mimeType, MIME);
    assert.match(content.text, /^<!doctype html>/);
    assert.match(content.text, /http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-/);
    html = content.text;
  });

  test('tools/list links exactly the three charted tools to the view', async () => {
    const { json } = await postModern('tools/list');
    for (const tool of json.result.tools) {
      assert.deepEqual(tool._meta, CHARTED.includes(tool.name) ? { ui: { resourceUri: URI } } : undefined, tool.name);
    }
  });

  test('the extension is declared only to a client that offers it (initialize and server/discover)', async () => {
    for (const [capabilities, expected] of [[{}, undefined], [OFFER, { [EXTENSION]: { mimeTypes: [MIME] } }]]) {
      const init = await post(rpc('initialize', {
        protocolVersion: '2025-11-25', capabilities, clientInfo: { name: 'chart-e2e', version: '1' },
      }));
      assert.deepEqual(init.json.result.capabilities.extensions, expected);
      const discover = await postModern('server/discover', {}, { meta: { ...modernMeta(), [META_CAPABILITIES]: capabilities } });
      assert.deepEqual(discover.json.result.capabilities.extensions, expected);
    }
  });

  test('hosts without Apps get the same text and structured results', async () => {
    const strip = ({ upstream, ...rest }) => rest; // upstream: this call's own request count
    const text = (r) => r.content[0].text.replace(/\n\n\([^\n]*edge cache[^\n]*\)$/, '');
    for (const [name, args] of Object.entries(CALLS)) {
      // A 2026-07-28 client that offers nothing, and a 2025-11-25 one.
      const modern = await callModern(name, args, {});
      const legacy = await callTool(name, args);
      assert.deepEqual(Object.keys(modern).sort(), Object.keys(results[name]).sort(), name);
      assert.deepEqual(Object.keys(modern._meta), [META_SERVER_INFO], name);
      assert.deepEqual(Object.keys(legacy).sort(), ['content', 'isError', 'structuredContent'], name);
      for (const plain of [modern, legacy]) {
        assert.equal(plain.isError, false, name);
        assert.equal(plain.content.length, 1, name);
        assert.equal(plain.content[0].type, 'text', name);
        assert.equal(text(plain), text(results[name]), name);
        assert.deepEqual(strip(plain.structuredContent), strip(results[name].structuredContent), name);
      }
    }
  });
});

describe('the view in a real browser, through the ext-apps host bridge', () => {
  test('initializes through the sandbox proxy', async () => {
    assert.ok(html, 'the view was read from the worker');
    await page.goto(host.hostUrl);
    const app = await page.evaluate((o) => window.mountView(o),
      { html, sandboxUrl: host.sandboxUrl, toolArguments: CALLS.get_timeseries });
    assert.deepEqual(app, { name: 'plausible-chart', version: '1.0.0' });
  });

  test('draws get_timeseries: a line and a dot per value, one panel for the counts', async (t) => {
    const s = results.get_timeseries.structuredContent;
    assert.equal(s.results.length, 35);
    const view = await show(results.get_timeseries, `trends.example.com · ${s.date_range}`);
    assert.equal(view.subtitle, '35 days');
    assert.equal(view.panels, 1, 'visitors and pageviews share the count panel');
    assert.deepEqual(view.series.map((x) => [x.name, x.points, x.lines]), [['visitors', 35, 1], ['pageviews', 35, 1]]);
    const first = s.results[0];
    assert.equal(view.series[0].tips[0], `${first.dimensions[0]} · visitors: ${first.metrics[0].toLocaleString('en-US')}`);
    assert.ok(view.texts.includes(first.dimensions[0]), 'the first day labels the x axis');
    assert.ok(view.texts.includes(s.results.at(-1).dimensions[0]), 'so does the last');
    assert.ok(view.texts.includes('visitors') && view.texts.includes('pageviews'), 'legend');
    const sizes = await page.evaluate(() => window.hostLog.sizes);
    assert.ok(sizes.length > 0 && sizes.at(-1).height > 150, JSON.stringify(sizes));
    t.diagnostic(`screenshot: ${await keep('timeseries')}`);
    if (process.env.CHART_DOCS) copyFileSync(path.join(OUT, 'chart-timeseries.png'), path.join(ROOT, 'docs', 'chart.png'));
  });

  test('follows a second result: compare_periods as the change of each metric', async (t) => {
    const s = results.compare_periods.structuredContent;
    const view = await show(results.compare_periods, `example.com · ${s.period_a.range} → ${s.period_b.range}`);
    const metrics = Object.keys(s.deltas).filter((m) => s.deltas[m].percent !== null);
    assert.ok(metrics.length >= 2);
    assert.deepEqual(view.series.map((x) => [x.name, x.points]), metrics.map((m) => [m, 2]));
    assert.ok(view.texts.includes(s.period_a.range) && view.texts.includes(s.period_b.range));
    assert.ok(view.texts.some((x) => x.startsWith(`visitors ${s.period_a.metrics.visitors.toLocaleString('en-US')} → `)), view.texts.join('|'));
    assert.ok(!view.series.some((x) => x.name === 'visitors' && x.points === 35), 'the previous chart is gone');
    t.diagnostic(`screenshot: ${await keep('compare')}`);
  });

  test('and find_anomalies: each flagged period with its expected range', async (t) => {
    const s = results.find_anomalies.structuredContent;
    assert.deepEqual(s.anomalies.map((a) => a.period), ['2024-04-17', '2024-04-24']);
    const view = await show(results.find_anomalies, 'trends.example.com · visitors by day');
    assert.equal(view.subtitle, '2 of 28 periods unusual, 2024-04-08 to 2024-05-05');
    assert.deepEqual(view.series.map((x) => [x.name, x.points, x.bands]), [['actual', 2, 0], ['expected', 2, 2]]);
    assert.ok(view.texts.includes('2024-04-17') && view.texts.includes('2024-04-24'));
    t.diagnostic(`screenshot: ${await keep('anomalies')}`);
  });

  test('shows a hostile label as text', async (t) => {
    const result = {
      content: [{ type: 'text', text: 'hostile' }],
      structuredContent: {
        site_id: EVIL, date_range: '7d', metrics: ['visitors'], dimensions: ['time:day'],
        results: [{ dimensions: [EVIL], metrics: [5] }, { dimensions: ['2024-01-02'], metrics: [7] }],
      },
    };
    const view = await show(result, `${EVIL} · 7d`);
    assert.deepEqual(view.series.map((x) => [x.name, x.points]), [['visitors', 2]]);
    assert.ok(view.texts.includes(`${EVIL.slice(0, 23)}…`), 'the x label: one text node, cut at 24 characters');
    assert.equal(view.title, `${EVIL} · 7d`, 'the heading shows it whole, as text');
    assert.equal(view.series[0].tips[0], `${EVIL} · visitors: 5`);
    assert.equal(view.scripts, 1, 'only the view\'s own script');
    assert.ok(!view.elements.includes('img'), view.elements.join(','));
    assert.equal(view.pwned, undefined);
    t.diagnostic(`screenshot: ${await keep('hostile-label')}`);
  });

  test('made no network request and raised no CSP violation', async () => {
    const expected = [host.hostUrl, host.hostUrl.replace('host.html', 'host.js'), host.sandboxUrl];
    assert.deepEqual(requests.map((r) => r.url), expected);
    assert.ok(!requests.some((r) => r.frame === 'about:srcdoc'));
    assert.deepEqual(cspMessages, []);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(await page.evaluate(() => window.hostLog.errors), []);
  });

  test('(control) the CSP is in force in the view: a fetch is refused and reported', async () => {
    const outcome = await viewFrame().evaluate((url) => fetch(url).then(() => 'loaded', () => 'blocked'), `${host.origins[1]}/probe`);
    assert.equal(outcome, 'blocked');
    if (!cspMessages.some((m) => /connect-src/.test(m))) {
      await page.waitForEvent('console', { predicate: (m) => /connect-src/.test(m.text()), timeout: 5000 }).catch(() => {});
    }
    assert.ok(cspMessages.some((m) => /connect-src/.test(m)), JSON.stringify(cspMessages));
  });
});
