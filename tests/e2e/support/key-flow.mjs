// The /mcp key flow as a person's browser goes through it, over plain
// HTTP: open the authorization URL (no company sign-in: a page asks for
// the Plausible key), fill in the key and the sites, post it, approve on
// the consent page (choosing sites there), and follow the redirect to
// the client with its code. Every step keeps the cookies the worker set
// and sends `Origin` on posts, as a browser does; nothing is followed
// automatically: each answer is recorded for the test to check.
//
// The pages are the worker's own server-rendered forms (src/pages.rs,
// maud): the fields are read from the `<form>` whose action is the step's
// endpoint, so a test breaks if a field it needs disappears.
import { CookieJar, pageText, unescapeHtml } from '../login-helpers.mjs';
import { send } from './http.mjs';
import { TestOAuthProvider } from './oauth-provider.mjs';

/** The attributes of one start tag, entities decoded. */
function attributes(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:="([^"]*)")?/g)) {
    if (m[1] === tag.match(/^<(\w+)/)?.[1]) continue;
    out[m[1].toLowerCase()] = m[2] === undefined ? '' : unescapeHtml(m[2]);
  }
  return out;
}

/**
 * The forms of a page: [{ action, method, fields: [{ tag, type, name,
 * value, checked }], buttons: [{ name, value }] }].
 */
export function formsOf(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const attrs = attributes(`<form${m[1]}>`);
    const fields = [];
    const buttons = [];
    for (const f of m[2].matchAll(/<(input|textarea|button)\b([^>]*)>(?:([\s\S]*?)<\/\1>)?/g)) {
      const a = attributes(`<${f[1]}${f[2]}>`);
      if (f[1] === 'button') {
        buttons.push({ name: a.name, value: a.value, text: pageText(f[3] ?? '') });
      } else {
        fields.push({
          tag: f[1], type: a.type ?? (f[1] === 'textarea' ? 'textarea' : 'text'), name: a.name,
          value: f[1] === 'textarea' ? unescapeHtml(f[3] ?? '') : (a.value ?? ''), checked: 'checked' in a, attrs: a,
        });
      }
    }
    forms.push({ action: attrs.action, method: (attrs.method ?? 'get').toLowerCase(), attrs, fields, buttons });
  }
  return forms;
}

/** The form of `html` that posts to `action`, or undefined. */
export function formFor(html, action) {
  return formsOf(html).find((f) => f.action === action && f.method === 'post');
}

/** The hidden fields of a form and its preselected radio buttons, as [name, value] pairs. */
const hidden = (form) => form.fields
  .filter((f) => f.name && (f.type === 'hidden' || (f.type === 'radio' && f.checked)))
  .map((f) => [f.name, f.value]);

/** The site checkboxes a consent form offers (`site` fields). */
export function offeredSites(form) {
  return form.fields.filter((f) => f.type === 'checkbox' && f.name === 'site').map((f) => f.value);
}

/**
 * One browser going through the /mcp key flow. `key` and `sites` are what
 * the person types on the key page (`sites` an array, entered one per
 * line); `approve` the sites ticked on the consent page (default: every
 * one offered, or "all sites" where that is preselected) or false to press Deny.
 */
export class KeyFlowBrowser {
  constructor({ base, key, sites, approve, origin = base }) {
    this.base = base;
    this.key = key;
    this.sites = sites;
    this.approve = approve;
    this.origin = origin;
    this.jar = new CookieJar();
    /** Every exchange: { step, method, url, status, location, text, res }. */
    this.steps = [];
  }

