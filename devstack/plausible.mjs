// Test stand-in for Plausible's Stats API v2 (POST /api/v2/query) and the Sites API reads
// (GET /api/v1/sites, GET /api/v1/sites/goals). Dependency-free, node:http only.
// Checks requests the way Plausible does (JSON schema -> query parser -> query builder validations,
// with Plausible's own messages) and answers from a deterministic, synthetic event data set.
//
//   import { startPlausibleStub } from './devstack/plausible.mjs';
//   node devstack/plausible.mjs --port 8788        (keys from PLAUSIBLE_STUB_KEYS, comma list)
//
// Data comes from a data set file (devstack/plausible-data.json by default: seasonal, overdispersed, fixed seed, with
// planted anomalies on trends.example.com). Each key has an hourly quota (600 by default, 429 when spent) and
// may or may not read the Sites API, and may read only given sites (`sites`). /__stand-in/requests and /__stand-in/keys
// let tests see every request (with the key it carried), add keys (POST) and revoke them (DELETE).
// Sites with data: example.com, shop.example.com, trends.example.com. Fault sites (any key): ratelimited.example (429),
// broken.example (500, HTML), slow.example (200 after 15 s), unauthorized.example (401).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const MESSAGES = {
  missingKey: 'Missing API key. Please use a valid Plausible API key as a Bearer Token.',
  invalidKey:
    "Invalid API key or site ID. Please make sure you're using a valid API key with access to the site you've requested.",
  rateLimited: 'Too many API requests. The limit is 600 per hour. Please contact us to request more capacity.',
  invalidResourceKey:
    "Invalid API key. Please make sure you're using a valid API key with access to the resource you've requested.",
  missingSite: 'Missing site ID. Please provide the required site_id parameter with your request.',
  invalidJson: 'Invalid JSON in request body.',
};
export const STATS_START_DATE = '2023-01-01';
const SLOW_MS = 15_000;
const BROKEN_BODY =
  '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Oops, sorry about that...</h1>' +
  '<p>We encountered an internal error while processing your request. STUB-UPSTREAM-BODY</p></body></html>\n';

const FAULT_SITES = new Set(['ratelimited.example', 'broken.example', 'slow.example', 'unauthorized.example']);
/** The default data set; `startPlausibleStub({ dataFile })` or PLAUSIBLE_STUB_DATA loads another. */
export const DEFAULT_DATA_FILE = fileURLToPath(new URL('./plausible-data.json', import.meta.url));

// ---------------------------------------------------------------- contract tables
const METRICS = new Set(['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration', 'events',
  'percentage', 'conversion_rate', 'group_conversion_rate', 'scroll_depth', 'time_on_page', 'total_revenue', 'average_revenue']);
const SIMPLE_DIMS = new Set(['event:name', 'event:page', 'event:hostname', 'visit:source', 'visit:channel', 'visit:referrer',
  'visit:utm_medium', 'visit:utm_source', 'visit:utm_campaign', 'visit:utm_content', 'visit:utm_term', 'visit:screen',
  'visit:device', 'visit:browser', 'visit:browser_version', 'visit:os', 'visit:os_version', 'visit:country', 'visit:region',
  'visit:city', 'visit:country_name', 'visit:region_name', 'visit:city_name', 'visit:entry_page', 'visit:exit_page',
  'visit:entry_page_hostname', 'visit:exit_page_hostname']);
const TIME_DIMS = new Set(['time', 'time:month', 'time:week', 'time:day', 'time:hour']);
const SHORTHANDS = new Set(['all', 'day', '7d', '30d', 'month', '6mo', '12mo', 'year', '24h']);
const SESSION_METRICS = ['bounce_rate', 'visit_duration', 'views_per_visit'];
const EVENT_METRICS = ['pageviews', 'events', 'scroll_depth', 'total_revenue', 'average_revenue'];
const SESSION_ONLY_DIMS = ['visit:entry_page', 'visit:entry_page_hostname', 'visit:exit_page', 'visit:exit_page_hostname'];
const TOP_KEYS = new Set(['site_id', 'metrics', 'date_range', 'dimensions', 'filters', 'order_by', 'include', 'pagination']);
const INCLUDE_KEYS = new Set(['time_labels', 'imports', 'total_rows']);
const DATE_RE = /^(\d\d\d\d)-(\d\d)-(\d\d)$/;
const DATETIME_RE = /^(-?(?:[1-9][0-9]*)?[0-9]{4})-(1[0-2]|0[1-9])-(3[01]|0[1-9]|[12][0-9])T(2[0-3]|[01][0-9]):([0-5][0-9]):([0-5][0-9])(\.[0-9]+)?(Z|[+-](?:2[0-3]|[01][0-9]):[0-5][0-9])?$/;

const isPropDim = (d) => typeof d === 'string' && /^event:props:.+/s.test(d);
const isFilterDim = (d) => SIMPLE_DIMS.has(d) || isPropDim(d);
const isDimension = (d) => isFilterDim(d) || d === 'event:goal' || TIME_DIMS.has(d);
const isEventDim = (d) => d.startsWith('event:');
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const tick = (xs) => xs.map((x) => `\`${x}\``).join(', ');

