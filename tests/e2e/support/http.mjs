// The one HTTP module of the end-to-end tests, with the one retry policy.
//
// `wrangler dev` reloads the worker whenever src/ changes (it watches it
// while other work goes on) and answers a request in flight with a 503 of
// its own: "Your worker restarted mid-request". That answer is the dev
// proxy's, not the worker's, so it says nothing about the worker. The
// policy:
//   - only that answer is ever retried, never a 503 (or anything) the
//     worker itself sent;
//   - a request is sent again only when it is replayable: one that
//     changes nothing (GET, HEAD, OPTIONS), or one the caller marks so
//     (a read-only tools call, a registration whose extra client is
//     harmless), at most three times in all;
//   - otherwise (a code redemption that may have reached the worker must
//     not be replayed behind the test's back) the caller chooses: get the
//     answer back and see it named in the assertion, or have a
//     WranglerRestart thrown so the whole scenario runs again
//     (`retrying`).
// Redirects are never followed: a redirect is an answer to check.

/** Whether an answer is wrangler dev's own reload 503. */
export function isWranglerRestart(status, text) {
  return status === 503 && typeof text === 'string' && text.startsWith('Your worker restarted mid-request');
}

/** Thrown when wrangler's reload answer reached a request that may not be replayed. */
export class WranglerRestart extends Error {
  constructor(url) {
    super(`wrangler dev restarted the worker during ${url}`);
    this.name = 'WranglerRestart';
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const ATTEMPTS = 3;

/**
 * One request. Returns { res, status, text, json, ms } (json null when the
 * body is not JSON; ms the time of the last exchange).
 * @param {object} [policy]
 * @param {boolean} [policy.replayable] send again after wrangler's reload answer (default: safe methods)
 * @param {'return'|'throw'} [policy.onRestart] a reload answer that is not retried: returned, or thrown as WranglerRestart
 */
export async function send(url, init = {}, { replayable, onRestart = 'return' } = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  const again = replayable ?? SAFE.has(method);
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const res = await fetch(url, { ...init, redirect: 'manual' });
    const text = await res.text();
    const ms = Date.now() - started;
    if (isWranglerRestart(res.status, text)) {
      if (again && attempt < ATTEMPTS) continue;
      if (onRestart === 'throw') throw new WranglerRestart(String(url));
    }
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { res, status: res.status, text, json, ms };
  }
}

/**
 * Wraps a test body: runs it again (from scratch) when a wrangler reload
 * disturbed it, at most `tries` times. Any other failure fails the test.
 */
export function retrying(body, tries = 3) {
  return async (t) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await body(t);
      } catch (err) {
        if (!(err instanceof WranglerRestart) || attempt >= tries) throw err;
        t.diagnostic?.(`${err.message}; running the scenario again`);
      }
    }
  };
}

/** The machine-readable code of an error page (`<meta name="error">`). */
export function pageErrorCode(html) {
  return /<meta name="error" content="([^"]*)">/.exec(html ?? '')?.[1] ?? null;
}

/**
 * The link back to the client on a page that stops a verified client's
 * flow (RFC 9700 §4.11.2), with `&amp;` decoded; null when there is none.
 * Our pages are maud output with one such link, so a pattern suffices.
 */
export function backLink(html) {
  const href = /<a href="([^"]*)" rel="noreferrer">Return to /.exec(html ?? '')?.[1];
  return href === undefined ? null : href.replaceAll('&amp;', '&').replaceAll('&quot;', '"');
}
