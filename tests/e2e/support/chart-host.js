// The test's MCP Apps host page script, bundled by esbuild in
// chart-host.mjs. It is built on the host bridge of the official npm
// package (@modelcontextprotocol/ext-apps, its `app-bridge` export), the
// way a web host is meant to work (MCP Apps 2026-01-26, "Sandbox proxy"):
// the view runs in an inner iframe of a sandbox proxy page on another
// origin; the host talks JSON-RPC to it over postMessage through the proxy.
import { AppBridge, PostMessageTransport } from '@modelcontextprotocol/ext-apps/app-bridge';

/** What the test reads back: size notifications and bridge errors. */
window.hostLog = { sizes: [], errors: [] };

/**
 * Mounts the view: loads the sandbox proxy, hands it the view's HTML once
 * it is ready, and resolves after the view's `ui/notifications/initialized`
 * (the host sends nothing before that).
 */
window.mountView = async ({ html, sandboxUrl, toolArguments }) => {
  const outer = document.createElement('iframe');
  // The proxy's own permissions (MCP Apps, "Sandbox proxy" rule 2).
  outer.setAttribute('sandbox', 'allow-scripts allow-same-origin');
  outer.title = 'chart';
  document.getElementById('view').append(outer);

  const bridge = new AppBridge(
    null,
    { name: 'chart-e2e-host', version: '1.0.0' },
    { logging: {} },
    {
      hostContext: {
        theme: 'light',
        displayMode: 'inline',
        availableDisplayModes: ['inline'],
        containerDimensions: { width: 680, maxHeight: 4000 },
        locale: 'en-US',
        platform: 'web',
      },
    },
  );
  bridge.onsizechange = ({ width, height }) => {
    window.hostLog.sizes.push({ width, height });
    if (height != null) outer.style.height = `${height}px`;
  };
  bridge.onerror = (e) => window.hostLog.errors.push(String(e?.message ?? e));
  const proxyReady = new Promise((resolve) => { bridge.onsandboxready = resolve; });
  const initialized = new Promise((resolve) => { bridge.oninitialized = resolve; });
  await bridge.connect(new PostMessageTransport(outer.contentWindow, outer.contentWindow));
  outer.src = sandboxUrl;
  await proxyReady;
  // The view gets scripts and nothing else: no same-origin, forms, popups.
  await bridge.sendSandboxResourceReady({ html, sandbox: 'allow-scripts' });
  await initialized;
  await bridge.sendToolInput({ arguments: toolArguments ?? {} });
  window.bridge = bridge;
  return bridge.getAppVersion();
};

/** Sends one `ui/notifications/tool-result` (a CallToolResult). */
window.sendToolResult = (result) => window.bridge.sendToolResult(result);
