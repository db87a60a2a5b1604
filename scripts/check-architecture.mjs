// Checks the shape of src/ that issue 8 set, so it stays true as code is
// added. Reads every .rs file under src/, builds the graph of which file
// imports which (from `use crate::…`, `super::…`, `self::…` paths and
// paths written inline), leaving test code out, and fails on:
//
//   - an import cycle among the files of src/;
//   - src/ports.rs importing anything but src/http.rs (it is the bottom
//     layer: ports a feature needs are defined by that feature);
//   - a file under src/oidc/ importing src/oauth/ (a pure relying party);
//   - `pages::` in src/routes/, or a JSON error (`"error"`) there outside
//     src/routes/reply.rs (handlers extract, call, map);
//   - a file with more than 600 lines of non-test code.
//
// Usage: node scripts/check-architecture.mjs [src-dir]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.resolve(process.argv[2] ?? path.join(ROOT, 'src'));
const MAX_LINES = 600;
/**
 * Files allowed over MAX_LINES for now, each with the reason. An entry
 * that is no longer needed fails the check, so none outlives its reason.
 */
const LONG_FILE_EXCEPTIONS = {};

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : name.endsWith('.rs') ? [full] : [];
  });
}

/** The module path of a file: src/a/b.rs and src/a/b/mod.rs are a::b. */
function modulePath(rel) {
  const parts = rel.replace(/\.rs$/, '').split('/');
  if (parts.at(-1) === 'mod') parts.pop();
  if (parts.length === 1 && parts[0] === 'lib') return [];
  return parts;
}

/** Text without comments and string contents (so paths in them do not count). */
function code(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, ''))
    .join('\n');
}

/** The non-test part of a file: everything before an inline `#[cfg(test)] mod … {`. */
function nonTest(text) {
  const m = /^#\[cfg\(test\)\]\s*\n\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{/m.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/** Child modules declared behind `#[cfg(test)]` as files (`#[cfg(test)] mod x;`). */
function testChildren(text) {
  const out = [];
  for (const m of text.matchAll(/#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*;/g)) out.push(m[1]);
  return out;
}

/** Expands `use a::{b, c::{d, e}};` into ['a::b', 'a::c::d', 'a::c::e']. */
function expandUse(tree) {
  tree = tree.replace(/\s+/g, '');
  const brace = tree.indexOf('{');
  if (brace < 0) return [tree];
  const prefix = tree.slice(0, brace);
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'));
  const items = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === '{') depth++;
    else if (inner[i] === '}') depth--;
    else if (inner[i] === ',' && depth === 0) {
      items.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  items.push(inner.slice(start));
  return items.filter(Boolean).flatMap((item) => expandUse(prefix + item));
}

/** Every crate-relative path a file's code names. */
function pathsIn(text) {
  const paths = [];
  const rest = text.replace(/\buse\s+([^;]+);/g, (_, tree) => {
    paths.push(...expandUse(tree));
    return ' ';
  });
  for (const m of rest.matchAll(/\b(?:crate|super|self)(?:::[A-Za-z_]\w*)+/g)) paths.push(m[0]);
  return paths.filter((p) => /^(crate|super|self)(::|$)/.test(p));
}

const files = walk(SRC).map((full) => path.relative(SRC, full).split(path.sep).join('/'));
const byModule = new Map(files.map((rel) => [modulePath(rel).join('::'), rel]));
const texts = new Map(files.map((rel) => [rel, readFileSync(path.join(SRC, rel), 'utf8')]));

// Files that are test code as a whole, and everything under them.
const testFiles = new Set();
for (const rel of files) {
  const mod = modulePath(rel);
  for (const child of testChildren(texts.get(rel))) {
    const childPath = [...mod, child].join('::');
    for (const [m, f] of byModule) if (m === childPath || m.startsWith(`${childPath}::`)) testFiles.add(f);
  }
}

/** The file a path names: the deepest module file along it. */
function resolve(fromModule, p) {
  const segs = p.split('::');
  let mod;
  if (segs[0] === 'crate') mod = [];
  else if (segs[0] === 'self') mod = [...fromModule];
  else mod = [...fromModule];
  let i = 0;
  if (segs[0] === 'crate' || segs[0] === 'self') i = 1;
  while (segs[i] === 'super') {
    mod.pop();
    i++;
  }
  let found = byModule.get(mod.join('::'));
  for (; i < segs.length; i++) {
    const next = [...mod, segs[i]];
    const file = byModule.get(next.join('::'));
    if (!file) break;
    mod = next;
    found = file;
  }
  return found;
}

const problems = [];
const graph = new Map();
for (const rel of files) {
  if (testFiles.has(rel)) continue;
  const body = code(nonTest(texts.get(rel)));
  const mod = modulePath(rel);
  const edges = new Set();
  for (const p of pathsIn(body)) {
    const target = resolve(mod, p);
    // A module's own file (mod.rs naming its children, or `self::`) is no edge.
    if (target && target !== rel) edges.add(target);
  }
  // A parent declaring `mod child;` is structure, not an import.
  for (const m of body.matchAll(/\bmod\s+(\w+)\s*;/g)) edges.delete(byModule.get([...mod, m[1]].join('::')));
  graph.set(rel, edges);

  const lines = nonTest(texts.get(rel)).split('\n').length;
  const exception = LONG_FILE_EXCEPTIONS[rel];
  if (lines > MAX_LINES && !exception) problems.push(`${rel}: ${lines} lines of non-test code (at most ${MAX_LINES})`);
  if (lines <= MAX_LINES && exception) problems.push(`${rel}: now ${lines} lines; remove its entry from LONG_FILE_EXCEPTIONS`);

  if (rel === 'ports.rs') {
    for (const e of edges) if (e !== 'http.rs') problems.push(`ports.rs imports ${e}: ports.rs may import only http.rs`);
  }
  if (rel.startsWith('oidc/')) {
    for (const e of edges) if (e.startsWith('oauth/')) problems.push(`${rel} imports ${e}: oidc/ must not import oauth/`);
  }
  if (rel.startsWith('routes/')) {
    if (/\bpages::/.test(body)) problems.push(`${rel} calls pages::; map core results instead`);
    if (rel !== 'routes/reply.rs' && /"error"/.test(body)) {
      problems.push(`${rel} builds a JSON error; add it to routes/reply.rs`);
    }
  }
}

// Cycles, by depth-first search over files.
const state = new Map();
const stack = [];
function visit(file) {
  state.set(file, 'open');
  stack.push(file);
  for (const next of graph.get(file) ?? []) {
    if (!graph.has(next)) continue;
    if (state.get(next) === 'open') {
      problems.push(`import cycle: ${[...stack.slice(stack.indexOf(next)), next].join(' -> ')}`);
    } else if (!state.has(next)) {
      visit(next);
    }
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length) {
  console.error(`architecture check failed (${problems.length}):`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(1);
}
const edgeCount = [...graph.values()].reduce((n, e) => n + e.size, 0);
console.log(`architecture check passed: ${graph.size} files, ${edgeCount} imports, no cycle`);
