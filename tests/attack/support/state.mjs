// The attack suite's state observer: a dump of everything the worker has
// stored, read straight from the files Miniflare persists under
// `--persist-to` (Workers KV entries and every Durable Object's SQLite
// storage), so a case can assert that an attack created, changed or
// removed nothing at all: no code, token, grant, consent or pending
// state, whatever key or object the worker would have used for it.
//
// Why the files and not a probe route: a route inside the worker sees
// only the objects whose names it can derive, while the files hold every
// object ever touched. Miniflare keeps these databases in WAL mode; a
// reader sees each committed transaction, and workerd commits a Durable
// Object's writes before the response that follows them is sent (its
// output gate), so a dump taken after a response holds what that
// request wrote. The Cache API (v3/cache) is not state a grant can live
// in and is left out.
import { DatabaseSync } from 'node:sqlite';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const quiet = process.emitWarning;
/** node:sqlite prints an ExperimentalWarning once; the runner's output stays readable. */
function open(file) {
  process.emitWarning = () => {};
  try {
    return new DatabaseSync(file, { readOnly: true, timeout: 1000 });
  } finally {
    process.emitWarning = quiet;
  }
}

const sqliteFiles = (dir) => (existsSync(dir) ? readdirSync(dir) : [])
  .filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite')
  .map((f) => path.join(dir, f));

/**
 * workerd takes SQLite's locks for its own checkpoints now and then; a
 * reader meeting one waits for it (busy timeout) and, should the lock
 * outlast that, tries again. The wait is for a lock, not for ordering.
 */
function rows(file, sql) {
  for (let attempt = 1; ; attempt++) {
    let db;
    try {
      db = open(file);
      return db.prepare(sql).all();
    } catch (err) {
      if (!/locked|busy/i.test(err.message) || attempt >= 20) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25);
    } finally {
      db?.close();
    }
  }
}

function tables(file) {
  return rows(file, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map((r) => r.name);
}

const show = (v) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v);

/**
 * Every stored entry, as a Map from a stable name to a printable value:
 *   kv:<key>                              → value (expiration)
 *   do:<Class>/<object id>/<table>/<row>  → the row
 */
export function dumpState(persistTo) {
  const out = new Map();
  const v3 = path.join(persistTo, 'v3');
  // KV: miniflare's entry table names the blob that holds each value.
  for (const file of sqliteFiles(path.join(v3, 'kv', 'miniflare-KVNamespaceObject'))) {
    if (!tables(file).includes('_mf_entries')) continue;
    for (const r of rows(file, 'SELECT key, blob_id, expiration FROM _mf_entries ORDER BY key')) {
      let value = `<blob ${r.blob_id}>`;
      for (const ns of readdirSync(path.join(v3, 'kv'))) {
        const blob = path.join(v3, 'kv', ns, 'blobs', r.blob_id);
        if (existsSync(blob)) value = readFileSync(blob, 'utf8');
      }
      out.set(`kv:${r.key}`, `${value}${r.expiration ? ` (expires ${r.expiration})` : ''}`);
    }
  }
  const doRoot = path.join(v3, 'do');
  for (const cls of existsSync(doRoot) ? readdirSync(doRoot) : []) {
    const name = cls.replace(/^plausible-mcp-/, '');
    for (const file of sqliteFiles(path.join(doRoot, cls))) {
      const id = path.basename(file, '.sqlite').slice(0, 12);
      for (const table of tables(file)) {
        // Bookkeeping of the runtime, not of the worker: `_cf_METADATA`,
        // and Miniflare's record of an object's name, written the first
        // time any request addresses the object (which of the 16 used-state
        // shards a case touches first depends on the order of the run).
        if (table.startsWith('sqlite_') || table === '_cf_METADATA' || table === '__miniflare_do_name') continue;
        for (const [i, row] of rows(file, `SELECT * FROM "${table.replace(/"/g, '""')}"`).entries()) {
          const entries = Object.entries(row).map(([k, v]) => [k, show(v)]);
          // A key-value table is named by its key; any other by position and content.
          const key = row.key !== undefined ? show(row.key) : `${i}:${JSON.stringify(entries)}`;
          out.set(`do:${name}/${id}/${table}/${key}`, JSON.stringify(Object.fromEntries(entries)));
        }
      }
    }
  }
  return out;
}

/** What changed between two dumps: { added, removed, changed } (names). */
export function diffState(before, after) {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  const changed = [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k));
  return { added, removed, changed };
}

/** A one-line summary of a diff, for assertion messages. */
export function describeDiff({ added, removed, changed }) {
  const cut = (list) => list.slice(0, 6).map((k) => k.slice(0, 120)).join(', ') + (list.length > 6 ? ', …' : '');
  return `added [${cut(added)}] removed [${cut(removed)}] changed [${cut(changed)}]`;
}
