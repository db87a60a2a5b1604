// The chart view's CSP allows its one inline script and style by hash
// (src/plausible/ui/chart.html). After editing either, run
//   node tests/e2e/support/chart-csp.mjs --write
// to put the new hashes in its CSP meta; without --write it only checks.
// (`cargo test` checks the same, and Chromium enforces it in the chart test.)
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHART = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/plausible/ui/chart.html');

const between = (html, tag) => {
  const [, rest] = html.split(`<${tag}>`);
  return rest.split(`</${tag}>`)[0];
};
const hash = (text) => createHash('sha256').update(text, 'utf8').digest('base64');

if (import.meta.url === `file://${process.argv[1]}`) {
  const html = readFileSync(CHART, 'utf8');
  const fixed = html
    .replace(/script-src 'sha256-[^']*'/, `script-src 'sha256-${hash(between(html, 'script'))}'`)
    .replace(/style-src 'sha256-[^']*'/, `style-src 'sha256-${hash(between(html, 'style'))}'`);
  if (fixed === html) {
    console.log('chart CSP hashes are up to date');
  } else if (process.argv.includes('--write')) {
    writeFileSync(CHART, fixed);
    console.log('chart CSP hashes updated');
  } else {
    console.error('chart CSP hashes are stale: run with --write');
    process.exit(1);
  }
}