/** Elixir `inspect/1` look-alike, used where Plausible interpolates request values into messages. */
export function inspect(v) {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(inspect).join(', ')}]`;
  if (isObj(v)) {
    const e = Object.entries(v);
    return e.length ? `%{${e.map(([k, x]) => `${JSON.stringify(k)} => ${inspect(x)}`).join(', ')}}` : '%{}';
  }
  return String(v);
}
function typeName(v) {
  if (v === null) return 'Null';
  if (Array.isArray(v)) return 'Array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'Integer' : 'Number';
  return { string: 'String', boolean: 'Boolean' }[typeof v] ?? 'Object';
}
const typeError = (path, expected, v) => `${path}: Type mismatch. Expected ${expected} but got ${typeName(v)}.`;
const hasDuplicates = (xs) => new Set(xs.map((x) => JSON.stringify(x))).size !== xs.length;

// ---------------------------------------------------------------- dates
const DAY_MS = 86_400_000;
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const isoDateTime = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const dateMs = (d) => Date.parse(`${d}T00:00:00Z`);
const addDays = (d, n) => isoDate(dateMs(d) + n * DAY_MS);
function isRealDate(s) {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3]);
  return !Number.isNaN(ms) && isoDate(ms) === s;
}
function isRealDateTime(s) {
  const m = DATETIME_RE.exec(s);
  return Boolean(m && m[8] && isRealDate(`${m[1]}-${m[2]}-${m[3]}`) && !Number.isNaN(Date.parse(s)));
}
const todayIso = () => isoDate(Date.now());

/**
 * Resolves a Plausible date_range to [startISO, endISO] the way Plausible's QueryBuilder does (site timezone UTC).
 * Date forms give 'YYYY-MM-DD' pairs; '24h' and datetime pairs give ISO datetimes (UTC, seconds precision).
 * `today` may be a Date (default: now) or a 'YYYY-MM-DD' string.
 */
export function resolveDateRange(range, today = new Date()) {
  const now = today instanceof Date ? today : new Date(`${today}T12:00:00Z`);
  const t = isoDate(now.getTime());
  const y = now.getUTCFullYear();
  const mo = now.getUTCMonth();
  if (Array.isArray(range)) {
    if (DATE_RE.test(range[0])) return [range[0], range[1]];
    return [isoDateTime(Date.parse(range[0])), isoDateTime(Date.parse(range[1]))];
  }
  switch (range) {
    case 'day': return [t, t];
    case 'month': return [isoDate(Date.UTC(y, mo, 1)), isoDate(Date.UTC(y, mo + 1, 0))];
    case 'year': return [`${y}-01-01`, `${y}-12-31`];
    case 'all': return [STATS_START_DATE < t ? STATS_START_DATE : t, t];
    case '24h': {
      const end = Math.floor(now.getTime() / 1000) * 1000;
      return [isoDateTime(end - DAY_MS), isoDateTime(end)];
    }
  }
  let m = /^(\d+)d$/.exec(range);
  if (m) return [addDays(t, -Number(m[1])), addDays(t, -1)];
  m = /^(\d+)mo$/.exec(range);
  if (m) return [isoDate(Date.UTC(y, mo - Number(m[1]), 1)), isoDate(Date.UTC(y, mo, 0))];
  throw new Error(`Unsupported date_range ${inspect(range)}`);
}
function dateWindow(range) {
  const [a, b] = resolveDateRange(range);
  const isDate = DATE_RE.test(a);
  const startMs = isDate ? dateMs(a) : Date.parse(a);
  const endMs = isDate ? dateMs(b) + DAY_MS - 1 : Date.parse(b) + 999;
  return { startMs, endMs, startDate: isoDate(startMs), endDate: isoDate(endMs),
    echo: isDate ? [`${a}T00:00:00Z`, `${b}T23:59:59Z`] : [a, b] };
}
function resolveTimeDim(d, win) {
  if (d !== 'time') return d;
  const span = win.endMs - win.startMs;
  if (span <= 48 * 3600_000) return 'time:hour';
  if (span <= 40 * DAY_MS) return 'time:day';
  if (span <= 52 * 7 * DAY_MS) return 'time:week';
  return 'time:month';
}
function timeLabel(dim, ms, win) {
  const d = isoDate(ms);
  if (dim === 'time:day') return d;
  if (dim === 'time:hour') return `${d} ${new Date(ms).toISOString().slice(11, 13)}:00:00`;
  if (dim === 'time:month') return `${d.slice(0, 7)}-01`;
  const monday = addDays(d, -((new Date(ms).getUTCDay() + 6) % 7));
  return monday < win.startDate ? win.startDate : monday;
}
function timeLabels(dim, win) {
  const out = [];
  if (win.startMs > win.endMs) return out;
  if (dim === 'time:hour') {
    for (let ms = Math.floor(win.startMs / 3600_000) * 3600_000; ms <= win.endMs; ms += 3600_000) out.push(timeLabel(dim, ms, win));
    return out;
  }
  for (let d = win.startDate; d <= win.endDate; d = addDays(d, 1)) {
    const l = timeLabel(dim, dateMs(d), win);
    if (out[out.length - 1] !== l) out.push(l);
  }
  return out;
}

// ---------------------------------------------------------------- deterministic data set
function hash32(str) {
  let h = 2166136261;
  for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 16777619); }
  return h >>> 0;
}
function rng(seed) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function pick(r, list) {
  let v = r() * list.reduce((s, x) => s + x.w, 0);
  for (const x of list) if ((v -= x.w) < 0) return x;
  return list[list.length - 1];
}
/** Standard normal (Box-Muller). */
function normal(r) {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}
/** Gamma(shape k, scale 1/k): mean 1, coefficient of variation 1/sqrt(k) (Marsaglia-Tsang, k >= 1). */
function gammaMeanOne(r, k) {
  const d = k - 1 / 3, c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x, v;
    do { x = normal(r); v = 1 + c * x; } while (v <= 0);
    v = v * v * v;
    const u = 1 - r();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return (d * v) / k;
  }
}
/** Poisson(lambda) by counting exponential arrivals in unit time: exact, O(lambda). */
function poisson(r, lambda) {
  let n = 0, t = -Math.log(1 - r()) / lambda;
  while (t < 1) { n++; t += -Math.log(1 - r()) / lambda; }
  return n;
}
const PAGES = [['/', 30], ['/pricing', 14], ['/blog', 12], ['/blog/launch', 9], ['/docs', 10], ['/signup', 6]]
  .map(([v, w]) => ({ v, w }));
const SOURCES = [
  { source: 'Direct / None', channel: 'Direct', referrer: 'Direct / None', w: 30 },
  { source: 'Google', channel: 'Organic Search', referrer: 'https://www.google.com/', w: 34 },
  { source: 'Bing', channel: 'Organic Search', referrer: 'https://www.bing.com/', w: 6 },
  { source: 'news.ycombinator.com', channel: 'Referral', referrer: 'https://news.ycombinator.com/', w: 10 },
  { source: 'github.com', channel: 'Referral', referrer: 'https://github.com/', w: 8 },
  { source: 'Google', channel: 'Paid Search', referrer: 'https://www.google.com/', utm_medium: 'cpc', utm_source: 'google',
    utm_campaign: 'brand', utm_content: 'ad-a', utm_term: 'web analytics', w: 12 },
];
const GEO = [
  { country: 'US', country_name: 'United States', region: 'US-CA', region_name: 'California', city: 5391959, city_name: 'San Francisco', w: 30 },
  { country: 'US', country_name: 'United States', region: 'US-NY', region_name: 'New York', city: 5128581, city_name: 'New York', w: 15 },
  { country: 'DE', country_name: 'Germany', region: 'DE-BE', region_name: 'Berlin', city: 2950159, city_name: 'Berlin', w: 25 },
  { country: 'FR', country_name: 'France', region: 'FR-IDF', region_name: 'Île-de-France', city: 2988507, city_name: 'Paris', w: 18 },
];
const DEVICES = [
  { device: 'Desktop', w: 55, os: [{ os: 'Windows', v: '10', w: 5 }, { os: 'Mac', v: '14.5', w: 4 }, { os: 'Linux', v: '(not set)', w: 1 }] },
  { device: 'Mobile', w: 38, os: [{ os: 'iOS', v: '17.5', w: 5 }, { os: 'Android', v: '14', w: 5 }] },
  { device: 'Tablet', w: 7, os: [{ os: 'iOS', v: '17.5', w: 3 }, { os: 'Android', v: '13', w: 1 }] },
];
const BROWSERS = [{ b: 'Chrome', v: '126.0', w: 50 }, { b: 'Safari', v: '17.5', w: 25 }, { b: 'Firefox', v: '127.0', w: 14 },
  { b: 'Microsoft Edge', v: '126.0', w: 11 }];
const HOURS = Array.from({ length: 24 }, (_, h) => ({ v: h, w: h < 6 ? 1 : h < 9 ? 3 : h < 18 ? 6 : 4 }));
const WEEKEND_ONLY = [0.7, 1, 1, 1, 1, 1, 0.7];

/**
 * Reads and checks a data set file: { seed, stats_start, sites: { domain: { base, dispersion, weekdays?, hostnames,
 * goals: [{ display_name, event_name? | page_path? }], signup, purchase, timezone?, stats_start?, plants? } } }.
 * Plants: { kind: 'drop', date, factor } | { kind: 'source_spike', date, source, extra } |
 * { kind: 'source_spike', hours_ago, source, extra } (all extra visits in the one whole hour that started hours_ago
 * hours before the data set was loaded: "now" moves, so an hourly plant must be relative to it) |
 * { kind: 'signup_rate', from, rate } | { kind: 'null_change', date } (documentation only).
 */
export function loadDataSet(file = DEFAULT_DATA_FILE) {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  if (!Number.isInteger(data.seed) || !isObj(data.sites)) throw new Error(`${file}: needs an integer seed and a sites object`);
  for (const [domain, site] of Object.entries(data.sites)) {
    if (!(site.base > 0) || !(site.dispersion > 0) || !Array.isArray(site.hostnames) || !Array.isArray(site.goals)) {
      throw new Error(`${file}: site ${domain} needs base, dispersion, hostnames and goals`);
    }
    site.weekdays ??= WEEKEND_ONLY;
    site.timezone ??= 'Etc/UTC';
    site.stats_start ??= data.stats_start ?? STATS_START_DATE;
    site.plants ??= [];
    for (const p of site.plants) {
      if (!['drop', 'source_spike', 'signup_rate', 'null_change'].includes(p.kind)) throw new Error(`${file}: unknown plant ${p.kind}`);
      if (p.kind === 'source_spike' && !SOURCES.some((s) => s.source === p.source)) throw new Error(`${file}: unknown source ${p.source}`);
      if (p.hours_ago !== undefined && !(Number.isInteger(p.hours_ago) && p.hours_ago >= 1 && p.hours_ago <= 47)) {
        throw new Error(`${file}: hours_ago must be a whole number of hours from 1 to 47`);
      }
    }
  }
  return data;
}

let DATA = loadDataSet();
let SITES = DATA.sites;
const dayCache = new Map();
/**
 * Replaces the data set (and forgets every generated day). Plants relative to now (hours_ago) are pinned to the
 * whole hour `hours_ago` hours before `now`: their `date` and `hour` (UTC) are set here, and /__stand-in/plants
 * shows where they landed.
 */
export function useDataSet(data, now = Date.now()) {
  DATA = data;
  SITES = data.sites;
  if (SITES['example.com']) SITES['slow.example'] ??= SITES['example.com'];
  for (const site of Object.values(SITES)) {
    for (const p of site.plants ?? []) {
      if (p.hours_ago === undefined) continue;
      const start = Math.floor(now / 3600_000) * 3600_000 - p.hours_ago * 3600_000;
      p.date = isoDate(start);
      p.hour = new Date(start).getUTCHours();
      p.period = `${p.date} ${String(p.hour).padStart(2, '0')}:00:00`;
    }
  }
  dayCache.clear();
}
/** Where each site's plants are (relative ones resolved). */
export const plants = () => Object.fromEntries(Object.entries(SITES).filter(([d]) => !FAULT_SITES.has(d))
  .map(([d, s]) => [d, s.plants ?? []]));
useDataSet(DATA);

const goalNames = (site) => SITES[site].goals.map((g) => g.display_name);
/** The goal an event completes, by Plausible's rules: a custom event by name, a pageview by path. */
function goalOf(site, e) {
  for (const g of SITES[site].goals) {
    if (g.event_name !== undefined && g.event_name === e.n) return g.display_name;
    if (g.page_path !== undefined && e.n === 'pageview' && e.p === g.page_path) return g.display_name;
  }
  return null;
}

/** The expected number of sessions on a day, before the day effect: base x weekday x plants. */
function dayPlan(cfg, date) {
  const dow = new Date(dateMs(date)).getUTCDay();
  let factor = cfg.weekdays[dow] ?? 1;
  let signup = cfg.signup;
  const extra = [];
  for (const p of cfg.plants) {
    if (p.kind === 'drop' && p.date === date) factor *= p.factor;
    if (p.kind === 'source_spike' && p.date === date) extra.push(p);
    if (p.kind === 'signup_rate' && date >= p.from) signup = p.rate;
  }
  return { lambda: cfg.base * factor, signup, extra };
}

function daySessions(site, date) {
  const key = `${site}|${date}`;
  let list = dayCache.get(key);
  if (list) return list;
  const cfg = SITES[site];
  list = [];
  if (date >= cfg.stats_start) {
    const r = rng(hash32(`${DATA.seed}|${key}`));
    const plan = dayPlan(cfg, date);
    const n = poisson(r, plan.lambda * gammaMeanOne(r, 1 / (cfg.dispersion * cfg.dispersion)));
    for (let i = 0; i < n; i++) list.push(makeSession(site, cfg, date, `${i}`, plan.signup, null));
    for (const p of plan.extra) {
      const src = SOURCES.find((s) => s.source === p.source);
      const tag = (i) => (p.hour === undefined ? `spike${i}` : `spike-hour|${i}`);
      for (let i = 0; i < p.extra; i++) list.push(makeSession(site, cfg, date, tag(i), plan.signup, src, p.hour));
    }
  }
  if (dayCache.size >= 6000) dayCache.delete(dayCache.keys().next().value);
  dayCache.set(key, list);
  return list;
}
/** One visit. `forcedHour` (a planted hour) starts it in that hour's first 45 minutes, so it ends within the hour. */
function makeSession(site, cfg, date, tag, signupRate, forcedSource, forcedHour) {
  const r = rng(hash32(`${DATA.seed}|${site}|${date}|${tag}`));
  const src = forcedSource ?? pick(r, SOURCES), geo = pick(r, GEO), dev = pick(r, DEVICES), os = pick(r, dev.os);
  const br = os.os === 'iOS' || os.os === 'Mac' ? (r() < 0.7 ? BROWSERS[1] : BROWSERS[0]) : pick(r, BROWSERS);
  const host = cfg.hostnames[r() < 0.85 ? 0 : cfg.hostnames.length - 1];
  const dayEnd = dateMs(date) + DAY_MS - 1000;
  let t = forcedHour === undefined
    ? dateMs(date) + pick(r, HOURS).v * 3600_000 + Math.floor(r() * 3600) * 1000
    : dateMs(date) + forcedHour * 3600_000 + Math.floor(r() * 2700) * 1000;
  const x = r();
  const k = x < 0.42 ? 1 : x < 0.68 ? 2 : x < 0.84 ? 3 : x < 0.94 ? 4 : 5;
  const s = { u: Math.floor(r() * cfg.base * 1000), ev: [], pv: k };
  const converts = r() < signupRate && goalNames(site).includes('Signup');
  for (let j = 0; j < k; j++) {
    const p = converts && j === k - 1 ? '/signup' : j === 0 && r() < 0.5 ? '/' : pick(r, PAGES).v;
    const top = 5 + Math.floor(r() * 175);
    s.ev.push({ n: 'pageview', p, h: host, t, pr: null, top, sd: 10 + Math.floor(r() * 91), s });
    if (converts && j === k - 1) {
      s.ev.push({ n: 'Signup', p, h: host, t: Math.min(t + 20_000, dayEnd), pr: { plan: r() < 0.7 ? 'free' : 'pro' }, s });
    }
    t = Math.min(t + top * 1000, dayEnd);
  }
  const last = s.ev[s.ev.length - 1];
  if (r() < cfg.purchase) s.ev.push({ n: 'Purchase', p: last.p, h: host, t: last.t, pr: { plan: 'pro' }, s });
  s.bounce = k === 1 && s.ev.length === 1;
  s.dur = Math.round((s.ev[s.ev.length - 1].t - s.ev[0].t) / 1000);
  s.a = { source: src.source, channel: src.channel, referrer: src.referrer, utm_medium: src.utm_medium ?? '(not set)',
    utm_source: src.utm_source ?? '(not set)', utm_campaign: src.utm_campaign ?? '(not set)',
    utm_content: src.utm_content ?? '(not set)', utm_term: src.utm_term ?? '(not set)', screen: dev.device, device: dev.device,
    browser: br.b, browser_version: br.v, os: os.os, os_version: os.v, country: geo.country, region: geo.region, city: geo.city,
    country_name: geo.country_name, region_name: geo.region_name, city_name: geo.city_name, entry_page: s.ev[0].p,
    exit_page: last.p, entry_page_hostname: host, exit_page_hostname: host };
  return s;
}
/** Events in the window; nothing after `now` exists yet (realtime queries see only the past). */
function eventsIn(site, win) {
  const out = [];
  const now = Date.now();
  const from = win.startDate > STATS_START_DATE ? win.startDate : STATS_START_DATE;
  const to = win.endDate < todayIso() ? win.endDate : todayIso();
  const end = Math.min(win.endMs, now);
  for (let d = from; d <= to; d = addDays(d, 1)) {
    for (const s of daySessions(site, d)) for (const e of s.ev) if (e.t >= win.startMs && e.t <= end) out.push(e);
  }
  return out;
}

// ---------------------------------------------------------------- evaluation
function dimValue(dim, e, ctx) {
  if (dim.startsWith('time:')) return timeLabel(dim, e.t, ctx.win);
  if (dim === 'event:goal') return goalOf(ctx.site, e);
  if (dim === 'event:name') return e.n;
  if (dim === 'event:page') return e.p;
  if (dim === 'event:hostname') return e.h;
  if (dim.startsWith('event:props:')) return e.pr?.[dim.slice(12)] ?? '(none)';
  return e.s.a[dim.slice(6)];
}
const regexCache = new Map();
function regex(src) {
  if (!regexCache.has(src)) { try { regexCache.set(src, new RegExp(src)); } catch { regexCache.set(src, null); } }
  return regexCache.get(src);
}
function evalFilter(f, e, ctx) {
  const [op, a] = f;
  if (op === 'and') return a.every((x) => evalFilter(x, e, ctx));
  if (op === 'or') return a.some((x) => evalFilter(x, e, ctx));
  if (op === 'not') return !evalFilter(a, e, ctx);
  if (op === 'has_done') return e.s.ev.some((x) => evalFilter(a, x, ctx));
  if (op === 'has_not_done') return !e.s.ev.some((x) => evalFilter(a, x, ctx));
  const raw = dimValue(a, e, ctx);
  if (raw === null) return op.endsWith('_not');
  const cs = f[3]?.case_sensitive !== false;
  const norm = (x) => (cs ? String(x) : String(x).toLowerCase());
  const v = norm(raw);
  const clauses = f[2].map(norm);
  switch (op) {
    case 'is': return clauses.includes(v);
    case 'is_not': return !clauses.includes(v);
    case 'contains': return clauses.some((c) => v.includes(c));
    case 'contains_not': return !clauses.some((c) => v.includes(c));
    case 'matches': return f[2].some((c) => regex(String(c))?.test(String(raw)));
    default: return !f[2].some((c) => regex(String(c))?.test(String(raw))); // matches_not
  }
}
const keyOf = (vals) => vals.join('\u0001');
function group(events, dims, ctx) {
  const groups = new Map();
  for (const e of events) {
    const vals = dims.map((d) => dimValue(d, e, ctx));
    if (vals.includes(null)) continue;
    const key = keyOf(vals);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { vals, users: new Set(), sess: new Set(), pv: 0, ev: 0, sd: 0, top: 0 }));
    g.users.add(e.s.u);
    g.sess.add(e.s);
    g.ev++;
    if (e.n === 'pageview') { g.pv++; g.sd += e.sd; g.top += e.top; }
  }
  return groups;
}
const round1 = (x) => Math.round(x * 10) / 10;
const round2 = (x) => Math.round(x * 100) / 100;
function metricValue(m, g, ctx) {
  const visits = g.sess.size;
  const sum = (fn) => { let s = 0; for (const x of g.sess) s += fn(x); return s; };
  switch (m) {
    case 'visitors': return g.users.size;
    case 'visits': return visits;
    case 'pageviews': return g.pv;
    case 'events': return g.ev;
    case 'bounce_rate': return visits ? Math.round((sum((s) => (s.bounce ? 1 : 0)) * 100) / visits) : 0;
    case 'visit_duration': return visits ? Math.round(sum((s) => s.dur) / visits) : null;
    case 'views_per_visit': return visits ? round2(sum((s) => s.pv) / visits) : 0;
    case 'percentage': return ctx.total ? round1((g.users.size * 100) / ctx.total) : ctx.dims.length ? null : 0;
    case 'conversion_rate':
    case 'group_conversion_rate': {
      const denom = ctx.denominator(m, g.vals);
      return denom ? round1((g.users.size * 100) / denom) : 0;
    }
    case 'scroll_depth': return g.pv ? Math.round(g.sd / g.pv) : null;
    case 'time_on_page': return g.pv ? Math.round(g.top / g.pv) : null;
    default: return null;
  }
}
function compare(a, b) {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}
function execute(site, q, win) {
  const ctx = { win, site, dims: q.dimensions };
  const all = eventsIn(site, win);
  const matched = all.filter((e) => q.filters.every((f) => evalFilter(f, e, ctx)));
  if (q.metrics.includes('percentage')) ctx.total = new Set(matched.map((e) => e.s.u)).size;
  const denoms = {};
  ctx.denominator = (m, vals) => {
    const idx = q.dimensions.map((d, i) => (m === 'conversion_rate' ? d.startsWith('time:') : d !== 'event:goal') ? i : -1)
      .filter((i) => i >= 0);
    if (!denoms[m]) {
      const base = all.filter((e) => q.filters.every((f) => f[1] === 'event:goal' || evalFilter(f, e, ctx)));
      const gs = group(base, idx.map((i) => q.dimensions[i]), ctx);
      denoms[m] = new Map([...gs].map(([k, g]) => [k, g.users.size]));
    }
    return denoms[m].get(keyOf(idx.map((i) => vals[i]))) ?? 0;
  };
  let groups = [...group(matched, q.dimensions, ctx).values()];
  if (!q.dimensions.length && !groups.length) groups = [{ vals: [], users: new Set(), sess: new Set(), pv: 0, ev: 0, sd: 0, top: 0 }];
  const rows = groups.map((g) => ({ metrics: q.metrics.map((m) => metricValue(m, g, ctx)), dimensions: g.vals }));
  const valueOf = (row, name) => {
    const mi = q.metrics.indexOf(name);
    return mi >= 0 ? row.metrics[mi] : row.dimensions[q.dimensions.indexOf(name)];
  };
  rows.sort((a, b) => {
    for (const [name, dir] of q.order_by) {
      const c = compare(valueOf(a, name), valueOf(b, name));
      if (c) return dir === 'desc' ? -c : c;
    }
    for (let i = 0; i < a.dimensions.length; i++) {
      const c = compare(a.dimensions[i], b.dimensions[i]);
      if (c) return c;
    }
    return 0;
  });
  return rows;
}

// ---------------------------------------------------------------- validation
function validFilterTree(f) {
  if (!Array.isArray(f) || typeof f[0] !== 'string') return false;
  const [op, a, clauses, mods] = f;
  if (op === 'and' || op === 'or') return f.length === 2 && Array.isArray(a) && a.length >= 1 && a.every(validFilterTree);
  if (['not', 'has_done', 'has_not_done'].includes(op)) return f.length === 2 && validFilterTree(a);
  const clausesOk = Array.isArray(clauses) && clauses.every((c) => typeof c === 'string' || Number.isInteger(c));
  if (op === 'is' && a === 'segment') return f.length === 3 && Array.isArray(clauses) && clauses.every(Number.isInteger);
  const modsOk = f.length === 3 || (f.length === 4 && isObj(mods) &&
    Object.entries(mods).every(([k, v]) => k === 'case_sensitive' && typeof v === 'boolean'));
  if (op === 'is' || op === 'contains') return (isFilterDim(a) || a === 'event:goal') && clausesOk && modsOk;
  if (op === 'is_not' || op === 'contains_not') return isFilterDim(a) && clausesOk && modsOk;
  if (op === 'matches' || op === 'matches_not') return f.length === 3 && isFilterDim(a) && clausesOk;
  return false;
}
function schemaErrors(q) {
  const errs = [];
  const missing = ['site_id', 'metrics', 'date_range'].filter((k) => !(k in q));
  if (missing.length === 1) errs.push(`#: Required property ${missing[0]} was not present.`);
  if (missing.length > 1) errs.push(`#: Required properties ${missing.join(', ')} were not present.`);
  for (const k of Object.keys(q)) if (!TOP_KEYS.has(k)) errs.push(`#/${k}: Schema does not allow additional properties.`);
  if ('site_id' in q && typeof q.site_id !== 'string') errs.push(typeError('#/site_id', 'String', q.site_id));
  if ('metrics' in q) {
    if (!Array.isArray(q.metrics)) errs.push(typeError('#/metrics', 'Array', q.metrics));
    else {
      if (!q.metrics.length) errs.push('#/metrics: Expected a minimum of 1 items but got 0.');
      if (hasDuplicates(q.metrics)) errs.push('#/metrics: Expected items to be unique but they were not.');
      q.metrics.forEach((m, i) => METRICS.has(m) || errs.push(`#/metrics/${i}: Invalid metric ${inspect(m)}`));
    }
  }
  if ('date_range' in q) {
    const r = q.date_range;
    const ok = typeof r === 'string' ? SHORTHANDS.has(r) || /^\d+(d|mo)$/.test(r)
      : Array.isArray(r) && r.length === 2 && r.every((x) => typeof x === 'string') &&
        (r.every((x) => DATE_RE.test(x)) || r.every((x) => DATETIME_RE.test(x)));
    if (!ok) errs.push(`#/date_range: Invalid date range ${inspect(r)}`);
  }
  if ('dimensions' in q) {
    if (!Array.isArray(q.dimensions)) errs.push(typeError('#/dimensions', 'Array', q.dimensions));
    else {
      if (hasDuplicates(q.dimensions)) errs.push('#/dimensions: Expected items to be unique but they were not.');
      q.dimensions.forEach((d, i) => isDimension(d) || errs.push(`#/dimensions/${i}: Invalid dimension ${inspect(d)}`));
    }
  }
  if ('filters' in q) {
    if (!Array.isArray(q.filters)) errs.push(typeError('#/filters', 'Array', q.filters));
    else q.filters.forEach((f, i) => validFilterTree(f) || errs.push(`#/filters/${i}: Invalid filter ${inspect(f)}`));
  }
  if ('order_by' in q) {
    if (!Array.isArray(q.order_by)) errs.push(typeError('#/order_by', 'Array', q.order_by));
    else q.order_by.forEach((o, i) => {
      if (!Array.isArray(o) || o.length !== 2) return errs.push(`#/order_by/${i}: Invalid value in order_by ${inspect(o)}`);
      const [v, dir] = o;
      if (!(METRICS.has(v) || isFilterDim(v) || TIME_DIMS.has(v))) errs.push(`#/order_by/${i}/0: Invalid value in order_by ${inspect(v)}`);
      if (dir !== 'asc' && dir !== 'desc') errs.push(`#/order_by/${i}/1: Invalid value in order_by ${inspect(dir)}`);
    });
  }
  if ('include' in q) {
    if (!isObj(q.include)) errs.push(typeError('#/include', 'Object', q.include));
    else for (const [k, v] of Object.entries(q.include)) {
      if (!INCLUDE_KEYS.has(k)) errs.push(`#/include/${k}: Schema does not allow additional properties.`);
      else if (typeof v !== 'boolean') errs.push(typeError(`#/include/${k}`, 'Boolean', v));
    }
  }
  if ('pagination' in q) {
    if (!isObj(q.pagination)) errs.push(typeError('#/pagination', 'Object', q.pagination));
    else for (const [k, v] of Object.entries(q.pagination)) {
      const p = `#/pagination/${k}`;
      if (k !== 'limit' && k !== 'offset') errs.push(`${p}: Schema does not allow additional properties.`);
      else if (!Number.isInteger(v)) errs.push(typeError(p, 'Integer', v));
      else if (k === 'limit' && v < 1) errs.push(`${p}: Expected the value to be >= 1`);
      else if (k === 'limit' && v > 10000) errs.push(`${p}: Expected the value to be <= 10000`);
      else if (k === 'offset' && v < 0) errs.push(`${p}: Expected the value to be >= 0`);
    }
  }
  return errs;
}
// Calls cb(leaf, { top, behavioral, nestedBehavioral }) for every leaf filter.
function walk(filters, cb, top = true, behav = 0) {
  for (const f of filters) {
    const op = f[0];
    if (op === 'and' || op === 'or') walk(f[1], cb, false, behav);
    else if (op === 'not') walk([f[1]], cb, false, behav);
    else if (op === 'has_done' || op === 'has_not_done') walk([f[1]], cb, false, behav + 1);
    else cb(f, { top, behavioral: behav > 0, nestedBehavioral: behav > 1 });
  }
}
function parseErrors(q) {
  const r = q.date_range;
  if (typeof r === 'string') {
    const m = /^(\d+)(d|mo)$/.exec(r);
    if (m && !(Number(m[1]) > 0 && Number(m[1]) <= (m[2] === 'd' ? 5000 : 100))) return `Invalid date_range ${inspect(r)}`;
  } else if (!r.every(DATE_RE.test(r[0]) ? isRealDate : isRealDateTime)) {
    return `Invalid date_range '${inspect(r)}'.`;
  }
  let err = null;
  walk(q.filters ?? [], (f) => {
    if (err) return;
    if (f[1] === 'segment') return;
    if (f[1] !== 'visit:city' && f[2].some((c) => typeof c !== 'string')) err = `Invalid filter '${inspect(f)}'.`;
    else if (f[1] === 'visit:country' && (f[0] === 'is' || f[0] === 'is_not') && !f[2].every((c) => /^[A-Za-z]{2}$/.test(c))) {
      err = 'Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.';
    }
  });
  return err;
}
function builderErrors(q, site) {
  const metrics = q.metrics, dims = q.dimensions, filters = q.filters;
  const goals = goalNames(site);
  const leaves = [];
  walk(filters, (f, info) => leaves.push({ f, ...info }));
  const segments = leaves.filter(({ f }) => f[1] === 'segment');
  if (segments.length) {
    return segments.flatMap(({ f }) => f[2]).length > 10 ? 'Invalid filters. You can only use up to 10 segment filters in a query.'
      : "Invalid filters. Some segments don't exist or aren't accessible.";
  }
  for (const [name, dir] of q.order_by ?? []) {
    if (!metrics.includes(name) && !dims.includes(name)) {
      const shown = METRICS.has(name) ? `:${name}` : JSON.stringify(name);
      return `Invalid order_by entry '{${shown}, :${dir}}'. Entry is not a queried metric or dimension.`;
    }
  }
  const nestedTopOnly = leaves.find(({ f, top, behavioral }) => !top && !behavioral && ['event:goal', 'event:hostname'].includes(f[1]));
  if (nestedTopOnly) return `Invalid filters. Dimension \`${nestedTopOnly.f[1]}\` can only be filtered at the top level.`;
  if (metrics.some((m) => m === 'conversion_rate' || m === 'group_conversion_rate') &&
      leaves.some(({ f, top }) => !top && isPropDim(f[1]))) {
    return 'Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are used, custom property filters can only be used on top level.';
  }
  if (leaves.some((l) => l.nestedBehavioral)) return 'Invalid filters. Behavioral filters (has_done, has_not_done) cannot be nested.';
  if (leaves.some(({ f, behavioral }) => behavioral && !isEventDim(f[1]))) {
    return 'Invalid filters. Behavioral filters (has_done, has_not_done) can only be used with event dimension filters.';
  }
  for (const { f } of leaves) {
    if (f[0] !== 'is' || f[1] !== 'event:goal') continue;
    const cs = f[3]?.case_sensitive !== false;
    const unknown = f[2].find((c) => !goals.some((g) => (cs ? g === c : g.toLowerCase() === String(c).toLowerCase())));
    if (unknown !== undefined) {
      return `Invalid filters. The goal \`${unknown}\` is not configured for this site. Find out how to configure goals here: https://plausible.io/docs/stats-api#filtering-by-goals`;
    }
  }
  if (metrics.some((m) => m === 'total_revenue' || m === 'average_revenue')) {
    return 'The owner of this site does not have access to the revenue metrics feature.';
  }
  const nonBehavioral = leaves.filter((l) => !l.behavioral);
  const filtersOn = (dim, topOnly = false) => nonBehavioral.some(({ f, top }) => f[1] === dim && (top || !topOnly));
  for (const m of metrics) {
    if ((m === 'conversion_rate' || m === 'group_conversion_rate') && !dims.includes('event:goal') && !filtersOn('event:goal')) {
      return `Metric \`${m}\` can only be queried with event:goal filters or dimensions.`;
    }
    if (m === 'scroll_depth' && !dims.includes('event:page') && !filtersOn('event:page', true)) {
      return 'Metric `scroll_depth` can only be queried with event:page filters or dimensions.';
    }
    if (m === 'time_on_page' && !dims.includes('event:page') && !filtersOn('event:page')) {
      return 'Metric `time_on_page` can only be queried with event:page filters or dimensions.';
    }
    if (m === 'views_per_visit' && filtersOn('event:page')) return 'Metric `views_per_visit` cannot be queried with a filter on `event:page`.';
    if (m === 'views_per_visit' && dims.length) return 'Metric `views_per_visit` cannot be queried with `dimensions`.';
  }
  const eventDims = dims.filter(isEventDim);
  const allowedEventDims = eventDims.every((d) => d === 'event:page' || d === 'event:hostname') && eventDims.includes('event:page');
  const sessionMetrics = metrics.filter((m) => SESSION_METRICS.includes(m));
  if (sessionMetrics.length && eventDims.length && !allowedEventDims) {
    return `Session metric(s) ${tick(sessionMetrics)} cannot be queried along with event dimension(s) ${tick(eventDims)}`;
  }
  const eventMetrics = metrics.filter((m) => EVENT_METRICS.includes(m));
  const sessionDims = dims.filter((d) => SESSION_ONLY_DIMS.includes(d));
  if (eventMetrics.length && sessionDims.length) {
    return `Event metric(s) ${tick(eventMetrics)} cannot be queried along with session dimension(s) ${tick(sessionDims)}`;
  }
  if (q.include?.time_labels && !dims.some((d) => TIME_DIMS.has(d))) return 'Invalid include.time_labels: requires a time dimension.';
  return null;
}

