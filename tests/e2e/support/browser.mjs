// The real browser the e2e tests drive (Debian's chromium through
// playwright-core; `npx playwright install` does not work here), and the
// loopback redirect URI an OAuth client listens on (RFC 8252 §7.3).
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

/** Launches headless Chromium; the caller closes it. */
export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Starts a client's loopback redirect listener on 127.0.0.1 with `handler`
 * (a node:http request handler); resolves to `{ server, origin, close }`,
 * `close()` dropping open connections first so it ends at once.
 */
export async function startLoopback(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    origin: `http://127.0.0.1:${server.address().port}`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
