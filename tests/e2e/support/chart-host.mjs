// Two loopback origins for the chart browser test: the host page (its
// script bundled here with esbuild from chart-host.js) and the sandbox
// proxy, each on its own port, so they are different origins as MCP Apps
// requires of a web host ("Sandbox proxy" rule 1).
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The CSP a host applies to a view that declares no `_meta.ui.csp`: the
 * restrictive default (MCP Apps 2026-01-26, "Host Behavior") plus the
 * sandbox proxy's rules (no nested frames, no plugins, base URI 'self').
 */
export const VIEW_CSP = [
  "default-src 'none'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "media-src 'self' data:",
  "connect-src 'none'",
  "frame-src 'none'",
  "object-src 'none'",
  "base-uri 'self'",
].join('; ');

/**
 * The sandbox proxy: relays JSON-RPC between the host (its parent, checked
 * by origin) and the view (its inner iframe, loaded from the HTML in
 * `ui/notifications/sandbox-resource-ready`), and answers nothing itself.
 * The view is a srcdoc document, so it inherits this page's CSP.
 */
function sandboxPage(hostOrigin) {
  return `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<style>html,body{margin:0;height:100%}iframe{border:0;width:100%;height:100%;display:block}</style></head><body><script>
const HOST = ${JSON.stringify(hostOrigin)};
const inner = document.createElement('iframe');
inner.setAttribute('sandbox', 'allow-scripts');
document.body.append(inner);
addEventListener('message', (e) => {
  if (e.source === parent) {
    if (e.origin !== HOST) return;
    const m = e.data;
    if (m && m.method === 'ui/notifications/sandbox-resource-ready') {
      if (typeof m.params.sandbox === 'string') inner.setAttribute('sandbox', m.params.sandbox);
      inner.srcdoc = m.params.html;
    } else if (!(m && typeof m.method === 'string' && m.method.startsWith('ui/notifications/sandbox-'))) {
      inner.contentWindow.postMessage(m, '*');
    }
  } else if (e.source === inner.contentWindow) {
    parent.postMessage(e.data, HOST);
  }
});
parent.postMessage({ jsonrpc: '2.0', method: 'ui/notifications/sandbox-proxy-ready', params: {} }, HOST);
</script></body></html>`;
}

const HOST_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>MCP Apps test host</title>
<style>body{margin:16px;font:14px system-ui;background:#f4f4f5}#view iframe{width:680px;border:1px solid #d4d4d8;border-radius:8px;background:#fff;display:block}</style>
</head><body><div id="view"></div><script src="/host.js"></script></body></html>`;

function listen(handler) {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Starts both origins; `close()` stops them. */
export async function startHost() {
  const bundle = await build({
    entryPoints: [path.join(here, 'chart-host.js')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    logLevel: 'silent',
  });
  const hostJs = bundle.outputFiles[0].text;
  let hostOrigin;
  const host = await listen((req, res) => {
    const routes = {
      '/host.html': ['text/html; charset=utf-8', HOST_PAGE],
      '/host.js': ['text/javascript; charset=utf-8', hostJs],
    };
    const route = routes[new URL(req.url, hostOrigin).pathname];
    if (!route) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': route[0], 'cache-control': 'no-store' }).end(route[1]);
  });
  hostOrigin = `http://127.0.0.1:${host.address().port}`;
  const sandbox = await listen((req, res) => {
    if (new URL(req.url, 'http://x').pathname !== '/sandbox.html') return res.writeHead(404).end();
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': VIEW_CSP,
      'cache-control': 'no-store',
    }).end(sandboxPage(hostOrigin));
  });
  const sandboxOrigin = `http://127.0.0.1:${sandbox.address().port}`;
  return {
    hostUrl: `${hostOrigin}/host.html`,
    sandboxUrl: `${sandboxOrigin}/sandbox.html`,
    origins: [hostOrigin, sandboxOrigin],
    close: async () => {
      for (const s of [host, sandbox]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}