/** Validates and answers a parsed query body for a known site. Returns { status, body }. */
export function runQuery(site, q) {
  const schema = schemaErrors(q);
  if (schema.length) return { status: 400, body: { error: schema.join('\n') } };
  const parsed = parseErrors(q);
  if (parsed) return { status: 400, body: { error: parsed } };
  const norm = { ...q, dimensions: q.dimensions ?? [], filters: q.filters ?? [] };
  const built = builderErrors(norm, site);
  if (built) return { status: 400, body: { error: built } };

  const win = dateWindow(q.date_range);
  const dimensions = norm.dimensions.map((d) => resolveTimeDim(d, win));
  const timeDim = dimensions.find((d) => d.startsWith('time:'));
  const order_by = q.order_by
    ? q.order_by.map(([n, dir]) => [resolveTimeDim(n, win), dir])
    : [...(timeDim ? [[timeDim, 'asc']] : []), [q.metrics[0], 'desc']];
  const pagination = { limit: q.pagination?.limit ?? 10000, offset: q.pagination?.offset ?? 0 };
  const rows = execute(site, { metrics: q.metrics, dimensions, filters: norm.filters, order_by }, win);

  const include = Object.fromEntries(Object.entries(q.include ?? {}).filter(([, v]) => v));
  const meta = {};
  // The stand-in holds no imported data, which Plausible reports as a skip reason.
  if (include.imports) Object.assign(meta, { imports_included: false, imports_skip_reason: 'no_imported_data' });
  if (include.time_labels) meta.time_labels = timeLabels(timeDim, win);
  if (include.total_rows) meta.total_rows = rows.length;
  return {
    status: 200,
    body: {
      results: rows.slice(pagination.offset, pagination.offset + pagination.limit),
      meta,
      query: { site_id: site, metrics: q.metrics, date_range: win.echo, filters: norm.filters, dimensions, order_by, include, pagination },
    },
  };
}