  async request(step, url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.jar.header()) headers.cookie = this.jar.header();
    // A browser step is not replayed behind the test's back (support/http.mjs).
    const r = await send(url, { ...init, headers }, { replayable: false, onRestart: 'throw' });
    this.jar.absorb(r.res);
    const entry = { step, method: init.method ?? 'GET', url: new URL(url), status: r.status, location: r.res.headers.get('location'), text: r.text, res: r.res };
    this.steps.push(entry);
    return entry;
  }

  post(step, path, pairs) {
    const body = new URLSearchParams(pairs).toString();
    return this.request(step, new URL(path, this.base).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.origin },
      body,
    });
  }

  /** GET the authorization URL: the key page (or whatever the worker answers). */
  open(url) {
    return this.request('authorize', url);
  }

  /** Fills and posts the key form of `page`. */
  submitKey(page, { key = this.key, sites = this.sites } = {}) {
    const form = formFor(page.text, '/authorize/key');
    if (!form) throw new Error(`no key form on the page (${page.status}): ${pageText(page.text).slice(0, 300)}`);
    const pairs = [...hidden(form), ['api_key', key], ['sites', sites.join('\n')]];
    return this.post('key', form.action, pairs);
  }

  /** Approves (ticking `sites`, default all offered) or denies on the consent page. */
  decide(page, { approve = this.approve ?? true } = {}) {
    const form = formFor(page.text, '/consent');
    if (!form) throw new Error(`no consent form on the page (${page.status}): ${pageText(page.text).slice(0, 300)}`);
    const pairs = hidden(form);
    if (approve === false) {
      pairs.push(['decision', 'deny']);
    } else {
      const offered = offeredSites(form);
      // "All sites" preselected (a person's /internal chooser): kept unless
      // sites are named; a key's chooser has none, so every offered site.
      const all = pairs.findIndex(([n, v]) => n === 'all_sites' && v === '1');
      if (Array.isArray(approve) && all >= 0) pairs[all] = ['all_sites', '0'];
      const chosen = Array.isArray(approve) ? approve : (all >= 0 ? [] : offered);
      for (const s of chosen) pairs.push(['site', s]);
      pairs.push(['decision', 'approve']);
    }
    return this.post('consent', form.action, pairs);
  }

  /**
   * The whole flow from the authorization URL to the redirect back to the
   * client: returns { location, code, params } (code undefined on an
   * error redirect). Throws, naming the page, when a step does not lead on.
   */
  async authorize(url) {
    let page = await this.open(url);
    if (page.status === 200 && formFor(page.text, '/authorize/key')) page = await this.submitKey(page);
    // A consent on file for this key and client: no consent page.
    if (page.status === 200 && formFor(page.text, '/consent')) page = await this.decide(page);
    if (page.status !== 302 && page.status !== 303) {
      throw new Error(`the ${page.step} step answered ${page.status}, not a redirect: ${pageText(page.text).slice(0, 400)}`);
    }
    const params = Object.fromEntries(new URL(page.location).searchParams);
    return { location: page.location, code: params.code, params };
  }
}

/**
 * An OAuthClientProvider (SDK 1.32) whose user agent is a KeyFlowBrowser:
 * `redirectToAuthorization` goes through the key page and the consent
 * page over HTTP and keeps the code for `transport.finishAuth`.
 */
export class KeyFlowOAuthProvider extends TestOAuthProvider {
  constructor({ base, key, sites, approve, ...options }) {
    super(options);
    this.flow = { base, key, sites, approve };
    /** One entry per authorization: { url, browser, location, code, params }. */
    this.authorizations = [];
    this.code = undefined;
  }

  // SDK v2 (SEP-2352): the discovered authorization server, kept beside
  // the verifier so the callback leg is checked against it. v1 ignores these.
  saveDiscoveryState(state) { this._discovery = state; }
  discoveryState() { return this._discovery; }

  async redirectToAuthorization(url) {
    const browser = new KeyFlowBrowser(this.flow);
    const entry = { url: new URL(url), browser };
    this.authorizations.push(entry);
    Object.assign(entry, await browser.authorize(String(url)));
    if (!entry.code) throw new Error(`authorization redirected without a code: ${entry.location}`);
    this.code = entry.code;
  }
}
