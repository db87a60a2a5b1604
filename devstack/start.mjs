// `npm run dev`: the worker on http://127.0.0.1:8787 with local KV and
// Durable Objects under .wrangler/state, wired to the local stand-ins.
import path from 'node:path';
import { ROOT, startStack } from './stack.mjs';

const stack = await startStack({
  port: 8787,
  persistTo: path.join(ROOT, '.wrangler/state'),
  build: true,
  stdio: 'inherit',
  // `WRANGLER_LOG=log npm run dev` shows the worker's console.log, where
  // the audit trail goes; wrangler's `info` otherwise.
  logLevel: process.env.WRANGLER_LOG || undefined,
});
console.log(`
plausible-mcp is running at ${stack.workerUrl}
  health:        ${stack.workerUrl}/health
  MCP (own key): ${stack.workerUrl}/mcp   (Authorization: Bearer plausible-test-key)
  MCP (OAuth):   ${stack.workerUrl}/internal   (sign in with any @example.com address)
  Plausible stand-in: ${stack.plausible.url}  (sites: example.com, shop.example.com)
  Identity provider:  ${stack.idp.issuer}  (local stand-in for Cloudflare Access)
Press Ctrl+C to stop.`);
const shutdown = async () => { await stack.stop(); process.exit(0); };
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