// ---------------------------------------------------------------- HTTP
function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Sites API answers (EE, `GET /api/v1/sites[/goals]`): cursor pagination over a sorted list. */
function paginate(list, params) {
  const limit = params.get('limit') === null ? 100 : Number(params.get('limit'));
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return { error: 'Invalid pagination limit' };
  const after = params.get('after');
  let start = 0;
  if (after !== null) {
    start = Number(Buffer.from(after, 'base64url').toString('utf8'));
    if (!Number.isInteger(start) || start < 0) return { error: 'Invalid cursor' };
  }
  const entries = list.slice(start, start + limit);
  const next = start + limit < list.length ? Buffer.from(String(start + limit)).toString('base64url') : null;
  const prev = start > 0 ? Buffer.from(String(Math.max(0, start - limit))).toString('base64url') : null;
  return { entries, meta: { after: next, before: prev, limit } };
}
const dataSites = () => Object.keys(SITES).filter((d) => !FAULT_SITES.has(d)).sort();

/**
 * @param {object} [o]
 * @param {string[]} [o.apiKeys] keys with Stats API access
 * @param {string[]} [o.sitesApiKeys] keys that may also read the Sites API (accepted for stats too)
 * @param {number} [o.hourlyLimit] requests per key per clock hour (Plausible's default: 600)
 * @param {string} [o.dataFile] a data set to load instead of the default (module-wide)
 */
