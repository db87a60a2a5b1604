// Keeps tests/attack/CASES.md honest: every case id in the suite has a
// row in the table, every row names a case that exists, and the counts
// in the table are the real ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

test('every case has a row in CASES.md and every row a case', () => {
  const ids = new Set();
  for (const f of readdirSync(here).filter((n) => n.endsWith('.test.mjs'))) {
    for (const m of readFileSync(path.join(here, f), 'utf8').matchAll(/['"]([A-Z]{2}-\d{2})['"]/g)) {
      assert.ok(!ids.has(m[1]), `${m[1]} is defined twice`);
      ids.add(m[1]);
    }
  }
  const table = readFileSync(path.join(here, 'CASES.md'), 'utf8');
  const cases = table.slice(table.indexOf('\n## Cases'));
  const rows = new Set([...cases.matchAll(/^\| ([A-Z]{2}-\d{2}) \|/gm)].map((m) => m[1]));
  assert.deepEqual([...ids].filter((id) => !rows.has(id)), [], 'cases without a row');
  assert.deepEqual([...rows].filter((id) => !ids.has(id)), [], 'rows without a case');
  const total = Number(/\| \*\*Total\*\* \| \| \*\*(\d+)\*\* \|/.exec(table)?.[1]);
  assert.equal(total, ids.size, 'the total in the count table');
  for (const m of table.matchAll(/^\| [^|]+ \| ([A-Z]{2}) \| (\d+) \|$/gm)) {
    assert.equal(Number(m[2]), [...ids].filter((id) => id.startsWith(`${m[1]}-`)).length, `count of ${m[1]}`);
  }
});