export async function startPlausibleStub({ port = 0, host = '127.0.0.1', apiKeys = ['plausible-test-key'], sitesApiKeys = [],
  hourlyLimit = 600, dataFile } = {}) {
  if (dataFile) useDataSet(loadDataSet(dataFile));
  const requests = [];
  const sockets = new Set();
  const timers = new Set();
  // key -> { sitesApi, hourlyLimit, hour, used, sites }: `sites` (when given) are the only sites the key can read,
  // as a key of a Plausible account that is a member of those sites only; any other site answers its 401.
  const keys = new Map();
  const addKey = (key, o = {}) => keys.set(key, { sitesApi: Boolean(o.sitesApi), hourlyLimit: o.hourlyLimit ?? hourlyLimit,
    hour: Math.floor(Date.now() / 3600_000), used: o.used ?? 0, sites: Array.isArray(o.sites) ? o.sites : null });
  const readable = (entry, site) => entry.sites === null || entry.sites.includes(site);
  for (const k of apiKeys) addKey(k);
  for (const k of sitesApiKeys) addKey(k, { sitesApi: true });
  const wait = (ms) => new Promise((resolve) => {
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.add(t);
  });
  /** Plausible's AuthorizePublicAPI order: bearer token, known key, hourly rate limit, then scope. */
  function authorize(req) {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return { status: 401, body: { error: MESSAGES.missingKey } };
    const token = auth.slice(7).trim();
    const entry = keys.get(token);
    if (!entry) return { status: 401, body: { error: MESSAGES.invalidKey } };
    const hour = Math.floor(Date.now() / 3600_000);
    if (entry.hour !== hour) { entry.hour = hour; entry.used = 0; }
    if (entry.used >= entry.hourlyLimit) {
      return { status: 429, body: { error: `Too many API requests. Your API key is limited to ${entry.hourlyLimit} requests per hour. Please contact us to request more capacity.` } };
    }
    entry.used++;
    return { entry, token };
  }

  async function control(req, res, path, raw) {
    // Test control, loopback only like the rest of the stand-in: the request log, and keys with given powers.
    if (req.method === 'GET' && path === '/__stand-in/requests') return sendJson(res, 200, { requests });
    if (req.method === 'GET' && path === '/__stand-in/plants') return sendJson(res, 200, { plants: plants() });
    if (req.method === 'POST' && path === '/__stand-in/keys') {
      let o;
      try { o = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'bad json' }); }
      if (typeof o.key !== 'string' || !o.key) return sendJson(res, 400, { error: 'key required' });
      if (o.sites !== undefined && !(Array.isArray(o.sites) && o.sites.every((x) => typeof x === 'string'))) {
        return sendJson(res, 400, { error: 'sites must be a list of domains' });
      }
      addKey(o.key, o);
      return sendJson(res, 200, { ok: true });
    }
    // A key revoked in Plausible: every later request with it is answered as an unknown key's.
    if (req.method === 'DELETE' && path === '/__stand-in/keys') {
      let o;
      try { o = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'bad json' }); }
      return sendJson(res, 200, { deleted: keys.delete(o?.key) });
    }
    return sendJson(res, 404, { error: 'Not found' });
  }

  async function sitesApi(req, res, url) {
    const auth = authorize(req);
    if (!auth.entry) return sendJson(res, auth.status, auth.body);
    if (!auth.entry.sitesApi) return sendJson(res, 401, { error: MESSAGES.invalidResourceKey });
    if (url.pathname === '/api/v1/sites') {
      const page = paginate(dataSites().filter((d) => readable(auth.entry, d)).map((domain) => ({ domain, timezone: SITES[domain].timezone })), url.searchParams);
      if (page.error) return sendJson(res, 400, { error: page.error });
      return sendJson(res, 200, { sites: page.entries, meta: page.meta });
    }
    const site = url.searchParams.get('site_id');
    if (site === null) return sendJson(res, 400, { error: 'Parameter `site_id` is required to list goals' });
    if (!dataSites().includes(site)) return sendJson(res, 404, { error: 'Site could not be found' });
    const goals = SITES[site].goals.map((g, i) => ({ id: String(i + 1), display_name: g.display_name,
      goal_type: g.page_path !== undefined ? 'page' : 'event', event_name: g.event_name ?? null, page_path: g.page_path ?? null }));
    const page = paginate(goals, url.searchParams);
    if (page.error) return sendJson(res, 400, { error: page.error });
    return sendJson(res, 200, { goals: page.entries, meta: page.meta });
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://stub');
    const path = url.pathname;
    const raw = await readBody(req);
    if (path.startsWith('/__stand-in/')) return control(req, res, path, raw);
    if (req.method === 'GET' && (path === '/api/v1/sites' || path === '/api/v1/sites/goals')) {
      requests.push({ method: 'GET', path, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body: null });
      return sitesApi(req, res, url);
    }
    if (req.method !== 'POST' || path !== '/api/v2/query') {
      requests.push({ method: req.method, path, headers: { ...req.headers }, body: null });
      return sendJson(res, 404, { error: 'Not found' });
    }
    // Like Plug.Parsers: only JSON bodies are parsed; other content types leave the params empty.
    const isJson = /^\s*application\/([\w.+-]*\+)?json\s*(;|$)/i.test(req.headers['content-type'] ?? '');
    let body = null;
    let invalid = false;
    if (isJson && raw.trim() !== '') {
      try { body = JSON.parse(raw); } catch { invalid = true; }
    }
    requests.push({ method: 'POST', path, headers: { ...req.headers }, body });
    if (invalid) return sendJson(res, 400, { error: MESSAGES.invalidJson });
    const params = isObj(body) ? body : {};
    const site = params.site_id;

    if (site === 'ratelimited.example') return sendJson(res, 429, { error: MESSAGES.rateLimited });
    if (site === 'unauthorized.example') return sendJson(res, 401, { error: MESSAGES.invalidKey });
    if (site === 'broken.example') {
      res.writeHead(500, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(BROKEN_BODY);
    }
    if (site === 'slow.example') {
      await wait(SLOW_MS);
    } else {
      const auth = authorize(req);
      if (!auth.entry) return sendJson(res, auth.status, auth.body);
      if (site === undefined || site === null) return sendJson(res, 400, { error: MESSAGES.missingSite });
      if (typeof site !== 'string' || !SITES[site] || FAULT_SITES.has(site)) return sendJson(res, 401, { error: MESSAGES.invalidKey });
      // Plausible answers a site the key's account cannot read exactly as an unknown key.
      if (!readable(auth.entry, site)) return sendJson(res, 401, { error: MESSAGES.invalidKey });
    }
    const { status, body: out } = runQuery(site, params);
    sendJson(res, status, out);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) sendJson(res, 500, { error: `stub failure: ${err.message}` });
      else res.destroy();
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const actualPort = server.address().port;
  let closing = null;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    port: actualPort,
    requests,
    close() {
      closing ??= new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
  };
  const list = (v, d) => (v ?? d).split(',').map((k) => k.trim()).filter(Boolean);
  const stub = await startPlausibleStub({ port: Number(arg('--port', '8788')), host: arg('--host', '127.0.0.1'),
    apiKeys: list(process.env.PLAUSIBLE_STUB_KEYS, 'plausible-test-key'), sitesApiKeys: list(process.env.PLAUSIBLE_STUB_SITES_KEYS, ''),
    dataFile: process.env.PLAUSIBLE_STUB_DATA || undefined });
  console.log(`plausible stand-in listening on ${stub.url}`);
  const stop = () => stub.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
